// ie-udpfwd: the plain UDP forwarder the SN benchmarks compare iesn against
// (tests/bench/sn_forwarding.sh, docs/performance.md). It does what iesn's pipe-terminus
// does minus everything ILP: N threads, each with its own SO_REUSEPORT socket on the same
// endpoint, receive a batch with recvmmsg and send the same payloads to one fixed
// destination with sendmmsg. No crypto, no lookup, no copy.
//
// With several --to it replicates each datagram to every destination (the same buffer, one
// send each), and with --seal it also PSP-seals every copy for its destination (AES-256-GCM,
// one send SA per destination, as iesn's multicast does: the first copy in place, the others
// copied out first). --seal with N destinations is "N x (one seal + one send)", the
// baseline of the multicast target; receivers see sealed datagrams they cannot open (plain
// receivers count them as bad).
//
//   ie-udpfwd --listen IP:PORT --to IP:PORT [--to IP:PORT ...] [--seal] [--threads N]
//             [--duration SEC] [--ready-file PATH]
//
// Runs until SIGTERM/SIGINT or --duration, then prints one JSON line on stdout:
// {"received":..,"forwarded":.. (datagrams sent:
// copies),"send_dropped":..,"threads":..,"cpu_seconds":..,
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
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ie/crypto/sa_table.hpp"
#include "ie/io/udp.hpp"
#include "ie/wire/psp.hpp"

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

struct Destination {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

struct ThreadStats {
  std::uint64_t received = 0, forwarded = 0, dropped = 0;
  std::uint64_t first_ns = 0, last_ns = 0;
};

// One worker: its own socket, its own buffers (and with --seal its own send SAs), nothing
// shared but the stop flag. Received datagrams land after 16 bytes of headroom so that the
// first copy can be sealed in place.
void forward_loop(ie::io::UdpSocket& sock, const std::vector<Destination>& to, bool seal,
                  ThreadStats* st) {
  constexpr std::size_t kBatch = ie::io::UdpSocket::kMaxBatch;
  constexpr std::size_t kBuf = 2048;
  constexpr std::size_t kHead = ie::wire::kPspHeaderLen, kTag = 16;
  std::vector<ie::crypto::TxSa> sas;
  if (seal) {
    for (std::size_t k = 0; k < to.size(); ++k) {
      ie::crypto::psp::Key key;
      for (std::size_t b = 0; b < 32; ++b)
        key.bytes.data()[b] = static_cast<std::uint8_t>(b * 7 + k + 1);
      auto sa = ie::crypto::TxSa::create(static_cast<std::uint32_t>(0x100 + k), key);
      if (!sa) {
        std::fprintf(stderr, "ie-udpfwd: %s\n", sa.error().to_string().c_str());
        g_stop.store(true);
        return;
      }
      sas.push_back(std::move(*sa));
    }
  }
  const std::size_t copies = to.size();
  std::vector<std::uint8_t> mem(kBatch * kBuf), out_mem(seal ? kBatch * copies * kBuf : 0);
  std::vector<ie::io::Datagram> batch(kBatch), out(kBatch * copies);
  while (!g_stop.load(std::memory_order_relaxed)) {
    pollfd p{sock.fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;  // timeout or EINTR: re-check the stop flag
    for (std::size_t i = 0; i < kBatch; ++i) {
      batch[i].buf = ie::ByteSpan(mem.data() + i * kBuf + kHead, kBuf - kHead - kTag);
      batch[i].len = 0;
      batch[i].segment_size = 0;
    }
    auto n = sock.recv_batch(batch);
    if (!n || *n == 0) continue;
    const std::uint64_t t = now_ns();
    if (st->first_ns == 0) st->first_ns = t;
    st->last_ns = t;
    st->received += *n;
    std::size_t m = 0;
    for (std::size_t i = 0; i < *n; ++i) {
      const std::size_t len = batch[i].len;
      for (std::size_t k = 0; k < copies; ++k, ++m) {
        ie::io::Datagram& d = out[m];
        d.segment_size = 0;
        d.peer = to[k].addr;
        d.peer_len = to[k].len;
        if (!seal) {
          d.buf = batch[i].buf;
          d.len = len;
          continue;
        }
        ie::ByteSpan b(mem.data() + i * kBuf, kBuf);  // the first copy: sealed in place
        if (k > 0) {
          b = ie::ByteSpan(out_mem.data() + m * kBuf, kBuf);
          std::memcpy(b.data() + kHead, batch[i].buf.data(), len);
        }
        d.buf = b;
        d.len = sas[k].seal_in_place(b, len);
      }
    }
    // Send everything; if the socket buffer is full, wait for room a bounded number of times
    // and then drop the rest (a forwarder never blocks on one slow destination for long).
    std::size_t done = 0;
    for (int attempt = 0; done < m && attempt < 100; ++attempt) {
      auto s = sock.send_batch(std::span<const ie::io::Datagram>(out.data() + done, m - done));
      if (!s) break;
      done += *s;
      if (done < m) {
        pollfd w{sock.fd(), POLLOUT, 0};
        ::poll(&w, 1, 1);
      }
    }
    st->forwarded += done;
    st->dropped += m - done;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ie-udpfwd: plain UDP forwarder baseline (recvmmsg -> sendmmsg)"};
  std::string listen, ready_file;
  std::vector<std::string> to;
  bool seal = false;
  unsigned threads = 1;
  double duration = 0;
  app.add_option("--listen", listen, "UDP endpoint to receive on (IP:PORT)")->required();
  app.add_option("--to", to, "destination of every datagram (IP:PORT; repeat: every one)")
      ->required()
      ->expected(1, 8);
  app.add_flag("--seal", seal, "PSP-seal every copy for its destination (one SA each)");
  app.add_option("--threads", threads, "SO_REUSEPORT sockets/threads")->check(CLI::Range(1u, 64u));
  app.add_option("--duration", duration, "stop after this many seconds (0: until SIGTERM)")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--ready-file", ready_file, "written once every socket is bound");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  std::vector<Destination> dsts;
  for (const auto& e : to) {
    Destination d;
    auto a = ie::io::parse_endpoint(e, &d.len);
    if (!a) {
      std::fprintf(stderr, "ie-udpfwd: --to %s: %s\n", e.c_str(), a.error().to_string().c_str());
      return 2;
    }
    d.addr = *a;
    dsts.push_back(d);
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
    workers.emplace_back(forward_loop, std::ref(socks[i]), std::cref(dsts), seal, &stats[i]);
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
