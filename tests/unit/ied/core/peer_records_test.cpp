// DNS-learned peer records: found until their TTL runs out, then dropped by the daemon's tick
// (expire), bounded in number; a fake clock (time points passed in).
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "ie/ied/peer_records.hpp"

namespace ie::ied {
namespace {

using namespace std::chrono_literals;
using Clock = PeerRecords::Clock;

const Clock::time_point t0{std::chrono::hours(1)};  // fake clock: an arbitrary start

IpAddr addr(const std::string& s) {
  return *IpAddr::parse(s);
}

PeerRoute record(const std::string& sn, Clock::time_point expires) {
  PeerRoute r;
  r.sn = sn;
  r.key = crypto::noise::PublicKey{1};
  r.expires = expires;
  return r;
}

TEST(PeerRecords, LiveUntilTheTtlRunsOut) {
  PeerRecords p;
  p.put(addr("10.2.0.5"), record("dom2.sn1", t0 + 30s), t0);
  const PeerRoute* r = p.find(addr("10.2.0.5"), t0 + 29s);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->sn, "dom2.sn1");
  EXPECT_EQ(p.find(addr("10.2.0.6"), t0), nullptr);
  // At its expiry it is no longer found; the daemon's tick (expire) then drops it for good.
  EXPECT_EQ(p.find(addr("10.2.0.5"), t0 + 30s), nullptr);
  EXPECT_EQ(p.expire(t0 + 30s), 1u);
  EXPECT_EQ(p.size(), 0u);
  EXPECT_EQ(p.find(addr("10.2.0.5"), t0), nullptr);
}

TEST(PeerRecords, TickDropsExpiredRecordsNobodyAsksFor) {
  PeerRecords p;
  p.put(addr("10.2.0.1"), record("dom2.sn1", t0 + 10s), t0);
  p.put(addr("10.2.0.2"), record("dom2.sn1", t0 + 20s), t0);
  p.put(addr("fd02::3"), record("dom2.sn2", t0 + 30s), t0);
  EXPECT_EQ(p.expire(t0 + 5s), 0u);
  EXPECT_EQ(p.expire(t0 + 20s), 2u);
  EXPECT_EQ(p.size(), 1u);
  ASSERT_NE(p.find(addr("fd02::3"), t0 + 20s), nullptr);
  EXPECT_EQ(p.expire(t0 + 1h), 1u);
  EXPECT_EQ(p.size(), 0u);
}

TEST(PeerRecords, AFreshLookupReplacesTheRecordAndItsTtl) {
  PeerRecords p;
  p.put(addr("10.2.0.5"), record("dom2.sn1", t0 + 10s), t0);
  // Re-resolved (after expiry, or earlier): the new answer and its TTL count.
  p.put(addr("10.2.0.5"), record("dom2.sn2", t0 + 70s), t0 + 10s);
  EXPECT_EQ(p.size(), 1u);
  const PeerRoute* r = p.find(addr("10.2.0.5"), t0 + 60s);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->sn, "dom2.sn2");
  EXPECT_EQ(p.find(addr("10.2.0.5"), t0 + 70s), nullptr);
}

TEST(PeerRecords, BoundedInNumber) {
  PeerRecords p;
  // Full of live records, the one expiring soonest makes room for a new one.
  for (std::size_t i = 0; i < PeerRecords::kMaxRecords; ++i) {
    const std::string a = "10.3." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    p.put(addr(a), record("dom2.sn1", t0 + 100s + std::chrono::seconds(i)), t0);
  }
  EXPECT_EQ(p.size(), PeerRecords::kMaxRecords);
  p.put(addr("10.4.0.1"), record("dom2.sn1", t0 + 1h), t0);
  EXPECT_EQ(p.size(), PeerRecords::kMaxRecords);
  EXPECT_EQ(p.find(addr("10.3.0.0"), t0), nullptr);  // the soonest to expire
  EXPECT_NE(p.find(addr("10.3.0.1"), t0), nullptr);
  EXPECT_NE(p.find(addr("10.4.0.1"), t0), nullptr);
  // Expired records make room first (all of them, not just one): at t0 + 2h every record
  // has expired, so only the new one is left.
  p.put(addr("10.4.0.2"), record("dom2.sn1", t0 + 3h), t0 + 2h);
  EXPECT_EQ(p.size(), 1u);
  EXPECT_NE(p.find(addr("10.4.0.2"), t0 + 2h), nullptr);
}

}  // namespace
}  // namespace ie::ied
