// RxSaTable / TxSa: an ILP round trip in place, and every drop reason on the receive path
// (unknown SPI, replay, tampering, retired SAs, wrong framing), counted.
#include "ie/crypto/sa_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

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

// retire_owner goes through an owner -> SPIs index: checked against a plain map on random
// installs (an SPI re-installed for another owner moves to it), retires and owner retires.
TEST(SaTable, RetireOwnerMatchesANaiveModel) {
  psp::RxKeyring ring;
  const psp::Key key = ring.key_for(ring.allocate_spi(), psp::Version::aes_gcm_256);
  RxSaTable rx;
  std::map<std::uint32_t, std::uint64_t> model;  // spi -> owner
  std::mt19937 rng(7);
  for (int step = 0; step < 3000; ++step) {
    const std::uint32_t spi = 1 + rng() % 64;
    const std::uint64_t owner = 1 + rng() % 8;
    switch (rng() % 4) {
      case 0:
      case 1:
        ASSERT_TRUE(rx.install(spi, key, owner).ok());
        model[spi] = owner;
        break;
      case 2:
        rx.retire(spi);
        model.erase(spi);
        break;
      default:
        rx.retire_owner(owner);
        std::erase_if(model, [owner](const auto& kv) { return kv.second == owner; });
        break;
    }
    ASSERT_EQ(rx.size(), model.size()) << "step " << step;
    for (std::uint32_t s = 1; s <= 64; ++s)
      ASSERT_EQ(rx.has(s), model.count(s) == 1) << "step " << step << " spi " << s;
  }
}

TEST(SaTable, SealRefusesSmallBuffers) {
  Pair p;
  Bytes small(16 + 12 + 16 - 1);
  EXPECT_EQ(p.tx->seal_ilp({}, {}, {}, small), 0u);
  Bytes exact(16 + 12 + 16);
  EXPECT_EQ(p.tx->seal_ilp({}, {}, {}, exact), exact.size());
}

// Two senders (an SN's workers) seal for one send SA with their own TxSa and one shared IV
// counter: every IV is distinct, and the receiver accepts every packet, interleaved in any
// order, exactly once.
TEST(SaTable, SharedIvCounterNeverRepeatsAnIv) {
  psp::RxKeyring ring;
  const std::uint32_t spi = ring.allocate_spi();
  const psp::Key key = ring.key_for(spi, psp::Version::aes_gcm_256);
  RxSaTable rx;
  ASSERT_TRUE(rx.install(spi, key, 3).ok());
  EXPECT_FALSE(TxSa::create(spi, key, nullptr).ok());
  const SharedIvCounter iv = make_shared_iv_counter();
  auto a = TxSa::create(spi, key, iv);
  auto b = TxSa::create(spi, key, iv);
  ASSERT_TRUE(a.ok() && b.ok());

  std::vector<Bytes> packets;
  std::set<std::uint64_t> ivs;
  for (int i = 0; i < 100; ++i) {
    TxSa& tx = (i % 3 == 0) ? *b : *a;
    Bytes buf(128);
    const std::string inner = "packet " + std::to_string(i);
    const std::size_t n = tx.seal_ilp(
        {static_cast<std::uint16_t>(wire::ServiceId::ip), 1, 0}, {},
        ConstByteSpan(reinterpret_cast<const std::uint8_t*>(inner.data()), inner.size()), buf);
    ASSERT_GT(n, 0u);
    buf.resize(n);
    wire::PspHeader h;
    ASSERT_EQ(wire::parse_psp_header(buf, &h), DropReason::none);
    EXPECT_TRUE(ivs.insert(h.iv).second) << "IV " << h.iv << " used twice";
    packets.push_back(std::move(buf));
  }
  EXPECT_EQ(ivs.size(), 100u);
  EXPECT_EQ(a->packets_sealed(), 100u);
  EXPECT_EQ(b->packets_sealed(), 100u);
  // Delivered out of order (b's packets last): all inside the window, all accepted once.
  std::stable_partition(packets.begin(), packets.end(), [](const Bytes& p) {
    wire::PspHeader h;
    (void)wire::parse_psp_header(p, &h);
    return h.iv % 3 != 1;  // packet i has IV i + 1; b sealed i % 3 == 0
  });
  for (Bytes& p : packets) {
    Bytes copy = p;
    OpenedIlp o;
    EXPECT_EQ(rx.open_ilp(copy, &o), DropReason::none);
  }
  for (Bytes& p : packets) {
    OpenedIlp o;
    EXPECT_EQ(rx.open_ilp(p, &o), DropReason::replayed);
  }
  EXPECT_EQ(rx.drops().get(DropReason::replayed), 100u);
  EXPECT_EQ(rx.drops().get(DropReason::auth_failed), 0u);

  // Threads: two TxSas sealing concurrently still never share an IV.
  const SharedIvCounter iv2 = make_shared_iv_counter();
  std::vector<std::uint64_t> seen[2];
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      auto tx = TxSa::create(spi, key, iv2);
      if (!tx) return;
      Bytes buf(64);
      for (int i = 0; i < 2000; ++i) {
        if (tx->seal_ilp({}, {}, {}, buf) == 0) return;
        wire::PspHeader h;
        (void)wire::parse_psp_header(buf, &h);
        seen[t].push_back(h.iv);
      }
    });
  }
  for (auto& th : threads)
    th.join();
  std::set<std::uint64_t> all(seen[0].begin(), seen[0].end());
  all.insert(seen[1].begin(), seen[1].end());
  EXPECT_EQ(seen[0].size() + seen[1].size(), 4000u);
  EXPECT_EQ(all.size(), 4000u);
}

}  // namespace
}  // namespace ie::crypto
