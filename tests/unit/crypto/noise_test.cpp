// Unit tests for the Noise engine (ie/crypto/noise.hpp): every known-answer vector of the
// cacophony and snow files run through both sides (ciphertexts, payloads, handshake hash,
// transport messages), then behaviour the vectors cannot show: tampered and wrong-key
// messages fail and poison the state, psk mismatch fails, split keys agree, explicit-nonce
// transport and rekey, buffer bounds, length limits and low-order points.
#include <gtest/gtest.h>
#include <sodium.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ie/crypto/noise.hpp"
#include "ie/util/bytes.hpp"

namespace ie::crypto::noise {
namespace {

using nlohmann::json;

constexpr std::string_view kSuite = "_25519_ChaChaPoly_BLAKE2b";

std::string proto(std::string_view pattern) {
  return "Noise_" + std::string(pattern) + std::string(kSuite);
}

// ---- known-answer vectors -------------------------------------------------------------

std::filesystem::path vector_file(const char* name) {
  return std::filesystem::path(IE_SOURCE_DIR) / "tests" / "vectors" / "data" / "noise" / name;
}

Bytes hex(const json& v, const std::string& key) {
  if (!v.contains(key) || !v[key].is_string()) return {};
  auto b = from_hex(v[key].get<std::string>());
  return b ? *b : Bytes{};
}

KeyPair pair_from(const Bytes& priv) {
  return KeyPair::from_private(std::span<const std::uint8_t, kDhLen>(priv.data(), kDhLen));
}

PublicKey pub_from(const Bytes& b) {
  PublicKey k{};
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

HandshakeConfig vector_config(const json& v, bool initiator) {
  const std::string p = initiator ? "init_" : "resp_";
  HandshakeConfig cfg;
  cfg.protocol_name = v["protocol_name"].get<std::string>();
  cfg.initiator = initiator;
  cfg.prologue = hex(v, p + "prologue");
  if (auto b = hex(v, p + "static"); b.size() == kDhLen) cfg.s = pair_from(b);
  if (auto b = hex(v, p + "ephemeral"); b.size() == kDhLen) cfg.e = pair_from(b);
  if (auto b = hex(v, p + "remote_static"); b.size() == kDhLen) cfg.rs = pub_from(b);
  if (auto b = hex(v, p + "remote_ephemeral"); b.size() == kDhLen) cfg.re = pub_from(b);
  if (v.contains(p + "psks")) {
    for (const auto& k : v[p + "psks"]) {
      auto b = from_hex(k.get<std::string>());
      if (b && b->size() == kKeyLen) cfg.psks.emplace_back(std::span<const std::uint8_t, 32>(*b));
    }
  }
  return cfg;
}

Bytes prefix(const Bytes& b, std::size_t n) {
  return Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
}

// Runs one vector on both sides; empty string on success, otherwise what differed.
std::string run_vector(const json& v) {
  auto init = HandshakeState::create(vector_config(v, true));
  auto resp = HandshakeState::create(vector_config(v, false));
  if (!init || !resp) return "create failed";
  std::optional<std::pair<CipherState, CipherState>> ic, rc;
  std::size_t hs_messages = 0;
  Bytes out(kMaxMessageLen), plain(kMaxMessageLen);
  std::size_t i = 0;
  for (const auto& m : v["messages"]) {
    const Bytes payload = hex(m, "payload");
    const Bytes expect = hex(m, "ciphertext");
    const std::string at = "message " + std::to_string(i);
    if (!ic) {
      const bool init_writes = init->my_turn_to_write();
      if (init_writes == resp->my_turn_to_write()) return at + ": both/neither side to write";
      HandshakeState& tx = init_writes ? *init : *resp;
      HandshakeState& rx = init_writes ? *resp : *init;
      auto w = tx.write_message(payload, out);
      if (!w) return at + ": write " + w.error().to_string();
      if (prefix(out, *w) != expect) return at + ": handshake ciphertext differs";
      auto r = rx.read_message(expect, plain);
      if (!r) return at + ": read " + r.error().to_string();
      if (prefix(plain, *r) != payload) return at + ": handshake payload differs";
      ++hs_messages;
      if (init->is_complete() != resp->is_complete()) return at + ": completion differs";
      if (init->is_complete()) {
        if (init->handshake_hash() != resp->handshake_hash()) return "handshake hashes differ";
        if (v.contains("handshake_hash")) {
          const auto h = init->handshake_hash();
          if (Bytes(h.begin(), h.end()) != hex(v, "handshake_hash")) return "handshake hash";
        }
        auto a = init->split();
        auto b = resp->split();
        if (!a || !b) return "split failed";
        ic.emplace(std::move(*a));
        rc.emplace(std::move(*b));
      }
    } else {
      // Transport: one-way patterns only send initiator -> responder; otherwise the direction
      // keeps alternating with the message index.
      const bool from_init = hs_messages == 1 || i % 2 == 0;
      CipherState& enc = from_init ? ic->first : rc->second;
      CipherState& dec = from_init ? rc->first : ic->second;
      auto w = enc.encrypt_with_ad({}, payload, out);
      if (!w || prefix(out, *w) != expect) return at + ": transport ciphertext differs";
      auto r = dec.decrypt_with_ad({}, expect, plain);
      if (!r || prefix(plain, *r) != payload) return at + ": transport payload differs";
    }
    ++i;
  }
  if (!ic) return "handshake never completed";
  return {};
}

void check_file(const char* name, std::size_t expected_vectors) {
  std::ifstream in(vector_file(name));
  ASSERT_TRUE(in.good()) << vector_file(name);
  const json doc = json::parse(in);
  ASSERT_TRUE(doc.contains("vectors"));
  std::size_t passed = 0;
  for (const auto& v : doc["vectors"]) {
    const std::string err = run_vector(v);
    EXPECT_EQ(err, "") << v["protocol_name"].get<std::string>();
    if (err.empty()) ++passed;
  }
  EXPECT_EQ(doc["vectors"].size(), expected_vectors);
  EXPECT_EQ(passed, expected_vectors);
}

TEST(NoiseVectors, Cacophony) {
  check_file("cacophony-25519-chachapoly-blake2b.json", 59);
}

TEST(NoiseVectors, Snow) {
  check_file("snow-25519-chachapoly-blake2b.json", 51);
}

// ---- behaviour ------------------------------------------------------------------------

KeyPair fixed_key(std::uint8_t seed) {
  std::array<std::uint8_t, kDhLen> priv;
  for (std::size_t i = 0; i < priv.size(); ++i)
    priv[i] = static_cast<std::uint8_t>(seed + i * 7);
  return KeyPair::from_private(priv);
}

Key32 fixed_psk(std::uint8_t seed) {
  Key32 k;
  for (std::size_t i = 0; i < k.size(); ++i)
    k.data()[i] = static_cast<std::uint8_t>(seed ^ i);
  return k;
}

struct Peers {
  HandshakeState init;
  HandshakeState resp;
};

// Builds both sides of `pattern` with fixed statics (a = initiator, b = responder), giving
// each side exactly the keys the pattern's pre-messages and tokens call for.
Peers make_peers(std::string_view pattern, std::size_t psks = 0) {
  const std::string base(pattern.substr(0, pattern.find("psk")));
  const bool init_static = base[0] != 'N';  // K, X, I (and K1, X1, I1) send/know it
  const bool init_pre_s = base[0] == 'K';
  const bool resp_pre_s = base.size() == 1 ? true : (base.find('K', 1) != std::string::npos);
  const bool resp_static = base.size() == 1 || base.find_first_of("KX", 1) != std::string::npos;
  HandshakeConfig i, r;
  i.protocol_name = r.protocol_name = proto(pattern);
  i.initiator = true;
  i.prologue = r.prologue = Bytes{'p', 'r', 'o'};
  if (init_static) i.s = fixed_key(1);
  if (resp_static) r.s = fixed_key(2);
  if (init_pre_s) r.rs = fixed_key(1).pub;
  if (resp_pre_s) i.rs = fixed_key(2).pub;
  for (std::size_t n = 0; n < psks; ++n) {
    i.psks.push_back(fixed_psk(static_cast<std::uint8_t>(n)));
    r.psks.push_back(fixed_psk(static_cast<std::uint8_t>(n)));
  }
  auto a = HandshakeState::create(std::move(i));
  auto b = HandshakeState::create(std::move(r));
  EXPECT_TRUE(a.ok()) << pattern << ": " << (a ? "" : a.error().to_string());
  EXPECT_TRUE(b.ok()) << pattern << ": " << (b ? "" : b.error().to_string());
  if (!a || !b) std::abort();
  return Peers{std::move(*a), std::move(*b)};
}

// Drives the handshake to completion (at most 8 messages); false on any failure.
bool complete(Peers& p) {
  Bytes out(1024), plain(1024);
  const Bytes payload{'h', 'i'};
  for (int n = 0; n < 8 && !(p.init.is_complete() && p.resp.is_complete()); ++n) {
    HandshakeState& tx = p.init.my_turn_to_write() ? p.init : p.resp;
    HandshakeState& rx = p.init.my_turn_to_write() ? p.resp : p.init;
    auto w = tx.write_message(payload, out);
    if (!w) return false;
    auto r = rx.read_message(ConstByteSpan(out.data(), *w), plain);
    if (!r || prefix(plain, *r) != payload) return false;
  }
  return p.init.is_complete() && p.resp.is_complete();
}

TEST(Noise, EveryPatternCompletesWithGeneratedEphemerals) {
  const char* patterns[] = {"N",   "K",   "X",    "NN",   "NK",   "NX",  "KN",   "KK",
                            "KX",  "XN",  "XK",   "XX",   "IN",   "IK",  "IX",   "NK1",
                            "NX1", "X1N", "X1K",  "XK1",  "X1K1", "X1X", "XX1",  "X1X1",
                            "K1N", "K1K", "KK1",  "K1K1", "K1X",  "KX1", "K1X1", "I1N",
                            "I1K", "IK1", "I1K1", "I1X",  "IX1",  "I1X1"};
  for (const char* pat : patterns) {
    Peers p = make_peers(pat);
    ASSERT_TRUE(complete(p)) << pat;
    EXPECT_EQ(p.init.handshake_hash(), p.resp.handshake_hash()) << pat;
    auto a = p.init.split();
    auto b = p.resp.split();
    ASSERT_TRUE(a && b) << pat;
    Bytes ct(64), pt(64);
    const Bytes msg{1, 2, 3};
    auto w = a->first.encrypt_with_ad({}, msg, ct);
    ASSERT_TRUE(w.ok()) << pat;
    auto r = b->first.decrypt_with_ad({}, ConstByteSpan(ct.data(), *w), pt);
    ASSERT_TRUE(r.ok()) << pat;
    EXPECT_EQ(prefix(pt, *r), msg) << pat;
  }
}

TEST(Noise, MultiplePskModifiers) {
  Peers p = make_peers("XXpsk0+psk1+psk2+psk3", 4);
  EXPECT_TRUE(complete(p));
  Peers q = make_peers("NNpsk0+psk2", 2);
  EXPECT_TRUE(complete(q));
}

// The error code create() fails with, or Errc::ok if it succeeded.
Errc create_error(HandshakeConfig cfg) {
  auto h = HandshakeState::create(std::move(cfg));
  return h ? Errc::ok : h.error().code;
}

TEST(Noise, CreateRejectsUnknownOrIncompleteConfigs) {
  HandshakeConfig c;
  c.protocol_name = proto("ZZ");
  EXPECT_EQ(create_error(std::move(c)), Errc::unsupported);
  HandshakeConfig d;
  d.protocol_name = "Noise_XX_448_AESGCM_SHA512";
  EXPECT_EQ(create_error(std::move(d)), Errc::unsupported);
  HandshakeConfig e;
  e.protocol_name = proto("XXpsk9");
  EXPECT_EQ(create_error(std::move(e)), Errc::unsupported);
  HandshakeConfig f;  // IK initiator without the responder's static key
  f.protocol_name = proto("IK");
  f.initiator = true;
  f.s = fixed_key(1);
  EXPECT_EQ(create_error(std::move(f)), Errc::invalid_argument);
  HandshakeConfig g;  // psk pattern without a psk
  g.protocol_name = proto("NNpsk0");
  EXPECT_EQ(create_error(std::move(g)), Errc::invalid_argument);
}

TEST(Noise, TamperedMessageFailsAndPoisons) {
  Peers p = make_peers("IK");
  Bytes msg(256), plain(256);
  auto w = p.init.write_message(Bytes{'x'}, msg);
  ASSERT_TRUE(w.ok());
  msg.resize(*w);
  Bytes bad = msg;
  bad.back() ^= 0x01;
  EXPECT_FALSE(p.resp.read_message(bad, plain).ok());
  // Poisoned: even the genuine message is refused now, and nothing can be written or split.
  auto again = p.resp.read_message(msg, plain);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::closed);
  EXPECT_FALSE(p.resp.my_turn_to_write());
  EXPECT_FALSE(p.resp.split().ok());
  // A fresh responder accepts the genuine message, so only the tampering made it fail.
  Peers q = make_peers("IK");
  EXPECT_TRUE(q.resp.read_message(msg, plain).ok());
}

TEST(Noise, WrongRemoteStaticFailsIK) {
  HandshakeConfig i, r;
  i.protocol_name = r.protocol_name = proto("IK");
  i.initiator = true;
  i.s = fixed_key(1);
  i.rs = fixed_key(3).pub;  // not the responder's key
  r.s = fixed_key(2);
  auto a = HandshakeState::create(std::move(i));
  auto b = HandshakeState::create(std::move(r));
  ASSERT_TRUE(a && b);
  Bytes msg(256), plain(256);
  auto w = a->write_message({}, msg);
  ASSERT_TRUE(w.ok());
  auto rd = b->read_message(ConstByteSpan(msg.data(), *w), plain);
  ASSERT_FALSE(rd.ok());
  EXPECT_EQ(rd.error().code, Errc::crypto);
}

// The static-static DH kept from one IK handshake serves the next with the same peer
// (WireGuard's precomputed static-static): both sides compute the same value, a handshake that
// takes it from the cache agrees with its peer, and a wrong kept value fails the handshake (so
// the cache is really used, and a stale one cannot be).
struct IkSides {
  HandshakeState init;
  HandshakeState resp;
};
IkSides ik_sides(const Key32* init_kept, const Key32* resp_kept, int* asked) {
  HandshakeConfig i, r;
  i.protocol_name = r.protocol_name = proto("IK");
  i.initiator = true;
  i.s = fixed_key(1);
  i.rs = fixed_key(2).pub;
  r.s = fixed_key(2);
  i.precomputed_ss = [=](const PublicKey& rs) {
    EXPECT_EQ(rs, fixed_key(2).pub);
    ++*asked;
    return init_kept;
  };
  r.precomputed_ss = [=](const PublicKey& rs) {
    EXPECT_EQ(rs, fixed_key(1).pub);  // the initiator's, decrypted from message 1
    ++*asked;
    return resp_kept;
  };
  auto a = HandshakeState::create(std::move(i));
  auto b = HandshakeState::create(std::move(r));
  if (!a || !b) std::abort();
  return IkSides{std::move(*a), std::move(*b)};
}

TEST(Noise, KeptStaticStaticDhServesTheNextHandshake) {
  Key32 expected;
  ASSERT_TRUE(dh(fixed_key(1).priv, fixed_key(2).pub, &expected));
  int asked = 0;
  {
    // Nothing kept: each side computes ss and offers it to be kept.
    IkSides s = ik_sides(nullptr, nullptr, &asked);
    Peers p{std::move(s.init), std::move(s.resp)};
    ASSERT_TRUE(complete(p));
    EXPECT_EQ(asked, 2);
    ASSERT_NE(p.init.computed_ss(), nullptr);
    ASSERT_NE(p.resp.computed_ss(), nullptr);
    EXPECT_TRUE(*p.init.computed_ss() == expected);
    EXPECT_TRUE(*p.resp.computed_ss() == expected);
  }
  {
    // Both sides take it from the cache: the handshake completes, keys agree, nothing computed.
    asked = 0;
    IkSides s = ik_sides(&expected, &expected, &asked);
    Peers p{std::move(s.init), std::move(s.resp)};
    ASSERT_TRUE(complete(p));
    EXPECT_EQ(asked, 2);
    EXPECT_EQ(p.init.computed_ss(), nullptr);
    EXPECT_EQ(p.resp.computed_ss(), nullptr);
    EXPECT_EQ(p.init.handshake_hash(), p.resp.handshake_hash());
    auto ki = p.init.split();
    auto kr = p.resp.split();
    ASSERT_TRUE(ki && kr);
    Bytes ct(64), pt(64);
    const Bytes msg{'o', 'k'};
    auto n = ki->first.encrypt_with_ad({}, msg, ct);
    ASSERT_TRUE(n.ok());
    auto m = kr->first.decrypt_with_ad({}, ConstByteSpan(ct.data(), *n), pt);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(prefix(pt, *m), msg);
  }
  // A wrong kept value on either side: the responder cannot read message 1 (its ss differs),
  // or the initiator's message 1 is sealed under the wrong key.
  Key32 wrong;
  wrong.data()[0] = 1;
  for (const bool wrong_side_is_init : {true, false}) {
    asked = 0;
    IkSides s =
        wrong_side_is_init ? ik_sides(&wrong, nullptr, &asked) : ik_sides(nullptr, &wrong, &asked);
    Bytes msg(256), plain(256);
    auto w = s.init.write_message({}, msg);
    ASSERT_TRUE(w.ok());
    auto rd = s.resp.read_message(ConstByteSpan(msg.data(), *w), plain);
    ASSERT_FALSE(rd.ok()) << wrong_side_is_init;
    EXPECT_EQ(rd.error().code, Errc::crypto);
  }
}

TEST(Noise, PskMismatchFails) {
  for (const char* pat : {"NNpsk0", "IKpsk2"}) {
    HandshakeConfig i, r;
    i.protocol_name = r.protocol_name = proto(pat);
    i.initiator = true;
    if (std::string_view(pat).starts_with("IK")) {
      i.s = fixed_key(1);
      i.rs = fixed_key(2).pub;
      r.s = fixed_key(2);
    }
    i.psks.push_back(fixed_psk(1));
    r.psks.push_back(fixed_psk(2));
    auto a = HandshakeState::create(std::move(i));
    auto b = HandshakeState::create(std::move(r));
    ASSERT_TRUE(a && b) << pat;
    Bytes msg(256), plain(256);
    bool failed = false;
    // psk0 fails on the first message, psk2 only when the responder's reply is read.
    for (int n = 0; n < 2 && !failed; ++n) {
      HandshakeState& tx = a->my_turn_to_write() ? *a : *b;
      HandshakeState& rx = a->my_turn_to_write() ? *b : *a;
      auto w = tx.write_message({}, msg);
      ASSERT_TRUE(w.ok()) << pat;
      failed = !rx.read_message(ConstByteSpan(msg.data(), *w), plain).ok();
    }
    EXPECT_TRUE(failed) << pat;
  }
}

TEST(Noise, SplitKeysAgreeAndRemoteStaticsLearned) {
  Peers p = make_peers("XX");
  ASSERT_TRUE(complete(p));
  EXPECT_EQ(p.init.remote_static(), fixed_key(2).pub);
  EXPECT_EQ(p.resp.remote_static(), fixed_key(1).pub);
  auto a = p.init.split();
  auto b = p.resp.split();
  ASSERT_TRUE(a && b);
  Bytes ct(64), pt(64);
  const Bytes m1{'t', 'o', ' ', 'r'}, m2{'t', 'o', ' ', 'i'};
  for (int n = 0; n < 3; ++n) {
    auto w = a->first.encrypt_with_ad({}, m1, ct);
    ASSERT_TRUE(w.ok());
    auto r = b->first.decrypt_with_ad({}, ConstByteSpan(ct.data(), *w), pt);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(prefix(pt, *r), m1);
    w = b->second.encrypt_with_ad({}, m2, ct);
    ASSERT_TRUE(w.ok());
    r = a->second.decrypt_with_ad({}, ConstByteSpan(ct.data(), *w), pt);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(prefix(pt, *r), m2);
  }
  EXPECT_EQ(a->first.nonce(), 3u);
  // The two directions use different keys.
  auto w = a->first.encrypt_with_ad({}, m1, ct);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(a->second.decrypt_with_ad({}, ConstByteSpan(ct.data(), *w), pt).ok());
}

TEST(Noise, ExplicitNonceRoundTripAndWrongNonce) {
  const Key32 k = fixed_psk(9);
  const CipherState tx(k), rx(k);
  const Bytes ad{'a', 'd'}, msg(100, 0x42);
  Bytes ct(msg.size() + kTagLen), pt(msg.size());
  auto w = tx.encrypt_with_nonce(1234, ad, msg, ct);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, msg.size() + kTagLen);
  auto r = rx.decrypt_with_nonce(1234, ad, ct, pt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(pt, msg);
  EXPECT_FALSE(rx.decrypt_with_nonce(1235, ad, ct, pt).ok());
  EXPECT_FALSE(rx.decrypt_with_nonce(1234, Bytes{'x'}, ct, pt).ok());
  EXPECT_EQ(tx.nonce(), 0u);  // explicit-nonce calls leave the counter alone
  // Same as the counter-based call at that nonce.
  CipherState seq(k);
  seq.set_nonce(1234);
  Bytes ct2(ct.size());
  ASSERT_TRUE(seq.encrypt_with_ad(ad, msg, ct2).ok());
  EXPECT_EQ(ct2, ct);
  EXPECT_EQ(seq.nonce(), 1235u);
  CipherState none;
  EXPECT_FALSE(none.encrypt_with_nonce(0, {}, msg, ct).ok());
  // 2^64-1 is reserved for rekey (Noise section 5.1) in both directions.
  EXPECT_FALSE(tx.encrypt_with_nonce(UINT64_MAX, ad, msg, ct).ok());
  EXPECT_FALSE(rx.decrypt_with_nonce(UINT64_MAX, ad, ct, pt).ok());
}

TEST(Noise, RekeyMatchesBetweenPeersAndFollowsTheSpec) {
  const Key32 k = fixed_psk(5);
  CipherState a(k), b(k);
  const CipherState old(k);
  a.rekey();
  b.rekey();
  const Bytes msg{'r', 'k'};
  Bytes ct(msg.size() + kTagLen), pt(msg.size());
  ASSERT_TRUE(a.encrypt_with_nonce(7, {}, msg, ct).ok());
  ASSERT_TRUE(b.decrypt_with_nonce(7, {}, ct, pt).ok());
  EXPECT_EQ(pt, msg);
  EXPECT_FALSE(old.decrypt_with_nonce(7, {}, ct, pt).ok());
  // REKEY(k) = first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zero bytes).
  // Computed with libsodium directly: nonce = 4 zero bytes || LE64(2^64-1).
  const Bytes zeros(kKeyLen, 0);
  Bytes derived(kKeyLen + kTagLen);
  std::uint8_t nonce[12] = {0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  unsigned long long dlen = 0;
  ASSERT_EQ(
      crypto_aead_chacha20poly1305_ietf_encrypt(derived.data(), &dlen, zeros.data(), zeros.size(),
                                                nullptr, 0, nullptr, nonce, k.data()),
      0);
  const Key32 k2(std::span<const std::uint8_t, kKeyLen>(derived.data(), kKeyLen));
  const CipherState expect(k2);
  Bytes ct2(ct.size());
  ASSERT_TRUE(expect.encrypt_with_nonce(7, {}, msg, ct2).ok());
  EXPECT_EQ(ct2, ct);
}

TEST(Noise, SmallBuffersAreErrorsNotOverflows) {
  // Exact-size heap buffers, so ASan would flag any write past them.
  Peers p = make_peers("IK");
  const Bytes payload(10, 7);
  const std::size_t need = kDhLen + (kDhLen + kTagLen) + (payload.size() + kTagLen);
  for (std::size_t size : {std::size_t{0}, std::size_t{16}, kDhLen + 5, need - 1}) {
    Peers q = make_peers("IK");
    Bytes tiny(size);
    EXPECT_FALSE(q.init.write_message(payload, tiny).ok()) << size;
    EXPECT_FALSE(q.init.my_turn_to_write());  // failed write poisons too
  }
  Bytes msg(need);
  auto w = p.init.write_message(payload, msg);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, need);
  Bytes small(payload.size() - 1);
  EXPECT_FALSE(p.resp.read_message(msg, small).ok());

  const CipherState c(fixed_psk(3));
  Bytes ct(payload.size() + kTagLen - 1), pt(payload.size() - 1);
  EXPECT_FALSE(c.encrypt_with_nonce(0, {}, payload, ct).ok());
  Bytes good(payload.size() + kTagLen);
  ASSERT_TRUE(c.encrypt_with_nonce(0, {}, payload, good).ok());
  EXPECT_FALSE(c.decrypt_with_nonce(0, {}, good, pt).ok());
  EXPECT_FALSE(c.decrypt_with_nonce(0, {}, Bytes(kTagLen - 1), pt).ok());
}

TEST(Noise, TruncatedAndOversizedMessagesFail) {
  Peers p = make_peers("XX");
  Bytes msg(kMaxMessageLen + 1), plain(kMaxMessageLen + 1);
  auto w = p.init.write_message({}, msg);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(p.resp.read_message(ConstByteSpan(msg.data(), *w - 1), plain).ok());
  Peers q = make_peers("XX");
  EXPECT_EQ(q.resp.read_message(msg, plain).error().code, Errc::too_large);
  // NN's first message is e || payload: a 65535-byte payload makes it too long even though
  // the output buffer has room.
  Peers r = make_peers("NN");
  const Bytes huge(kMaxMessageLen, 1);
  Bytes big(2 * kMaxMessageLen);
  auto too_long = r.init.write_message(huge, big);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().code, Errc::too_large);
  Peers s = make_peers("NN");
  EXPECT_TRUE(s.init.write_message(Bytes(kMaxMessageLen - kDhLen, 1), big).ok());
}

TEST(Noise, OutOfTurnCallsFail) {
  Peers p = make_peers("NN");
  Bytes buf(256);
  EXPECT_FALSE(p.resp.write_message({}, buf).ok());
  EXPECT_FALSE(p.init.read_message(Bytes(48), buf).ok());
  EXPECT_FALSE(p.init.split().ok());
}

TEST(Noise, LowOrderPointsRejected) {
  const PublicKey zero{};
  Key32 out;
  EXPECT_FALSE(dh(fixed_key(1).priv, zero, &out));
  EXPECT_TRUE(dh(fixed_key(1).priv, fixed_key(2).pub, &out));
  Key32 other;
  ASSERT_TRUE(dh(fixed_key(2).priv, fixed_key(1).pub, &other));
  EXPECT_TRUE(out == other);
  // An all-zero ephemeral in NN's reply makes the initiator's ee fail.
  Peers p = make_peers("NN");
  Bytes msg(256), plain(256);
  auto w = p.init.write_message({}, msg);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(p.resp.read_message(ConstByteSpan(msg.data(), *w), plain).ok());
  Bytes reply(kDhLen + kTagLen, 0);
  EXPECT_EQ(p.init.read_message(reply, plain).error().code, Errc::crypto);
}

TEST(Noise, FixedEphemeralsAreDeterministic) {
  auto first = [] {
    HandshakeConfig c;
    c.protocol_name = proto("IK");
    c.initiator = true;
    c.s = fixed_key(1);
    c.e = fixed_key(4);
    c.rs = fixed_key(2).pub;
    auto h = HandshakeState::create(std::move(c));
    Bytes msg(256);
    if (!h) return Bytes{};
    auto w = h->write_message(Bytes{'d'}, msg);
    msg.resize(w ? *w : 0);
    return msg;
  };
  const Bytes m1 = first();
  EXPECT_EQ(m1.size(), kDhLen + kDhLen + kTagLen + 1 + kTagLen);
  EXPECT_EQ(m1, first());
  EXPECT_TRUE(std::equal(m1.begin(), m1.begin() + kDhLen, fixed_key(4).pub.begin()));
}

}  // namespace
}  // namespace ie::crypto::noise
