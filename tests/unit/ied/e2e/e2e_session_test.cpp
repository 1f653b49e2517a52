// E2e sessions between two hosts through an in-test SN path (e2e_harness.hpp): the first
// packet's handshake, bulk traffic across rekeys, lossy/duplicating/reordering paths, the
// queue bound, dead peers and restarts, IPv6, idle expiry and clean shutdown.
#include "ie/ied/e2e.hpp"

#include <gtest/gtest.h>

#include "e2e_harness.hpp"

namespace ie::ied {
namespace {

using namespace test;

E2eOptions with_queue(std::size_t n) {
  E2eOptions o;
  o.max_queued_per_peer = n;
  return o;
}

E2eOptions with_idle(Duration d) {
  E2eOptions o;
  o.idle_after = d;
  return o;
}

// The packets a host's TUN got must be exactly `want`, in order.
void expect_tun(const Host& h, const std::vector<Bytes>& want) {
  ASSERT_EQ(h.tun.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    ASSERT_EQ(h.tun[i], want[i]) << "packet " << i;
}

TEST(E2eSession, FirstPacketStartsTheHandshakeAndArrivesAfterIt) {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  const Bytes pkt = numbered(a.ip, b.ip, 1);
  net.send(a, b, pkt);
  // Only the handshake initiation left: the packet waits for the session.
  ASSERT_EQ(a.out.to_net.size(), 1u);
  IpView v;
  ASSERT_EQ(parse_ip(a.out.to_net[0], true, &v), wire::DropReason::none);
  EXPECT_EQ(v.src, a.ip);
  EXPECT_EQ(v.dst, b.ip);
  EXPECT_EQ(v.protocol, kE2eProto);
  EXPECT_EQ(wire::classify(v.payload), wire::DatagramKind::handshake_init);
  EXPECT_EQ(a.e2e->peer(b.ip)->queued, 1u);
  EXPECT_FALSE(a.e2e->peer(b.ip)->established);

  net.pump();
  expect_tun(b, {pkt});
  const auto pa = a.e2e->peer(b.ip);
  const auto pb = b.e2e->peer(a.ip);
  ASSERT_TRUE(pa && pb);
  EXPECT_TRUE(pa->established && pa->initiated);
  EXPECT_TRUE(pb->established);
  EXPECT_FALSE(pb->initiated);  // learned from A's handshake
  EXPECT_EQ(pb->key, a.key.pub);
  EXPECT_EQ(pb->local, b.ip);
  EXPECT_EQ(pa->tx_packets, 1u);
  EXPECT_EQ(pb->rx_packets, 1u);

  // The reply uses the session B learned (no second handshake).
  const Bytes reply = numbered(b.ip, a.ip, 2);
  net.send(b, a, reply);
  net.pump();
  expect_tun(a, {reply});
  EXPECT_EQ(a.e2e->stats().sessions, 1u);
  EXPECT_EQ(b.e2e->stats().sessions, 1u);
  EXPECT_EQ(a.e2e->drops_total(), 0u);
  EXPECT_EQ(b.e2e->drops_total(), 0u);
}

TEST(E2eSession, DataPacketLayoutAndOverhead) {
  EXPECT_EQ(E2e::overhead(false), 64u);
  EXPECT_EQ(E2e::overhead(true), 84u);
  for (const auto& [sa, sb] :
       {std::pair{"10.1.0.1", "10.2.0.2"}, std::pair{"2001:db8:1::1", "2001:db8:2::2"}}) {
    Net net;
    Host& a = net.add(sa);
    Host& b = net.add(sb);
    net.send(a, b, numbered(a.ip, b.ip, 0));
    net.pump();
    const Bytes pkt = numbered(a.ip, b.ip, 1, 500);
    net.send(a, b, pkt);
    ASSERT_EQ(a.out.to_net.size(), 1u);
    const auto d = a.out.to_net[0];
    EXPECT_EQ(d.size(), pkt.size() + E2e::overhead(a.ip.is_v6()));
    IpView v;
    ASSERT_EQ(parse_ip(d, true, &v), wire::DropReason::none);
    EXPECT_EQ(v.protocol, kE2eProto);
    EXPECT_EQ(v.src, a.ip);
    EXPECT_EQ(v.dst, b.ip);
    EXPECT_EQ(wire::classify(v.payload), wire::DatagramKind::psp);
    net.pump();
    ASSERT_EQ(b.tun.size(), 2u);
    EXPECT_EQ(b.tun[1], pkt);
  }
}

TEST(E2eSession, IPv6BothWays) {
  Net net;
  Host& a = net.add("2001:db8:1::1");
  Host& b = net.add("2001:db8:2::2");
  std::vector<Bytes> to_b, to_a;
  for (std::uint32_t i = 0; i < 50; ++i) {
    to_b.push_back(numbered(a.ip, b.ip, i, 100 + i));
    net.send(a, b, to_b.back());
    to_a.push_back(numbered(b.ip, a.ip, i, 200 + i));
    net.send(b, a, to_a.back());
    net.pump();
  }
  expect_tun(b, to_b);
  expect_tun(a, to_a);
  EXPECT_EQ(a.e2e->drops_total() + b.e2e->drops_total(), 0u);
}

TEST(E2eSession, TenThousandPacketsEachWayAcrossRekeysWithoutLoss) {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  std::vector<Bytes> to_b, to_a;
  to_b.reserve(10000);
  to_a.reserve(10000);
  for (std::uint32_t i = 0; i < 10000; ++i) {
    to_b.push_back(numbered(a.ip, b.ip, i));
    net.send(a, b, to_b.back());
    to_a.push_back(numbered(b.ip, a.ip, i, 80));
    net.send(b, a, to_a.back());
    // 2 ms per pair: 20 s of traffic, 2 s rekeys (both sides initiate some), 3 s master
    // key rotations, 1 s SA overlap.
    net.advance(2ms, 2ms);
  }
  net.advance(100ms);
  expect_tun(b, to_b);
  expect_tun(a, to_a);
  EXPECT_GE(a.e2e->stats().rekeys + b.e2e->stats().rekeys, 10u);
  EXPECT_EQ(a.e2e->stats().dead + b.e2e->stats().dead, 0u);
  EXPECT_EQ(a.e2e->drops_total(), 0u);
  EXPECT_EQ(b.e2e->drops_total(), 0u);
}

TEST(E2eSession, HandshakeSurvivesLossDuplicationAndReordering) {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  int control = 0;
  net.reorder = true;
  net.filter = [&](Bytes& p, const Host&) {
    if (is_data(p)) return 2;  // data duplicated: replays must be dropped
    ++control;
    // Lose the first initiation and the first response to the retry; duplicate the rest.
    return (control == 1 || control == 3) ? 0 : 2;
  };
  std::vector<Bytes> want;
  for (std::uint32_t i = 0; i < 5; ++i) {
    want.push_back(numbered(a.ip, b.ip, i));
    net.send(a, b, want.back());
  }
  net.pump();
  EXPECT_TRUE(b.tun.empty());
  net.advance(3s);
  // Every queued packet exactly once (the path reversed their order; the queue test checks
  // that they leave in order).
  auto sorted = [](std::vector<Bytes> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(b.tun), sorted(want));
  EXPECT_TRUE(a.e2e->peer(b.ip)->established);
  EXPECT_TRUE(b.e2e->peer(a.ip)->established);
  EXPECT_GE(control, 5);
  EXPECT_EQ(b.e2e->drops(wire::DropReason::replayed), 5u);

  // More traffic over the duplicating, reordering path: every packet exactly once.
  for (std::uint32_t i = 5; i < 100; ++i) {
    want.push_back(numbered(a.ip, b.ip, i));
    net.send(a, b, want.back());
  }
  net.pump();
  EXPECT_EQ(sorted(b.tun), sorted(want));
}

TEST(E2eSession, QueueIsBoundedOldestDroppedAndSentInOrder) {
  Net net;
  Host& a = net.add("10.1.0.1", with_queue(8));
  Host& b = net.add("10.2.0.2");
  std::vector<Bytes> sent;
  for (std::uint32_t i = 0; i < 20; ++i) {
    sent.push_back(numbered(a.ip, b.ip, i));
    net.send(a, b, sent.back());
  }
  const auto p = a.e2e->peer(b.ip);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->queued, 8u);
  EXPECT_EQ(p->queue_dropped, 12u);
  EXPECT_EQ(a.e2e->stats().queue_dropped, 12u);
  net.pump();
  expect_tun(b, std::vector<Bytes>(sent.begin() + 12, sent.end()));
  EXPECT_EQ(a.e2e->peer(b.ip)->queued, 0u);
}

TEST(E2eSession, DeadPeerIsDetectedAndTheSessionComesBack) {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  net.send(a, b, numbered(a.ip, b.ip, 0));
  net.pump();
  ASSERT_EQ(b.tun.size(), 1u);

  // The path goes black (an SN died): after dead_after both sides give up.
  net.filter = [](Bytes&, const Host&) { return 0; };
  net.advance(6s);
  EXPECT_FALSE(a.e2e->peer(b.ip)->established);
  EXPECT_GE(a.e2e->stats().dead, 1u);
  EXPECT_FALSE(b.e2e->peer(a.ip));  // B forgets a peer that opened the session to it
  // Packets meanwhile queue at A.
  const Bytes later = numbered(a.ip, b.ip, 1);
  net.send(a, b, later);
  EXPECT_EQ(a.e2e->peer(b.ip)->queued, 1u);

  // The path returns: A keeps retrying its handshake and the packet gets through.
  net.filter = nullptr;
  net.advance(2s);
  ASSERT_EQ(b.tun.size(), 2u);
  EXPECT_EQ(b.tun[1], later);
  EXPECT_TRUE(a.e2e->peer(b.ip)->established);
  EXPECT_EQ(a.e2e->stats().sessions, 2u);
}

TEST(E2eSession, RestartedPeerIsFoundDeadAndReassociated) {
  Net net;
  // No rekey in the window, so that dead-peer detection (not a rekey) brings it back.
  auto timers = net.fast_timers();
  timers.rekey_after_time = 60s;
  net.use_timers(timers);
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  net.send(a, b, numbered(a.ip, b.ip, 0));
  net.pump();
  ASSERT_EQ(b.tun.size(), 1u);

  net.restart(b);  // same key, no state
  std::uint32_t seq = 1;
  for (int i = 0; i < 800 && b.tun.size() < 2; ++i) {  // 8 s at most
    net.send(a, b, numbered(a.ip, b.ip, seq++));
    net.advance(10ms);
  }
  // Until A noticed, B dropped A's packets for an SPI it no longer has.
  EXPECT_GT(b.e2e->drops(wire::DropReason::unknown_spi), 0u);
  ASSERT_GE(b.tun.size(), 2u);
  EXPECT_GE(a.e2e->stats().dead, 1u);
  EXPECT_TRUE(b.e2e->peer(a.ip)->established);
}

TEST(E2eSession, IdlePeersAreClosedAndForgottenOnBothSides) {
  Net net;
  Host& a = net.add("10.1.0.1", with_idle(3s));
  Host& b = net.add("10.2.0.2", with_idle(30s));
  net.send(a, b, numbered(a.ip, b.ip, 0));
  net.pump();
  ASSERT_TRUE(b.e2e->peer(a.ip));
  net.advance(4s);  // keepalives flow, but no data
  EXPECT_FALSE(a.e2e->peer(b.ip));
  EXPECT_EQ(a.e2e->stats().idle_closed, 1u);
  EXPECT_FALSE(b.e2e->peer(a.ip));  // A's CLOSE arrived
  EXPECT_GE(b.e2e->stats().dead, 1u);
  // And a new packet opens a new session.
  net.send(a, b, numbered(a.ip, b.ip, 1));
  net.pump();
  EXPECT_EQ(b.tun.size(), 2u);
}

TEST(E2eSession, CloseAllTellsEveryPeer) {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  Host& c = net.add("10.3.0.3");
  net.send(a, b, numbered(a.ip, b.ip, 0));
  net.send(a, c, numbered(a.ip, c.ip, 0));
  net.pump();
  ASSERT_EQ(a.e2e->peers().size(), 2u);
  a.e2e->close_all(net.now(), a.out);
  EXPECT_TRUE(a.e2e->peers().empty());
  net.pump();
  EXPECT_FALSE(b.e2e->peer(a.ip));
  EXPECT_FALSE(c.e2e->peer(a.ip));
}

}  // namespace
}  // namespace ie::ied

namespace ie::ied {
namespace {

using namespace test;

// A packet's tag (ied: its flow's socket mark) comes out with it in to_net, also after it
// waited in the queue for the handshake; the handshake's own packets carry 0.
TEST(E2eSession, TagsGoWithTheirPacketsAlsoThroughTheQueue) {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  a.e2e->send(a.ip, b.ip, b.key.pub, numbered(a.ip, b.ip, 1), net.now(), a.out, 7);
  a.e2e->send(a.ip, b.ip, b.key.pub, numbered(a.ip, b.ip, 2), net.now(), a.out, 0);
  ASSERT_EQ(a.out.to_net.size(), 1u);  // the initiation; both packets wait
  EXPECT_FALSE(is_data(a.out.to_net[0]));
  EXPECT_EQ(a.out.to_net.tag(0), 0u);
  // Carry the association (handshake, key hand-out) by hand, so that A's output is read
  // before anything clears it.
  std::vector<std::uint32_t> data_tags;
  for (int round = 0; round < 16 && data_tags.size() < 2; ++round) {
    for (std::size_t i = 0; i < a.out.to_net.size(); ++i) {
      if (is_data(a.out.to_net[i])) {
        data_tags.push_back(a.out.to_net.tag(i));
      } else {
        EXPECT_EQ(a.out.to_net.tag(i), 0u);
      }
      b.e2e->receive(a.out.to_net[i], net.now(), b.out);
    }
    a.out.clear();
    for (std::size_t i = 0; i < b.out.to_net.size(); ++i)
      a.e2e->receive(b.out.to_net[i], net.now(), a.out);
    b.out.clear();
  }
  EXPECT_EQ(data_tags, (std::vector<std::uint32_t>{7, 0}));
  a.out.clear();
  // With the session up, a packet is sealed at once, with its tag.
  a.e2e->send(a.ip, b.ip, b.key.pub, numbered(a.ip, b.ip, 3), net.now(), a.out, 0x1e100002);
  ASSERT_EQ(a.out.to_net.size(), 1u);
  EXPECT_TRUE(is_data(a.out.to_net[0]));
  EXPECT_EQ(a.out.to_net.tag(0), 0x1e100002u);
}

// E2e::probe: a measuring PROBE over the end-to-end session (to_net: the SN path), answered
// by the peer's E2e; its round trip counts as a sample (ied compares a far direct path with
// it). No session: nothing sent.
TEST(E2eSession, ProbeMeasuresTheSessionsRoundTrip) {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  EXPECT_FALSE(a.e2e->probe(b.ip, net.now(), a.out));  // no session yet
  EXPECT_TRUE(a.out.to_net.empty());
  net.send(a, b, numbered(a.ip, b.ip, 1));
  net.pump();
  ASSERT_TRUE(a.e2e->peer(b.ip)->established);
  EXPECT_EQ(a.e2e->rtt_samples(b.ip), 0u);
  EXPECT_FALSE(a.e2e->rtt(b.ip).has_value());
  ASSERT_TRUE(a.e2e->probe(b.ip, net.now(), a.out));
  ASSERT_EQ(a.out.to_net.size(), 1u);
  IpView v;
  ASSERT_EQ(parse_ip(a.out.to_net[0], true, &v), wire::DropReason::none);
  EXPECT_EQ(v.dst, b.ip);
  EXPECT_EQ(wire::classify(v.payload), wire::DatagramKind::control);
  net.pump();
  EXPECT_EQ(a.e2e->rtt_samples(b.ip), 1u);
  ASSERT_TRUE(a.e2e->rtt(b.ip).has_value());
  EXPECT_EQ(*a.e2e->rtt(b.ip), Duration::zero());  // the harness carries packets at once
  // An unknown peer: nothing.
  EXPECT_FALSE(a.e2e->probe(addr("10.9.9.9"), net.now(), a.out));
  EXPECT_EQ(a.e2e->rtt_samples(addr("10.9.9.9")), 0u);
  EXPECT_FALSE(a.e2e->rtt(addr("10.9.9.9")).has_value());
}

}  // namespace
}  // namespace ie::ied
