// RxSaTable / TxSa: an ILP round trip in place, and every drop reason on the receive path
// (unknown SPI, replay, tampering, retired SAs, wrong framing), counted.
#include "ie/crypto/sa_table.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ie/crypto/psp_keyring.hpp"
#include "ie/wire/service_id.hpp"

namespace ie::crypto {
namespace {

using wire::DropReason;

struct Pair {
  psp::RxKeyring ring;
  std::uint32_t spi = ring.allocate_spi();
  RxSaTable rx;
  std::optional<TxSa> tx;
  Pair() {
    const psp::Key key = ring.key_for(spi, psp::Version::aes_gcm_256);
    EXPECT_TRUE(rx.install(spi, key, /*owner=*/7).ok());
    tx.emplace(std::move(TxSa::create(spi, key).value()));
  }
};

Bytes seal(Pair& p, const std::string& inner, std::uint64_t conn = 42) {
  Bytes buf(256);
  const std::size_t n = p.tx->seal_ilp(
      {static_cast<std::uint16_t>(wire::ServiceId::ip), conn, wire::kIlpFlagE2e}, {},
      ConstByteSpan(reinterpret_cast<const std::uint8_t*>(inner.data()), inner.size()), buf);
  EXPECT_GT(n, 0u);
  buf.resize(n);
  return buf;
}

TEST(SaTable, IlpRoundTripInPlace) {
  Pair p;
  Bytes d = seal(p, "hello");
  EXPECT_EQ(d.size(), 16u + 12u + 5u + 16u);
  OpenedIlp o;
  ASSERT_EQ(p.rx.open_ilp(d, &o), DropReason::none);
  EXPECT_EQ(o.spi, p.spi);
  EXPECT_EQ(o.owner, 7u);
  EXPECT_EQ(o.ilp.header.connection_id, 42u);
  EXPECT_EQ(std::string(o.ilp.inner.begin(), o.ilp.inner.end()), "hello");
  EXPECT_EQ(p.tx->packets_sealed(), 1u);
  EXPECT_EQ(p.rx.drops().total(), 0u);
}

TEST(SaTable, EveryDropIsNamedAndCounted) {
  Pair p;
  Bytes first = seal(p, "one");
  Bytes copy = first;
  OpenedIlp o;
  ASSERT_EQ(p.rx.open_ilp(first, &o), DropReason::none);
  EXPECT_EQ(p.rx.open_ilp(copy, &o), DropReason::replayed);

  Bytes genuine = seal(p, "two");
  Bytes forged = genuine;  // (opening works in place, so keep the genuine bytes apart)
  forged[20] ^= 1;
  EXPECT_EQ(p.rx.open_ilp(forged, &o), DropReason::auth_failed);
  // The forged packet did not move the window: the genuine one with that IV still opens.
  EXPECT_EQ(p.rx.open_ilp(genuine, &o), DropReason::none);

  Bytes unknown = seal(p, "three");
  store_be32(unknown.data() + 4, p.spi + 100);
  EXPECT_EQ(p.rx.open_ilp(unknown, &o), DropReason::unknown_spi);

  Bytes wrong_nh = seal(p, "four");
  wrong_nh[0] = 4;  // IPv4 in PSP, not ILP
  EXPECT_EQ(p.rx.open_ilp(wrong_nh, &o), DropReason::bad_psp_header);

  Bytes shortd(10);
  EXPECT_EQ(p.rx.open_ilp(shortd, &o), DropReason::truncated);

  p.rx.retire(p.spi);
  Bytes late = seal(p, "five");
  EXPECT_EQ(p.rx.open_ilp(late, &o), DropReason::unknown_spi);

  EXPECT_EQ(p.rx.drops().get(DropReason::replayed), 1u);
  EXPECT_EQ(p.rx.drops().get(DropReason::auth_failed), 1u);
  EXPECT_EQ(p.rx.drops().get(DropReason::unknown_spi), 2u);
  EXPECT_EQ(p.rx.drops().get(DropReason::bad_psp_header), 1u);
  EXPECT_EQ(p.rx.drops().get(DropReason::truncated), 1u);
}

TEST(SaTable, RetireOwnerForgetsOnlyThatOwner) {
  psp::RxKeyring ring;
  RxSaTable rx;
  const auto a = ring.allocate_spi(), b = ring.allocate_spi(), c = ring.allocate_spi();
  ASSERT_TRUE(rx.install(a, ring.key_for(a, psp::Version::aes_gcm_256), 1).ok());
  ASSERT_TRUE(rx.install(b, ring.key_for(b, psp::Version::aes_gcm_256), 2).ok());
  ASSERT_TRUE(rx.install(c, ring.key_for(c, psp::Version::aes_gcm_128), 1).ok());
  rx.retire_owner(1);
  EXPECT_FALSE(rx.has(a));
  EXPECT_TRUE(rx.has(b));
  EXPECT_FALSE(rx.has(c));
}

TEST(SaTable, SealRefusesSmallBuffers) {
  Pair p;
  Bytes small(16 + 12 + 16 - 1);
  EXPECT_EQ(p.tx->seal_ilp({}, {}, {}, small), 0u);
  Bytes exact(16 + 12 + 16);
  EXPECT_EQ(p.tx->seal_ilp({}, {}, {}, exact), exact.size());
}

}  // namespace
}  // namespace ie::crypto
