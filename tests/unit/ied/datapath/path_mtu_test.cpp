// Path MTU decisions (path_mtu.hpp): a packet that fits is sent; one too big with DF or IPv6
// is answered with a PTB naming the usable MTU (from its destination to its source) and
// dropped; IPv4 without DF, IPv6 at or under 1280 bytes and packets no PTB may answer are
// sent on; PTBs are rate-limited by the token bucket. The per-next-hop cache looks the path
// MTU up once per refresh period, keeps the last value when a look-up fails, and is bounded.
#include "ie/ied/path_mtu.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "ie/ied/checksum.hpp"
#include "ie/ied/flow_key.hpp"
#include "ie/ied/flow_table.hpp"
#include "ie/ied/icmp_ptb.hpp"
#include "test_packets.hpp"

namespace ie::ied {
namespace {

using namespace std::chrono_literals;
using test::A;
using Time = TokenBucket::Time;

const Time t0 = Time{} + 1000s;

Bytes tcp_v4(std::size_t total, bool df = true) {
  return test::make_v4(kProtoTcp, A("10.1.0.2"), A("10.2.0.2"), test::ports(40000, 80, total - 20),
                       test::V4Opts{.df = df});
}

Bytes tcp_v6(std::size_t total) {
  return test::make_v6(kProtoTcp, A("fd00::1"), A("fd00::2"), test::ports(40000, 80, total - 40));
}

struct Check {
  MtuAction action;
  Bytes ptb;
};

Check check(const Bytes& pkt, std::size_t max_inner, TokenBucket& b, Time now = t0) {
  std::uint8_t out[kPtbMaxV6];
  std::size_t len = 99;
  const auto a = check_path_mtu(pkt, max_inner, b, now, out, &len);
  return {a, Bytes(out, out + len)};
}

TEST(PathMtu, FitsIsSent) {
  TokenBucket b(10, 1);
  EXPECT_EQ(check(tcp_v4(1200), 1200, b).action, MtuAction::send);
  EXPECT_EQ(check(tcp_v4(1200), 1200, b).ptb.size(), 0u);
  EXPECT_EQ(check(tcp_v6(1300), 1400, b).action, MtuAction::send);
  EXPECT_TRUE(b.take(t0));  // no token was used
}

TEST(PathMtu, Ipv4DfTooBigGetsFragmentationNeeded) {
  TokenBucket b(10, 5);
  const auto pkt = tcp_v4(1308);
  const auto c = check(pkt, 1120, b);
  ASSERT_EQ(c.action, MtuAction::ptb);
  ASSERT_GE(c.ptb.size(), 28u + 28u);
  const std::uint8_t* p = c.ptb.data();
  EXPECT_EQ(p[9], kProtoIcmp);
  // From the packet's destination back to its source.
  EXPECT_EQ(*IpAddr::from_bytes(ConstByteSpan(p + 12, 4)), A("10.2.0.2"));
  EXPECT_EQ(*IpAddr::from_bytes(ConstByteSpan(p + 16, 4)), A("10.1.0.2"));
  EXPECT_EQ(p[20], 3);
  EXPECT_EQ(p[21], 4);
  EXPECT_EQ(load_be16(p + 26), 1120);
  EXPECT_EQ(checksum_finish(checksum_add(ConstByteSpan(p + 20, c.ptb.size() - 20))), 0);
  EXPECT_EQ(std::memcmp(p + 28, pkt.data(), 28), 0);  // quotes the offender
  // One byte over is too big; exactly max_inner fits.
  EXPECT_EQ(check(tcp_v4(1121), 1120, b).action, MtuAction::ptb);
  EXPECT_EQ(check(tcp_v4(1120), 1120, b).action, MtuAction::send);
}

TEST(PathMtu, Ipv4WithoutDfIsSentForTheOuterToBeFragmented) {
  TokenBucket b(10, 1);
  const auto c = check(tcp_v4(1400, /*df=*/false), 1120, b);
  EXPECT_EQ(c.action, MtuAction::fragment_outside);
  EXPECT_EQ(c.ptb.size(), 0u);
  EXPECT_TRUE(b.take(t0));  // and took no token
}

TEST(PathMtu, Ipv6TooBigGetsPacketTooBig) {
  TokenBucket b(10, 5);
  const auto c = check(tcp_v6(1400), 1300, b);
  ASSERT_EQ(c.action, MtuAction::ptb);
  const std::uint8_t* p = c.ptb.data();
  EXPECT_EQ(p[6], kProtoIcmpV6);
  EXPECT_EQ(*IpAddr::from_bytes(ConstByteSpan(p + 8, 16)), A("fd00::2"));
  EXPECT_EQ(*IpAddr::from_bytes(ConstByteSpan(p + 24, 16)), A("fd00::1"));
  EXPECT_EQ(p[40], 2);
  EXPECT_EQ(load_be32(p + 44), 1300u);
  // A path under IPv6's minimum: a PTB names 1280 for bigger packets, and packets of at
  // most 1280 bytes go on (the outer datagram is fragmented).
  const auto small_path = check(tcp_v6(1400), 1200, b);
  ASSERT_EQ(small_path.action, MtuAction::ptb);
  EXPECT_EQ(load_be32(small_path.ptb.data() + 44), kMinMtuV6);
  EXPECT_EQ(check(tcp_v6(1280), 1200, b).action, MtuAction::fragment_outside);
}

TEST(PathMtu, NoPtbForWhatMustNotBeAnswered) {
  TokenBucket b(10, 5);
  // An ICMP error too big for the path: never answered with an error.
  auto err = test::make_v4(kProtoIcmp, A("10.1.0.2"), A("10.2.0.2"), test::icmp(3, 1, 0, 1380));
  EXPECT_EQ(check(err, 1120, b).action, MtuAction::fragment_outside);
  // A non-first fragment with DF (malformed but possible from a raw socket).
  auto frag = test::make_v4(kProtoUdp, A("10.1.0.2"), A("10.2.0.2"), test::ports(1, 2, 1380),
                            test::V4Opts{.df = true, .frag_offset = 10});
  EXPECT_EQ(check(frag, 1120, b).action, MtuAction::fragment_outside);
  // Garbage that is neither IPv4 nor IPv6.
  Bytes junk(1500, 0x55);
  EXPECT_EQ(check(junk, 1120, b).action, MtuAction::fragment_outside);
  // None of them took a token: five PTBs are still available.
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(check(tcp_v4(1400), 1120, b).action, MtuAction::ptb);
}

TEST(PathMtu, PtbsAreRateLimited) {
  TokenBucket b(100, 3);  // 3 at once, then one per 10 ms
  const auto pkt = tcp_v4(1400);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(check(pkt, 1120, b, t0).action, MtuAction::ptb);
  const auto limited = check(pkt, 1120, b, t0);
  EXPECT_EQ(limited.action, MtuAction::rate_limited);
  EXPECT_EQ(limited.ptb.size(), 0u);
  EXPECT_EQ(check(pkt, 1120, b, t0 + 5ms).action, MtuAction::rate_limited);
  EXPECT_EQ(check(pkt, 1120, b, t0 + 11ms).action, MtuAction::ptb);
  EXPECT_EQ(check(pkt, 1120, b, t0 + 12ms).action, MtuAction::rate_limited);
  // A long pause refills the bucket only to its burst.
  int sent = 0;
  for (int i = 0; i < 10; ++i)
    sent += check(pkt, 1120, b, t0 + 10s).action == MtuAction::ptb ? 1 : 0;
  EXPECT_EQ(sent, 3);
  // A flood: 10000 big packets over one second yield about rate + burst PTBs.
  TokenBucket k(kPtbPerSecond, kPtbBurst);
  int ptbs = 0;
  for (int i = 0; i < 10000; ++i)
    ptbs += check(pkt, 1120, k, t0 + i * 100us).action == MtuAction::ptb ? 1 : 0;
  EXPECT_GE(ptbs, 1000);
  EXPECT_LE(ptbs, 1000 + 50 + 1);
}

// A flow counts in packets_out/bytes_out only the packets that went out: not one a PTB
// answered (dropped), but every one sent on (fits, no DF, over the PTB rate).
TEST(PathMtu, AFlowCountsOnlyWhatWasSent) {
  TokenBucket b(10, 1);
  FlowEntry f;
  const auto big = tcp_v4(1308);
  EXPECT_FALSE(count_if_sent(&f, big.size(), check(big, 1120, b).action));  // PTB
  EXPECT_EQ(f.packets_out, 0u);
  EXPECT_EQ(f.bytes_out, 0u);
  const auto fits = tcp_v4(1100);
  EXPECT_TRUE(count_if_sent(&f, fits.size(), check(fits, 1120, b).action));
  EXPECT_EQ(f.packets_out, 1u);
  EXPECT_EQ(f.bytes_out, 1100u);
  const auto no_df = tcp_v4(1400, /*df=*/false);
  EXPECT_TRUE(count_if_sent(&f, no_df.size(), check(no_df, 1120, b).action));
  // The bucket (burst 1) is empty: the next PTB is not sent and the packet goes on.
  const auto c = check(big, 1120, b);
  ASSERT_EQ(c.action, MtuAction::rate_limited);
  EXPECT_TRUE(count_if_sent(&f, big.size(), c.action));
  EXPECT_EQ(f.packets_out, 3u);
  EXPECT_EQ(f.bytes_out, 1100u + 1400u + 1308u);
  // No flow entry: only the verdict.
  EXPECT_FALSE(count_if_sent(nullptr, big.size(), MtuAction::ptb));
  EXPECT_TRUE(count_if_sent(nullptr, big.size(), MtuAction::send));
}

TEST(PathMtu, DatagramOverhead) {
  EXPECT_EQ(ilp_datagram_overhead(false, 12), 20u + 8 + 16 + 12 + 16);
  EXPECT_EQ(ilp_datagram_overhead(true, 36), 40u + 8 + 16 + 36 + 16);
}

TEST(PathMtuCache, LooksUpOncePerRefreshAndCountsDrops) {
  int calls = 0;
  std::uint32_t mtu = 1500;
  std::optional<IpAddr> asked;
  PathMtuCache c(
      [&](const IpAddr& a) -> std::optional<std::uint32_t> {
        ++calls;
        asked = a;
        return mtu;
      },
      500ms);
  const auto* h = c.get("172.16.52.2:1000", t0);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->mtu, 1500u);
  EXPECT_EQ(asked, A("172.16.52.2"));
  EXPECT_EQ(calls, 1);
  mtu = 1280;  // an ICMP arrived: the kernel's route exception
  EXPECT_EQ(c.get("172.16.52.2:1000", t0 + 499ms)->mtu, 1500u);
  EXPECT_EQ(calls, 1);
  h = c.get("172.16.52.2:1000", t0 + 500ms);
  EXPECT_EQ(h->mtu, 1280u);
  EXPECT_EQ(h->drops, 1u);
  EXPECT_EQ(calls, 2);
  mtu = 1500;  // the exception expired
  EXPECT_EQ(c.get("172.16.52.2:1000", t0 + 1s)->mtu, 1500u);
  EXPECT_EQ(c.get("172.16.52.2:1000", t0 + 1s)->drops, 1u);
  // IPv6 endpoints; each hop has its own entry.
  EXPECT_EQ(c.get("[fd00::5]:1000", t0 + 1s)->addr, A("fd00::5"));
  EXPECT_EQ(c.hops().size(), 2u);
}

TEST(PathMtuCache, FailedLookupsAndBadEndpoints) {
  int calls = 0;
  std::optional<std::uint32_t> answer;
  PathMtuCache c(
      [&](const IpAddr&) {
        ++calls;
        return answer;
      },
      500ms);
  EXPECT_EQ(c.get("not an endpoint", t0), nullptr);
  EXPECT_EQ(calls, 0);
  // Never looked up successfully: no entry to check against, retried once per period only.
  EXPECT_EQ(c.get("10.0.0.1:1", t0), nullptr);
  EXPECT_EQ(c.get("10.0.0.1:1", t0 + 100ms), nullptr);
  EXPECT_EQ(calls, 1);
  answer = 1400;
  ASSERT_NE(c.get("10.0.0.1:1", t0 + 600ms), nullptr);
  EXPECT_EQ(calls, 2);
  // A failed refresh keeps the last value.
  answer.reset();
  const auto* h = c.get("10.0.0.1:1", t0 + 2s);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->mtu, 1400u);
}

TEST(PathMtuCache, Bounded) {
  PathMtuCache c([](const IpAddr&) { return std::optional<std::uint32_t>(1500); }, 500ms, 4);
  for (int i = 0; i < 20; ++i)
    ASSERT_NE(c.get("10.0.0." + std::to_string(i + 1) + ":1", t0 + i * 1ms), nullptr);
  EXPECT_EQ(c.hops().size(), 4u);
  EXPECT_EQ(c.hops().count("10.0.0.20:1"), 1u);  // the newest stay
  EXPECT_EQ(c.hops().count("10.0.0.1:1"), 0u);
}

}  // namespace
}  // namespace ie::ied
