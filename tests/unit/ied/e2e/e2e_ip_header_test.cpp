// The IP header codec of the end-to-end layer and IpAddr.
#include "ie/ied/ip_header.hpp"

#include <gtest/gtest.h>

#include "e2e_harness.hpp"

namespace ie::ied {
namespace {

using test::addr;

TEST(IpAddr, ParsesPrintsAndOrders) {
  EXPECT_EQ(addr("192.0.2.1").str(), "192.0.2.1");
  EXPECT_TRUE(addr("192.0.2.1").is_v4());
  EXPECT_EQ(addr("2001:db8::1").str(), "2001:db8::1");
  EXPECT_TRUE(addr("2001:db8::1").is_v6());
  EXPECT_FALSE(IpAddr::parse("192.0.2.256"));
  EXPECT_FALSE(IpAddr::parse(""));
  EXPECT_FALSE(IpAddr::parse(std::string(100, '1')));
  EXPECT_FALSE(IpAddr::from_bytes(Bytes(5)));
  EXPECT_LT(addr("10.0.0.1"), addr("10.0.0.2"));
  EXPECT_NE(addr("10.0.0.1"), addr("::ffff:10.0.0.1"));
}

TEST(IpHeader, WritesAValidIpv4E2eHeader) {
  Bytes p(20 + 100);
  ASSERT_EQ(write_e2e_header(addr("10.1.0.1"), addr("10.2.0.2"), 100, p), 20u);
  EXPECT_EQ(p[0], 0x45);
  EXPECT_EQ(load_be16(p.data() + 2), 120);
  EXPECT_EQ(load_be16(p.data() + 6), 0x4000);  // DF
  EXPECT_EQ(p[8], 64);
  EXPECT_EQ(p[9], kE2eProto);
  EXPECT_EQ(ipv4_header_checksum(ConstByteSpan(p.data(), 20)), 0);
  IpView v;
  ASSERT_EQ(parse_ip(p, true, &v), wire::DropReason::none);
  EXPECT_EQ(v.src, addr("10.1.0.1"));
  EXPECT_EQ(v.dst, addr("10.2.0.2"));
  EXPECT_EQ(v.protocol, kE2eProto);
  EXPECT_FALSE(v.fragment);
  EXPECT_EQ(v.payload.size(), 100u);
}

TEST(IpHeader, WritesAValidIpv6E2eHeader) {
  Bytes p(40 + 7);
  ASSERT_EQ(write_e2e_header(addr("2001:db8::a"), addr("2001:db8::b"), 7, p), 40u);
  EXPECT_EQ(p[0] >> 4, 6);
  EXPECT_EQ(load_be16(p.data() + 4), 7);
  EXPECT_EQ(p[6], kE2eProto);
  EXPECT_EQ(p[7], 64);
  IpView v;
  ASSERT_EQ(parse_ip(p, true, &v), wire::DropReason::none);
  EXPECT_EQ(v.src, addr("2001:db8::a"));
  EXPECT_EQ(v.dst, addr("2001:db8::b"));
  EXPECT_EQ(v.payload.size(), 7u);
}

TEST(IpHeader, RefusesWhatCannotBeWritten) {
  Bytes p(100);
  EXPECT_EQ(write_e2e_header(addr("10.0.0.1"), addr("::1"), 10, p), 0u);  // families differ
  EXPECT_EQ(write_e2e_header(addr("10.0.0.1"), addr("10.0.0.2"), 65535 - 19, p), 0u);
  EXPECT_EQ(write_e2e_header(addr("::1"), addr("::2"), 10, ByteSpan(p.data(), 39)), 0u);
}

TEST(IpHeader, ParseCutsTrailingBytesAndRejectsBadHeaders) {
  Bytes p = test::ip_udp(addr("10.0.0.1"), addr("10.0.0.2"), Bytes(10, 'x'));
  const std::size_t len = p.size();
  p.resize(len + 5);  // link-layer padding after the packet
  IpView v;
  ASSERT_EQ(parse_ip(p, true, &v), wire::DropReason::none);
  EXPECT_EQ(v.packet.size(), len);
  EXPECT_EQ(v.fragment, false);

  Bytes bad = p;
  bad[10] ^= 1;  // checksum
  EXPECT_EQ(parse_ip(bad, true, &v), wire::DropReason::bad_inner_packet);
  EXPECT_EQ(parse_ip(bad, false, &v), wire::DropReason::none);
  bad = p;
  bad[0] = 0x44;  // IHL 4
  EXPECT_EQ(parse_ip(bad, false, &v), wire::DropReason::bad_inner_packet);
  bad = p;
  bad[0] = 0x55;  // version 5
  EXPECT_EQ(parse_ip(bad, false, &v), wire::DropReason::bad_inner_packet);
  bad = p;
  store_be16(bad.data() + 6, 0x2000);  // MF
  EXPECT_EQ(parse_ip(bad, false, &v), wire::DropReason::none);
  EXPECT_TRUE(v.fragment);
}

TEST(IpHeader, EveryTruncationIsRejected) {
  for (const char* a : {"10.0.0.1", "2001:db8::1"}) {
    const IpAddr src = addr(a);
    const IpAddr dst = src.is_v4() ? addr("10.0.0.2") : addr("2001:db8::2");
    const Bytes p = test::ip_udp(src, dst, Bytes(30, 'y'));
    for (std::size_t n = 0; n < p.size(); ++n) {
      IpView v;
      EXPECT_NE(parse_ip(ConstByteSpan(p.data(), n), true, &v), wire::DropReason::none) << n;
    }
  }
}

}  // namespace
}  // namespace ie::ied
