// ie-udpfwd: the plain UDP forwarder the SN benchmarks compare iesn against
// (tests/bench/sn_forwarding.sh, docs/performance.md). It does what iesn's pipe-terminus
// does minus everything ILP: N threads, each with its own SO_REUSEPORT socket on the same
// endpoint, receive a batch with recvmmsg and send the same payloads to one fixed
// destination with sendmmsg. No crypto, no lookup, no copy.
//
//   ie-udpfwd --listen IP:PORT --to IP:PORT [--threads N] [--duration SEC]
//             [--ready-file PATH]
//
// Runs until SIGTERM/SIGINT or --duration, then prints one JSON line on stdout:
// {"received":..,"forwarded":..,"send_dropped":..,"threads":..,"cpu_seconds":..,
//  "first_ns":..,"last_ns":..} (first/last: CLOCK_MONOTONIC of the first and last batch).
// Exit status: 0 ok, 1 failure, 2 usage.
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ie/io/udp.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop.store(true, std::memory_order_relaxed);
}

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct ThreadStats {
  std::uint64_t received = 0, forwarded = 0, dropped = 0;
  std::uint64_t first_ns = 0, last_ns = 0;
};

// One worker: its own socket, its own buffers, nothing shared but the stop flag.
void forward_loop(ie::io::UdpSocket& sock, const sockaddr_storage& to, socklen_t to_len,
                  ThreadStats* st) {
  constexpr std::size_t kBatch = ie::io::UdpSocket::kMaxBatch;
  constexpr std::size_t kBuf = 2048;
  std::vector<std::uint8_t> mem(kBatch * kBuf);
  std::vector<ie::io::Datagram> batch(kBatch);
  while (!g_stop.load(std::memory_order_relaxed)) {
    pollfd p{sock.fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;  // timeout or EINTR: re-check the stop flag
    for (std::size_t i = 0; i < kBatch; ++i) {
      batch[i].buf = ie::ByteSpan(mem.data() + i * kBuf, kBuf);
      batch[i].len = 0;
      batch[i].segment_size = 0;
    }
    auto n = sock.recv_batch(batch);
    if (!n || *n == 0) continue;
    const std::uint64_t t = now_ns();
    if (st->first_ns == 0) st->first_ns = t;
    st->last_ns = t;
    st->received += *n;
    for (std::size_t i = 0; i < *n; ++i) {
      batch[i].peer = to;
      batch[i].peer_len = to_len;
    }
    // Send everything; if the socket buffer is full, wait for room a bounded number of times
    // and then drop the rest (a forwarder never blocks on one slow destination for long).
    std::size_t done = 0;
    for (int attempt = 0; done < *n && attempt < 100; ++attempt) {
      auto s = sock.send_batch(std::span<const ie::io::Datagram>(batch.data() + done, *n - done));
      if (!s) break;
      done += *s;
      if (done < *n) {
        pollfd w{sock.fd(), POLLOUT, 0};
        ::poll(&w, 1, 1);
      }
    }
    st->forwarded += done;
    st->dropped += *n - done;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ie-udpfwd: plain UDP forwarder baseline (recvmmsg -> sendmmsg)"};
  std::string listen, to, ready_file;
  unsigned threads = 1;
  double duration = 0;
  app.add_option("--listen", listen, "UDP endpoint to receive on (IP:PORT)")->required();
  app.add_option("--to", to, "destination of every datagram (IP:PORT)")->required();
  app.add_option("--threads", threads, "SO_REUSEPORT sockets/threads")->check(CLI::Range(1u, 64u));
  app.add_option("--duration", duration, "stop after this many seconds (0: until SIGTERM)")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--ready-file", ready_file, "written once every socket is bound");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  socklen_t to_len = 0;
  auto dst = ie::io::parse_endpoint(to, &to_len);
  if (!dst) {
    std::fprintf(stderr, "ie-udpfwd: --to: %s\n", dst.error().to_string().c_str());
    return 2;
  }
  ie::io::UdpOptions opt;
  opt.reuse_port = true;
  opt.recv_buffer = 4 << 20;
  opt.send_buffer = 4 << 20;
  std::vector<ie::io::UdpSocket> socks;
  for (unsigned i = 0; i < threads; ++i) {
    auto s = ie::io::UdpSocket::bind(listen, opt);
    if (!s) {
      std::fprintf(stderr, "ie-udpfwd: %s\n", s.error().to_string().c_str());
      return 1;
    }
    socks.push_back(std::move(*s));
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: a blocked poll returns at once
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  std::vector<ThreadStats> stats(threads);
  std::vector<std::thread> workers;
  for (unsigned i = 0; i < threads; ++i)
    workers.emplace_back(forward_loop, std::ref(socks[i]), std::cref(*dst), to_len, &stats[i]);
  if (!ready_file.empty()) std::ofstream(ready_file) << "ready\n";

  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(duration));
  while (!g_stop.load(std::memory_order_relaxed)) {
    if (duration > 0 && Clock::now() >= end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  g_stop.store(true);
  for (auto& w : workers)
    w.join();

  ThreadStats sum;
  for (const auto& s : stats) {
    sum.received += s.received;
    sum.forwarded += s.forwarded;
    sum.dropped += s.dropped;
    if (s.first_ns != 0 && (sum.first_ns == 0 || s.first_ns < sum.first_ns))
      sum.first_ns = s.first_ns;
    sum.last_ns = std::max(sum.last_ns, s.last_ns);
  }
  std::uint64_t kernel_dropped = 0;
  for (const auto& s : socks)
    kernel_dropped += s.send_dropped();
  std::printf(
      "{\"received\":%llu,\"forwarded\":%llu,\"send_dropped\":%llu,\"threads\":%u,"
      "\"cpu_seconds\":%.3f,\"first_ns\":%llu,\"last_ns\":%llu}\n",
      static_cast<unsigned long long>(sum.received),
      static_cast<unsigned long long>(sum.forwarded - std::min(sum.forwarded, kernel_dropped)),
      static_cast<unsigned long long>(sum.dropped + kernel_dropped), threads, cpu_seconds(),
      static_cast<unsigned long long>(sum.first_ns), static_cast<unsigned long long>(sum.last_ns));
  return 0;
}
