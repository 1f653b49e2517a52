// PSP seal/open beyond the shared vectors: in-place operation, tampering of every byte,
// truncation, key/version mismatch, and the ILP known-answer vector of docs/ilp.md
// (generated independently by tests/vectors/tools/ilp_kat.py), read from the document itself
// so the two cannot drift apart.
#include "ie/crypto/psp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ie/wire/ilp.hpp"
#include "ie/wire/tlv.hpp"

namespace ie::crypto::psp {
namespace {

Key32 pattern_key(std::uint8_t start) {
  Key32 k;
  for (std::size_t i = 0; i < 32; ++i)
    k.data()[i] = static_cast<std::uint8_t>(start + i);
  return k;
}

Bytes hex(const char* h) {
  return from_hex(h).value();
}

// The hex value of `field` in docs/ilp.md's known-answer vector block: the text after the
// field name on its line plus indented hex-only continuation lines. Empty if not found.
std::string doc_hex(const std::string& field) {
  const auto doc = std::filesystem::path(IE_SOURCE_DIR) / "docs" / "ilp.md";
  std::ifstream in(doc);
  std::string line, out;
  bool in_field = false;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(' ');
    if (!in_field) {
      if (first == std::string::npos || line.compare(first, field.size(), field) != 0) continue;
      std::istringstream rest(line.substr(first + field.size()));
      rest >> out;
      in_field = true;
      continue;
    }
    // A continuation line is indented and hex only.
    std::string word;
    std::istringstream ws(line);
    if (!(ws >> word) || first < 8 ||
        !std::all_of(word.begin(), word.end(), [](char c) { return std::isxdigit(c) != 0; }) ||
        (ws >> line)) {
      break;
    }
    out += word;
  }
  return out;
}

TEST(Psp, IlpKnownAnswerVector) {
  const Key32 m0 = pattern_key(0x00), m1 = pattern_key(0x20);
  const Key key = derive_key(m0, m1, 0x101, Version::aes_gcm_256);
  ASSERT_EQ(doc_hex("master key 0"), to_hex(m0.span()));
  ASSERT_EQ(doc_hex("master key 1"), to_hex(m1.span()));
  EXPECT_EQ(to_hex(key.span()), doc_hex("derived key"));
  EXPECT_EQ(to_hex(key.span()), "7fc28cb6c960eb59c5ea3ed469e3eef099aa9b119fee8a3b3e12405f0970bcb0");

  const std::string opts = "cache=off";
  const wire::Tlv tlvs[] = {
      {static_cast<std::uint8_t>(wire::TlvType::app_options),
       ConstByteSpan(reinterpret_cast<const std::uint8_t*>(opts.data()), opts.size())}};
  const Bytes inner = hex("4500001c000040004011b4c40a0000010a0000023039303900080000");
  // Build in one buffer with headroom for the PSP header, as the datapath does.
  std::uint8_t buf[256] = {};
  std::uint8_t* ilp = buf + wire::kPspHeaderLen;
  const std::size_t hlen = wire::encode_ilp({1, 0x0102030405060708ull, wire::kIlpFlagE2e}, tlvs,
                                            ByteSpan(ilp, sizeof buf - wire::kPspHeaderLen));
  ASSERT_EQ(to_hex(ConstByteSpan(ilp, hlen)), "000101020304050607080641010963616368653d6f666600");
  EXPECT_EQ(to_hex(ConstByteSpan(ilp, hlen)), doc_hex("->"));
  EXPECT_EQ(to_hex(inner), doc_hex("inner packet"));
  std::memcpy(ilp + hlen, inner.data(), inner.size());

  auto sa = Sa::create(key);
  ASSERT_TRUE(sa.ok());
  wire::PspHeader h;
  h.spi = 0x101;
  h.iv = 1;
  const std::size_t n = sa->seal(h, ConstByteSpan(ilp, hlen + inner.size()), buf);  // in place
  ASSERT_GT(n, 0u);
  EXPECT_EQ(to_hex(ConstByteSpan(buf, n)),
            "fd010005000001010000000000000001f27689ffbaa15f06757b4dc5252e571f856e210aa4e72cfe"
            "b7c858a2aaa0869afa91b29ec0aa2629ab4125e8395112a5f8b01d5a199191d7d0097485e010f6a8"
            "19962655");
  EXPECT_EQ(to_hex(ConstByteSpan(buf, n)), doc_hex("sealed packet"));

  // Open in place and parse the ILP header back.
  wire::PspHeader got;
  ASSERT_EQ(wire::parse_psp_header(ConstByteSpan(buf, n), &got), wire::DropReason::none);
  std::size_t len = 0;
  ASSERT_EQ(sa->open(got, ConstByteSpan(buf, n), ByteSpan(buf + 16, n - 16), &len),
            wire::DropReason::none);
  wire::IlpView v;
  ASSERT_EQ(wire::parse_ilp(ConstByteSpan(buf + 16, len), &v), wire::DropReason::none);
  EXPECT_EQ(v.header.connection_id, 0x0102030405060708ull);
  EXPECT_EQ(Bytes(v.inner.begin(), v.inner.end()), inner);
}

class PspSa : public ::testing::TestWithParam<Version> {};

TEST_P(PspSa, EveryFlippedBitIsRejected) {
  const Key key = derive_key(pattern_key(1), pattern_key(2), 0x80000007, GetParam());
  auto sa = Sa::create(key);
  ASSERT_TRUE(sa.ok());
  Bytes payload(40);
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<std::uint8_t>(i * 7);
  wire::PspHeader h;
  h.spi = 0x80000007;
  h.iv = 99;
  h.crypt_offset = 1;  // 4 clear bytes, authenticated
  Bytes packet(payload.size() + 32);
  ASSERT_EQ(sa->seal(h, payload, packet), packet.size());
  EXPECT_EQ(std::memcmp(packet.data() + 16, payload.data(), 4), 0);  // clear part
  Bytes out(packet.size());
  Opened o;
  ASSERT_EQ(sa->open(packet, out, &o), wire::DropReason::none);
  ASSERT_EQ(o.payload_len, payload.size());
  EXPECT_EQ(Bytes(out.begin(), out.begin() + 40), payload);
  for (std::size_t byte = 0; byte < packet.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes t = packet;
      t[byte] ^= static_cast<std::uint8_t>(1 << bit);
      EXPECT_NE(sa->open(t, out, &o), wire::DropReason::none) << byte << ":" << bit;
    }
  }
  for (std::size_t n = 0; n < packet.size(); ++n) {
    EXPECT_NE(sa->open(ConstByteSpan(packet.data(), n), out, &o), wire::DropReason::none) << n;
  }
}

TEST_P(PspSa, WrongKeyAndWrongVersionRejected) {
  const Key key = derive_key(pattern_key(1), pattern_key(2), 5, GetParam());
  const Key other = derive_key(pattern_key(1), pattern_key(2), 6, GetParam());
  auto a = Sa::create(key);
  auto b = Sa::create(other);
  Bytes payload(64, 0xab), packet(96), out(96);
  wire::PspHeader h;
  h.spi = 5;
  ASSERT_EQ(a->seal(h, payload, packet), 96u);
  Opened o;
  EXPECT_EQ(b->open(packet, out, &o), wire::DropReason::auth_failed);
  // Unauthentic plaintext is never left in the output buffer.
  EXPECT_EQ(std::count(out.begin(), out.begin() + 64, 0xab), 0);
  const Key v_other =
      derive_key(pattern_key(1), pattern_key(2), 5,
                 GetParam() == Version::aes_gcm_128 ? Version::aes_gcm_256 : Version::aes_gcm_128);
  auto c = Sa::create(v_other);
  EXPECT_EQ(c->open(packet, out, &o), wire::DropReason::unsupported_psp_version);
}

TEST_P(PspSa, SealRefusesSmallBuffersAndBadOffsets) {
  const Key key = derive_key(pattern_key(1), pattern_key(2), 5, GetParam());
  auto sa = Sa::create(key);
  Bytes payload(10), out(100);
  wire::PspHeader h;
  EXPECT_EQ(sa->seal(h, payload, ByteSpan(out.data(), 41)), 0u);
  EXPECT_EQ(sa->seal(h, payload, ByteSpan(out.data(), 42)), 42u);
  h.crypt_offset = 3;  // 12 clear bytes > 10-byte payload
  EXPECT_EQ(sa->seal(h, payload, out), 0u);
  h.crypt_offset = 0;
  Opened o;
  Bytes small(5);
  ASSERT_EQ(sa->seal(h, payload, out), 42u);
  EXPECT_EQ(sa->open(ConstByteSpan(out.data(), 42), small, &o), wire::DropReason::too_large);
}

TEST_P(PspSa, EmptyPayloadAndInPlaceWithCryptOffset) {
  const Key key = derive_key(pattern_key(3), pattern_key(4), 9, GetParam());
  auto sa = Sa::create(key);
  ASSERT_TRUE(sa.ok());
  wire::PspHeader h;
  h.spi = 9;
  h.iv = 1;
  // Empty payload: header + tag only; opens to zero bytes with an empty output span.
  std::uint8_t pkt[32];
  ASSERT_EQ(sa->seal(h, {}, pkt), 32u);
  Opened o;
  ASSERT_EQ(sa->open(ConstByteSpan(pkt, 32), ByteSpan(), &o), wire::DropReason::none);
  EXPECT_EQ(o.payload_len, 0u);
  pkt[31] ^= 1;
  EXPECT_EQ(sa->open(ConstByteSpan(pkt, 32), ByteSpan(), &o), wire::DropReason::auth_failed);

  // In place, crypt offset 2: the result equals an out-of-place seal, and opening in place
  // gives the payload back at buf + 16.
  Bytes payload(100);
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<std::uint8_t>(i + 1);
  h.crypt_offset = 2;
  Bytes expect(132);
  ASSERT_EQ(sa->seal(h, payload, expect), 132u);
  Bytes buf(132);
  std::memcpy(buf.data() + 16, payload.data(), payload.size());
  ASSERT_EQ(sa->seal(h, ConstByteSpan(buf.data() + 16, 100), buf), 132u);
  EXPECT_EQ(buf, expect);
  wire::PspHeader got;
  ASSERT_EQ(wire::parse_psp_header(buf, &got), wire::DropReason::none);
  std::size_t len = 0;
  ASSERT_EQ(sa->open(got, buf, ByteSpan(buf.data() + 16, 116), &len), wire::DropReason::none);
  ASSERT_EQ(len, 100u);
  EXPECT_EQ(std::memcmp(buf.data() + 16, payload.data(), 100), 0);
}

// A send SA holds only the sealing context and a receive SA only the opening one; each does
// its own job with the other's output and refuses the other's.
TEST_P(PspSa, SealOnlyAndOpenOnly) {
  const Key key = derive_key(pattern_key(1), pattern_key(2), 0x42, GetParam());
  auto tx = Sa::create(key, Sa::Use::seal);
  auto rx = Sa::create(key, Sa::Use::open);
  ASSERT_TRUE(tx.ok());
  ASSERT_TRUE(rx.ok());
  const Bytes payload(24, 0x5a);
  wire::PspHeader h;
  h.spi = 0x42;
  h.iv = 7;
  Bytes packet(payload.size() + 32);
  ASSERT_EQ(tx->seal(h, payload, packet), packet.size());
  EXPECT_EQ(rx->seal(h, payload, packet), 0u);  // refused; packet untouched
  Opened o;
  Bytes out(packet.size());
  EXPECT_EQ(tx->open(packet, out, &o), wire::DropReason::auth_failed);
  ASSERT_EQ(rx->open(packet, out, &o), wire::DropReason::none);
  EXPECT_EQ(Bytes(out.begin(), out.begin() + static_cast<long>(o.payload_len)), payload);
}

// The per-thread context cache (psp.hpp): with fewer slots than SAs every seal and open
// evicts another SA's context and re-keys a slot, across both AES key sizes, and every
// packet still comes out exactly as with a context per SA.
TEST(PspContextCache, EvictionKeepsEverySaCorrect) {
  constexpr std::size_t kSas = 8;
  std::vector<Key> keys;
  for (std::size_t i = 0; i < kSas; ++i)
    keys.push_back(derive_key(pattern_key(1), pattern_key(2), 0x100 + static_cast<std::uint32_t>(i),
                              i % 2 == 0 ? Version::aes_gcm_128 : Version::aes_gcm_256));
  const Bytes payload(40, 0x33);
  auto seal_with = [&](Sa& sa, std::size_t i, std::uint64_t iv) {
    wire::PspHeader h;
    h.spi = 0x100 + static_cast<std::uint32_t>(i);
    h.iv = iv;
    Bytes packet(payload.size() + 32);
    EXPECT_EQ(sa.seal(h, payload, packet), packet.size());
    return packet;
  };
  // Reference packets: the default capacity holds every SA.
  std::vector<Bytes> expect;
  for (std::size_t i = 0; i < kSas; ++i) {
    auto sa = Sa::create(keys[i], Sa::Use::seal);
    ASSERT_TRUE(sa.ok());
    expect.push_back(seal_with(*sa, i, 9));
  }
  set_context_cache_capacity(3);
  std::vector<Sa> tx, rx;
  for (std::size_t i = 0; i < kSas; ++i) {
    tx.push_back(Sa::create(keys[i], Sa::Use::seal).value());
    rx.push_back(Sa::create(keys[i], Sa::Use::open).value());
  }
  const auto before = context_cache_stats();
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < kSas; ++i) {
      const Bytes packet = seal_with(tx[i], i, 9);
      EXPECT_EQ(packet, expect[i]) << "sa " << i;
      Opened o;
      Bytes out(packet.size());
      ASSERT_EQ(rx[i].open(packet, out, &o), wire::DropReason::none) << "sa " << i;
      EXPECT_EQ(Bytes(out.begin(), out.begin() + static_cast<long>(o.payload_len)), payload);
      // Another SA's key (possibly the same AES size, just re-keyed into a slot) must fail.
      EXPECT_EQ(rx[(i + 2) % kSas].open(packet, out, &o), wire::DropReason::auth_failed);
    }
  }
  const auto after = context_cache_stats();
  EXPECT_EQ(after.capacity, 3u);
  EXPECT_LE(after.in_use, 3u);
  EXPECT_GE(after.misses - before.misses, 3u * kSas * 2);  // nothing stayed cached
  set_context_cache_capacity(kDefaultContextCacheCapacity);
}

// A hot SA stays cached (hits, no re-keying); destroying an Sa frees its context at once;
// a moved Sa keeps its context and the moved-from one refuses to work.
TEST(PspContextCache, HitsDestroyAndMove) {
  const Key key = derive_key(pattern_key(5), pattern_key(6), 0x77, Version::aes_gcm_256);
  const Bytes payload(16, 1);
  Bytes packet(payload.size() + 32);
  wire::PspHeader h;
  h.spi = 0x77;
  const auto s0 = context_cache_stats();
  {
    auto sa = Sa::create(key, Sa::Use::both);
    ASSERT_TRUE(sa.ok());
    for (h.iv = 1; h.iv <= 10; ++h.iv)
      ASSERT_EQ(sa->seal(h, payload, packet), packet.size());
    Opened o;
    Bytes out(packet.size());
    ASSERT_EQ(sa->open(packet, out, &o), wire::DropReason::none);  // both directions cached
    const auto s1 = context_cache_stats();
    EXPECT_EQ(s1.misses - s0.misses, 2u);
    EXPECT_EQ(s1.hits - s0.hits, 9u);
    EXPECT_EQ(s1.in_use, s0.in_use + 2);

    Sa moved = std::move(*sa);
    ASSERT_EQ(moved.seal(h, payload, packet), packet.size());
    EXPECT_EQ(context_cache_stats().misses, s1.misses);  // same contexts
    EXPECT_EQ(sa->seal(h, payload, packet), 0u);         // moved from: refuses
    EXPECT_EQ(sa->open(packet, out, &o), wire::DropReason::auth_failed);
  }
  EXPECT_EQ(context_cache_stats().in_use, s0.in_use);  // both contexts freed with the Sa
}

// Each thread has its own cache: an Sa made on one thread seals identically on another.
TEST(PspContextCache, OtherThread) {
  const Key key = derive_key(pattern_key(7), pattern_key(8), 0x99, Version::aes_gcm_128);
  auto sa = Sa::create(key, Sa::Use::seal);
  ASSERT_TRUE(sa.ok());
  const Bytes payload(30, 7);
  wire::PspHeader h;
  h.spi = 0x99;
  h.iv = 3;
  Bytes here(payload.size() + 32), there(payload.size() + 32);
  ASSERT_EQ(sa->seal(h, payload, here), here.size());
  std::size_t n = 0;
  std::uint64_t their_misses = 0;
  std::thread t([&] {
    n = sa->seal(h, payload, there);
    their_misses = context_cache_stats().misses;
  });
  t.join();
  EXPECT_EQ(n, there.size());
  EXPECT_EQ(their_misses, 1u);
  EXPECT_EQ(here, there);
}

INSTANTIATE_TEST_SUITE_P(Versions, PspSa,
                         ::testing::Values(Version::aes_gcm_128, Version::aes_gcm_256));

TEST(PspKdf, TopBitSelectsMaster) {
  const Key32 m0 = pattern_key(0), m1 = pattern_key(0x20);
  const Key32 m0b = pattern_key(0x40);
  // Changing master1 changes only keys of SPIs with the top bit set.
  EXPECT_EQ(to_hex(derive_key(m0, m1, 7, Version::aes_gcm_256).span()),
            to_hex(derive_key(m0, m0b, 7, Version::aes_gcm_256).span()));
  EXPECT_NE(to_hex(derive_key(m0, m1, 0x80000007, Version::aes_gcm_256).span()),
            to_hex(derive_key(m0, m0b, 0x80000007, Version::aes_gcm_256).span()));
  EXPECT_NE(to_hex(derive_key(m0, m1, 7, Version::aes_gcm_256).span()),
            to_hex(derive_key(m0, m1, 8, Version::aes_gcm_256).span()));
}

// A MasterKey keys its CMAC context once and restarts it per block: hundreds of interleaved
// derivations (both versions, one and two CMAC blocks) from one object equal fresh ones
// (derive_key keys a new context each time; the known-answer vectors check that one), and a
// moved-to MasterKey derives the same keys.
TEST(PspKdf, MasterKeyReusedEqualsFresh) {
  MasterKey kept(pattern_key(0x11));
  std::uint32_t spi = 1;
  for (int i = 0; i < 300; ++i) {
    spi = spi * 2654435761u + 12345u;
    const Version v = (i % 3) == 0 ? Version::aes_gcm_128 : Version::aes_gcm_256;
    ASSERT_EQ(to_hex(kept.derive(spi, v).span()),
              to_hex(derive_key(pattern_key(0x11), pattern_key(0x11), spi, v).span()))
        << "derivation " << i;
  }
  MasterKey moved(std::move(kept));
  EXPECT_EQ(
      to_hex(moved.derive(5, Version::aes_gcm_256).span()),
      to_hex(derive_key(pattern_key(0x11), pattern_key(0x11), 5, Version::aes_gcm_256).span()));
  MasterKey other(pattern_key(0x12));
  other = std::move(moved);
  EXPECT_EQ(
      to_hex(other.derive(5, Version::aes_gcm_128).span()),
      to_hex(derive_key(pattern_key(0x11), pattern_key(0x11), 5, Version::aes_gcm_128).span()));
}

}  // namespace
}  // namespace ie::crypto::psp

#include "ie/crypto/psp_keyring.hpp"

namespace ie::crypto::psp {
namespace {

TEST(RxKeyring, AllocatesUniqueSpisInTheActiveEpochAndRotates) {
  RxKeyring ring(pattern_key(0), pattern_key(0x20));
  const std::uint32_t a = ring.allocate_spi(), b = ring.allocate_spi();
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  EXPECT_EQ(RxKeyring::epoch_of(a), 0);
  // Keys are the PSP derivation from the ring's masters.
  EXPECT_EQ(to_hex(ring.key_for(a, Version::aes_gcm_256).span()),
            to_hex(derive_key(pattern_key(0), pattern_key(0x20), a, Version::aes_gcm_256).span()));
  const std::string old_key = to_hex(ring.key_for(a, Version::aes_gcm_256).span());
  ring.rotate();
  const std::uint32_t c = ring.allocate_spi();
  EXPECT_EQ(RxKeyring::epoch_of(c), 1);
  // The old epoch's SPIs keep their keys across one rotation (the overlap)...
  EXPECT_EQ(to_hex(ring.key_for(a, Version::aes_gcm_256).span()), old_key);
  ring.rotate();
  // ...and lose them at the next one.
  EXPECT_NE(to_hex(ring.key_for(a, Version::aes_gcm_256).span()), old_key);
  EXPECT_EQ(RxKeyring::epoch_of(ring.allocate_spi()), 0);
}

}  // namespace
}  // namespace ie::crypto::psp
