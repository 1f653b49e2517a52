// Path MTU black-hole detection for one next hop (datagram packetization layer PMTU
// discovery, RFC 8899, simplified; docs/ied.md "Path MTU", step 6).
//
// The kernel learns a smaller path MTU only from ICMP "fragmentation needed" / "packet too
// big" (path_mtu.hpp). A path that filters those (a PMTU black hole) silently loses every
// datagram that carries DF and is larger than its MTU. Plpmtud finds such a limit with
// padded PROBEs (HostLink::probe_size: the peer answers with a small PROBE_ACK; the probe is
// a real datagram of the tested size, DF set by the kernel like on data):
//   - confirm: while datagrams above the smallest path MTU go to the hop, the largest size
//     the kernel lets out with DF (`upper`: its path MTU minus IP and UDP headers; or the
//     black-hole limit found, if smaller) is probed every confirm_every, and at once when
//     it changes. An answer confirms it.
//   - detect: max_probes consecutive unanswered confirmations (each waits `timeout`; the
//     next goes at once) mean that size does not get through.
//   - search: `parallel` probes at once, spread evenly between the largest size known to
//     pass (at first kFloor, which every IPv4 path carries) and the smallest known to fail;
//     one round per `timeout`, until the two are within `granularity`. The largest size
//     that passed is the black-hole limit (cap()). The first round also probes kFloor: if
//     nothing at all is answered, the peer is gone (its association's timers deal with
//     that), not behind a black hole, and the search ends without a limit.
//   - raise: with a limit below `upper`, `upper` is probed again every raise_every while
//     big datagrams flow; an answer removes the limit (the black hole is gone).
// Probes are only sent while big datagrams flow (busy), so an idle hop costs nothing.
// Single-threaded; the caller sends the probes (SendProbe) and reports their answers
// (Answered), so the state machine is testable without a network.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace ie::ied {

class Plpmtud {
 public:
  using Time = std::chrono::steady_clock::time_point;
  // Every IPv4 path carries a 552-byte datagram (the kernel's net.ipv4.route.min_pmtu; IPv6:
  // 1280): as UDP payload over IPv4, the size known to pass before any probe.
  static constexpr std::size_t kFloor = 552 - 20 - 8;

  struct Config {
    std::chrono::milliseconds confirm_every{10000};
    std::chrono::milliseconds timeout{1000};
    unsigned max_probes = 3;
    std::chrono::milliseconds raise_every{60000};
    unsigned parallel = 8;
    std::size_t granularity = 8;
  };
  enum class State : std::uint8_t {
    idle,       // nothing probed yet
    confirmed,  // the target size's last probe was answered
    probing,    // a confirmation is unanswered (fails() of max_probes)
    searching,  // a black hole: looking for the largest size that passes
  };
  // Sends a probe of a datagram of `size` bytes (UDP payload); returns its id, 0 if it could
  // not be sent (it then counts as lost).
  using SendProbe = std::function<std::uint32_t(std::size_t size)>;
  using Answered = std::function<bool(std::uint32_t id)>;

  Plpmtud() = default;
  explicit Plpmtud(Config c) : cfg_(c) {}

  // Advances the state machine: takes the answers, sends what is due. upper: the largest
  // datagram the kernel sends with DF to the hop now; busy: datagrams above kFloor went to
  // the hop recently (probing stops when they stop).
  void tick(Time now, std::size_t upper, bool busy, const SendProbe& send,
            const Answered& answered);

  // The black-hole limit found (largest datagram that passes), nullopt if none: the kernel's
  // path MTU applies. The usable datagram size is min(upper, *cap()).
  std::optional<std::size_t> cap() const { return cap_; }
  State state() const { return state_; }
  unsigned fails() const { return fails_; }
  std::uint64_t probes_sent() const { return probes_sent_; }
  std::uint64_t black_holes() const { return black_holes_; }  // times a limit was set

 private:
  enum class Kind : std::uint8_t { confirm, raise, search };
  struct Pending {
    std::size_t size;
    std::uint32_t id;
    Time sent;
    Kind kind;
  };
  void send_probe(Time now, std::size_t size, Kind kind, const SendProbe& send);
  void start_round(Time now, const SendProbe& send);
  std::size_t target(std::size_t upper) const { return cap_ && *cap_ < upper ? *cap_ : upper; }

  Config cfg_;
  State state_ = State::idle;
  std::optional<std::size_t> cap_;
  std::vector<Pending> pending_;
  std::size_t confirmed_size_ = 0;  // the size the last confirmation passed at
  Time confirmed_at_{};
  unsigned fails_ = 0;
  Time next_raise_{};
  // search
  std::size_t lo_ = 0, hi_ = 0;   // lo_ passes, hi_ does not
  bool search_answered_ = false;  // any probe of this search was answered
  std::uint64_t probes_sent_ = 0;
  std::uint64_t black_holes_ = 0;
};

std::string_view to_string(Plpmtud::State s);

}  // namespace ie::ied
