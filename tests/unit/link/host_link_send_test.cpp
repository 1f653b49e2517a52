// HostLink::send over loopback between two hosts (one listening, a direct path): a batch of
// packets of mixed sizes arrives complete and in order, whether runs of equal-sized packets
// go out as UDP GSO datagrams (counted in Stats::gso_packets) or, on a socket without GSO,
// one datagram each, and whether the receiver takes runs coalesced (UDP GRO) or not.
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstdint>
#include <vector>

#include "../common/loopback_link.hpp"
#include "ie/link/host_link.hpp"

namespace ie::link {
namespace {

using ie::testing::endpoint_of;
using ie::testing::fast_link;

struct Hosts {
  std::unique_ptr<HostLink> a, b;  // a sends to b (b listens)
  PeerId to_b = 0;
  std::vector<std::vector<std::uint8_t>> got;  // inner packets b received, in order

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    auto keep = [this](InPacket& in) { got.emplace_back(in.inner.begin(), in.inner.end()); };
    auto ignore = [](InPacket&) {};
    const auto end = Clock::now() + limit;
    while (!done() && Clock::now() < end) {
      a->poll_once(std::chrono::milliseconds(1), ignore);
      b->poll_once(std::chrono::milliseconds(5), keep);
    }
    return done();
  }
};

Hosts connect(bool gro = false) {
  Hosts h;
  auto lb = fast_link(/*listen=*/true);
  lb.gro = gro;
  const auto pub = lb.key.pub;
  h.b = std::move(HostLink::create(std::move(lb)).value());
  h.a = std::move(HostLink::create(fast_link(false)).value());
  h.to_b = h.a->add_host(endpoint_of(*h.b), pub).value();
  EXPECT_TRUE(h.run_until([&] { return h.a->can_send(h.to_b); }, std::chrono::seconds(10)));
  return h;
}

// Inner sizes: a run of five, one shorter (ends that run), three, two larger and a small one
// (ends theirs), three of 1200 bytes.
const std::vector<std::size_t> kSizes = {100, 100, 100, 100, 100,  60,   100, 100,
                                         100, 200, 200, 30,  1200, 1200, 1200};

void send_and_check(Hosts& h) {
  std::vector<std::vector<std::uint8_t>> inner;
  std::vector<OutPacket> out;
  for (std::size_t i = 0; i < kSizes.size(); ++i) {
    inner.emplace_back(kSizes[i], static_cast<std::uint8_t>(i + 1));
    inner.back()[0] = static_cast<std::uint8_t>(0x45);
  }
  for (std::size_t i = 0; i < kSizes.size(); ++i) {
    OutPacket o;
    o.header.service_id = 1;
    o.header.connection_id = 77;
    o.inner = inner[i];
    out.push_back(o);
  }
  ASSERT_EQ(h.a->send(h.to_b, out), kSizes.size());
  ASSERT_TRUE(h.run_until([&] { return h.got.size() >= kSizes.size(); }, std::chrono::seconds(5)));
  ASSERT_EQ(h.got.size(), kSizes.size());
  for (std::size_t i = 0; i < kSizes.size(); ++i)
    EXPECT_EQ(h.got[i], inner[i]) << "packet " << i;
  EXPECT_EQ(h.a->stats().send_failures, 0u);
}

TEST(HostLinkSend, RunsOfEqualSizedPacketsGoAsGsoDatagrams) {
  ASSERT_GE(sodium_init(), 0);
  Hosts h = connect();
  ASSERT_TRUE(h.a->socket().gso_supported()) << "this kernel has UDP GSO (4.18+)";
  send_and_check(h);
  // Runs (a shorter packet ends the run it joins): 100 x5 + 60; 100 x3; 200 x2 + 30; the
  // first 1200 alone (the path MTU probe); 1200 x2.
  EXPECT_EQ(h.a->stats().gso_packets, 6u + 3u + 3u + 2u);
}

// The first packet of a call longer than kPmtuProbeAbove goes alone wherever it is (the
// kernel sets DF only on a datagram that fits the path MTU whole: the lone one probes the
// path), and the rest, small or large, form runs as usual.
TEST(HostLinkSend, FirstLargePacketOfACallGoesAloneAsAPathMtuProbe) {
  ASSERT_GE(sodium_init(), 0);
  Hosts h = connect();
  ASSERT_TRUE(h.a->socket().gso_supported());
  struct Case {
    std::vector<std::size_t> sizes;
    std::uint64_t gso_packets;
  };
  const Case cases[] = {
      {{1200, 1200, 1200, 1200}, 3},            // alone, then a run of three
      {{100, 100, 1200, 1200, 1200, 1200}, 5},  // run of two, alone, run of three
      {{100, 100, 100, 300, 300}, 5},           // 300 sealed is under the limit: no probe
  };
  for (const Case& c : cases) {
    const std::uint64_t before = h.a->stats().gso_packets;
    h.got.clear();
    std::vector<std::vector<std::uint8_t>> inner;
    std::vector<OutPacket> out;
    for (std::size_t i = 0; i < c.sizes.size(); ++i)
      inner.emplace_back(c.sizes[i], static_cast<std::uint8_t>(i + 1));
    for (const auto& b : inner) {
      OutPacket o;
      o.header.service_id = 1;
      o.inner = b;
      out.push_back(o);
    }
    ASSERT_EQ(h.a->send(h.to_b, out), c.sizes.size());
    ASSERT_TRUE(
        h.run_until([&] { return h.got.size() >= c.sizes.size(); }, std::chrono::seconds(5)));
    EXPECT_EQ(h.got, inner);
    EXPECT_EQ(h.a->stats().gso_packets - before, c.gso_packets) << c.sizes.size() << " packets";
  }
}

// A receiver with UDP GRO gets the runs coalesced by the kernel and splits them again: the
// same packets in the same order, and (over loopback, where the whole batch is queued before
// the receiver reads) at least one read held several.
TEST(HostLinkSend, GroReceiverSplitsCoalescedRuns) {
  ASSERT_GE(sodium_init(), 0);
  Hosts h = connect(/*gro=*/true);
  ASSERT_TRUE(h.b->socket().gro_enabled()) << "this kernel has UDP GRO (5.0+)";
  const std::uint64_t before = h.b->stats().gro_packets;
  send_and_check(h);
  EXPECT_GE(h.b->stats().gro_packets - before, 2u);
  EXPECT_LE(h.b->stats().gro_packets - before, kSizes.size());
}

// events() moves with association events (ied reconciles its SNs only then), not with data.
TEST(HostLinkSend, DataChangesNoEventCount) {
  ASSERT_GE(sodium_init(), 0);
  Hosts h = connect();
  EXPECT_GE(h.a->events(), 2u);  // established, SA installs
  EXPECT_GE(h.b->events(), 2u);
  const std::uint64_t a0 = h.a->events(), b0 = h.b->events();
  send_and_check(h);
  EXPECT_EQ(h.b->events(), b0);
  EXPECT_EQ(h.a->events(), a0);
  h.a.reset();  // its destructor sends CLOSE: b's session goes, an event there
  const auto end = Clock::now() + std::chrono::seconds(5);
  while (h.b->events() == b0 && Clock::now() < end)
    h.b->poll_once(std::chrono::milliseconds(5), [](InPacket&) {});
  EXPECT_GT(h.b->events(), b0);
}

TEST(HostLinkSend, WithoutGsoEveryPacketIsItsOwnDatagram) {
  ASSERT_GE(sodium_init(), 0);
  Hosts h = connect();
  h.a->socket().disable_gso_for_test();
  send_and_check(h);
  EXPECT_EQ(h.a->stats().gso_packets, 0u);
}

// A listening host replies to a peer that reached it first at the address its handshakes
// come from, also when the peer comes back from another port (its daemon restarted without
// a CLOSE): data sent to it afterwards reaches the new one, not the dead port. A measuring
// PROBE between two hosts (both keep the association alive) gets an answer: the direct
// path's RTT.
TEST(HostLinkSend, ALearnedPeerIsRepliedToWhereItsLatestHandshakeCameFrom) {
  ASSERT_GE(sodium_init(), 0);
  auto lb = fast_link(/*listen=*/true);
  const auto b_pub = lb.key.pub;
  auto b = std::move(HostLink::create(std::move(lb)).value());
  auto la = fast_link(false);
  const crypto::noise::KeyPair a_key = la.key.clone();
  la.close_on_exit = false;  // a crash: b is not told
  auto a1 = std::move(HostLink::create(std::move(la)).value());
  const PeerId a1_to_b = a1->add_host(endpoint_of(*b), b_pub).value();

  PeerId b_to_a = 0;
  std::vector<std::string> got;
  const auto poll_all = [&](HostLink& a, const std::function<bool()>& done) {
    const auto end = Clock::now() + std::chrono::seconds(10);
    while (!done() && Clock::now() < end) {
      a.poll_once(std::chrono::milliseconds(1),
                  [&](InPacket& in) { got.emplace_back(in.inner.begin(), in.inner.end()); });
      b->poll_once(std::chrono::milliseconds(2), [&](InPacket& in) { b_to_a = in.peer; });
    }
    return done();
  };
  const auto send = [](HostLink& from, PeerId to, const std::string& text) {
    OutPacket o;
    o.header.service_id = 1;
    o.header.connection_id = 9;
    o.inner = ConstByteSpan(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    return from.send(to, std::span<const OutPacket>(&o, 1));
  };
  ASSERT_TRUE(poll_all(*a1, [&] { return a1->can_send(a1_to_b); }));
  ASSERT_EQ(send(*a1, a1_to_b, "hello from a1"), 1u);
  ASSERT_TRUE(poll_all(*a1, [&] { return b_to_a != 0; }));
  ASSERT_EQ(send(*b, b_to_a, "to a1"), 1u);
  ASSERT_TRUE(poll_all(*a1, [&] { return got.size() == 1; }));
  EXPECT_EQ(got[0], "to a1");
  // Measuring PROBE: answered although both sides keep the association alive.
  EXPECT_FALSE(a1->rtt_ms(a1_to_b).has_value());
  a1->probe(a1_to_b);
  ASSERT_TRUE(poll_all(*a1, [&] { return a1->rtt_samples(a1_to_b) == 1; }));
  ASSERT_TRUE(a1->rtt_ms(a1_to_b).has_value());
  EXPECT_LT(*a1->rtt_ms(a1_to_b), 1000.0);

  // The same host again on a new port (a1's socket gone without a word).
  const std::string old_port = endpoint_of(*a1);
  a1.reset();
  auto la2 = fast_link(false);
  la2.key = a_key.clone();
  auto a2 = std::move(HostLink::create(std::move(la2)).value());
  ASSERT_NE(endpoint_of(*a2), old_port);
  const PeerId a2_to_b = a2->add_host(endpoint_of(*b), b_pub).value();
  ASSERT_TRUE(poll_all(*a2, [&] { return a2->can_send(a2_to_b); }));
  got.clear();
  ASSERT_TRUE(poll_all(*a2, [&] {
    (void)send(*b, b_to_a, "to a2");  // until b's session with a2 carries it
    return !got.empty();
  }));
  EXPECT_EQ(got[0], "to a2");
}

// remove_host closes a direct association and forgets it; the same key can then be added
// again (ied does when a peer's endpoint changes) and carries packets. remove_host leaves
// SNs alone, and an unknown id is ignored.
TEST(HostLinkSend, ARemovedHostCanBeAddedAgain) {
  ASSERT_GE(sodium_init(), 0);
  Hosts h = connect();
  const auto pub = h.a->peer_key(h.to_b);
  ASSERT_TRUE(pub.has_value());
  EXPECT_EQ(h.a->add_host(endpoint_of(*h.b), *pub).error().code, Errc::exists);
  h.a->remove_host(h.to_b);
  EXPECT_FALSE(h.a->can_send(h.to_b));
  EXPECT_FALSE(h.a->peer_key(h.to_b).has_value());
  h.a->remove_host(h.to_b + 1000);  // unknown: nothing
  auto again = h.a->add_host(endpoint_of(*h.b), *pub);
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  h.to_b = *again;
  ASSERT_TRUE(h.run_until([&] { return h.a->can_send(h.to_b); }, std::chrono::seconds(10)));
  send_and_check(h);
}

}  // namespace
}  // namespace ie::link
