// Handshake MACs and cookies (ie/crypto/cookie.hpp), on libsodium's BLAKE2b and
// XChaCha20-Poly1305.
#include "ie/crypto/cookie.hpp"

#include <sodium.h>

#include <cstring>

namespace ie::crypto::cookie {
namespace {

MacKey labelled(const char* label8, const noise::PublicKey& pub) {
  MacKey k;
  crypto_generichash_blake2b_state st;
  crypto_generichash_blake2b_init(&st, nullptr, 0, k.size());
  crypto_generichash_blake2b_update(&st, reinterpret_cast<const std::uint8_t*>(label8), 8);
  crypto_generichash_blake2b_update(&st, pub.data(), pub.size());
  crypto_generichash_blake2b_final(&st, k.data(), k.size());
  return k;
}

const noise::PublicKey kZeroPub{};

}  // namespace

MacKey mac1_key(const noise::PublicKey& pub) {
  return labelled("mac1----", pub);
}
MacKey cookie_key(const noise::PublicKey& pub) {
  return labelled("cookie--", pub);
}

Mac mac(ConstByteSpan key, ConstByteSpan data) {
  Mac m;
  crypto_generichash_blake2b(m.data(), m.size(), data.data(), data.size(), key.data(), key.size());
  return m;
}

Checker::Checker(const noise::PublicKey& my_pub)
    : mac1_key_(mac1_key(my_pub)),
      mac1_key_zero_(mac1_key(kZeroPub)),
      cookie_key_(cookie_key(my_pub)),
      cookie_key_zero_(cookie_key(kZeroPub)) {}

bool Checker::mac1_ok(ConstByteSpan before_mac1, ConstByteSpan mac1, bool first_contact) const {
  const Mac want = mac(first_contact ? mac1_key_zero_ : mac1_key_, before_mac1);
  return ct_equal(want, mac1);
}

void Checker::refresh(Time now) {
  if (!have_secret_ || now - secret_born_ >= kSecretLifetime) {
    randombytes_buf(secret_.data(), secret_.size());
    secret_born_ = now;
    have_secret_ = true;
  }
}

Mac Checker::current_cookie(ConstByteSpan source_addr, Time now) {
  refresh(now);
  return mac(secret_.span(), source_addr);
}

bool Checker::mac2_ok(ConstByteSpan before_mac2, ConstByteSpan mac2, ConstByteSpan source_addr,
                      Time now) {
  Mac c = current_cookie(source_addr, now);
  const Mac want = mac(c, before_mac2);
  sodium_memzero(c.data(), c.size());
  return ct_equal(want, mac2);
}

std::size_t Checker::make_reply(std::uint32_t receiver, ConstByteSpan mac1,
                                ConstByteSpan source_addr, bool first_contact, Time now,
                                ByteSpan out) {
  Mac c = current_cookie(source_addr, now);
  std::uint8_t nonce[wire::kCookieNonceLen];
  randombytes_buf(nonce, sizeof nonce);
  std::uint8_t enc[wire::kCookieLen + 16];
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      enc, &len, c.data(), c.size(), mac1.data(), mac1.size(), nullptr, nonce,
      (first_contact ? cookie_key_zero_ : cookie_key_).data());
  sodium_memzero(c.data(), c.size());
  return wire::encode_cookie_reply(receiver, ConstByteSpan(nonce, sizeof nonce),
                                   ConstByteSpan(enc, sizeof enc), out);
}

Maker::Maker(const std::optional<noise::PublicKey>& their_pub)
    : mac1_key_(mac1_key(their_pub.value_or(kZeroPub))),
      cookie_key_(cookie_key(their_pub.value_or(kZeroPub))) {}

bool Maker::has_fresh_cookie(Time now) const {
  return have_cookie_ && now - cookie_at_ < kCookieLifetime;
}

void Maker::add_macs(ByteSpan msg, Time now) {
  const std::size_t n = msg.size();
  last_mac1_ = mac(mac1_key_, ConstByteSpan(msg.data(), n - 2 * wire::kMacLen));
  std::memcpy(msg.data() + n - 2 * wire::kMacLen, last_mac1_.data(), wire::kMacLen);
  sent_mac1_ = true;
  if (has_fresh_cookie(now)) {
    const Mac m2 = mac(cookie_.span(), ConstByteSpan(msg.data(), n - wire::kMacLen));
    std::memcpy(msg.data() + n - wire::kMacLen, m2.data(), wire::kMacLen);
  } else {
    std::memset(msg.data() + n - wire::kMacLen, 0, wire::kMacLen);
  }
}

bool Maker::consume_reply(const wire::CookieReplyView& reply, Time now) {
  if (!sent_mac1_) return false;
  std::uint8_t plain[wire::kCookieLen];
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          plain, &len, nullptr, reply.encrypted_cookie.data(), reply.encrypted_cookie.size(),
          last_mac1_.data(), last_mac1_.size(), reply.nonce.data(), cookie_key_.data()) != 0 ||
      len != wire::kCookieLen) {
    return false;
  }
  std::memcpy(cookie_.data(), plain, wire::kCookieLen);
  sodium_memzero(plain, sizeof plain);
  cookie_at_ = now;
  have_cookie_ = true;
  return true;
}

}  // namespace ie::crypto::cookie
