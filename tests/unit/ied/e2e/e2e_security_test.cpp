// What the end-to-end layer promises against the SNs on the path and against other hosts:
// an SN sees no plaintext and cannot alter, truncate, replay or re-address a packet
// unnoticed; a host cannot speak for an address its session is not bound to; a new key for
// an address replaces the old session.
#include "ie/ied/e2e.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "e2e_harness.hpp"
#include "ie/wire/demux.hpp"

namespace ie::ied {
namespace {

using namespace test;

// A and B with a session up and one data packet A -> B captured (not yet delivered).
struct Pair {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  Bytes data;      // a proto-253 data packet from A to B
  Bytes original;  // the TUN packet inside it

  Pair() {
    net.send(a, b, numbered(a.ip, b.ip, 0));
    net.pump();
    original = numbered(a.ip, b.ip, 1, 120);
    net.send(a, b, original);
    EXPECT_EQ(a.out.to_net.size(), 1u);
    data.assign(a.out.to_net[0].begin(), a.out.to_net[0].end());
    a.out.clear();
    b.tun.clear();
  }

  // Feeds p to B; returns how many packets reached B's TUN.
  // receive() must call a packet authentic exactly when it delivered it.
  std::size_t feed_b(ConstByteSpan p) {
    const bool authentic = b.e2e->receive(p, net.now(), b.out);
    const std::size_t n = b.out.to_tun.size();
    EXPECT_EQ(authentic, n > 0);
    b.out.clear();
    return n;
  }
};

TEST(E2eSecurity, TheSnPathSeesNoPlaintext) {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  std::string secret;
  while (secret.size() < 1200)
    secret += "INTEREDGE-E2E-PLAINTEXT-" + std::to_string(secret.size()) + ";";
  const Bytes payload(secret.begin(), secret.end());
  for (int i = 0; i < 20; ++i) {
    net.send(a, b, ip_udp(a.ip, b.ip, payload));
    net.send(b, a, ip_udp(b.ip, a.ip, payload));
    net.advance(300ms);  // includes a rekey: handshakes and control are checked too
  }
  ASSERT_EQ(b.tun.size(), 20u);
  ASSERT_EQ(a.tun.size(), 20u);
  ASSERT_GT(net.seen.size(), 40u);
  // No 12-byte window of the payload appears in anything the SNs carried.
  constexpr std::size_t kWindow = 12;
  for (const auto& p : net.seen) {
    for (std::size_t off = 0; off + kWindow <= payload.size(); off += 1) {
      const auto it =
          std::search(p.begin(), p.end(), payload.begin() + off, payload.begin() + off + kWindow);
      ASSERT_EQ(it, p.end()) << "payload bytes at " << off << " visible on the path";
    }
  }
}

TEST(E2eSecurity, EveryFlippedBitInTheProtectedPartIsDropped) {
  Pair t;
  const std::size_t hl = 20;
  std::uint64_t drops = t.b.e2e->drops_total();
  for (std::size_t i = hl; i < t.data.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes p = t.data;
      p[i] ^= static_cast<std::uint8_t>(1u << bit);
      ASSERT_EQ(t.feed_b(p), 0u) << "byte " << i << " bit " << bit;
      const std::uint64_t now_drops = t.b.e2e->drops_total();
      ASSERT_EQ(now_drops, drops + 1) << "byte " << i << " bit " << bit;
      drops = now_drops;
    }
  }
  // The untouched packet still opens (tampering did not consume its sequence number).
  EXPECT_EQ(t.feed_b(t.data), 1u);
}

TEST(E2eSecurity, TruncatedPacketsAreDropped) {
  Pair t;
  for (std::size_t n = 0; n < t.data.size(); ++n) {
    // As cut on the wire (length field now lies) ...
    const std::uint64_t before = t.b.e2e->drops_total();
    ASSERT_EQ(t.feed_b(ConstByteSpan(t.data.data(), n)), 0u) << n;
    ASSERT_EQ(t.b.e2e->drops_total(), before + 1) << n;
    // ... and with the IP header made consistent, so the cut reaches PSP.
    if (n < 20) continue;
    Bytes p(t.data.begin(), t.data.begin() + static_cast<std::ptrdiff_t>(n));
    store_be16(p.data() + 2, static_cast<std::uint16_t>(n));
    store_be16(p.data() + 10, 0);
    store_be16(p.data() + 10, ipv4_header_checksum(ConstByteSpan(p.data(), 20)));
    ASSERT_EQ(t.feed_b(p), 0u) << n;
    ASSERT_EQ(t.b.e2e->drops_total(), before + 2) << n;
  }
  EXPECT_EQ(t.feed_b(t.data), 1u);
}

TEST(E2eSecurity, ReplaysAndUnknownSpisAreDropped) {
  Pair t;
  EXPECT_EQ(t.feed_b(t.data), 1u);
  EXPECT_EQ(t.feed_b(t.data), 0u);
  EXPECT_EQ(t.b.e2e->drops(wire::DropReason::replayed), 1u);

  Bytes p = t.data;
  store_be32(p.data() + 20 + 4, 0x7ffffff0);  // SPI field of the PSP header
  EXPECT_EQ(t.feed_b(p), 0u);
  EXPECT_EQ(t.b.e2e->drops(wire::DropReason::unknown_spi), 1u);

  // Not protocol 253, a fragment, not IP at all.
  p = t.data;
  p[9] = 17;
  store_be16(p.data() + 10, 0);
  store_be16(p.data() + 10, ipv4_header_checksum(ConstByteSpan(p.data(), 20)));
  EXPECT_EQ(t.feed_b(p), 0u);
  p = t.data;
  store_be16(p.data() + 6, 0x2000);
  store_be16(p.data() + 10, 0);
  store_be16(p.data() + 10, ipv4_header_checksum(ConstByteSpan(p.data(), 20)));
  EXPECT_EQ(t.feed_b(p), 0u);
  EXPECT_EQ(t.b.e2e->drops(wire::DropReason::bad_inner_packet), 2u);
  const Bytes junk(100, 0xab);
  EXPECT_EQ(t.feed_b(junk), 0u);
}

// receive() says whether a packet proved to come from its source (ied learns the peer's SN
// only from those): an initiation it answers, yes; one answered only with a cookie reply
// (under load: before any authentication), the same initiation again (stale), a
// handshake-shaped forgery, no.
TEST(E2eSecurity, OnlyAnAnsweredInitiationIsAuthenticAmongHandshakes) {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  net.send(a, b, numbered(a.ip, b.ip, 0));  // queued; A's initiation in to_net
  ASSERT_EQ(a.out.to_net.size(), 1u);
  const Bytes init(a.out.to_net[0].begin(), a.out.to_net[0].end());
  a.out.clear();
  b.e2e->set_under_load_for_test(true);
  EXPECT_FALSE(b.e2e->receive(init, net.now(), b.out));
  ASSERT_EQ(b.out.to_net.size(), 1u);  // the cookie reply
  EXPECT_EQ(wire::classify(ConstByteSpan(b.out.to_net[0].data() + 20, 4)),
            wire::DatagramKind::cookie_reply);
  b.out.clear();
  b.e2e->set_under_load_for_test(false);
  EXPECT_TRUE(b.e2e->receive(init, net.now(), b.out));
  EXPECT_EQ(b.out.to_net.size(), 1u);  // the response
  b.out.clear();
  EXPECT_FALSE(b.e2e->receive(init, net.now(), b.out));  // replayed
  EXPECT_EQ(b.e2e->drops(wire::DropReason::stale_handshake), 1u);
  b.out.clear();
  Bytes forged = init;
  forged[forged.size() - 1] ^= 1;  // the last byte of the Noise message: it fails to decrypt
  EXPECT_FALSE(b.e2e->receive(forged, net.now(), b.out));
  EXPECT_EQ(b.out.to_net.size(), 0u);
}

TEST(E2eSecurity, AnSnCannotReAddressAPacket) {
  Pair t;
  Host& c = t.net.add("10.3.0.3");
  // Source rewritten to another host's address: the session is bound to A's.
  Bytes p = t.data;
  rewrite_src(p, c.ip);
  EXPECT_EQ(t.feed_b(p), 0u);
  EXPECT_EQ(t.b.e2e->drops(wire::DropReason::spoofed_source), 1u);
  // Destination rewritten (delivered to B under another address of "B").
  p = t.data;
  std::memcpy(p.data() + 16, addr("10.2.0.99").bytes().data(), 4);
  store_be16(p.data() + 10, 0);
  store_be16(p.data() + 10, ipv4_header_checksum(ConstByteSpan(p.data(), 20)));
  EXPECT_EQ(t.feed_b(p), 0u);
  EXPECT_EQ(t.b.e2e->drops(wire::DropReason::bad_inner_packet), 1u);
  EXPECT_EQ(t.feed_b(t.data), 1u);
}

TEST(E2eSecurity, AHostCannotSpeakForAnotherAddress) {
  Pair t;
  Host& m = t.net.add("10.3.0.3");  // a legitimate host with its own session to B
  t.net.send(m, t.b, numbered(m.ip, t.b.ip, 0));
  t.net.pump();
  ASSERT_EQ(t.b.tun.size(), 1u);

  // M's own send() refuses to put another source in the inner packet ...
  m.e2e->send(m.ip, t.b.ip, t.b.key.pub, numbered(t.a.ip, t.b.ip, 1), t.net.now(), m.out);
  EXPECT_TRUE(m.out.to_net.empty());
  EXPECT_EQ(m.e2e->drops(wire::DropReason::spoofed_source), 1u);
  // ... and if M lies anyway, B drops it: inner source != the session's address.
  m.e2e->send_unchecked_for_test(m.ip, t.b.ip, t.b.key.pub, numbered(t.a.ip, t.b.ip, 2),
                                 t.net.now(), m.out);
  ASSERT_EQ(m.out.to_net.size(), 1u);
  t.net.pump();
  EXPECT_EQ(t.b.tun.size(), 1u);
  EXPECT_EQ(t.b.e2e->drops(wire::DropReason::spoofed_source), 1u);
  // An inner destination other than the outer one (B would deliver someone else's packet).
  m.e2e->send_unchecked_for_test(m.ip, t.b.ip, t.b.key.pub, numbered(m.ip, addr("10.9.9.9"), 3),
                                 t.net.now(), m.out);
  t.net.pump();
  EXPECT_EQ(t.b.tun.size(), 1u);
  EXPECT_EQ(t.b.e2e->drops(wire::DropReason::bad_inner_packet), 1u);
  // M's data with the outer source rewritten to A's (M's SN lies for it): bound to M.
  t.net.send(m, t.b, numbered(m.ip, t.b.ip, 4));
  ASSERT_EQ(m.out.to_net.size(), 1u);
  Bytes p(m.out.to_net[0].begin(), m.out.to_net[0].end());
  m.out.clear();
  rewrite_src(p, t.a.ip);
  EXPECT_EQ(t.feed_b(p), 0u);
  EXPECT_EQ(t.b.e2e->drops(wire::DropReason::spoofed_source), 2u);
  EXPECT_EQ(t.feed_b(t.data), 1u);  // A is unaffected
}

TEST(E2eSecurity, AnotherKeyCannotTakeOverAnAddressWeOpenedASessionTo) {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  Host& m = net.add("10.3.0.3");
  // B opened the session to A with A's configured key.
  net.send(b, a, numbered(b.ip, a.ip, 0));
  net.pump();
  ASSERT_EQ(a.tun.size(), 1u);
  // M handshakes to B from A's address (its SN forges the source).
  net.filter = [&](Bytes& p, const Host& from) {
    if (&from == &m) rewrite_src(p, a.ip);
    return 1;
  };
  // Its SN also delivers the answers for "A" to M.
  net.accepts = [&](const Host& h, const IpAddr& dst) {
    return &h == &m ? dst == a.ip || dst == m.ip : &h != &a && h.ip == dst;
  };
  m.e2e->send_unchecked_for_test(a.ip, b.ip, b.key.pub, numbered(a.ip, b.ip, 1), net.now(), m.out);
  net.pump();
  EXPECT_EQ(b.tun.size(), 0u);
  EXPECT_GE(b.e2e->drops(wire::DropReason::peer_not_allowed), 1u);
  const auto pa = b.e2e->peer(a.ip);
  ASSERT_TRUE(pa);
  EXPECT_EQ(pa->key, a.key.pub);
  EXPECT_TRUE(pa->established);
  // B -> A still works.
  net.filter = nullptr;
  net.accepts = nullptr;
  net.send(b, a, numbered(b.ip, a.ip, 2));
  net.pump();
  EXPECT_EQ(a.tun.size(), 2u);
}

TEST(E2eSecurity, ALiveLearnedSessionKeepsItsAddress) {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b = net.add("10.2.0.2");
  Host& m = net.add("10.3.0.3");
  // A opened the session; B learned A's address and key from A's handshake.
  net.send(a, b, numbered(a.ip, b.ip, 0));
  net.pump();
  ASSERT_FALSE(b.e2e->peer(a.ip)->initiated);
  // M handshakes from A's address (SNs check inner sources only when a flow is decided).
  net.accepts = [&](const Host& h, const IpAddr& dst) {
    return &h == &m ? dst == a.ip || dst == m.ip : &h != &a && h.ip == dst;
  };
  m.e2e->send_unchecked_for_test(a.ip, b.ip, b.key.pub, numbered(a.ip, b.ip, 1), net.now(), m.out);
  net.pump();
  EXPECT_EQ(b.tun.size(), 1u);
  EXPECT_GE(b.e2e->drops(wire::DropReason::peer_not_allowed), 1u);
  EXPECT_EQ(b.e2e->peer(a.ip)->key, a.key.pub);
  net.accepts = nullptr;
  net.send(a, b, numbered(a.ip, b.ip, 2));
  net.pump();
  EXPECT_EQ(b.tun.size(), 2u);
}

TEST(E2eSecurity, AcceptPeerDecidesWhoMayOpenASession) {
  Net net;
  Host& a = net.add("10.1.0.1");
  E2eOptions o;
  std::vector<std::pair<IpAddr, crypto::noise::PublicKey>> asked;
  o.accept_peer = [&](const IpAddr& ip, const crypto::noise::PublicKey& key) {
    asked.emplace_back(ip, key);
    return false;  // e.g. the key is not the one in the address's DNS peer record
  };
  Host& b = net.add("10.2.0.2", std::move(o));
  net.send(a, b, numbered(a.ip, b.ip, 0));
  net.advance(1s);
  EXPECT_TRUE(b.tun.empty());
  EXPECT_FALSE(b.e2e->peer(a.ip));
  ASSERT_FALSE(asked.empty());
  EXPECT_EQ(asked[0].first, a.ip);
  EXPECT_EQ(asked[0].second, a.key.pub);
  EXPECT_GE(b.e2e->drops(wire::DropReason::peer_not_allowed), 1u);
  EXPECT_FALSE(a.e2e->peer(b.ip)->established);
}

TEST(E2eSecurity, ANewKeyForAnAddressGetsANewSessionAndClosesTheOld) {
  Net net;
  Host& a = net.add("10.1.0.1");
  Host& b1 = net.add("10.2.0.2");
  Host& b2 = net.add("10.2.0.2");  // the address moves to another host (another key)
  const Host* b_now = &b1;         // which of them the SNs deliver 10.2.0.2 to
  net.accepts = [&](const Host& h, const IpAddr& dst) {
    return h.ip == dst && (&h == &a || &h == b_now);
  };
  net.send(a, b1, numbered(a.ip, b1.ip, 0));
  net.pump();
  ASSERT_EQ(b1.tun.size(), 1u);
  ASSERT_TRUE(b1.e2e->peer(a.ip)->established);
  // B1 still has a packet for A in flight when the key changes.
  net.send(b1, a, numbered(b1.ip, a.ip, 9));
  const Bytes stale(b1.out.to_net[0].begin(), b1.out.to_net[0].end());
  b1.out.clear();

  // A learns B's new key: the old session is closed (the CLOSE reaches B1), a new one opens
  // (the handshake reaches B2).
  net.send(a, b2, numbered(a.ip, b2.ip, 1));
  EXPECT_EQ(a.e2e->stats().key_changes, 1u);
  std::vector<Bytes> held;
  for (std::size_t i = 0; i < a.out.to_net.size(); ++i)
    held.emplace_back(a.out.to_net[i].begin(), a.out.to_net[i].end());
  a.out.clear();
  ASSERT_EQ(held.size(), 2u);  // CLOSE, initiation
  for (const auto& p : held)
    b1.e2e->receive(p, net.now(), b1.out);
  b1.out.clear();  // B1's attempts to reach A again are not delivered in this test
  EXPECT_FALSE(b1.e2e->peer(a.ip)->established);
  EXPECT_EQ(b1.e2e->stats().dead, 1u);
  b_now = &b2;
  for (const auto& p : held)
    b2.e2e->receive(p, net.now(), b2.out);
  net.pump();
  ASSERT_EQ(b2.tun.size(), 1u);
  EXPECT_EQ(a.e2e->peer(b2.ip)->key, b2.key.pub);
  EXPECT_TRUE(a.e2e->peer(b2.ip)->established);
  EXPECT_EQ(a.e2e->peers().size(), 1u);
  // The old session's packets are no longer accepted.
  const auto before = a.e2e->drops(wire::DropReason::unknown_spi);
  a.e2e->receive(stale, net.now(), a.out);
  EXPECT_TRUE(a.out.to_tun.empty());
  EXPECT_EQ(a.e2e->drops(wire::DropReason::unknown_spi), before + 1);
}

}  // namespace
}  // namespace ie::ied
