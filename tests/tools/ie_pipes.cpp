// ie-pipes: the load program of the SN scale benchmark (tests/bench/sn_scale.sh,
// docs/performance.md "Scale"). It simulates P hosts, each with its own static key and its own
// association Node (libie), that associate with one iesn by Noise IK to its public key and
// keep their pipes up, each re-keying on the Node's Timers on average every --rotate seconds
// (a session's re-key point is drawn uniformly from [rotate - rotate/12, rotate + rotate/12]:
// rekey_after_time = rotate + rotate/12 with a jitter of rotate/6; libie's default draws from
// [T - T/6, T], a mean of 11/12 T, which would load the SN 9% more than "every T"), and, with
// --idle-keepalive always, a PROBE every --keepalive seconds that the SN answers (a host that wants
// to notice a dead SN at once); with never (the default), idle hosts send nothing between re-keys
// (WireGuard's idle peer; docs/ilp.md "Timers").
//
// Addresses: the SN keys sessions by source address, and one socket per host would need
// 100,000 descriptors. So the hosts share K sockets bound to 0.0.0.0:ephemeral, and each host
// sends from its own loopback address (127.B.x.y, all of 127/8 is local on lo) with IP_PKTINFO;
// replies come back to that address and recvmsg's IP_PKTINFO says which host they are for.
// Host i uses socket i % K and address number i / K. Loopback only (the SN must listen on
// 127.0.0.1).
//
// Only the control plane is simulated: PSP data from the SN is not expected and is counted
// and dropped (no receive SAs are kept), and no data is sent.
//
// Bring-up is paced twice: at most --rate handshakes started per second, and at most
// --inflight hosts started but not yet established.
//
// Progress lines go to stderr every --progress seconds; "ALL_UP" is printed once when every
// pipe is established; a JSON summary goes to stdout when the program ends (after --duration
// seconds past bring-up, or on SIGINT/SIGTERM).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "ie/crypto/association.hpp"
#include "ie/crypto/key_file.hpp"
#include "ie/crypto/noise.hpp"
#include "ie/crypto/psp_keyring.hpp"
#include "ie/io/udp.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using ie::crypto::assoc::Addr;
using ie::crypto::assoc::EventType;
using ie::crypto::assoc::IdleKeepalive;
using ie::crypto::assoc::Node;
using ie::crypto::assoc::PeerId;
namespace noise = ie::crypto::noise;

std::atomic<bool> g_stop{false};
void on_signal(int) {
  g_stop = true;
}

struct Options {
  std::string sn = "127.0.0.1:7000";
  std::string sn_key;  // base64 public key
  std::size_t pipes = 100000;
  double rate = 2000;                    // handshakes started per second during bring-up
  std::size_t inflight = 256;            // at most this many hosts started and not up yet
  int rotate = 180;                      // mean re-key period, seconds
  int keepalive = 10;                    // seconds
  int dead_after = 35;                   // seconds
  std::string idle_keepalive = "never";  // never | always
  double bringup_timeout = 300;
  double duration = 0;  // seconds after bring-up; 0 = until a signal
  double progress = 5;
  std::size_t sockets = 8;
  std::string base = "127.16.0.0";  // first source address
};

struct Host {
  std::unique_ptr<Node> node;
  PeerId sn = 0;
  bool up = false;
  bool ever = false;
  Clock::time_point started{};
  Clock::time_point sched = Clock::time_point::max();  // deadline queued in the heap
};

struct Stats {
  std::uint64_t started = 0, established = 0, up = 0, rekeys = 0, dead = 0, reassociations = 0;
  std::uint64_t tx = 0, rx = 0, tx_errors = 0, rx_unknown = 0, data_rx = 0;
};

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

class Pipes {
 public:
  explicit Pipes(Options o) : o_(std::move(o)) {}

  int run() {
    if (!setup()) return 1;
    const auto t0 = Clock::now();
    auto next_progress = t0;
    std::optional<Clock::time_point> all_up;
    const auto bringup_deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(o_.bringup_timeout));
    std::vector<pollfd> pfds(socks_.size());
    for (std::size_t i = 0; i < socks_.size(); ++i)
      pfds[i] = {socks_[i], POLLIN, 0};
    while (!g_stop) {
      auto now = Clock::now();
      // Paced bring-up: start hosts up to rate * elapsed.
      const double el = std::chrono::duration<double>(now - t0).count();
      const auto want = std::min<std::size_t>(o_.pipes, static_cast<std::size_t>(o_.rate * el) + 1);
      // ... and never more than --inflight hosts started but not up: a responder that falls
      // behind loses datagrams, and every retransmitted initiation costs it (and us) new DH.
      for (std::size_t n = 0;
           hosts_.size() < want && n < 256 && hosts_.size() - stats_.up < o_.inflight; ++n)
        start_host(now);
      // Receive up to a bounded number of batches per socket.
      for (std::size_t s = 0; s < socks_.size(); ++s)
        for (int b = 0; b < 16 && receive(s, now) == kBatch; ++b) {
        }
      // Timers.
      fire_timers(Clock::now());
      now = Clock::now();
      if (!all_up && stats_.up == o_.pipes) {
        all_up = now;
        std::fprintf(stderr, "ALL_UP t=%.1f pipes=%zu\n",
                     std::chrono::duration<double>(now - t0).count(), o_.pipes);
      }
      if (now >= next_progress) {
        progress(t0, now);
        next_progress = now + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(o_.progress));
      }
      if (!all_up && now >= bringup_deadline) {
        std::fprintf(stderr, "bring-up timeout: %llu of %zu up\n",
                     static_cast<unsigned long long>(stats_.up), o_.pipes);
        all_up = now;  // measure what we have
      }
      if (all_up && o_.duration > 0 &&
          std::chrono::duration<double>(now - *all_up).count() >= o_.duration)
        break;
      // Sleep until the next timer (at most 10 ms, 1 ms while bringing up).
      int timeout_ms = hosts_.size() < o_.pipes ? 1 : 10;
      if (!heap_.empty()) {
        const auto d =
            std::chrono::duration_cast<std::chrono::milliseconds>(heap_.top().first - now).count();
        timeout_ms = static_cast<int>(std::clamp<long long>(d, 0, timeout_ms));
      }
      (void)::poll(pfds.data(), pfds.size(), timeout_ms);
    }
    const auto end = Clock::now();
    nlohmann::json j = {
        {"pipes", o_.pipes},
        {"started", stats_.started},
        {"established_now", stats_.up},
        {"failed", o_.pipes - stats_.up},
        {"associations", stats_.established},
        {"reassociations", stats_.reassociations},
        {"rekeys", stats_.rekeys},
        {"dead", stats_.dead},
        {"datagrams_tx", stats_.tx},
        {"datagrams_rx", stats_.rx},
        {"tx_errors", stats_.tx_errors},
        {"rx_unknown", stats_.rx_unknown},
        {"data_rx_dropped", stats_.data_rx},
        {"elapsed_s", std::chrono::duration<double>(end - t0).count()},
        {"bringup_s", all_up ? std::chrono::duration<double>(*all_up - t0).count() : -1.0},
        {"rotate_s", o_.rotate},
        {"rss_mib", static_cast<double>(rss_kib()) / 1024.0},
        {"rss_kib_per_pipe_incl_base",
         hosts_.empty() ? 0.0
                        : static_cast<double>(rss_kib()) / static_cast<double>(hosts_.size())},
    };
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    return 0;
  }

 private:
  static constexpr std::size_t kBatch = 64;
  static constexpr std::size_t kBuf = 2048;
  static constexpr auto kTimerSlice = std::chrono::milliseconds(50);

  bool setup() {
    auto key = ie::crypto::key_from_base64(o_.sn_key);
    if (!key) {
      std::fprintf(stderr, "ie-pipes: --sn-key is not a base64 X25519 public key\n");
      return false;
    }
    sn_key_ = *key;
    socklen_t len = 0;
    auto sa = ie::io::parse_endpoint(o_.sn, &len);
    if (!sa || sa->ss_family != AF_INET) {
      std::fprintf(stderr, "ie-pipes: --sn must be an IPv4 IP:PORT\n");
      return false;
    }
    std::memcpy(&sn_addr_, &*sa, sizeof(sn_addr_));
    sn_assoc_ = Addr::from(
        ie::ConstByteSpan(reinterpret_cast<const std::uint8_t*>(&sn_addr_), sizeof(sn_addr_)));
    in_addr base{};
    if (::inet_pton(AF_INET, o_.base.c_str(), &base) != 1 || (ntohl(base.s_addr) >> 24) != 127) {
      std::fprintf(stderr, "ie-pipes: --base must be a 127.x.y.z address\n");
      return false;
    }
    base_ = ntohl(base.s_addr);
    const std::size_t per_sock = (o_.pipes + o_.sockets - 1) / o_.sockets;
    if (static_cast<std::uint64_t>(base_ & 0xffffff) + per_sock * 2 > 0xffffff) {
      std::fprintf(stderr, "ie-pipes: too many pipes for 127/8 from --base\n");
      return false;
    }
    for (std::size_t s = 0; s < o_.sockets; ++s) {
      const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) return perr("socket");
      const int one = 1, buf = 4 << 20;
      ::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
      sockaddr_in any{};
      any.sin_family = AF_INET;
      any.sin_addr.s_addr = htonl(INADDR_ANY);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof(any)) != 0) return perr("bind");
      socks_.push_back(fd);
    }
    rx_.resize(kBatch * kBuf);
    hosts_.reserve(o_.pipes);
    return true;
  }

  static bool perr(const char* what) {
    std::fprintf(stderr, "ie-pipes: %s: %s\n", what, std::strerror(errno));
    return false;
  }

  // Address number n skips x.y.z.0 and x.y.z.255.
  std::uint32_t host_ip(std::size_t i) const {
    const std::uint64_t n = i / o_.sockets;
    return base_ + static_cast<std::uint32_t>((n / 254) * 256 + (n % 254) + 1);
  }
  static std::uint64_t key_of(std::uint32_t ip, std::size_t sock) {
    return (static_cast<std::uint64_t>(ip) << 8) | sock;
  }

  void start_host(Clock::time_point now) {
    const std::size_t i = hosts_.size();
    ie::crypto::assoc::Config cfg;
    cfg.static_key = noise::KeyPair::generate();
    // The mean re-key period is --rotate (above): [rotate - rotate/12, rotate + rotate/12].
    const auto rotate = std::chrono::milliseconds(std::int64_t{o_.rotate} * 1000);
    cfg.timers.rekey_after_time = rotate + rotate / 12;
    cfg.timers.rekey_jitter = rotate / 6;
    cfg.timers.keepalive = std::chrono::seconds(o_.keepalive);
    cfg.timers.dead_after = std::chrono::seconds(o_.dead_after);
    cfg.timers.idle_keepalive =
        o_.idle_keepalive == "always" ? IdleKeepalive::always : IdleKeepalive::never;
    cfg.timers.master_rotation = std::chrono::hours(24 * 365);  // the shared ring: no rotation
    Host h;
    h.node = std::make_unique<Node>(std::move(cfg), ring_);
    h.started = now;
    h.sn = h.node->add_peer(sn_key_, sn_assoc_, /*connect=*/true, now);
    hosts_.push_back(std::move(h));
    by_addr_.emplace(key_of(host_ip(i), i % o_.sockets), static_cast<std::uint32_t>(i));
    ++stats_.started;
    after_call(i, now);
  }

  // Drains a host's Node after a call: send its datagrams, handle its events, reschedule.
  void after_call(std::size_t i, Clock::time_point now) {
    Host& h = hosts_[i];
    for (auto& d : h.node->take_datagrams())
      send(i, d.bytes);
    for (auto& e : h.node->take_events()) {
      switch (e.type) {
        case EventType::established:
          if (h.up) {
            ++stats_.rekeys;
          } else {
            h.up = true;
            ++stats_.up;
            ++stats_.established;
            if (h.ever) ++stats_.reassociations;
            h.ever = true;
          }
          break;
        case EventType::dead:
        case EventType::closed:
          ++stats_.dead;
          if (h.up) {
            h.up = false;
            --stats_.up;
          }
          break;
        default:
          break;  // SA events: this program sends and opens no data
      }
    }
    const auto nd = h.node->next_deadline();
    if (nd && (*nd < h.sched || h.sched <= now)) {
      h.sched = *nd;
      heap_.emplace(*nd, static_cast<std::uint32_t>(i));
    }
  }

  // Runs due hosts' timers for at most kTimerSlice, then returns so the sockets are read: a
  // re-key wave makes each due host start a handshake (DH), and 20,000 of them in a row kept
  // this loop from reading for seconds while the sockets overflowed (every host's keepalives
  // lost, hosts declared dead by the SN). What is left runs on the next turn (poll waits 0).
  // Not much shorter: with 5 ms, on a CPU-starved run the timers fell behind the reads and
  // keepalives went out late (hosts declared dead before any re-key).
  void fire_timers(Clock::time_point now) {
    const auto stop = Clock::now() + kTimerSlice;
    for (std::size_t n = 0; !heap_.empty() && heap_.top().first <= now; ++n) {
      if ((n & 15) == 15 && Clock::now() >= stop) break;
      const auto [t, i] = heap_.top();
      heap_.pop();
      Host& h = hosts_[i];
      if (t != h.sched) continue;  // superseded
      h.sched = Clock::time_point::max();
      h.node->on_timer(now);
      after_call(i, now);
    }
  }

  void send(std::size_t i, const ie::Bytes& bytes) {
    iovec iov{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(in_pktinfo))] = {};
    msghdr m{};
    m.msg_name = &sn_addr_;
    m.msg_namelen = sizeof(sn_addr_);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof(cbuf);
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
    in_pktinfo pi{};
    pi.ipi_spec_dst.s_addr = htonl(host_ip(i));
    std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    if (::sendmsg(socks_[i % o_.sockets], &m, 0) < 0)
      ++stats_.tx_errors;
    else
      ++stats_.tx;
  }

  std::size_t receive(std::size_t s, Clock::time_point now) {
    mmsghdr msgs[kBatch];
    iovec iovs[kBatch];
    sockaddr_in from[kBatch];
    alignas(cmsghdr) char cbufs[kBatch][CMSG_SPACE(sizeof(in_pktinfo)) + 64];
    for (std::size_t k = 0; k < kBatch; ++k) {
      iovs[k] = {rx_.data() + k * kBuf, kBuf};
      msgs[k] = {};
      msgs[k].msg_hdr.msg_name = &from[k];
      msgs[k].msg_hdr.msg_namelen = sizeof(from[k]);
      msgs[k].msg_hdr.msg_iov = &iovs[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
      msgs[k].msg_hdr.msg_control = cbufs[k];
      msgs[k].msg_hdr.msg_controllen = sizeof(cbufs[k]);
    }
    const int n = ::recvmmsg(socks_[s], msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return 0;
    for (int k = 0; k < n; ++k) {
      ++stats_.rx;
      std::uint32_t dst = 0;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[k].msg_hdr); c; c = CMSG_NXTHDR(&msgs[k].msg_hdr, c))
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
          in_pktinfo pi{};
          std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
          dst = ntohl(pi.ipi_addr.s_addr);
        }
      const auto it = by_addr_.find(key_of(dst, s));
      if (it == by_addr_.end()) {
        ++stats_.rx_unknown;
        continue;
      }
      const std::uint8_t* p = rx_.data() + static_cast<std::size_t>(k) * kBuf;
      const std::size_t len = msgs[k].msg_len;
      if (len >= 2 && p[1] != 0) {  // PSP data (docs/sn.md: control plane has byte 1 == 0)
        ++stats_.data_rx;
        continue;
      }
      Host& h = hosts_[it->second];
      h.node->on_datagram(ie::ConstByteSpan(p, len), sn_assoc_, now);
      after_call(it->second, now);
    }
    return static_cast<std::size_t>(n);
  }

  void progress(Clock::time_point t0, Clock::time_point now) {
    std::fprintf(
        stderr,
        "t=%.1f started=%llu up=%llu rekeys=%llu dead=%llu tx=%llu rx=%llu "
        "tx_err=%llu rss_mib=%.1f\n",
        std::chrono::duration<double>(now - t0).count(),
        static_cast<unsigned long long>(stats_.started), static_cast<unsigned long long>(stats_.up),
        static_cast<unsigned long long>(stats_.rekeys),
        static_cast<unsigned long long>(stats_.dead), static_cast<unsigned long long>(stats_.tx),
        static_cast<unsigned long long>(stats_.rx),
        static_cast<unsigned long long>(stats_.tx_errors), static_cast<double>(rss_kib()) / 1024.0);
  }

  Options o_;
  noise::PublicKey sn_key_{};
  sockaddr_in sn_addr_{};
  Addr sn_assoc_;
  std::uint32_t base_ = 0;
  std::vector<int> socks_;
  std::vector<std::uint8_t> rx_;
  ie::crypto::psp::RxKeyring ring_;  // shared by every Node: SPIs stay unique
  std::vector<Host> hosts_;
  std::unordered_map<std::uint64_t, std::uint32_t> by_addr_;
  using Entry = std::pair<Clock::time_point, std::uint32_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
  Stats stats_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ie-pipes: many simulated hosts keeping pipes to one iesn (scale benchmark)"};
  Options o;
  app.add_option("--sn", o.sn, "the SN's IPv4 IP:PORT (loopback)")->capture_default_str();
  app.add_option("--sn-key", o.sn_key, "the SN's public key (base64)")->required();
  app.add_option("-n,--pipes", o.pipes, "simulated hosts")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  app.add_option("--rate", o.rate, "handshakes started per second during bring-up")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1e6));
  app.add_option("--inflight", o.inflight, "bring-up: at most this many hosts not up yet")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  app.add_option("--rotate", o.rotate, "re-key every this many seconds (the mean period)")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  app.add_option("--keepalive", o.keepalive, "keepalive after this many idle seconds")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  app.add_option("--dead-after", o.dead_after, "session dead after this many silent seconds")
      ->capture_default_str()
      ->check(CLI::Range(2, 7200));
  app.add_option("--idle-keepalive", o.idle_keepalive,
                 "idle hosts: never (send nothing between re-keys) or always (PROBE every "
                 "--keepalive seconds)")
      ->capture_default_str()
      ->check(CLI::IsMember({"never", "always"}));
  app.add_option("--bringup-timeout", o.bringup_timeout, "seconds")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0));
  app.add_option("--duration", o.duration, "seconds to run after bring-up (0: until a signal)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--progress", o.progress, "seconds between progress lines")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--sockets", o.sockets, "UDP sockets shared by the hosts")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1024}));
  app.add_option("--base", o.base, "first source address (127.x.y.z)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (sodium_init() < 0) return 1;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  return Pipes(o).run();
}
