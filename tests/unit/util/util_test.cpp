// Unit tests of the util layer: Result, Error, hex, byte order, secrets, rate limiter.
#include <gtest/gtest.h>

#include <cerrno>

#include "ie/util/bytes.hpp"
#include "ie/util/counter.hpp"
#include "ie/util/log.hpp"
#include "ie/util/result.hpp"
#include "ie/util/secret.hpp"

namespace ie {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return fail(Errc::invalid_argument, "value must be positive");
  return v;
}

Result<void> chain(int v) {
  IE_TRY(parse_positive(v));
  return ok();
}

TEST(Result, ValueAndError) {
  auto r = parse_positive(3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 3);
  auto e = parse_positive(-1);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, Errc::invalid_argument);
  EXPECT_EQ(e.value_or(7), 7);
  EXPECT_TRUE(chain(1).ok());
  EXPECT_EQ(chain(0).error().code, Errc::invalid_argument);
}

TEST(Error, RendersContextAndErrno) {
  Error e{Errc::io, ENOENT, "open /x"};
  EXPECT_EQ(e.to_string(), "open /x: I/O error (No such file or directory)");
  EXPECT_STREQ(errc_name(Errc::timeout), "timeout");
}

TEST(Bytes, HexRoundTripAndRejects) {
  Bytes b{0x00, 0xab, 0xff};
  EXPECT_EQ(to_hex(b), "00abff");
  EXPECT_EQ(*from_hex("00ABff"), b);
  EXPECT_FALSE(from_hex("abc").has_value());
  EXPECT_FALSE(from_hex("zz").has_value());
}

TEST(Bytes, ByteOrder) {
  std::uint8_t p[8];
  store_be32(p, 0x01020304);
  EXPECT_EQ(p[0], 1);
  EXPECT_EQ(load_be32(p), 0x01020304u);
  store_be64(p, 0x0102030405060708ull);
  EXPECT_EQ(p[7], 8);
  EXPECT_EQ(load_be64(p), 0x0102030405060708ull);
  store_le64(p, 0x0102030405060708ull);
  EXPECT_EQ(p[0], 8);
  EXPECT_EQ(load_le64(p), 0x0102030405060708ull);
  store_be16(p, 0xbeef);
  EXPECT_EQ(load_be16(p), 0xbeef);
}

TEST(Secret, MoveWipesSourceAndComparesInConstantTime) {
  Key32 a;
  a.data()[0] = 42;
  Key32 b = a.clone();
  EXPECT_TRUE(a == b);
  Key32 c = std::move(a);
  EXPECT_EQ(c.data()[0], 42);
  EXPECT_EQ(a.data()[0], 0);  // NOLINT(bugprone-use-after-move): wiped on move by contract
  EXPECT_FALSE(a == c);
  EXPECT_EQ(c.fingerprint().rfind("fp:", 0), 0u);
  EXPECT_EQ(c.fingerprint().size(), 11u);
  EXPECT_FALSE(ct_equal(std::span<const std::uint8_t>(c.data(), 3), c.span()));
}

TEST(RateLimiter, BurstThenSuppress) {
  log::RateLimiter rl(std::chrono::hours(1), 3);
  std::uint64_t s = 0;
  int allowed = 0;
  for (int i = 0; i < 10; ++i)
    allowed += rl.allow(&s) ? 1 : 0;
  EXPECT_EQ(allowed, 3);
}

TEST(Counter, ArrayTotals) {
  enum class R { a, b };
  CounterArray<R, 2> c;
  c.add(R::a);
  c.add(R::b, 5);
  EXPECT_EQ(c.get(R::b), 5u);
  EXPECT_EQ(c.total(), 6u);
}

TEST(Log, ParseLevel) {
  spdlog::level::level_enum l;
  EXPECT_TRUE(log::parse_level("debug", &l));
  EXPECT_EQ(l, spdlog::level::debug);
  EXPECT_FALSE(log::parse_level("loud", &l));
}

}  // namespace
}  // namespace ie
