// The steering ABI seen from C++ (no root): mark arithmetic of the contract and the flow key
// helpers' byte layout (the layout itself is static_asserted in steer.hpp).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <array>
#include <cstring>

#include "ie/bpf/steer.hpp"

namespace ie::bpf {
namespace {

TEST(BpfAbi, MarkRanges) {
  EXPECT_TRUE(mark_in_range(IE_MARK_BASE));
  EXPECT_TRUE(mark_in_range(0x1e1fffffu));
  EXPECT_FALSE(mark_in_range(0x1e200000u));
  EXPECT_FALSE(mark_in_range(0x0e100000u));
  EXPECT_FALSE(mark_in_range(0));
  EXPECT_EQ(explicit_mark(0), 0x1e100000u);
  EXPECT_EQ(explicit_mark(IE_MAX_SLOTS - 1), 0x1e17ffffu);
  EXPECT_TRUE(mark_is_explicit(explicit_mark(IE_MAX_SLOTS - 1)));
  EXPECT_FALSE(mark_is_policy(explicit_mark(5)));
  EXPECT_EQ(policy_mark(0), 0x1e180000u);
  EXPECT_EQ(policy_mark(IE_MAX_POLICIES - 1), 0x1e18003fu);
  EXPECT_TRUE(mark_is_policy(policy_mark(63)));
  EXPECT_FALSE(mark_is_explicit(policy_mark(0)));
  EXPECT_TRUE(mark_in_range(policy_mark(63)));
}

TEST(BpfAbi, FlowKeyV4) {
  const std::array<std::uint8_t, 4> s{10, 1, 2, 3}, d{192, 0, 2, 7};
  const FlowKey k = flow_key_v4(IPPROTO_TCP, s, 40000, d, 443);
  const auto* b = reinterpret_cast<const std::uint8_t*>(&k);
  EXPECT_EQ(b[0], AF_INET);
  EXPECT_EQ(b[1], IPPROTO_TCP);
  EXPECT_EQ(b[2], 0);
  EXPECT_EQ(b[3], 0);
  EXPECT_EQ(b[4], 40000 >> 8);  // ports in network order
  EXPECT_EQ(b[5], 40000 & 0xff);
  EXPECT_EQ(ntohs(k.dport), 443);
  EXPECT_EQ(std::memcmp(b + 8, s.data(), 4), 0);
  EXPECT_EQ(std::memcmp(b + 24, d.data(), 4), 0);
  for (int i = 12; i < 24; ++i)
    EXPECT_EQ(b[i], 0) << i;  // the rest of saddr is zero
  for (int i = 28; i < 40; ++i)
    EXPECT_EQ(b[i], 0) << i;
}

TEST(BpfAbi, FlowKeyV6) {
  std::array<std::uint8_t, 16> s{}, d{};
  s[0] = 0xfd;
  s[15] = 1;
  d[0] = 0x20;
  d[15] = 2;
  const FlowKey k = flow_key_v6(IPPROTO_UDP, s, 5000, d, 53);
  EXPECT_EQ(k.family, AF_INET6);
  EXPECT_EQ(k.proto, IPPROTO_UDP);
  EXPECT_EQ(ntohs(k.sport), 5000);
  EXPECT_EQ(ntohs(k.dport), 53);
  EXPECT_EQ(std::memcmp(k.saddr, s.data(), 16), 0);
  EXPECT_EQ(std::memcmp(k.daddr, d.data(), 16), 0);
}

TEST(BpfAbi, StatsVisitAll) {
  Stats st;
  st.pkt_seen = 3;
  st.flow_update_fail = 1;
  int n = 0;
  std::uint64_t sum = 0;
  st.for_each([&](const char* name, const char* text, std::uint64_t v) {
    EXPECT_NE(name, nullptr);
    EXPECT_NE(text, nullptr);
    ++n;
    sum += v;
  });
  EXPECT_EQ(n, IE_STAT_COUNT);
  EXPECT_EQ(sum, 4u);
}

}  // namespace
}  // namespace ie::bpf
