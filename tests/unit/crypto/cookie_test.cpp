// Handshake MACs and cookies (ie/crypto/cookie.hpp): mac1 binds to the responder's key,
// cookie replies authenticate against the triggering mac1, mac2 binds to the source address
// and expires with the responder's secret. Also the control-message known-answer vector of
// docs/ilp.md ("Control plane"), checked against the Noise engine AND libsodium directly.
#include "ie/crypto/cookie.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "ie/wire/handshake_msg.hpp"

namespace ie::crypto::cookie {
namespace {

using namespace std::chrono_literals;

Bytes initiation(std::uint8_t fill) {
  const Bytes noise(96, fill);
  Bytes d(wire::kMaxControlPlaneDatagram);
  d.resize(wire::encode_initiation(wire::HandshakePattern::ik, 0x11223344, noise, d));
  return d;
}

struct Parts {
  ConstByteSpan before_mac1, mac1, before_mac2, mac2;
};
Parts parts(const Bytes& d) {
  wire::InitiationView v;
  EXPECT_EQ(wire::parse_initiation(d, &v), wire::DropReason::none);
  return {v.before_mac1, v.mac1, v.before_mac2, v.mac2};
}

const std::uint8_t kAddrA[6] = {192, 0, 2, 1, 0x03, 0xe8};
const std::uint8_t kAddrB[6] = {192, 0, 2, 2, 0x03, 0xe8};

TEST(Cookie, Mac1BindsToResponderKey) {
  const auto responder = noise::KeyPair::generate();
  const auto other = noise::KeyPair::generate();
  const Time now = Time{} + 1h;
  Maker maker(responder.pub);
  Bytes d = initiation(1);
  maker.add_macs(d, now);
  const Parts p = parts(d);
  Checker checker(responder.pub);
  EXPECT_TRUE(checker.mac1_ok(p.before_mac1, p.mac1, false));
  EXPECT_FALSE(checker.mac1_ok(p.before_mac1, p.mac1, true));
  EXPECT_FALSE(Checker(other.pub).mac1_ok(p.before_mac1, p.mac1, false));
  for (std::size_t i = 0; i < d.size() - 16; ++i) {  // every covered byte, incl. mac1 itself
    Bytes t = d;
    t[i] ^= 0x01;
    const ConstByteSpan ts(t);
    EXPECT_FALSE(checker.mac1_ok(ts.first(t.size() - 32), ts.subspan(t.size() - 32, 16), false))
        << i;
  }
  // No cookie yet: mac2 is zero and does not verify.
  EXPECT_TRUE(std::all_of(p.mac2.begin(), p.mac2.end(), [](std::uint8_t b) { return b == 0; }));
  EXPECT_FALSE(checker.mac2_ok(p.before_mac2, p.mac2, kAddrA, now));
}

TEST(Cookie, FirstContactUsesTheZeroKey) {
  const auto responder = noise::KeyPair::generate();
  Maker maker(std::nullopt);
  Bytes d = initiation(2);
  maker.add_macs(d, Time{});
  const Parts p = parts(d);
  Checker checker(responder.pub);
  EXPECT_TRUE(checker.mac1_ok(p.before_mac1, p.mac1, true));
  EXPECT_FALSE(checker.mac1_ok(p.before_mac1, p.mac1, false));
}

TEST(Cookie, ReplyGivesMac2ForThisAddressUntilItExpires) {
  const auto responder = noise::KeyPair::generate();
  Time now = Time{} + 1h;
  Maker maker(responder.pub);
  Checker checker(responder.pub);
  Bytes d = initiation(3);
  maker.add_macs(d, now);
  Parts p = parts(d);
  Bytes reply(64);
  ASSERT_EQ(checker.make_reply(0x11223344, p.mac1, kAddrA, false, now, reply), 64u);
  wire::CookieReplyView v;
  ASSERT_EQ(wire::parse_cookie_reply(reply, &v), wire::DropReason::none);
  EXPECT_EQ(v.receiver, 0x11223344u);

  // A tampered reply does not authenticate; the genuine one does.
  Bytes bad = reply;
  bad[40] ^= 1;
  wire::CookieReplyView bv;
  ASSERT_EQ(wire::parse_cookie_reply(bad, &bv), wire::DropReason::none);
  EXPECT_FALSE(maker.consume_reply(bv, now));
  EXPECT_FALSE(maker.has_fresh_cookie(now));
  ASSERT_TRUE(maker.consume_reply(v, now));
  EXPECT_TRUE(maker.has_fresh_cookie(now));

  now += 1s;
  maker.add_macs(d, now);
  p = parts(d);
  EXPECT_TRUE(checker.mac2_ok(p.before_mac2, p.mac2, kAddrA, now));
  EXPECT_FALSE(checker.mac2_ok(p.before_mac2, p.mac2, kAddrB, now));  // another source
  Bytes t = d;
  t[10] ^= 1;
  maker.add_macs(t, now);  // fresh mac1 over the changed bytes, then mac2
  const Parts q = parts(t);
  EXPECT_TRUE(checker.mac2_ok(q.before_mac2, q.mac2, kAddrA, now));
  Bytes forged = t;
  forged[forged.size() - 1] ^= 1;
  const Parts f = parts(forged);
  EXPECT_FALSE(checker.mac2_ok(f.before_mac2, f.mac2, kAddrA, now));

  // The responder's secret rotates every two minutes: old cookies stop working, and the
  // initiator stops using them too.
  now += kSecretLifetime;
  EXPECT_FALSE(checker.mac2_ok(p.before_mac2, p.mac2, kAddrA, now));
  EXPECT_FALSE(maker.has_fresh_cookie(now));
}

TEST(Cookie, ReplyToAnotherMessageIsRejected) {
  const auto responder = noise::KeyPair::generate();
  Maker maker(responder.pub);
  Checker checker(responder.pub);
  wire::CookieReplyView v;
  Bytes reply(64);
  Bytes d = initiation(4);
  // Nothing sent yet: no reply can be accepted.
  Bytes other = initiation(5);
  Maker(responder.pub).add_macs(other, Time{});
  ASSERT_EQ(checker.make_reply(1, parts(other).mac1, kAddrA, false, Time{}, reply), 64u);
  ASSERT_EQ(wire::parse_cookie_reply(reply, &v), wire::DropReason::none);
  EXPECT_FALSE(maker.consume_reply(v, Time{}));
  maker.add_macs(d, Time{});
  EXPECT_FALSE(maker.consume_reply(v, Time{}));  // AD is another message's mac1
}

// Known-answer vector of one control datagram (docs/ilp.md ("Control plane")): transport key
// 00..1f, receiver index 0x01020304, counter 7, items KEY_OFFER{spi 0x80000001, version 1,
// key 20..3f} and KEEPALIVE. The hex was also computed with Python's `cryptography`
// ChaCha20Poly1305 (see the doc).
TEST(ControlChannel, KnownAnswerVector) {
  constexpr char kExpected[] =
      "04000000010203040000000000000007"  // type 4, receiver, counter 7 (the AD)
      "f00fa1c822e87b8842176c10d8ad36bd1ab4886addc0272a9aab01d4d3dce12b2814ac22f6dacd26ba1841"
      "fd58c308b5bacfd79e47c6d7fc748092";
  Key32 k;
  for (std::size_t i = 0; i < 32; ++i)
    k.data()[i] = static_cast<std::uint8_t>(i);
  std::uint8_t keybytes[32];
  for (std::size_t i = 0; i < 32; ++i)
    keybytes[i] = static_cast<std::uint8_t>(0x20 + i);
  std::uint8_t plain[64];
  wire::ControlItemWriter w(ByteSpan(plain, sizeof plain));
  ASSERT_TRUE(w.add({wire::ControlItemType::key_offer, 0x80000001, 1, 0, keybytes}));
  ASSERT_TRUE(w.add({wire::ControlItemType::keepalive, 0, 0, 0, {}}));
  ASSERT_EQ(w.size(), 43u);

  Bytes d(wire::kControlHeaderLen + w.size() + noise::kTagLen);
  wire::encode_control_header(0x01020304, 7, d.data());
  const noise::CipherState cs(k);
  auto n = cs.encrypt_with_nonce(7, ConstByteSpan(d).first(16), ConstByteSpan(plain, w.size()),
                                 ByteSpan(d).subspan(16));
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, w.size() + 16);

  // Independently: ChaCha20-Poly1305 (IETF) with Noise's nonce = 4 zero bytes || LE64(n).
  Bytes ref(d.size());
  std::memcpy(ref.data(), d.data(), 16);
  std::uint8_t nonce[12] = {};
  store_le64(nonce + 4, 7);
  unsigned long long clen = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(ref.data() + 16, &clen, plain, w.size(), d.data(), 16,
                                            nullptr, nonce, k.data());
  EXPECT_EQ(to_hex(d), to_hex(ref));
  EXPECT_EQ(to_hex(d), kExpected);
}

}  // namespace
}  // namespace ie::crypto::cookie
