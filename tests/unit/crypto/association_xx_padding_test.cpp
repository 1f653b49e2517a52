// First contact must not amplify (docs/ilp.md "Handshake messages"): an XX initiation from a
// Node is padded so it is not shorter than the response it gets, and a responder drops an XX
// initiation shorter than its response (counted as truncated) before any DH, whereas the same
// message padded to full length is answered.
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>

#include "ie/crypto/association.hpp"
#include "ie/crypto/cookie.hpp"
#include "ie/wire/handshake_msg.hpp"

namespace ie::crypto::assoc {
namespace {

Addr addr(std::uint8_t last) {
  const std::uint8_t a[6] = {10, 0, 0, last, 0x03, 0xe8};
  return Addr::from(a);
}

struct Side {
  psp::RxKeyring ring;
  std::unique_ptr<Node> node;
  explicit Side(bool first_contact) {
    Config c;
    c.static_key = noise::KeyPair::generate();
    c.accept_first_contact = first_contact;
    node = std::make_unique<Node>(std::move(c), ring);
  }
};

// An XX initiation carrying `noise_len` bytes of Noise message 1 (a real ephemeral key, then
// zeros), with a valid mac1 under the all-zero key as first contact uses.
Bytes xx_initiation(std::size_t noise_len) {
  Bytes noise(noise_len, 0);
  const auto e = noise::KeyPair::generate();
  std::memcpy(noise.data(), e.pub.data(), e.pub.size());
  Bytes d(wire::kMaxControlPlaneDatagram);
  d.resize(wire::encode_initiation(wire::HandshakePattern::xx, 77, noise, d));
  const auto m1 = cookie::mac(cookie::mac1_key(noise::PublicKey{}),
                              ConstByteSpan(d.data(), d.size() - 2 * wire::kMacLen));
  std::memcpy(d.data() + d.size() - 2 * wire::kMacLen, m1.data(), m1.size());
  return d;
}

TEST(XxPadding, InitiationIsNotShorterThanTheResponse) {
  ASSERT_GE(sodium_init(), 0);
  const Time now = Time{} + std::chrono::hours(1);
  Side host(false), sn(true);
  host.node->add_first_contact(addr(2), now);
  auto init = host.node->take_datagrams();
  ASSERT_EQ(init.size(), 1u);
  EXPECT_EQ(init[0].bytes.size(), 148u);
  sn.node->on_datagram(init[0].bytes, addr(1), now);
  auto resp = sn.node->take_datagrams();
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_EQ(resp[0].bytes.size(), 140u);
  EXPECT_LE(resp[0].bytes.size(), init[0].bytes.size());
  // The handshake still completes with the padding.
  host.node->on_datagram(resp[0].bytes, addr(2), now);
  for (auto& d : host.node->take_datagrams())
    sn.node->on_datagram(d.bytes, addr(1), now);
  for (auto& d : sn.node->take_datagrams())
    host.node->on_datagram(d.bytes, addr(2), now);
  bool up = false;
  for (const auto& e : host.node->take_events())
    up = up || e.type == EventType::established;
  EXPECT_TRUE(up);
}

TEST(XxPadding, ShortInitiationIsDroppedBeforeAnyWork) {
  ASSERT_GE(sodium_init(), 0);
  const Time now = Time{} + std::chrono::hours(1);
  Side sn(true);
  const Bytes shortest = xx_initiation(32);  // an unpadded message 1: 72 bytes
  ASSERT_EQ(shortest.size(), 72u);
  sn.node->on_datagram(shortest, addr(1), now);
  EXPECT_TRUE(sn.node->take_datagrams().empty());
  EXPECT_EQ(sn.node->drops().get(wire::DropReason::truncated), 1u);
  EXPECT_EQ(sn.node->responder_handshakes_started(), 0u);
  const Bytes almost = xx_initiation(32 + 67);  // 139 bytes: one short of the response
  sn.node->on_datagram(almost, addr(1), now);
  EXPECT_TRUE(sn.node->take_datagrams().empty());
  EXPECT_EQ(sn.node->drops().get(wire::DropReason::truncated), 2u);
  const Bytes full = xx_initiation(32 + 76);
  sn.node->on_datagram(full, addr(1), now);
  auto out = sn.node->take_datagrams();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_LE(out[0].bytes.size(), full.size());
  EXPECT_EQ(sn.node->responder_handshakes_started(), 1u);
}

}  // namespace
}  // namespace ie::crypto::assoc
