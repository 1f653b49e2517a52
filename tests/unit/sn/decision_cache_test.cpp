// The decision cache: semantics, deletion correctness against a reference map, and the
// issue's pressure test (capacity 1,000, 100,000 concurrent flows, every packet decided
// correctly because a miss makes the "module" decide again).
#include "ie/sn/decision_cache.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <tuple>
#include <vector>

namespace ie::sn {
namespace {

FlowKey key(std::uint32_t src, std::uint64_t conn, std::uint16_t svc = 1) {
  return FlowKey::ipv4(src, svc, conn);
}

Decision fwd(std::initializer_list<NextHop> hops) {
  std::vector<NextHop> v(hops);
  return Decision::forward_to(v);
}

TEST(DecisionCache, MissThenHitCountsAndLastUse) {
  DecisionCache c(4);
  const FlowKey k = key(0x0a000001, 7);
  EXPECT_EQ(c.lookup(k, 1), nullptr);
  ASSERT_TRUE(c.insert(k, fwd({3}), 2));
  EXPECT_EQ(c.hit_count(k), 0u);
  EXPECT_FALSE(c.recently_used(k, 3));  // inserted at 2, not used since
  const Decision* d = c.lookup(k, 10);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->action, Action::forward);
  ASSERT_EQ(d->next_hops().size(), 1u);
  EXPECT_EQ(d->next_hops()[0], 3u);
  c.lookup(k, 11);
  EXPECT_EQ(c.hit_count(k), 2u);
  EXPECT_TRUE(c.recently_used(k, 11));
  EXPECT_FALSE(c.recently_used(k, 12));
  EXPECT_EQ(c.stats().hits, 2u);
  EXPECT_EQ(c.stats().misses, 1u);
  EXPECT_EQ(c.size(), 1u);
}

TEST(DecisionCache, KeyFieldsAllMatter) {
  DecisionCache c(16);
  ASSERT_TRUE(c.insert(key(1, 1, 1), fwd({1}), 0));
  EXPECT_EQ(c.lookup(key(2, 1, 1), 0), nullptr);  // other source
  EXPECT_EQ(c.lookup(key(1, 2, 1), 0), nullptr);  // other connection
  EXPECT_EQ(c.lookup(key(1, 1, 2), 0), nullptr);  // other service
  FlowKey v6 = key(1, 1, 1);
  v6.src[10] = 0;  // not IPv4-mapped any more
  EXPECT_EQ(c.lookup(v6, 0), nullptr);
  EXPECT_NE(c.lookup(key(1, 1, 1), 0), nullptr);
}

TEST(DecisionCache, ReplaceKeepsOneEntryAndNewDecision) {
  DecisionCache c(4);
  const FlowKey k = key(9, 9);
  ASSERT_TRUE(c.insert(k, fwd({1}), 0));
  Decision drop;
  drop.action = Action::drop;
  ASSERT_TRUE(c.insert(k, drop, 1));
  EXPECT_EQ(c.size(), 1u);
  ASSERT_NE(c.lookup(k, 2), nullptr);
  EXPECT_EQ(c.lookup(k, 2)->action, Action::drop);
}

TEST(DecisionCache, MulticastUpToEightHopsAndInvalidDecisionsRefused) {
  DecisionCache c(4);
  const FlowKey k = key(5, 5);
  ASSERT_TRUE(c.insert(k, fwd({1, 2, 3, 4, 5, 6, 7, 8}), 0));
  ASSERT_EQ(c.lookup(k, 0)->next_hops().size(), kMaxNextHops);
  EXPECT_EQ(c.lookup(k, 0)->next_hops()[7], 8u);
  Decision none;
  none.action = Action::forward;  // forward to nobody
  EXPECT_FALSE(c.insert(key(6, 6), none, 0));
  Decision too_many = fwd({1});
  too_many.hop_count = kMaxNextHops + 1;
  EXPECT_FALSE(c.insert(key(6, 6), too_many, 0));
  EXPECT_EQ(c.lookup(key(6, 6), 0), nullptr);
}

TEST(DecisionCache, RemoveAndCapacityOne) {
  DecisionCache c(1);
  EXPECT_FALSE(c.remove(key(1, 1)));
  ASSERT_TRUE(c.insert(key(1, 1), fwd({1}), 0));
  ASSERT_TRUE(c.insert(key(2, 2), fwd({2}), 0));  // evicts the only entry
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.stats().evictions, 1u);
  EXPECT_EQ(c.lookup(key(1, 1), 0), nullptr);
  ASSERT_NE(c.lookup(key(2, 2), 0), nullptr);
  EXPECT_TRUE(c.remove(key(2, 2)));
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.lookup(key(2, 2), 0), nullptr);
}

// The stamp is the worker's (hop role epochs, Decision::stamp): the cache keeps it as given
// and a replace brings the new one.
TEST(DecisionCache, KeepsTheStampAsInsertedAndAReplaceUpdatesIt) {
  DecisionCache c(8);
  Decision d = fwd({7, 9});
  d.stamp = 0xfffffff0u;
  ASSERT_TRUE(c.insert(key(1, 1), d, 0));
  const Decision* got = c.lookup(key(1, 1), 1);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->stamp, 0xfffffff0u);
  d.stamp = 3;
  ASSERT_TRUE(c.insert(key(1, 1), d, 2));
  got = c.lookup(key(1, 1), 3);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->stamp, 3u);
  EXPECT_EQ(c.size(), 1u);
}

// remove_stale: the entry the last lookup found goes, and that lookup was a miss after all.
TEST(DecisionCache, RemoveStaleTurnsTheLookupIntoAMiss) {
  DecisionCache c(8);
  ASSERT_TRUE(c.insert(key(1, 1), fwd({7}), 0));
  ASSERT_TRUE(c.insert(key(2, 2), fwd({8}), 0));
  ASSERT_NE(c.lookup(key(1, 1), 1), nullptr);
  ASSERT_NE(c.lookup(key(2, 2), 1), nullptr);
  c.remove_stale(key(1, 1));
  EXPECT_EQ(c.stats().hits, 1u);
  EXPECT_EQ(c.stats().misses, 1u);
  EXPECT_EQ(c.stats().removes, 1u);
  EXPECT_EQ(c.lookup(key(1, 1), 2), nullptr);
  EXPECT_NE(c.lookup(key(2, 2), 2), nullptr);
  EXPECT_EQ(c.size(), 1u);
}

// CLOCK: an entry referenced since the last sweep survives it; an unreferenced one goes.
TEST(DecisionCache, ClockPrefersUnreferencedVictims) {
  DecisionCache c(4);
  for (std::uint32_t i = 0; i < 4; ++i)
    ASSERT_TRUE(c.insert(key(i, i), fwd({i + 1}), 0));
  // First eviction sweeps all (new entries start referenced) and evicts entry 0.
  ASSERT_TRUE(c.insert(key(10, 10), fwd({1}), 1));
  EXPECT_EQ(c.lookup(key(0, 0), 1), nullptr);
  // Now 1, 2, 3 are unreferenced; touch 1 and 2, so the next victim is 3.
  ASSERT_NE(c.lookup(key(1, 1), 2), nullptr);
  ASSERT_NE(c.lookup(key(2, 2), 2), nullptr);
  ASSERT_TRUE(c.insert(key(11, 11), fwd({1}), 3));
  EXPECT_EQ(c.hit_count(key(3, 3)), std::nullopt);
  EXPECT_TRUE(c.hit_count(key(1, 1)).has_value());
  EXPECT_TRUE(c.hit_count(key(2, 2)).has_value());
  EXPECT_EQ(c.size(), 4u);
}

// Differential test: random inserts/removes/lookups against a std::map while the table never
// fills (no eviction), so every answer must match exactly; exercises backward-shift deletion
// in long probe runs (few distinct sources and connections => many collisions in the index).
TEST(DecisionCache, MatchesReferenceMapUnderRandomOps) {
  DecisionCache c(512);
  std::map<std::tuple<std::uint32_t, std::uint64_t>, NextHop> ref;
  std::mt19937_64 rng(42);
  for (int op = 0; op < 200000; ++op) {
    const std::uint32_t src = static_cast<std::uint32_t>(rng() % 40);
    const std::uint64_t conn = rng() % 20;  // 800 possible keys, table of 512: keep below
    const auto k = std::make_tuple(src, conn);
    switch (rng() % 3) {
      case 0:
        if (ref.size() < 500 || ref.count(k)) {
          const NextHop hop = static_cast<NextHop>(1 + rng() % 1000);
          ASSERT_TRUE(c.insert(key(src, conn), fwd({hop}), 0));
          ref[k] = hop;
        }
        break;
      case 1:
        ASSERT_EQ(c.remove(key(src, conn)), ref.erase(k) == 1) << "op " << op;
        break;
      default: {
        const Decision* d = c.lookup(key(src, conn), 0);
        const auto it = ref.find(k);
        ASSERT_EQ(d != nullptr, it != ref.end()) << "op " << op;
        if (d) {
          ASSERT_EQ(d->next_hops()[0], it->second);
        }
      }
    }
    ASSERT_EQ(c.size(), ref.size());
  }
  EXPECT_EQ(c.stats().evictions, 0u);
  for (const auto& [k, hop] : ref) {
    const Decision* d = c.lookup(key(std::get<0>(k), std::get<1>(k)), 0);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->next_hops()[0], hop);
  }
}

// The test: capacity 1,000 and 100,000 concurrent flows. A "module" computes every
// flow's decision from its key; the pipe-terminus delivers by the cached decision on a hit
// and asks the module (and caches the answer) on a miss. Every packet must end up at its
// flow's correct destination, and the cache must really have been under pressure.
TEST(DecisionCache, ThousandEntriesHundredThousandFlowsAllDecidedCorrectly) {
  DecisionCache c(1000);
  auto module_decides = [](const FlowKey& k) {
    // Deterministic per flow: 1..997 from the connection id and the source.
    return static_cast<NextHop>(1 + (k.connection_id * 31 + k.src[15]) % 997);
  };
  constexpr std::uint64_t kFlows = 100000;
  std::mt19937_64 rng(7);
  std::uint64_t wrong = 0, module_calls = 0, packets = 0;
  // Skewed traffic: half the packets from 500 hot flows, half from all 100,000.
  for (std::uint64_t t = 0; t < 400000; ++t) {
    const std::uint64_t flow = (t % 2 == 0) ? rng() % 500 : rng() % kFlows;
    const FlowKey k = key(0x0a000000u + static_cast<std::uint32_t>(flow % 250), flow);
    NextHop delivered;
    if (const Decision* d = c.lookup(k, t)) {
      delivered = d->next_hops()[0];
    } else {
      ++module_calls;
      delivered = module_decides(k);
      ASSERT_TRUE(c.insert(k, fwd({delivered}), t));
    }
    ++packets;
    if (delivered != module_decides(k)) ++wrong;
  }
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(packets, 400000u);
  EXPECT_EQ(c.size(), 1000u);
  EXPECT_GT(c.stats().evictions, 100000u);  // real pressure
  EXPECT_EQ(c.stats().misses, module_calls);
  // CLOCK keeps the hot flows: well over the ~1% hit rate random replacement would give for
  // the cold half, most hot packets hit.
  EXPECT_GT(c.stats().hits, 100000u);
}

}  // namespace
}  // namespace ie::sn
