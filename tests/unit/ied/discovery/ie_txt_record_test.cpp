// The InterEdge TXT records (SN and peer), key base64, and reverse names.
#include "ie/ied/ie_txt_record.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include "ie/ied/reverse_name.hpp"

namespace ie::ied {
namespace {

crypto::noise::PublicKey test_key() {
  crypto::noise::PublicKey k{};
  for (std::size_t i = 0; i < k.size(); ++i)
    k[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return k;
}

TEST(IeTxtRecord, KeyBase64RoundTripAndKnownVector) {
  ASSERT_GE(sodium_init(), 0);
  crypto::noise::PublicKey k{};
  k.fill(0xff);
  EXPECT_EQ(key_to_base64(k), "//////////////////////////////////////////8=");
  const auto t = test_key();
  const std::string b = key_to_base64(t);
  EXPECT_EQ(b.size(), 44u);
  auto back = key_from_base64(b);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(*back, t);
}

TEST(IeTxtRecord, KeyBase64Rejections) {
  const std::string good = key_to_base64(test_key());
  EXPECT_FALSE(key_from_base64(good.substr(0, 43)).ok());        // short
  EXPECT_FALSE(key_from_base64(good + "A").ok());                // long
  EXPECT_FALSE(key_from_base64("!" + good.substr(1)).ok());      // bad alphabet
  EXPECT_FALSE(key_from_base64(good.substr(0, 43) + "A").ok());  // no padding
  // Non-canonical: the last data character carries bits beyond the 32 bytes.
  EXPECT_FALSE(key_from_base64("//////////////////////////////////////////9=").ok());
  EXPECT_FALSE(key_from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").ok());  // zero
  // The URL-safe alphabet is not the standard one.
  EXPECT_FALSE(key_from_base64("__________________________________________8=").ok());
}

TEST(IeTxtRecord, ParsesSnRecord) {
  const std::string b = key_to_base64(test_key());
  auto r = parse_sn_txt("v=ie1 name=dom1.sn1 key=" + b);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->name, "dom1.sn1");
  EXPECT_EQ(r->key, test_key());
  // Order after v is free, extra spaces are fine, unknown fields ignored.
  auto r2 = parse_sn_txt("  v=ie1   key=" + b + " mtu=1400 name=dom1.sn1 x-future=a=b ");
  ASSERT_TRUE(r2.ok()) << r2.error().to_string();
  EXPECT_EQ(r2->name, "dom1.sn1");
}

TEST(IeTxtRecord, ParsesPeerRecord) {
  const std::string b = key_to_base64(test_key());
  auto r = parse_peer_txt("v=ie1 sn=dom2.sn1 key=" + b);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->sn, "dom2.sn1");
  EXPECT_EQ(r->key, test_key());
  EXPECT_FALSE(parse_peer_txt("v=ie1 name=dom2.sn1 key=" + b).ok());  // sn= required
  EXPECT_EQ(r->endpoint, "");                                         // ep= is optional
}

// ep=: the host's ied endpoint for a direct path, numeric, kept in canonical form.
TEST(IeTxtRecord, PeerRecordEndpoint) {
  const std::string head = "v=ie1 sn=dom2.sn1 key=" + key_to_base64(test_key()) + " ep=";
  auto r = parse_peer_txt(head + "192.0.2.7:1001");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->endpoint, "192.0.2.7:1001");
  r = parse_peer_txt(head + "[2001:DB8::0:7]:1001");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->endpoint, "[2001:db8::7]:1001");
  const std::pair<std::string, const char*> bad[] = {
      {"192.0.2.7", "is not ip:port"},
      {"host.example:1001", "is not ip:port"},
      {"192.0.2.7:99999", "is not ip:port"},
      {"192.0.2.7:", "is not ip:port"},
      {"", "is not ip:port"},
      {"192.0.2.7:0", "has port 0"},
      {"0.0.0.0:1001", "not a unicast address"},
      {"255.255.255.255:1001", "not a unicast address"},
      {"224.0.0.1:1001", "not a unicast address"},
      {"[::]:1001", "not a unicast address"},
      {"[ff02::1]:1001", "not a unicast address"},
      {"[2001:db8::7]:0", "has port 0"},
      {std::string(70, '1'), "is too long"},
  };
  for (const auto& [ep, why] : bad) {
    auto b = parse_peer_txt(head + ep);
    ASSERT_FALSE(b.ok()) << ep;
    EXPECT_EQ(b.error().code, Errc::parse) << ep;
    EXPECT_NE(b.error().context.find(why), std::string::npos) << ep << " -> " << b.error().context;
  }
}

struct Bad {
  std::string text;
  Errc code;
  const char* reason;
};

TEST(IeTxtRecord, RejectsWithReasons) {
  const std::string b = key_to_base64(test_key());
  const Bad cases[] = {
      {"", Errc::parse, "missing v="},
      {"name=a.b key=" + b, Errc::parse, "missing v="},
      {"name=a.b v=ie1 key=" + b, Errc::parse, "missing v="},
      {"v=ie2 name=a.b key=" + b, Errc::unsupported, "version v=ie2"},
      {"v=IE1 name=a.b key=" + b, Errc::unsupported, "version"},
      {"v=ie1 name=a.b", Errc::parse, "missing key="},
      {"v=ie1 key=" + b, Errc::parse, "missing name="},
      {"v=ie1 name= key=" + b, Errc::parse, "not a valid name"},
      {"v=ie1 name=a..b key=" + b, Errc::parse, "not a valid name"},
      {"v=ie1 name=a/b key=" + b, Errc::parse, "not a valid name"},
      {"v=ie1 name=a.b key=AAAA", Errc::parse, "not a base64 32-byte key"},
      {"v=ie1 name=a.b key=" + b.substr(0, 40) + "!!!=", Errc::parse, "not a base64 32-byte key"},
      {"v=ie1 name=a.b key=" + b + " key=" + b, Errc::parse, "repeated"},
      {"v=ie1 name=a.b junk key=" + b, Errc::parse, "not k=v"},
      {"v=ie1 name=a.b =x key=" + b, Errc::parse, "not k=v"},
      {"v=ie1 name=a.b key=" + b + " pad=" + std::string(3000, 'x'), Errc::too_large, "2048"},
  };
  for (const auto& c : cases) {
    auto r = parse_sn_txt(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.error().code, c.code) << c.text << " -> " << r.error().to_string();
    EXPECT_NE(r.error().context.find(c.reason), std::string::npos)
        << c.text << " -> " << r.error().context;
  }
}

TEST(IeTxtRecord, RecognisesInterEdgeRecords) {
  EXPECT_TRUE(is_ie_txt("v=ie1 name=a.b"));
  EXPECT_TRUE(is_ie_txt(" v=ie9"));
  EXPECT_FALSE(is_ie_txt("v=spf1 -all"));
  EXPECT_FALSE(is_ie_txt("google-site-verification=x"));
  EXPECT_FALSE(is_ie_txt(""));
}

TEST(ReverseName, Ipv4AndIpv6) {
  EXPECT_EQ(*reverse_name("10.2.0.2"), "2.0.2.10.in-addr.arpa");
  EXPECT_EQ(*reverse_name("192.0.2.255"), "255.2.0.192.in-addr.arpa");
  EXPECT_EQ(*reverse_name("2001:db8::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  EXPECT_EQ(*reverse_name("2001:DB8:0:0:0:0:0:ABCD"),
            "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  for (const char* bad : {"", "10.2.0", "10.2.0.256", "host.example", "::g", "1.2.3.4:80",
                          "[2001:db8::1]", "2001:db8::1%eth0"}) {
    auto r = reverse_name(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
  }
  EXPECT_FALSE(reverse_name(std::string(100, '1')).ok());
}

}  // namespace
}  // namespace ie::ied
