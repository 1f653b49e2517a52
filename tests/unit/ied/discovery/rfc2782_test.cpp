// RFC 2782 SRV ordering: priorities, weighted first picks (statistically, with a seeded
// source and with the system one), weight 0, and that the result is always a permutation.
#include "ie/ied/rfc2782.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace ie::ied {
namespace {

RandBelow seeded(std::uint32_t seed) {
  auto gen = std::make_shared<std::mt19937>(seed);
  return [gen](std::uint32_t bound) {
    return std::uniform_int_distribution<std::uint32_t>(0, bound - 1)(*gen);
  };
}

bool is_permutation_of_n(const std::vector<std::size_t>& v, std::size_t n) {
  std::vector<std::size_t> s = v;
  std::sort(s.begin(), s.end());
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] != i) return false;
  return s.size() == n;
}

TEST(Rfc2782, PriorityAscendingRegardlessOfWeight) {
  const std::vector<SrvRank> r = {{30, 100}, {10, 1}, {20, 65535}, {10, 0}, {5, 0}};
  auto rnd = seeded(1);
  for (int i = 0; i < 200; ++i) {
    const auto o = rfc2782_order(r, rnd);
    ASSERT_TRUE(is_permutation_of_n(o, r.size()));
    EXPECT_EQ(o[0], 4u);
    EXPECT_TRUE((o[1] == 1 && o[2] == 3) || (o[1] == 3 && o[2] == 1));
    EXPECT_EQ(o[3], 2u);
    EXPECT_EQ(o[4], 0u);
  }
}

// Weights 10/90: the first pick is the heavy one with probability 91/101 (the draw is in
// [0, total], and the light one wins for 0..10). Over 2000 runs: mean 1802, sd 13.4.
void check_10_90(const RandBelow& rnd) {
  const std::vector<SrvRank> r = {{1, 10}, {1, 90}};
  int heavy_first = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto o = rfc2782_order(r, rnd);
    ASSERT_TRUE(is_permutation_of_n(o, 2));
    if (o[0] == 1) ++heavy_first;
  }
  EXPECT_GT(heavy_first, 1740);
  EXPECT_LT(heavy_first, 1860);
}

TEST(Rfc2782, WeightedFirstPickSeeded) {
  check_10_90(seeded(42));
}
TEST(Rfc2782, WeightedFirstPickSystemRandom) {
  check_10_90(system_rand_below);
}
TEST(Rfc2782, DefaultSourceWhenNoneGiven) {
  check_10_90(RandBelow{});
}

TEST(Rfc2782, ThreeWeightsSpreadProportionally) {
  const std::vector<SrvRank> r = {{0, 20}, {0, 30}, {0, 50}};
  auto rnd = seeded(7);
  int first[3] = {0, 0, 0};
  for (int i = 0; i < 3000; ++i)
    ++first[rfc2782_order(r, rnd)[0]];
  // Expected 21/101, 30/101, 50/101 of 3000: 624, 891, 1485 (sd < 28).
  EXPECT_NEAR(first[0], 624, 120);
  EXPECT_NEAR(first[1], 891, 120);
  EXPECT_NEAR(first[2], 1485, 120);
}

TEST(Rfc2782, ZeroWeightRarelyFirstButNeverLost) {
  const std::vector<SrvRank> r = {{1, 0}, {1, 100}};
  auto rnd = seeded(3);
  int zero_first = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto o = rfc2782_order(r, rnd);
    ASSERT_TRUE(is_permutation_of_n(o, 2));
    if (o[0] == 0) ++zero_first;
  }
  // Probability 1/101: about 20 of 2000.
  EXPECT_GT(zero_first, 3);
  EXPECT_LT(zero_first, 50);
}

TEST(Rfc2782, AllZeroWeightsAreUniform) {
  const std::vector<SrvRank> r = {{1, 0}, {1, 0}, {1, 0}, {1, 0}};
  auto rnd = seeded(9);
  int first[4] = {0, 0, 0, 0};
  for (int i = 0; i < 4000; ++i) {
    const auto o = rfc2782_order(r, rnd);
    ASSERT_TRUE(is_permutation_of_n(o, 4));
    ++first[o[0]];
  }
  for (int n : first)
    EXPECT_NEAR(n, 1000, 150);
}

TEST(Rfc2782, BrokenRandomSourceStaysInRange) {
  const std::vector<SrvRank> r = {{1, 0}, {1, 5}, {1, 7}, {2, 0}};
  const auto o = rfc2782_order(r, [](std::uint32_t) { return UINT32_MAX; });
  EXPECT_TRUE(is_permutation_of_n(o, r.size()));
  EXPECT_EQ(o.back(), 3u);
}

TEST(Rfc2782, CandidatesOverloadAndEmpty) {
  EXPECT_TRUE(rfc2782_order(std::span<const SrvRank>{}, seeded(1)).empty());
  std::vector<SnCandidate> c(3);
  c[0].priority = 9;
  c[1].priority = 1;
  c[2].priority = 5;
  EXPECT_EQ(rfc2782_order(c, seeded(1)), (std::vector<std::size_t>{1, 2, 0}));
}

// Differential check against a naive reading of the RFC on random inputs: same priority
// sequence, and a permutation.
TEST(Rfc2782, RandomInputsArePriorityOrderedPermutations) {
  std::mt19937 gen(11);
  auto rnd = seeded(12);
  for (int round = 0; round < 500; ++round) {
    std::vector<SrvRank> r(gen() % 12);
    for (auto& x : r)
      x = SrvRank{static_cast<std::uint16_t>(gen() % 4),
                  static_cast<std::uint16_t>(gen() % 3 == 0 ? 0 : gen() % 65536)};
    const auto o = rfc2782_order(r, rnd);
    ASSERT_TRUE(is_permutation_of_n(o, r.size()));
    for (std::size_t i = 1; i < o.size(); ++i)
      ASSERT_LE(r[o[i - 1]].priority, r[o[i]].priority);
  }
}

}  // namespace
}  // namespace ie::ied
