// The association timers at scale: one responder Node (as an SN) with thousands of peers,
// each peer its own Node (as a host), on a fake clock stepped every kStep with instant
// delivery. Checks, peer by peer, that keepalives, KEY_OFFER and handshake retransmissions,
// rekeys (by the initiator and, when it stays silent, by the responder) and dead-peer
// detection happen at their deadlines (within one step, never early), and that on_timer
// visits only the peers that are due rather than walking all of them.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "ie/crypto/association.hpp"
#include "ie/wire/demux.hpp"

namespace ie::crypto::assoc {
namespace {

using namespace std::chrono_literals;

constexpr Duration kStep = 20ms;
constexpr std::uint64_t kWallBase = 1'700'000'000'000'000'000ull;
constexpr std::size_t kSn = SIZE_MAX;  // "node index" of the SN

struct Seen {
  Time at;
  EventType type;
};

class Fleet {
 public:
  Time now = Time{} + 1h;
  const Time t0 = now;
  // Return false to drop a datagram between host i and the SN (to_sn: its direction).
  std::function<bool(std::size_t host, bool to_sn, const Bytes&)> filter;

  Fleet(std::size_t hosts, Timers sn_timers, const std::function<Timers(std::size_t)>& host_timers,
        Duration stagger) {
    Config c = config(sn_timers);
    c.accept_unknown_ik = true;
    sn_pub_ = c.static_key.pub;
    sn_ = std::make_unique<Node>(std::move(c), sn_ring_);
    for (std::size_t i = 0; i < hosts; ++i) {
      auto h = std::make_unique<Host>();
      Config hc = config(host_timers(i));
      by_pub_[hc.static_key.pub] = i;
      h->node = std::make_unique<Node>(std::move(hc), h->ring);
      h->start = t0 + stagger * static_cast<Duration::rep>(i);
      hosts_.push_back(std::move(h));
    }
    sent_by_sn.resize(hosts);
    sent_by_host.resize(hosts);
    sn_seen.resize(hosts);
    host_seen.resize(hosts);
    sn_id.resize(hosts);
  }

  // Advances the clock by d in kStep steps; every node whose deadline has come runs its timers.
  void run_for(Duration d) {
    const Time until = now + d;
    while (now < until) {
      now += kStep;
      for (std::size_t i = 0; i < hosts_.size(); ++i) {
        Host& h = *hosts_[i];
        if (!h.started && now >= h.start) {
          h.started = true;
          h.node->add_peer(sn_pub_, sn_addr(), /*connect=*/true, now);
        } else if (auto dl = h.node->next_deadline(); dl && *dl <= now) {
          h.node->on_timer(now);
        }
        drain(i);
      }
      if (auto dl = sn_->next_deadline(); dl && *dl <= now) sn_->on_timer(now);
      drain(kSn);
      deliver();
    }
  }

  Node& sn() { return *sn_; }
  std::size_t size() const { return hosts_.size(); }

  // Per host: when the SN delivered a datagram to it (and its kind), when it delivered one to
  // the SN, and what the SN's and the host's events about each other were.
  std::vector<std::vector<std::pair<Time, wire::DatagramKind>>> sent_by_sn, sent_by_host;
  std::vector<std::vector<Seen>> sn_seen, host_seen;
  std::vector<PeerId> sn_id;  // the SN's peer id of host i (0 until established)

  std::vector<Time> sn_times(std::size_t i, EventType t) const { return times(sn_seen[i], t); }
  std::vector<Time> host_times(std::size_t i, EventType t) const { return times(host_seen[i], t); }

 private:
  struct Host {
    psp::RxKeyring ring;
    std::unique_ptr<Node> node;
    Time start{};
    bool started = false;
  };
  struct Flight {
    std::size_t from, to;
    Bytes bytes;
  };

  static std::vector<Time> times(const std::vector<Seen>& v, EventType t) {
    std::vector<Time> out;
    for (const auto& s : v) {
      if (s.type == t) out.push_back(s.at);
    }
    return out;
  }

  Config config(Timers t) {
    Config c;
    c.static_key = noise::KeyPair::generate();
    c.timers = t;
    c.wall_clock_ns = [this] {
      return kWallBase + static_cast<std::uint64_t>((now - (Time{} + 1h)).count());
    };
    return c;
  }

  static Addr sn_addr() {
    const std::uint8_t a[6] = {0, 0, 0, 0, 0x03, 0xe8};
    return Addr::from(a);
  }
  static Addr host_addr(std::size_t i) {
    std::uint8_t a[6] = {10, 0, 0, 0, 0x03, 0xe8};
    store_be32(a, static_cast<std::uint32_t>(i) + 1);
    return Addr::from(a);
  }
  static std::size_t host_of(const Addr& a) {
    return static_cast<std::size_t>(load_be32(a.bytes.data())) - 1;
  }

  void drain(std::size_t from) {
    Node& n = from == kSn ? *sn_ : *hosts_[from]->node;
    for (auto& e : n.take_events()) {
      if (from == kSn) {
        if (e.type == EventType::established) {
          const std::size_t i = by_pub_.at(e.remote_static);
          sn_id[i] = e.peer;
          host_by_id_[e.peer] = i;
        }
        if (const auto it = host_by_id_.find(e.peer); it != host_by_id_.end())
          sn_seen[it->second].push_back({now, e.type});
      } else {
        host_seen[from].push_back({now, e.type});
      }
    }
    for (auto& d : n.take_datagrams()) {
      const std::size_t to = from == kSn ? host_of(d.to) : kSn;
      flight_.push_back({from, to, std::move(d.bytes)});
    }
  }

  // Delivers everything in flight, and what that causes, at the current time. Bounded.
  void deliver() {
    for (std::size_t n = 0; n < 10'000'000 && !flight_.empty(); ++n) {
      Flight f = std::move(flight_.front());
      flight_.pop_front();
      const bool to_sn = f.to == kSn;
      const std::size_t host = to_sn ? f.from : f.to;
      if (filter && !filter(host, to_sn, f.bytes)) continue;
      const auto kind = wire::classify(f.bytes);
      (to_sn ? sent_by_host : sent_by_sn)[host].emplace_back(now, kind);
      if (to_sn) {
        sn_->on_datagram(f.bytes, host_addr(host), now);
      } else {
        hosts_[host]->node->on_datagram(f.bytes, sn_addr(), now);
      }
      drain(f.to);
    }
    ASSERT_TRUE(flight_.empty()) << "delivery did not settle";
  }

  psp::RxKeyring sn_ring_;
  std::unique_ptr<Node> sn_;
  noise::PublicKey sn_pub_{};
  std::vector<std::unique_ptr<Host>> hosts_;
  std::map<noise::PublicKey, std::size_t> by_pub_;
  std::map<PeerId, std::size_t> host_by_id_;
  std::deque<Flight> flight_;
};

// Expects t to lie in [lo, lo + width].
::testing::AssertionResult within(Time t, Time lo, Duration width) {
  if (t >= lo && t <= lo + width) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "at " << std::chrono::duration<double>(t - lo).count() << " s from its deadline";
}

double secs(Duration d) {
  return std::chrono::duration<double>(d).count();
}

TEST(AssociationSchedule, ThousandsOfPeersEachOnTime) {
  constexpr std::size_t kHosts = 2000;
  Timers t;
  t.rekey_after_time = 60s;
  t.rekey_jitter = 0s;  // exact deadlines (the jitter has its own test in association_test)
  t.sa_overlap = 7s;    // not a multiple of keepalive: retirements have their own deadlines
  const Timers sn_t = t;
  // Every tenth host (group 0) never re-keys itself, so the SN steps in; group 1 loses the
  // SN's first KEY_OFFER; group 2 is cut off at 30 s; the others are plain.
  auto group = [](std::size_t i) { return i % 10; };
  Fleet f(
      kHosts, sn_t,
      [&](std::size_t i) {
        Timers h = t;
        if (group(i) == 0) h.rekey_after_time = 10000s;
        return h;
      },
      5ms);
  const Time cut = f.t0 + 30s;
  std::vector<bool> sn_init_dropped(kHosts, false), offer_dropped(kHosts, false);
  f.filter = [&](std::size_t host, bool to_sn, const Bytes& b) {
    if (group(host) == 2 && f.now >= cut) return false;
    const auto kind = wire::classify(b);
    if (to_sn) return true;
    if (group(host) == 0 && kind == wire::DatagramKind::handshake_init && !sn_init_dropped[host]) {
      sn_init_dropped[host] = true;  // the SN's first initiation is lost: it must retry
      return false;
    }
    // Group 1: the SN's control messages of the step its first session came up (its
    // KEY_OFFER and KEY_ACK) are lost: the SN must retransmit its offer 1 s later.
    const auto est = f.sn_times(host, EventType::established);
    if (group(host) == 1 && kind == wire::DatagramKind::control && est.size() == 1 &&
        est[0] == f.now) {
      offer_dropped[host] = true;
      return false;
    }
    return true;
  };
  f.run_for(150s);

  for (std::size_t i = 0; i < kHosts; ++i) {
    SCOPED_TRACE("host " + std::to_string(i) + " group " + std::to_string(group(i)));
    ASSERT_NE(f.sn_id[i], 0u);
    const auto est = f.sn_times(i, EventType::established);
    const auto dead = f.sn_times(i, EventType::dead);
    ASSERT_FALSE(est.empty());
    switch (group(i)) {
      case 0: {
        // The SN re-keys for the silent initiator (a host: not kept connected by the SN) at
        // born + rekey + max(3 * retry_max, rekey) = 120 s; its first initiation is lost and
        // retried after rekey_retry, 5 s (+-12.5% jitter).
        ASSERT_GE(est.size(), 2u);
        EXPECT_TRUE(dead.empty());
        std::vector<Time> inits;
        for (const auto& [at, kind] : f.sent_by_sn[i]) {
          if (kind == wire::DatagramKind::handshake_init) inits.push_back(at);
        }
        ASSERT_TRUE(sn_init_dropped[i]);
        ASSERT_EQ(inits.size(), est.size() - 1);  // delivered: the retry, then a rekey
        EXPECT_TRUE(within(inits[0], est[0] + 120s + 4375ms, 1250ms + 2 * kStep));
        EXPECT_EQ(est[1], inits[0]);  // instant delivery: up in the same step
        // Now the SN is the session's initiator: it re-keys after rekey_after_time (hosts
        // that came up in the first 5 s get there within the 150 s).
        if (est.size() > 2) {
          EXPECT_TRUE(within(est[2], est[1] + t.rekey_after_time, kStep));
        }
        EXPECT_LE(est.size(), 3u);
        break;
      }
      case 1: {
        ASSERT_TRUE(offer_dropped[i]);
        // The host's send SA comes from the SN's KEY_OFFER: the retransmitted one.
        const auto tx = f.host_times(i, EventType::tx_sa_install);
        ASSERT_FALSE(tx.empty());
        EXPECT_TRUE(within(tx[0], est[0] + 1s, kStep));
        EXPECT_TRUE(dead.empty());
        ASSERT_GE(est.size(), 3u);
        break;
      }
      case 2: {
        // Cut off: both sides declare the other dead dead_after after they last heard it.
        Time last_rx{}, last_heard{};
        for (const auto& [at, kind] : f.sent_by_host[i])
          last_rx = std::max(last_rx, at);
        for (const auto& [at, kind] : f.sent_by_sn[i])
          last_heard = std::max(last_heard, at);
        ASSERT_EQ(dead.size(), 1u);
        EXPECT_TRUE(within(dead[0], last_rx + t.dead_after, kStep));
        const auto host_dead = f.host_times(i, EventType::dead);
        ASSERT_EQ(host_dead.size(), 1u);
        EXPECT_TRUE(within(host_dead[0], last_heard + t.dead_after, kStep));
        break;
      }
      default: {
        EXPECT_TRUE(dead.empty());
        // The host re-keys every rekey_after_time: three sessions in 150 s.
        ASSERT_EQ(est.size(), 3u);
        for (std::size_t k = 1; k < est.size(); ++k)
          EXPECT_TRUE(within(est[k], est[k - 1] + t.rekey_after_time, kStep)) << "rekey " << k;
        // Each rekey's KEY_ACK (same step) retires the SN's older receive SPI after sa_overlap.
        const auto retired = f.sn_times(i, EventType::rx_sa_retire);
        ASSERT_EQ(retired.size(), 2u);
        for (std::size_t k = 0; k < retired.size(); ++k)
          EXPECT_TRUE(within(retired[k], est[k + 1] + t.sa_overlap, kStep)) << "retire " << k;
        // Between handshakes the SN sends only keepalives, each keepalive after its last
        // message: the gaps are a step's handshake burst (0) or keepalive (within a step).
        const auto& sent = f.sent_by_sn[i];
        for (std::size_t k = 1; k < sent.size(); ++k) {
          const Duration gap = sent[k].first - sent[k - 1].first;
          if (gap == Duration::zero()) continue;
          EXPECT_TRUE(within(sent[k].first, sent[k - 1].first + t.keepalive, kStep))
              << "after " << secs(sent[k - 1].first - f.t0) << " s, gap " << secs(gap) << " s";
        }
        EXPECT_GE(sent.size(), 12u);  // at least the keepalives of 130 s
        break;
      }
    }
  }
  EXPECT_EQ(f.sn().drops().total(), 0u);
}

TEST(AssociationSchedule, OnTimerVisitsOnlyDuePeers) {
  constexpr std::size_t kHosts = 2000;
  Fleet f(
      kHosts, Timers{}, [](std::size_t) { return Timers{}; }, 5ms);
  f.run_for(15s);
  for (std::size_t i = 0; i < kHosts; ++i)
    ASSERT_TRUE(f.sn().is_established(f.sn_id[i])) << i;

  // Just before the earliest deadline nothing is visited; at it, only the few peers due then
  // (hosts came up 5 ms apart, timers run on a 20 ms grid: at most four share a deadline).
  const std::uint64_t v0 = f.sn().timer_visits_for_test();
  const auto dl = f.sn().next_deadline();
  ASSERT_TRUE(dl.has_value());
  ASSERT_GT(*dl, f.now);
  f.sn().on_timer(*dl - 1ns);
  EXPECT_EQ(f.sn().timer_visits_for_test(), v0);
  f.sn().on_timer(*dl);
  const std::uint64_t at_deadline = f.sn().timer_visits_for_test() - v0;
  EXPECT_GE(at_deadline, 1u);
  EXPECT_LE(at_deadline, 4u);
  ASSERT_TRUE(f.sn().next_deadline().has_value());
  EXPECT_GT(*f.sn().next_deadline(), *dl);
  (void)f.sn().take_datagrams();  // keepalives of that call: not delivered (they are late)

  // Over 20 s (1,000 steps) every peer is visited for its two keepalives and little else; a
  // walk of all peers per due step would make about 2,000,000 visits.
  std::size_t sent_before = 0;
  for (std::size_t i = 0; i < kHosts; ++i)
    sent_before += f.sent_by_sn[i].size();
  const std::uint64_t v1 = f.sn().timer_visits_for_test();
  f.run_for(20s);
  const std::uint64_t visits = f.sn().timer_visits_for_test() - v1;
  std::size_t sent = 0;
  for (std::size_t i = 0; i < kHosts; ++i)
    sent += f.sent_by_sn[i].size();
  sent -= sent_before;
  EXPECT_GE(sent, 2 * kHosts - kHosts / 10);  // each peer's keepalives, about two
  EXPECT_GE(visits, sent);
  EXPECT_LE(visits, 3 * kHosts);
  for (std::size_t i = 0; i < kHosts; ++i)
    EXPECT_TRUE(f.sn_times(i, EventType::dead).empty());
}

}  // namespace
}  // namespace ie::crypto::assoc