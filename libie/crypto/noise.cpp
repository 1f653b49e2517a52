// The Noise Protocol Framework engine (revision 34) behind ie/crypto/noise.hpp: 25519 DH,
// ChaChaPoly and BLAKE2b from libsodium; handshake patterns (fundamental, one-way, deferred)
// looked up by name in one table and driven token by token; psk modifiers applied by
// rewriting the message patterns as the specification describes. Every secret (chaining key,
// cipher keys, ephemerals, statics, psks) lives in ie::Secret and is wiped.
#include "ie/crypto/noise.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace ie::crypto::noise {
namespace {

using Hash = std::array<std::uint8_t, kHashLen>;
constexpr std::size_t kBlockLen = 128;  // BLAKE2b block length (HMAC)

struct SodiumInit {
  SodiumInit() {
    if (sodium_init() < 0) std::abort();  // libsodium cannot work without its RNG
  }
};
const SodiumInit kSodiumInit;

// ---- hash, HMAC, HKDF (BLAKE2b) -------------------------------------------------------

void hash_parts(std::initializer_list<ConstByteSpan> parts, std::uint8_t* out) {
  crypto_generichash_blake2b_state st;
  crypto_generichash_blake2b_init(&st, nullptr, 0, kHashLen);
  for (auto p : parts)
    crypto_generichash_blake2b_update(&st, p.data(), p.size());
  crypto_generichash_blake2b_final(&st, out, kHashLen);
  sodium_memzero(&st, sizeof st);
}

// HMAC-BLAKE2b (RFC 2104 with a 128-byte block); key <= kHashLen bytes.
void hmac(ConstByteSpan key, std::initializer_list<ConstByteSpan> data, std::uint8_t* out) {
  std::uint8_t block[kBlockLen] = {};
  std::memcpy(block, key.data(), key.size());
  std::uint8_t pad[kBlockLen];
  for (std::size_t i = 0; i < kBlockLen; ++i)
    pad[i] = block[i] ^ 0x36;
  crypto_generichash_blake2b_state st;
  std::uint8_t inner[kHashLen];
  crypto_generichash_blake2b_init(&st, nullptr, 0, kHashLen);
  crypto_generichash_blake2b_update(&st, pad, kBlockLen);
  for (auto d : data)
    crypto_generichash_blake2b_update(&st, d.data(), d.size());
  crypto_generichash_blake2b_final(&st, inner, kHashLen);
  for (std::size_t i = 0; i < kBlockLen; ++i)
    pad[i] = block[i] ^ 0x5c;
  crypto_generichash_blake2b_init(&st, nullptr, 0, kHashLen);
  crypto_generichash_blake2b_update(&st, pad, kBlockLen);
  crypto_generichash_blake2b_update(&st, inner, kHashLen);
  crypto_generichash_blake2b_final(&st, out, kHashLen);
  sodium_memzero(block, sizeof block);
  sodium_memzero(pad, sizeof pad);
  sodium_memzero(inner, sizeof inner);
  sodium_memzero(&st, sizeof st);
}

// HKDF(chaining_key, ikm, n) for n = 2 or 3 outputs of kHashLen bytes each.
void hkdf(const Hash& ck, ConstByteSpan ikm, std::uint8_t* out1, std::uint8_t* out2,
          std::uint8_t* out3) {
  std::uint8_t temp_key[kHashLen];
  hmac(ck, {ikm}, temp_key);
  const std::uint8_t one = 1, two = 2, three = 3;
  hmac(temp_key, {ConstByteSpan(&one, 1)}, out1);
  hmac(temp_key, {ConstByteSpan(out1, kHashLen), ConstByteSpan(&two, 1)}, out2);
  if (out3 != nullptr) {
    hmac(temp_key, {ConstByteSpan(out2, kHashLen), ConstByteSpan(&three, 1)}, out3);
  }
  sodium_memzero(temp_key, sizeof temp_key);
}

void make_nonce(std::uint64_t n, std::uint8_t nonce[12]) {
  std::memset(nonce, 0, 4);
  store_le64(nonce + 4, n);
}

// ---- handshake patterns ---------------------------------------------------------------

enum class Token : std::uint8_t { e, s, ee, es, se, ss, psk };

struct PatternDef {
  const char* name;
  const char* pre_initiator;  // pre-message of the initiator ("", "e", "s", "e, s")
  const char* pre_responder;
  const char* messages;  // messages separated by '|', tokens by ','; first is initiator's
};

// The specification's tables (sections 7.4, 7.5 and 7.6).
constexpr PatternDef kPatterns[] = {
    {"N", "", "s", "e,es"},
    {"K", "s", "s", "e,es,ss"},
    {"X", "", "s", "e,es,s,ss"},
    {"NN", "", "", "e|e,ee"},
    {"NK", "", "s", "e,es|e,ee"},
    {"NX", "", "", "e|e,ee,s,es"},
    {"KN", "s", "", "e|e,ee,se"},
    {"KK", "s", "s", "e,es,ss|e,ee,se"},
    {"KX", "s", "", "e|e,ee,se,s,es"},
    {"XN", "", "", "e|e,ee|s,se"},
    {"XK", "", "s", "e,es|e,ee|s,se"},
    {"XX", "", "", "e|e,ee,s,es|s,se"},
    {"IN", "", "", "e,s|e,ee,se"},
    {"IK", "", "s", "e,es,s,ss|e,ee,se"},
    {"IX", "", "", "e,s|e,ee,se,s,es"},
    {"NK1", "", "s", "e|e,ee,es"},
    {"NX1", "", "", "e|e,ee,s|es"},
    {"X1N", "", "", "e|e,ee|s|se"},
    {"X1K", "", "s", "e,es|e,ee|s|se"},
    {"XK1", "", "s", "e|e,ee,es|s,se"},
    {"X1K1", "", "s", "e|e,ee,es|s|se"},
    {"X1X", "", "", "e|e,ee,s,es|s|se"},
    {"XX1", "", "", "e|e,ee,s|es,s,se"},
    {"X1X1", "", "", "e|e,ee,s|es,s|se"},
    {"K1N", "s", "", "e|e,ee|se"},
    {"K1K", "s", "s", "e,es|e,ee|se"},
    {"KK1", "s", "s", "e|e,ee,se,es"},
    {"K1K1", "s", "s", "e|e,ee,es|se"},
    {"K1X", "s", "", "e|e,ee,s,es|se"},
    {"KX1", "s", "", "e|e,ee,se,s|es"},
    {"K1X1", "s", "", "e|e,ee,s|se,es"},
    {"I1N", "", "", "e,s|e,ee|se"},
    {"I1K", "", "s", "e,es,s|e,ee|se"},
    {"IK1", "", "s", "e,s|e,ee,se,es"},
    {"I1K1", "", "s", "e,s|e,ee,es|se"},
    {"I1X", "", "", "e,s|e,ee,s,es|se"},
    {"IX1", "", "", "e,s|e,ee,se,s|es"},
    {"I1X1", "", "", "e,s|e,ee,s|se,es"},
};

struct Pattern {
  std::vector<Token> pre_initiator;
  std::vector<Token> pre_responder;
  std::vector<std::vector<Token>> messages;
  bool psk = false;
};

std::optional<Token> parse_token(std::string_view t) {
  if (t == "e") return Token::e;
  if (t == "s") return Token::s;
  if (t == "ee") return Token::ee;
  if (t == "es") return Token::es;
  if (t == "se") return Token::se;
  if (t == "ss") return Token::ss;
  if (t == "psk") return Token::psk;
  return std::nullopt;
}

std::vector<Token> parse_tokens(std::string_view s) {
  std::vector<Token> out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    const auto tok = s.substr(0, comma);
    if (auto t = parse_token(tok)) out.push_back(*t);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

// "XXpsk0+psk2" -> base "XX" and modifiers; psk modifiers rewrite the messages.
Result<Pattern> parse_pattern(std::string_view name) {
  std::size_t split = 0;
  while (split < name.size() && !(name[split] >= 'a' && name[split] <= 'z'))
    ++split;
  const std::string_view base = name.substr(0, split);
  const PatternDef* def = nullptr;
  for (const auto& p : kPatterns) {
    if (base == p.name) def = &p;
  }
  if (def == nullptr) return fail(Errc::unsupported, "noise: unknown handshake pattern");
  Pattern pat;
  pat.pre_initiator = parse_tokens(def->pre_initiator);
  pat.pre_responder = parse_tokens(def->pre_responder);
  std::string_view msgs = def->messages;
  while (true) {
    const auto bar = msgs.find('|');
    pat.messages.push_back(parse_tokens(msgs.substr(0, bar)));
    if (bar == std::string_view::npos) break;
    msgs.remove_prefix(bar + 1);
  }
  std::string_view mods = name.substr(split);
  while (!mods.empty()) {
    const auto plus = mods.find('+');
    const auto mod = mods.substr(0, plus);
    if (mod.size() < 4 || mod.substr(0, 3) != "psk") {
      return fail(Errc::unsupported, "noise: unsupported pattern modifier");
    }
    std::size_t n = 0;
    for (char c : mod.substr(3)) {
      if (c < '0' || c > '9' || n > 9) return fail(Errc::unsupported, "noise: bad psk modifier");
      n = n * 10 + static_cast<std::size_t>(c - '0');
    }
    if (n > pat.messages.size()) return fail(Errc::unsupported, "noise: psk modifier past end");
    if (n == 0) {
      pat.messages[0].insert(pat.messages[0].begin(), Token::psk);
    } else {
      pat.messages[n - 1].push_back(Token::psk);
    }
    pat.psk = true;
    if (plus == std::string_view::npos) break;
    mods.remove_prefix(plus + 1);
  }
  return pat;
}

}  // namespace

// ---- keys ----------------------------------------------------------------------------

KeyPair KeyPair::generate() {
  KeyPair kp;
  randombytes_buf(kp.priv.data(), kp.priv.size());
  crypto_scalarmult_base(kp.pub.data(), kp.priv.data());
  return kp;
}

KeyPair KeyPair::from_private(std::span<const std::uint8_t, kDhLen> priv) {
  KeyPair kp;
  kp.priv = Key32(priv);
  crypto_scalarmult_base(kp.pub.data(), kp.priv.data());
  return kp;
}

bool dh(const Key32& priv, const PublicKey& pub, Key32* out) {
  // crypto_scalarmult fails on an all-zero result (a low-order point).
  return crypto_scalarmult(out->data(), priv.data(), pub.data()) == 0;
}

// ---- CipherState ---------------------------------------------------------------------

void CipherState::initialize_key(const Key32& k) {
  k_ = k.clone();
  n_ = 0;
  has_key_ = true;
}

Result<std::size_t> CipherState::encrypt_with_ad(ConstByteSpan ad, ConstByteSpan plaintext,
                                                 ByteSpan out) {
  if (!has_key_) {
    if (out.size() < plaintext.size()) return fail(Errc::too_large, "noise: output too small");
    if (!plaintext.empty()) std::memmove(out.data(), plaintext.data(), plaintext.size());
    return plaintext.size();
  }
  if (n_ == UINT64_MAX) return fail(Errc::crypto, "noise: nonce exhausted");
  auto r = encrypt_with_nonce(n_, ad, plaintext, out);
  if (r) ++n_;
  return r;
}

Result<std::size_t> CipherState::decrypt_with_ad(ConstByteSpan ad, ConstByteSpan ciphertext,
                                                 ByteSpan out) {
  if (!has_key_) {
    if (out.size() < ciphertext.size()) return fail(Errc::too_large, "noise: output too small");
    if (!ciphertext.empty()) std::memmove(out.data(), ciphertext.data(), ciphertext.size());
    return ciphertext.size();
  }
  if (n_ == UINT64_MAX) return fail(Errc::crypto, "noise: nonce exhausted");
  auto r = decrypt_with_nonce(n_, ad, ciphertext, out);
  if (r) ++n_;
  return r;
}

Result<std::size_t> CipherState::encrypt_with_nonce(std::uint64_t n, ConstByteSpan ad,
                                                    ConstByteSpan plaintext, ByteSpan out) const {
  if (!has_key_) return fail(Errc::invalid_argument, "noise: cipher has no key");
  // 2^64-1 is reserved for rekey() (Noise section 5.1); a wire counter must never reach it.
  if (n == UINT64_MAX) return fail(Errc::invalid_argument, "noise: nonce 2^64-1 is reserved");
  if (out.size() < plaintext.size() + kTagLen) {
    return fail(Errc::too_large, "noise: output too small");
  }
  std::uint8_t nonce[12];
  make_nonce(n, nonce);
  unsigned long long clen = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &clen, plaintext.data(), plaintext.size(),
                                            ad.data(), ad.size(), nullptr, nonce, k_.data());
  return static_cast<std::size_t>(clen);
}

Result<std::size_t> CipherState::decrypt_with_nonce(std::uint64_t n, ConstByteSpan ad,
                                                    ConstByteSpan ciphertext, ByteSpan out) const {
  if (!has_key_) return fail(Errc::invalid_argument, "noise: cipher has no key");
  if (n == UINT64_MAX) return fail(Errc::invalid_argument, "noise: nonce 2^64-1 is reserved");
  if (ciphertext.size() < kTagLen) return fail(Errc::crypto, "noise: ciphertext too short");
  if (out.size() < ciphertext.size() - kTagLen) {
    return fail(Errc::too_large, "noise: output too small");
  }
  std::uint8_t nonce[12];
  make_nonce(n, nonce);
  unsigned long long mlen = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data(), &mlen, nullptr, ciphertext.data(),
                                                ciphertext.size(), ad.data(), ad.size(), nonce,
                                                k_.data()) != 0) {
    return fail(Errc::crypto, "noise: authentication failed");
  }
  return static_cast<std::size_t>(mlen);
}

void CipherState::rekey() {
  if (!has_key_) return;
  std::uint8_t zeros[kKeyLen] = {};
  std::uint8_t out[kKeyLen + kTagLen];
  std::uint8_t nonce[12];
  make_nonce(UINT64_MAX, nonce);
  unsigned long long clen = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, zeros, sizeof zeros, nullptr, 0, nullptr,
                                            nonce, k_.data());
  std::memcpy(k_.data(), out, kKeyLen);
  sodium_memzero(out, sizeof out);
}

// ---- SymmetricState + HandshakeState -------------------------------------------------

struct HandshakeState::Impl {
  // SymmetricState
  Secret<kHashLen> ck;
  Hash h{};
  CipherState cipher;

  Pattern pattern;
  bool initiator = false;
  std::optional<KeyPair> s, e;
  std::optional<PublicKey> rs, re;
  std::vector<Key32> psks;
  std::function<const Key32*(const PublicKey&)> precomputed_ss;
  std::optional<Key32> computed_ss;  // what an `ss` token computed (not taken from the cache)
  std::size_t next_psk = 0;
  std::size_t message_index = 0;
  bool failed = false;

  void mix_hash(ConstByteSpan data) { hash_parts({ConstByteSpan(h), data}, h.data()); }

  void mix_key(ConstByteSpan ikm) {
    Hash ck_h;
    std::memcpy(ck_h.data(), ck.data(), kHashLen);
    Secret<kHashLen> out1, out2;
    hkdf(ck_h, ikm, out1.data(), out2.data(), nullptr);
    ck = std::move(out1);
    Key32 k(out2.span().first<kKeyLen>());
    cipher.initialize_key(k);
    sodium_memzero(ck_h.data(), ck_h.size());
  }

  void mix_key_and_hash(ConstByteSpan ikm) {
    Hash ck_h;
    std::memcpy(ck_h.data(), ck.data(), kHashLen);
    Secret<kHashLen> out1, out2, out3;
    hkdf(ck_h, ikm, out1.data(), out2.data(), out3.data());
    ck = std::move(out1);
    mix_hash(out2.span());
    Key32 k(out3.span().first<kKeyLen>());
    cipher.initialize_key(k);
    sodium_memzero(ck_h.data(), ck_h.size());
  }

  Result<std::size_t> encrypt_and_hash(ConstByteSpan plaintext, ByteSpan out) {
    auto r = cipher.encrypt_with_ad(h, plaintext, out);
    if (!r) return r;
    mix_hash(ConstByteSpan(out.data(), *r));
    return r;
  }

  Result<std::size_t> decrypt_and_hash(ConstByteSpan ciphertext, ByteSpan out) {
    Hash h_before = h;
    auto r = cipher.decrypt_with_ad(h_before, ciphertext, out);
    if (!r) return r;
    mix_hash(ciphertext);
    return r;
  }

  // DH for a token, from this side's point of view.
  bool token_dh(Token t) {
    // A DH token names the initiator's key first and the responder's second ("es": the
    // initiator's ephemeral with the responder's static); pick ours and theirs by role.
    bool first_e, second_e;
    switch (t) {
      case Token::ee:
        first_e = true, second_e = true;
        break;
      case Token::es:
        first_e = true, second_e = false;
        break;
      case Token::se:
        first_e = false, second_e = true;
        break;
      case Token::ss:
        first_e = false, second_e = false;
        break;
      default:
        return false;
    }
    const bool local_e = initiator ? first_e : second_e;
    const bool remote_e = initiator ? second_e : first_e;
    const std::optional<KeyPair>& local_key = local_e ? e : s;
    const KeyPair* local = local_key ? &*local_key : nullptr;
    const std::optional<PublicKey>* remote = remote_e ? &re : &rs;
    if (local == nullptr || !remote->has_value()) return false;
    if (t == Token::ss && precomputed_ss) {
      if (const Key32* kept = precomputed_ss(**remote)) {
        mix_key(kept->span());
        return true;
      }
    }
    Key32 shared;
    if (!dh(local->priv, **remote, &shared)) return false;
    mix_key(shared.span());
    if (t == Token::ss) computed_ss = std::move(shared);
    return true;
  }
};

HandshakeState::HandshakeState(Impl* impl) : impl_(impl) {}
HandshakeState::HandshakeState(HandshakeState&& o) noexcept
    : impl_(std::exchange(o.impl_, nullptr)) {}
HandshakeState& HandshakeState::operator=(HandshakeState&& o) noexcept {
  if (this != &o) {
    delete impl_;
    impl_ = std::exchange(o.impl_, nullptr);
  }
  return *this;
}
HandshakeState::~HandshakeState() {
  delete impl_;
}

Result<HandshakeState> HandshakeState::create(HandshakeConfig cfg) {
  // Noise_<pattern>_25519_ChaChaPoly_BLAKE2b
  const std::string_view name = cfg.protocol_name;
  constexpr std::string_view kPrefix = "Noise_";
  constexpr std::string_view kSuffix = "_25519_ChaChaPoly_BLAKE2b";
  if (name.size() <= kPrefix.size() + kSuffix.size() || name.substr(0, kPrefix.size()) != kPrefix ||
      name.substr(name.size() - kSuffix.size()) != kSuffix) {
    return fail(Errc::unsupported, "noise: only Noise_*_25519_ChaChaPoly_BLAKE2b is supported");
  }
  auto pat =
      parse_pattern(name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size()));
  if (!pat) return fail(pat.error());

  auto impl = std::make_unique<Impl>();
  impl->pattern = std::move(*pat);
  impl->initiator = cfg.initiator;
  impl->s = std::move(cfg.s);
  impl->e = std::move(cfg.e);
  impl->rs = cfg.rs;
  impl->re = cfg.re;
  impl->psks = std::move(cfg.psks);
  impl->precomputed_ss = std::move(cfg.precomputed_ss);

  // Which keys the pattern needs, from this side's point of view.
  const auto& p = impl->pattern;
  const auto& my_pre = cfg.initiator ? p.pre_initiator : p.pre_responder;
  const auto& their_pre = cfg.initiator ? p.pre_responder : p.pre_initiator;
  bool need_s = std::count(my_pre.begin(), my_pre.end(), Token::s) > 0;
  std::size_t psk_count = 0;
  for (std::size_t i = 0; i < p.messages.size(); ++i) {
    const bool mine = (i % 2 == 0) == cfg.initiator;
    for (Token t : p.messages[i]) {
      if (t == Token::s && mine) need_s = true;
      if (t == Token::psk) ++psk_count;
    }
  }
  if (need_s && !impl->s)
    return fail(Errc::invalid_argument, "noise: pattern needs a local static key");
  for (Token t : their_pre) {
    if (t == Token::s && !impl->rs) {
      return fail(Errc::invalid_argument, "noise: pattern needs the remote static key");
    }
    if (t == Token::e && !impl->re) {
      return fail(Errc::invalid_argument, "noise: pattern needs the remote ephemeral key");
    }
  }
  if (impl->psks.size() < psk_count) return fail(Errc::invalid_argument, "noise: missing psk");

  // InitializeSymmetric(protocol_name)
  if (name.size() <= kHashLen) {
    std::memcpy(impl->h.data(), name.data(), name.size());
  } else {
    hash_parts({ConstByteSpan(reinterpret_cast<const std::uint8_t*>(name.data()), name.size())},
               impl->h.data());
  }
  std::memcpy(impl->ck.data(), impl->h.data(), kHashLen);
  impl->mix_hash(cfg.prologue);

  // Pre-messages: the initiator's first, then the responder's.
  auto pre = [&](const std::vector<Token>& tokens, bool initiators) -> Result<void> {
    const bool mine = initiators == cfg.initiator;
    for (Token t : tokens) {
      const PublicKey* key = nullptr;
      if (t == Token::s)
        key = mine ? (impl->s ? &impl->s->pub : nullptr) : (impl->rs ? &*impl->rs : nullptr);
      if (t == Token::e)
        key = mine ? (impl->e ? &impl->e->pub : nullptr) : (impl->re ? &*impl->re : nullptr);
      if (key == nullptr) return fail(Errc::invalid_argument, "noise: missing pre-message key");
      impl->mix_hash(*key);
      if (t == Token::e && p.psk) impl->mix_key(*key);
    }
    return ok();
  };
  IE_TRY(pre(p.pre_initiator, true));
  IE_TRY(pre(p.pre_responder, false));
  return HandshakeState(impl.release());
}

bool HandshakeState::is_initiator() const {
  return impl_->initiator;
}
bool HandshakeState::is_complete() const {
  return impl_->message_index >= impl_->pattern.messages.size();
}
bool HandshakeState::my_turn_to_write() const {
  return !is_complete() && !impl_->failed && ((impl_->message_index % 2 == 0) == impl_->initiator);
}

Result<std::size_t> HandshakeState::write_message(ConstByteSpan payload, ByteSpan out) {
  Impl& st = *impl_;
  if (st.failed) return fail(Errc::closed, "noise: handshake failed earlier");
  if (!my_turn_to_write()) return fail(Errc::invalid_argument, "noise: not our turn to write");
  std::size_t pos = 0;
  auto fail_state = [&](Errc c, const char* why) {
    st.failed = true;
    return fail(c, why);
  };
  for (Token t : st.pattern.messages[st.message_index]) {
    switch (t) {
      case Token::e: {
        if (!st.e) st.e = KeyPair::generate();
        if (out.size() - pos < kDhLen)
          return fail_state(Errc::too_large, "noise: output too small");
        std::memcpy(out.data() + pos, st.e->pub.data(), kDhLen);
        st.mix_hash(ConstByteSpan(out.data() + pos, kDhLen));
        if (st.pattern.psk) st.mix_key(st.e->pub);
        pos += kDhLen;
        break;
      }
      case Token::s: {
        if (!st.s) return fail_state(Errc::invalid_argument, "noise: no local static key");
        auto r = st.encrypt_and_hash(st.s->pub, out.subspan(pos));
        if (!r) return fail_state(r.error().code, "noise: output too small");
        pos += *r;
        break;
      }
      case Token::psk:
        if (st.next_psk >= st.psks.size())
          return fail_state(Errc::invalid_argument, "noise: missing psk");
        st.mix_key_and_hash(st.psks[st.next_psk++].span());
        break;
      default:
        if (!st.token_dh(t)) return fail_state(Errc::crypto, "noise: DH failed");
    }
  }
  auto r = st.encrypt_and_hash(payload, out.subspan(pos));
  if (!r) return fail_state(r.error().code, "noise: output too small");
  pos += *r;
  if (pos > kMaxMessageLen) return fail_state(Errc::too_large, "noise: message too long");
  ++st.message_index;
  return pos;
}

Result<std::size_t> HandshakeState::read_message(ConstByteSpan message, ByteSpan payload_out) {
  Impl& st = *impl_;
  if (st.failed) return fail(Errc::closed, "noise: handshake failed earlier");
  if (is_complete() || my_turn_to_write()) {
    return fail(Errc::invalid_argument, "noise: not our turn to read");
  }
  auto fail_state = [&](Errc c, const char* why) {
    st.failed = true;
    return fail(c, why);
  };
  if (message.size() > kMaxMessageLen)
    return fail_state(Errc::too_large, "noise: message too long");
  std::size_t pos = 0;
  for (Token t : st.pattern.messages[st.message_index]) {
    switch (t) {
      case Token::e: {
        if (message.size() - pos < kDhLen)
          return fail_state(Errc::parse, "noise: message truncated");
        PublicKey re;
        std::memcpy(re.data(), message.data() + pos, kDhLen);
        st.re = re;
        st.mix_hash(re);
        if (st.pattern.psk) st.mix_key(re);
        pos += kDhLen;
        break;
      }
      case Token::s: {
        const std::size_t len = kDhLen + (st.cipher.has_key() ? kTagLen : 0);
        if (message.size() - pos < len) return fail_state(Errc::parse, "noise: message truncated");
        PublicKey rs;
        auto r = st.decrypt_and_hash(message.subspan(pos, len), rs);
        if (!r) return fail_state(Errc::crypto, "noise: cannot decrypt remote static");
        st.rs = rs;
        pos += len;
        break;
      }
      case Token::psk:
        if (st.next_psk >= st.psks.size())
          return fail_state(Errc::invalid_argument, "noise: missing psk");
        st.mix_key_and_hash(st.psks[st.next_psk++].span());
        break;
      default:
        if (!st.token_dh(t)) return fail_state(Errc::crypto, "noise: DH failed");
    }
  }
  const auto rest = message.subspan(pos);
  if (st.cipher.has_key() && rest.size() < kTagLen) {
    return fail_state(Errc::parse, "noise: message truncated");
  }
  const std::size_t plain_len = st.cipher.has_key() ? rest.size() - kTagLen : rest.size();
  if (payload_out.size() < plain_len)
    return fail_state(Errc::too_large, "noise: payload buffer too small");
  auto r = st.decrypt_and_hash(rest, payload_out);
  if (!r) return fail_state(Errc::crypto, "noise: payload authentication failed");
  ++st.message_index;
  return *r;
}

Result<std::pair<CipherState, CipherState>> HandshakeState::split() {
  Impl& st = *impl_;
  if (st.failed || !is_complete())
    return fail(Errc::invalid_argument, "noise: handshake not complete");
  Hash ck_h;
  std::memcpy(ck_h.data(), st.ck.data(), kHashLen);
  Secret<kHashLen> out1, out2;
  hkdf(ck_h, {}, out1.data(), out2.data(), nullptr);
  sodium_memzero(ck_h.data(), ck_h.size());
  Key32 k1(out1.span().first<kKeyLen>());
  Key32 k2(out2.span().first<kKeyLen>());
  return std::make_pair(CipherState(k1), CipherState(k2));
}

HandshakeHash HandshakeState::handshake_hash() const {
  return impl_->h;
}
std::optional<PublicKey> HandshakeState::remote_static() const {
  return impl_->rs;
}
std::optional<PublicKey> HandshakeState::remote_ephemeral() const {
  return impl_->re;
}

const Key32* HandshakeState::computed_ss() const {
  return impl_->computed_ss ? &*impl_->computed_ss : nullptr;
}

}  // namespace ie::crypto::noise
