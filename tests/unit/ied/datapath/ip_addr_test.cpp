// IpAddr / IpPrefix: parsing and formatting both families, byte and sockaddr conversions,
// ordering, prefix host-bit rules and containment.
#include "ie/ied/ip_addr.hpp"

#include <gtest/gtest.h>

#include <set>

namespace ie::ied {
namespace {

TEST(IpAddr, ParsesAndFormatsBothFamilies) {
  auto a = IpAddr::parse("10.1.2.3");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->size(), 4u);
  EXPECT_EQ(a->v4_host_order(), 0x0a010203u);
  EXPECT_EQ(a->str(), "10.1.2.3");
  auto b = IpAddr::parse("fd00::1");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->is_v6());
  EXPECT_EQ(b->size(), 16u);
  EXPECT_EQ(b->bytes()[0], 0xfd);
  EXPECT_EQ(b->bytes()[15], 1);
  EXPECT_EQ(b->str(), "fd00::1");
  // A mapped address written as IPv6 stays IPv6.
  auto m = IpAddr::parse("::ffff:10.0.0.1");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->is_v6());
  EXPECT_EQ(m->as_mapped(), IpAddr::parse("10.0.0.1")->as_mapped());
  EXPECT_NE(*m, *IpAddr::parse("10.0.0.1"));
}

TEST(IpAddr, RefusesNonNumericText) {
  for (const char* s :
       {"", "10.1.2", "10.1.2.256", "host", "fd00::1::2", "1.2.3.4 ", " 1.2.3.4", "fd00::1%eth0",
        "10.0.0.1/24", "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000"})
    EXPECT_FALSE(IpAddr::parse(s)) << s;
  // An embedded NUL must not end the text early (inet_pton would see "10.0.0.1").
  using namespace std::string_view_literals;
  EXPECT_FALSE(IpAddr::parse("10.0.0.1\0junk"sv));
  EXPECT_FALSE(IpAddr::parse("fd00::1\0"sv));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0\0/8"sv, false));
}

TEST(IpAddr, FromBytesAndSockaddr) {
  const std::uint8_t v4[4] = {192, 0, 2, 1};
  auto a = IpAddr::from_bytes(v4);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->str(), "192.0.2.1");
  EXPECT_FALSE(IpAddr::from_bytes(ConstByteSpan(v4, 3)));
  sockaddr_storage ss;
  const socklen_t len = a->to_sockaddr(53, &ss);
  EXPECT_EQ(len, sizeof(sockaddr_in));
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port), 53);
  EXPECT_EQ(IpAddr::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len), *a);
  EXPECT_FALSE(IpAddr::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len - 1));
  const auto b = *IpAddr::parse("2001:db8::7");
  const socklen_t len6 = b.to_sockaddr(443, &ss);
  EXPECT_EQ(len6, sizeof(sockaddr_in6));
  EXPECT_EQ(IpAddr::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len6), b);
}

TEST(IpAddr, ClassifiesAndOrders) {
  EXPECT_TRUE(IpAddr().is_unspecified());
  EXPECT_TRUE(IpAddr::parse("::")->is_unspecified());
  EXPECT_FALSE(IpAddr::parse("::1")->is_unspecified());
  EXPECT_TRUE(IpAddr::parse("224.0.0.1")->is_multicast());
  EXPECT_TRUE(IpAddr::parse("ff02::1")->is_multicast());
  EXPECT_FALSE(IpAddr::parse("10.0.0.1")->is_multicast());
  std::set<IpAddr> s{*IpAddr::parse("fd00::1"), *IpAddr::parse("10.0.0.2"),
                     *IpAddr::parse("10.0.0.1")};
  std::vector<std::string> order;
  for (const auto& a : s)
    order.push_back(a.str());
  EXPECT_EQ(order, (std::vector<std::string>{"10.0.0.1", "10.0.0.2", "fd00::1"}));
}

TEST(IpPrefix, ParsesWithHostBitsZeroOnly) {
  auto p = IpPrefix::parse("10.2.0.0/16");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->len, 16u);
  EXPECT_EQ(p->str(), "10.2.0.0/16");
  EXPECT_EQ(IpPrefix::parse("1.2.3.4")->len, 32u);
  EXPECT_EQ(IpPrefix::parse("fd00::1")->len, 128u);
  EXPECT_EQ(IpPrefix::parse("fd00::/8")->str(), "fd00::/8");
  EXPECT_EQ(IpPrefix::parse("0.0.0.0/0")->len, 0u);
  for (const char* s : {"10.2.0.1/16", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/1a",
                        "10.0.0.0/-1", "fd00::1/64", "x/8", "10.0.0.0/0008"})
    EXPECT_FALSE(IpPrefix::parse(s)) << s;
}

TEST(IpPrefix, CoveringAndContains) {
  const auto p = IpPrefix::covering(*IpAddr::parse("10.2.3.4"), 12);
  EXPECT_EQ(p.str(), "10.0.0.0/12");
  EXPECT_TRUE(p.contains(*IpAddr::parse("10.15.255.255")));
  EXPECT_FALSE(p.contains(*IpAddr::parse("10.16.0.0")));
  EXPECT_FALSE(p.contains(*IpAddr::parse("::ffff:10.2.3.4")));
  const auto q = IpPrefix::covering(*IpAddr::parse("fd12:3456:789a::1"), 33);
  EXPECT_EQ(q.str(), "fd12:3456::/33");
  EXPECT_TRUE(q.contains(*IpAddr::parse("fd12:3456:7fff::")));
  EXPECT_FALSE(q.contains(*IpAddr::parse("fd12:3456:8000::")));
  EXPECT_TRUE(IpPrefix::covering(*IpAddr::parse("1.2.3.4"), 0).contains(*IpAddr::parse("9.9.9.9")));
}

}  // namespace
}  // namespace ie::ied
