// The Internet checksum (checksum.hpp) against a straightforward RFC 1071 sum written here
// (16-bit big-endian words, one at a time): every length 0..2100 at every start alignment
// 0..7, random, all-ones and all-zero bytes, with `initial` values up to 2^32 - 1; pieces
// chained the way ied's callers chain them (pseudo-header sums, then the segment).
#include "ie/ied/checksum.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace ie::ied {
namespace {

// Independent of the code under test.
std::uint64_t ref_sum(const std::uint8_t* p, std::size_t n, std::uint64_t s = 0) {
  for (std::size_t i = 0; i < n; i += 2)
    s += (std::uint64_t{p[i]} << 8) | (i + 1 < n ? p[i + 1] : 0u);
  return s;
}
std::uint16_t ref_fold(std::uint64_t s) {
  while (s >> 16)
    s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint16_t>(s);
}

constexpr std::uint32_t kInitials[] = {0,       1,          0xfffe,     0xffff,    0x10000,
                                       0x2fffd, 0x7fffffff, 0xfffffffe, 0xffffffff};
constexpr std::size_t kMaxLen = 2100;

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v)
    b = static_cast<std::uint8_t>(rng());
  return v;
}

// checksum_add over buf[off, off + len) for every length and alignment, all initials.
void expect_matches_reference(const std::vector<std::uint8_t>& buf) {
  for (std::size_t off = 0; off < 8; ++off) {
    for (std::size_t len = 0; len <= kMaxLen; ++len) {
      const std::uint8_t* p = buf.data() + off;
      const std::uint64_t ref = ref_sum(p, len);
      for (const std::uint32_t init : kInitials) {
        const std::uint32_t got = checksum_add(ConstByteSpan(p, len), init);
        ASSERT_EQ(got, ref_fold(ref + init)) << "len " << len << " off " << off << " init " << init;
      }
      ASSERT_EQ(checksum_finish(checksum_add(ConstByteSpan(p, len))),
                static_cast<std::uint16_t>(~ref_fold(ref)))
          << "len " << len << " off " << off;
    }
  }
}

TEST(Checksum, RandomBytesEveryLengthAndAlignment) {
  expect_matches_reference(random_bytes(kMaxLen + 8, 1));
  expect_matches_reference(random_bytes(kMaxLen + 8, 2));
}

TEST(Checksum, AllOnesAndAllZeroBytes) {
  // All ones: the most carries; a nonzero sum folds to 0xffff, never 0.
  expect_matches_reference(std::vector<std::uint8_t>(kMaxLen + 8, 0xff));
  expect_matches_reference(std::vector<std::uint8_t>(kMaxLen + 8, 0));
  EXPECT_EQ(checksum_add({}), 0u);
  const std::uint8_t ones[4] = {0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(checksum_add(ones), 0xffffu);
  EXPECT_EQ(checksum_finish(checksum_add(ones)), 0);
}

TEST(Checksum, LargestSuperPacket) {
  // 64 KiB and more: the accumulators take many 32-byte steps of all ones.
  for (const std::size_t n : {65535u, 65536u, 262147u}) {
    std::vector<std::uint8_t> ones(n + 3, 0xff);
    auto rnd = random_bytes(n + 3, static_cast<std::uint32_t>(n));
    for (std::size_t off = 0; off < 4; ++off) {
      EXPECT_EQ(checksum_add(ConstByteSpan(ones.data() + off, n)),
                ref_fold(ref_sum(ones.data(), n)));
      EXPECT_EQ(checksum_add(ConstByteSpan(rnd.data() + off, n), 0xffffffff),
                ref_fold(ref_sum(rnd.data() + off, n) + 0xffffffff));
    }
  }
}

TEST(Checksum, ChainedEvenPiecesEqualOnePass) {
  // Any split at an even point, the last piece of any length, gives exactly one pass's value.
  const auto buf = random_bytes(1600, 3);
  for (const std::size_t len : {0u, 1u, 2u, 3u, 39u, 40u, 41u, 63u, 64u, 65u, 1499u, 1500u}) {
    const ConstByteSpan whole(buf.data() + 1, len);
    for (const std::uint32_t init : kInitials) {
      const std::uint32_t one = checksum_add(whole, init);
      for (std::size_t k = 0; k <= len; k += 2) {
        EXPECT_EQ(checksum_add(whole.subspan(k), checksum_add(whole.first(k), init)), one)
            << "len " << len << " split " << k;
        // Three pieces.
        for (std::size_t j = k; j <= len && j < k + 10; j += 2)
          EXPECT_EQ(
              checksum_add(whole.subspan(j), checksum_add(whole.subspan(k, j - k),
                                                          checksum_add(whole.first(k), init))),
              one);
      }
    }
  }
}

TEST(Checksum, PseudoHeaderThenSegmentAsCallersChain) {
  std::mt19937 rng(4);
  for (int round = 0; round < 200; ++round) {
    auto ip = random_bytes(40 + 1500, rng());
    const std::size_t l4 = 20 + rng() % 1481;  // odd lengths too: the segment is last
    // IPv6 (ipv6_pseudo_sum, as icmp_ptb.cpp and the tests use it).
    std::uint64_t ref6 = ref_sum(ip.data() + 8, 32) + (l4 >> 16) + (l4 & 0xffff) + 6;
    const std::uint32_t ps6 =
        ipv6_pseudo_sum(ConstByteSpan(ip.data() + 8, 16), ConstByteSpan(ip.data() + 24, 16),
                        static_cast<std::uint32_t>(l4), 6);
    EXPECT_EQ(checksum_fold(ps6), ref_fold(ref6));
    EXPECT_EQ(checksum_add(ConstByteSpan(ip.data() + 40, l4), ps6),
              ref_fold(ref_sum(ip.data() + 40, l4, ref6)));
    // IPv4 (tcp_offload.cpp's pseudo_sum: a sum plus the length and protocol as integers).
    const std::uint32_t ps4 =
        checksum_add(ConstByteSpan(ip.data() + 12, 8)) + static_cast<std::uint32_t>(l4) + 6;
    const std::uint64_t ref4 = ref_sum(ip.data() + 12, 8) + l4 + 6;
    EXPECT_EQ(checksum_finish(checksum_add(ConstByteSpan(ip.data() + 20, l4), ps4)),
              static_cast<std::uint16_t>(~ref_fold(ref_sum(ip.data() + 20, l4, ref4))));
  }
}

TEST(Checksum, FoldAndFinish) {
  EXPECT_EQ(checksum_fold(0), 0);
  EXPECT_EQ(checksum_fold(0xffff), 0xffff);
  EXPECT_EQ(checksum_fold(0x10000), 1);
  EXPECT_EQ(checksum_fold(0xffffffff), 0xffff);
  EXPECT_EQ(checksum_fold(0x1fffe), 0xffff);
  EXPECT_EQ(checksum_finish(0xffff), 0);
  EXPECT_EQ(checksum_finish(0), 0xffff);
  EXPECT_EQ(checksum_finish(0x1234), static_cast<std::uint16_t>(~0x1234));
}

}  // namespace
}  // namespace ie::ied
