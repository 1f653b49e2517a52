// A generic Noise Protocol Framework engine (revision 34) over 25519 / ChaChaPoly / BLAKE2b,
// built on libsodium. Any handshake pattern of the specification's tables (fundamental,
// one-way and deferred patterns) with any psk modifiers ("psk0".."pskN", several joined by '+',
// e.g. "NNpsk0+psk2"; the pre-revision-32 "NoisePSK_" naming is not accepted), selected by the
// full protocol name, e.g. "Noise_IK_25519_ChaChaPoly_BLAKE2b" or
// "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b".
//
// Contracts: objects are single-threaded; all key material is held in ie::Secret and wiped;
// nothing here touches sockets or clocks. Failures return Result errors (never throw) and
// leave the HandshakeState unusable (a failed read must not be retried on the same state).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ie/util/bytes.hpp"
#include "ie/util/result.hpp"
#include "ie/util/secret.hpp"

namespace ie::crypto::noise {

inline constexpr std::size_t kDhLen = 32;
inline constexpr std::size_t kHashLen = 64;
inline constexpr std::size_t kKeyLen = 32;
inline constexpr std::size_t kTagLen = 16;
inline constexpr std::size_t kMaxMessageLen = 65535;

using PublicKey = std::array<std::uint8_t, kDhLen>;
using HandshakeHash = std::array<std::uint8_t, kHashLen>;

struct KeyPair {
  Key32 priv;
  PublicKey pub{};

  static KeyPair generate();
  static KeyPair from_private(std::span<const std::uint8_t, kDhLen> priv);
  KeyPair clone() const { return KeyPair{priv.clone(), pub}; }
};

// X25519; false if the result is all-zero (low-order point).
bool dh(const Key32& priv, const PublicKey& pub, Key32* out);

class CipherState {
 public:
  CipherState() = default;
  explicit CipherState(const Key32& k) { initialize_key(k); }

  void initialize_key(const Key32& k);
  bool has_key() const { return has_key_; }
  void set_nonce(std::uint64_t n) { n_ = n; }
  std::uint64_t nonce() const { return n_; }

  // Noise EncryptWithAd/DecryptWithAd using and incrementing the internal nonce.
  // out must hold plaintext.size() + kTagLen (encrypt) or ciphertext.size() - kTagLen (decrypt).
  // Without a key these copy the input (as the spec says). Return bytes written.
  Result<std::size_t> encrypt_with_ad(ConstByteSpan ad, ConstByteSpan plaintext, ByteSpan out);
  Result<std::size_t> decrypt_with_ad(ConstByteSpan ad, ConstByteSpan ciphertext, ByteSpan out);

  // Explicit-nonce variants for transport messages whose counter travels on the wire
  // (WireGuard style); they do not touch the internal nonce. Require a key.
  Result<std::size_t> encrypt_with_nonce(std::uint64_t n, ConstByteSpan ad, ConstByteSpan plaintext,
                                         ByteSpan out) const;
  Result<std::size_t> decrypt_with_nonce(std::uint64_t n, ConstByteSpan ad,
                                         ConstByteSpan ciphertext, ByteSpan out) const;

  // Noise Rekey(): k = first 32 bytes of ENCRYPT(k, 2^64-1, "", zeros).
  void rekey();

 private:
  Key32 k_;
  std::uint64_t n_ = 0;
  bool has_key_ = false;
};

struct HandshakeConfig {
  std::string protocol_name;  // full Noise protocol name
  bool initiator = false;
  Bytes prologue;
  std::optional<KeyPair> s;     // local static, if the pattern needs one
  std::optional<KeyPair> e;     // fixed local ephemeral: test vectors only; normally generated
  std::optional<PublicKey> rs;  // remote static known in advance (pre-message)
  std::optional<PublicKey> re;  // remote ephemeral known in advance (pre-message)
  std::vector<Key32> psks;      // in order of use
  // The static-static DH (token `ss`) depends only on the two static keys, so a side that
  // handshakes with the same peer again and again (an SN whose hosts re-key every few
  // minutes) may keep it, as WireGuard does, and skip one of an IK responder's four
  // variable-base X25519 operations. When set, an `ss` token asks for the value kept for the
  // remote static key (nullptr: compute it; HandshakeState::computed_ss then holds it). Called
  // inside the read_message/write_message that processes `ss`; the Key32 it returns must stay
  // valid until that call returns. The caller keeps one value per (own static, remote static)
  // pair and forgets it when either key changes.
  std::function<const Key32*(const PublicKey& remote_static)> precomputed_ss;
};

class HandshakeState {
 public:
  // Fails (Errc::unsupported / invalid_argument) on an unknown pattern, DH, cipher or hash,
  // or when a key the pattern needs is missing.
  static Result<HandshakeState> create(HandshakeConfig cfg);

  HandshakeState(HandshakeState&&) noexcept;
  HandshakeState& operator=(HandshakeState&&) noexcept;
  ~HandshakeState();

  // Writes the next handshake message carrying payload into out; returns its length.
  Result<std::size_t> write_message(ConstByteSpan payload, ByteSpan out);
  // Reads the next handshake message; writes the payload into payload_out; returns its length.
  Result<std::size_t> read_message(ConstByteSpan message, ByteSpan payload_out);

  bool is_initiator() const;
  bool is_complete() const;  // all message patterns processed
  bool my_turn_to_write() const;

  // After completion: (initiator->responder, responder->initiator) cipher states.
  Result<std::pair<CipherState, CipherState>> split();
  HandshakeHash handshake_hash() const;
  std::optional<PublicKey> remote_static() const;
  std::optional<PublicKey> remote_ephemeral() const;
  // The static-static DH this handshake computed itself, for the caller to keep for the next
  // handshake with the same peer (HandshakeConfig::precomputed_ss); nullptr if the pattern has
  // no `ss`, it was not reached yet, or it came from precomputed_ss.
  const Key32* computed_ss() const;

 private:
  struct Impl;
  explicit HandshakeState(Impl* impl);
  Impl* impl_ = nullptr;
};

}  // namespace ie::crypto::noise
