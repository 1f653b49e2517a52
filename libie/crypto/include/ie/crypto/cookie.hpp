// WireGuard-style handshake MACs and cookies (protocol section 5.4.4 of the WireGuard paper,
// with BLAKE2b): mac1 proves the sender knows the responder's static public key (cheap
// filter before any DH); under load the responder also demands mac2, keyed by a cookie that
// proves the initiator can receive at its source address, and answers a missing/invalid mac2
// with an encrypted cookie reply instead of spending a DH.
//
//   mac1 = BLAKE2b-128(key = BLAKE2b-256("mac1----" || responder static pub), msg[..mac1])
//   cookie = BLAKE2b-128(key = responder secret (rotates every 2 min), initiator address)
//   mac2 = BLAKE2b-128(key = cookie, msg[..mac2])
//   cookie reply = XChaCha20-Poly1305(key = BLAKE2b-256("cookie--" || responder static pub),
//                                     random 24-byte nonce, cookie, AD = mac1 of the message)
// First contact (XX) happens before the initiator knows the responder's key, so its
// messages use an all-zero "public key" for these derivations: mac1 then only filters
// junk, while cookies still protect against spoofed sources.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "ie/crypto/noise.hpp"
#include "ie/util/bytes.hpp"
#include "ie/util/secret.hpp"
#include "ie/wire/handshake_msg.hpp"

namespace ie::crypto {

using Time = std::chrono::steady_clock::time_point;

namespace cookie {

inline constexpr auto kSecretLifetime = std::chrono::seconds(120);
inline constexpr auto kCookieLifetime = std::chrono::seconds(120) - std::chrono::seconds(5);

using MacKey = std::array<std::uint8_t, 32>;
using Mac = std::array<std::uint8_t, wire::kMacLen>;

MacKey mac1_key(const noise::PublicKey& pub);
MacKey cookie_key(const noise::PublicKey& pub);
Mac mac(ConstByteSpan key, ConstByteSpan data);

// Responder side. Not thread-safe.
class Checker {
 public:
  explicit Checker(const noise::PublicKey& my_pub);
  // mac1 of a message whose mac1 is keyed by our public key (or the all-zero first-contact
  // key when first_contact is set).
  bool mac1_ok(ConstByteSpan before_mac1, ConstByteSpan mac1, bool first_contact) const;
  // mac2 against the cookie for this source address.
  bool mac2_ok(ConstByteSpan before_mac2, ConstByteSpan mac2, ConstByteSpan source_addr, Time now);
  // A cookie reply to the message with this mac1; returns its length (64) or 0.
  std::size_t make_reply(std::uint32_t receiver, ConstByteSpan mac1, ConstByteSpan source_addr,
                         bool first_contact, Time now, ByteSpan out);

 private:
  void refresh(Time now);
  Mac current_cookie(ConstByteSpan source_addr, Time now);

  MacKey mac1_key_, mac1_key_zero_, cookie_key_, cookie_key_zero_;
  Key32 secret_;
  Time secret_born_{};
  bool have_secret_ = false;
};

// Initiator side, one per peer: fills in mac1/mac2 and remembers the last mac1 so a cookie
// reply can be authenticated.
class Maker {
 public:
  // their_pub: the responder's static key; nullopt for first contact.
  explicit Maker(const std::optional<noise::PublicKey>& their_pub);
  // msg ends with mac1 and mac2 (32 bytes); fills both (mac2 zero without a fresh cookie).
  void add_macs(ByteSpan msg, Time now);
  // Decrypts and stores the cookie; false if it does not authenticate.
  bool consume_reply(const wire::CookieReplyView& reply, Time now);
  bool has_fresh_cookie(Time now) const;

 private:
  MacKey mac1_key_, cookie_key_;
  Mac last_mac1_{};
  bool sent_mac1_ = false;
  Secret<wire::kCookieLen> cookie_;
  Time cookie_at_{};
  bool have_cookie_ = false;
};

}  // namespace cookie
}  // namespace ie::crypto
