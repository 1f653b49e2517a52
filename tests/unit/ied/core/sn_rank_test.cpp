// sn_rank.hpp: tiers (source, priority) first, RTT within a tier beyond the margin, order
// otherwise; which candidates are worth an RTT survey.
#include "ie/ied/sn_rank.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace ie::ied {
namespace {

using Idx = std::vector<std::size_t>;

RankInput cand(std::size_t order, std::optional<double> rtt = std::nullopt,
               std::uint16_t priority = 10, std::size_t source = 0) {
  RankInput r;
  r.source_rank = source;
  r.priority = priority;
  r.order = order;
  r.rtt_ms = rtt;
  return r;
}

RankInput unreachable(std::size_t order, std::uint16_t priority = 10) {
  RankInput r = cand(order, std::nullopt, priority);
  r.unreachable = true;
  return r;
}

TEST(SnRank, WithoutRttTiersThenOrder) {
  const std::vector<RankInput> c = {cand(2, 1.0), cand(0, 50.0, 20), cand(1, 40.0),
                                    cand(0, 0.1, 10, 1)};
  EXPECT_EQ(rank_candidates(c, false), (Idx{2, 0, 1, 3}));
}

TEST(SnRank, FarCandidatesGoAfterTheCloseOnesOfTheirTier) {
  // Listed first but 30 ms away; the third is 0.4 ms away.
  const std::vector<RankInput> c = {cand(0, 30.0), cand(1, 31.0), cand(2, 0.4)};
  EXPECT_EQ(rank_candidates(c, true), (Idx{2, 0, 1}));
}

TEST(SnRank, FarOnesAreInRttOrderAndUnreachableLast) {
  const std::vector<RankInput> c = {unreachable(0), cand(1, 80.0), cand(2, 20.0), cand(3, 1.0)};
  EXPECT_EQ(rank_candidates(c, true), (Idx{3, 2, 1, 0}));
}

TEST(SnRank, FarOnesOfSimilarRttKeepTheirOrder) {
  // Two far SNs at 31 and 30 ms (within 25% of each other) stay in the listed order behind
  // the near one, whichever wobbles lower; a third at 60 ms is a group of its own.
  const std::vector<RankInput> c = {cand(0, 31.0), cand(1, 60.0), cand(2, 30.0), cand(3, 0.3)};
  EXPECT_EQ(rank_candidates(c, true), (Idx{3, 0, 2, 1}));
  const std::vector<RankInput> d = {cand(0, 30.0), cand(1, 60.0), cand(2, 31.0), cand(3, 0.3)};
  EXPECT_EQ(rank_candidates(d, true), (Idx{3, 0, 2, 1}));
}

TEST(SnRank, WithinTheMarginTheOrderStands) {
  // 2 ms absolute: 0.2 vs 2.1 ms keeps the listed order (SRV weights still spread hosts).
  EXPECT_EQ(rank_candidates(std::vector<RankInput>{cand(0, 2.1), cand(1, 0.2)}, true), (Idx{0, 1}));
  EXPECT_EQ(rank_candidates(std::vector<RankInput>{cand(0, 2.3), cand(1, 0.2)}, true), (Idx{1, 0}));
  // 25% of the best when that is more: 40 vs 49 ms stays, 40 vs 51 ms moves.
  EXPECT_EQ(rank_candidates(std::vector<RankInput>{cand(0, 49.0), cand(1, 40.0)}, true),
            (Idx{0, 1}));
  EXPECT_EQ(rank_candidates(std::vector<RankInput>{cand(0, 51.0), cand(1, 40.0)}, true),
            (Idx{1, 0}));
}

TEST(SnRank, UnmeasuredKeepTheirPlace) {
  // Not measured yet (a survey pending): no reason to move it.
  const std::vector<RankInput> c = {cand(0), cand(1, 30.0), cand(2, 0.5)};
  EXPECT_EQ(rank_candidates(c, true), (Idx{0, 2, 1}));
}

TEST(SnRank, RttNeverCrossesTiers) {
  // A priority-20 SN at 0.1 ms stays behind priority-10 SNs at 90 ms, and a DNS candidate
  // (source 1) behind static ones whatever their RTT.
  const std::vector<RankInput> c = {cand(0, 0.1, 20), cand(1, 90.0), cand(2, 95.0),
                                    cand(0, 0.1, 10, 1)};
  EXPECT_EQ(rank_candidates(c, true), (Idx{1, 2, 0, 3}));
}

TEST(SnRank, AllUnreachableOrNoneMeasured) {
  EXPECT_EQ(rank_candidates(std::vector<RankInput>{unreachable(0), unreachable(1)}, true),
            (Idx{0, 1}));
  EXPECT_EQ(rank_candidates(std::vector<RankInput>{cand(1), cand(0)}, true), (Idx{1, 0}));
  EXPECT_TRUE(rank_candidates(std::vector<RankInput>{}, true).empty());
}

TEST(SnRank, ContendersAreTheTiersThatFillTheFirstPlaces) {
  // Tier p10 has one member (first place whatever its RTT), tier p20 three (the second place
  // goes to one of them), tier p30 can never reach the first two places.
  const std::vector<RankInput> c = {cand(0, std::nullopt, 20), cand(1, std::nullopt, 10),
                                    cand(2, std::nullopt, 20), cand(3, std::nullopt, 30),
                                    cand(4, std::nullopt, 20)};
  EXPECT_EQ(rtt_contenders(c, 2), (Idx{0, 2, 4}));
  // One tier of three: all of them.
  EXPECT_EQ(rtt_contenders(std::vector<RankInput>{cand(0), cand(1), cand(2)}, 2), (Idx{0, 1, 2}));
  // Two tiers of one each: nothing to measure.
  EXPECT_TRUE(rtt_contenders(std::vector<RankInput>{cand(0, {}, 10), cand(1, {}, 20)}, 2).empty());
  EXPECT_TRUE(rtt_contenders(std::vector<RankInput>{}, 2).empty());
}

// A direct path that is not on-link: closer than the first-hop SN by max(1 ms, 25 %) to start
// using it, by half that to keep using it; nothing unmeasured is closer.
TEST(SnRank, DirectIsCloserByAMarginWithHysteresis) {
  // Near SN (2 ms): the margin is 1 ms.
  EXPECT_TRUE(direct_is_closer(0.9, 2.0, false));
  EXPECT_FALSE(direct_is_closer(1.0, 2.0, false));  // exactly the margin: not below it
  EXPECT_TRUE(direct_is_closer(1.4, 2.0, true));    // in use: half the margin keeps it
  EXPECT_FALSE(direct_is_closer(1.5, 2.0, true));
  EXPECT_FALSE(direct_is_closer(1.4, 2.0, false));  // but does not start it
  // Far SN (40 ms): the margin is 25 %, 10 ms.
  EXPECT_TRUE(direct_is_closer(29.9, 40.0, false));
  EXPECT_FALSE(direct_is_closer(30.0, 40.0, false));
  EXPECT_TRUE(direct_is_closer(34.9, 40.0, true));
  EXPECT_FALSE(direct_is_closer(35.0, 40.0, true));
  // Farther than the SN, or unmeasured on either side.
  EXPECT_FALSE(direct_is_closer(50.0, 40.0, true));
  EXPECT_FALSE(direct_is_closer(std::nullopt, 40.0, true));
  EXPECT_FALSE(direct_is_closer(0.1, std::nullopt, true));
}

}  // namespace
}  // namespace ie::ied
