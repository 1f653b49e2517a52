// ie::sn::Endpoint: the 28-byte IPv4/IPv6 endpoint iesn keeps per pipe instead of a 128-byte
// sockaddr_storage. Both families survive a round trip byte for byte, compare by address and
// port, print like io::endpoint_str, and anything else is refused (empty).
#include "ie/sn/endpoint.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

#include "ie/io/udp.hpp"

namespace ie::sn {
namespace {

sockaddr_storage parse(const char* text, socklen_t* len) {
  auto r = io::parse_endpoint(text, len);
  EXPECT_TRUE(r.ok()) << text;
  return r.ok() ? *r : sockaddr_storage{};
}

TEST(SnEndpoint, Ipv4RoundTrip) {
  socklen_t len = 0;
  const sockaddr_storage s = parse("192.0.2.7:4789", &len);
  ASSERT_EQ(len, sizeof(sockaddr_in));
  const Endpoint e = Endpoint::from(s, len);
  EXPECT_FALSE(e.empty());
  EXPECT_EQ(e.family(), AF_INET);
  EXPECT_EQ(e.len(), sizeof(sockaddr_in));
  sockaddr_storage back;
  std::memset(&back, 0xee, sizeof back);
  ASSERT_EQ(e.to(&back), sizeof(sockaddr_in));
  EXPECT_EQ(std::memcmp(&back, &s, sizeof(sockaddr_in)), 0);
  EXPECT_EQ(e.str(), "192.0.2.7:4789");
  EXPECT_EQ(e.str(), io::endpoint_str(s));
}

TEST(SnEndpoint, Ipv6RoundTrip) {
  socklen_t len = 0;
  const sockaddr_storage s = parse("[2001:db8::1:2]:51820", &len);
  ASSERT_EQ(len, sizeof(sockaddr_in6));
  const Endpoint e = Endpoint::from(s, len);
  EXPECT_EQ(e.family(), AF_INET6);
  EXPECT_EQ(e.len(), sizeof(sockaddr_in6));
  sockaddr_storage back{};
  ASSERT_EQ(e.to(&back), sizeof(sockaddr_in6));
  EXPECT_EQ(std::memcmp(&back, &s, sizeof(sockaddr_in6)), 0);
  EXPECT_EQ(e.str(), "[2001:db8::1:2]:51820");
  const sockaddr_storage whole = e.storage();
  EXPECT_EQ(io::endpoint_str(whole), e.str());
}

TEST(SnEndpoint, EqualityIsAddressAndPort) {
  auto at = [](const char* text) {
    socklen_t len = 0;
    const sockaddr_storage s = parse(text, &len);  // sets len first
    return Endpoint::from(s, len);
  };
  const Endpoint a = at("10.0.0.1:1000");
  const Endpoint a2 = at("10.0.0.1:1000");
  const Endpoint other_port = at("10.0.0.1:1001");
  const Endpoint v6 = at("[::ffff:10.0.0.1]:1000");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(v6.empty());
  EXPECT_EQ(a, a2);
  EXPECT_NE(a, other_port);
  EXPECT_NE(a, v6);  // a v4-mapped IPv6 address is another endpoint (another socket family)
  EXPECT_NE(a, Endpoint{});
}

TEST(SnEndpoint, RefusesOtherFamiliesAndShortLengths) {
  sockaddr_storage s{};
  s.ss_family = AF_UNIX;
  EXPECT_TRUE(Endpoint::from(s, sizeof s).empty());
  socklen_t len = 0;
  const sockaddr_storage v6 = parse("[2001:db8::1]:1", &len);
  EXPECT_TRUE(Endpoint::from(v6, sizeof(sockaddr_in)).empty());  // truncated sockaddr_in6
  const sockaddr_storage v4 = parse("192.0.2.1:1", &len);
  EXPECT_TRUE(Endpoint::from(v4, 4).empty());
  const Endpoint empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.len(), 0u);
  EXPECT_EQ(empty.str(), "?");
}

}  // namespace
}  // namespace ie::sn
