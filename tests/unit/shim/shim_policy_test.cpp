// The preload shim's policy (shim/src/policy.hpp): prefixes, which destinations are
// steered, the policy file's format and defensive parsing, and the environment's precedence.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>
#include <vector>

#include "policy.hpp"

namespace {

using ie::shim::Policy;
using ie::shim::Prefix;

sockaddr_storage addr(const char* text, socklen_t* len) {
  sockaddr_storage ss{};
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    *len = sizeof *a4;
  } else if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    *len = sizeof *a6;
  } else {
    ADD_FAILURE() << text;
  }
  return ss;
}

bool wants(const Policy& p, const char* text) {
  socklen_t len = 0;
  const sockaddr_storage ss = addr(text, &len);
  return ie::shim::wants_destination(p, reinterpret_cast<const sockaddr*>(&ss), len);
}

Policy with_service(const char* destinations = nullptr) {
  ie::shim::PolicyInputs in;
  in.service = "ip";
  in.destinations = destinations;
  return ie::shim::make_policy(in, nullptr);
}

TEST(ShimPolicy, Prefixes) {
  Prefix p;
  ASSERT_TRUE(ie::shim::parse_prefix("10.2.0.0/16", &p));
  EXPECT_EQ(p.family, AF_INET);
  EXPECT_EQ(p.len, 16u);
  ASSERT_TRUE(ie::shim::parse_prefix("fd00::/8", &p));
  EXPECT_EQ(p.family, AF_INET6);
  ASSERT_TRUE(ie::shim::parse_prefix("192.0.2.1", &p));
  EXPECT_EQ(p.len, 32u);
  for (const char* bad :
       {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "x/8", "10.0.0.0/1a", "10.0.0/8"})
    EXPECT_FALSE(ie::shim::parse_prefix(bad, &p)) << bad;
  std::vector<Prefix> v;
  EXPECT_TRUE(ie::shim::parse_prefixes("10.2.0.0/16,fd00::/8", &v));
  EXPECT_EQ(v.size(), 2u);
  EXPECT_FALSE(ie::shim::parse_prefixes("10.2.0.0/16,nope", &v));
  EXPECT_EQ(v.size(), 2u);  // unchanged
  EXPECT_FALSE(ie::shim::parse_prefixes(",", &v));
}

TEST(ShimPolicy, LoopbackAndUnspecifiedAreNeverSteered) {
  const Policy p = with_service();
  for (const char* local :
       {"127.0.0.1", "127.255.0.9", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1", "::ffff:0.0.0.0"})
    EXPECT_FALSE(wants(p, local)) << local;
  for (const char* remote : {"10.2.0.1", "192.0.2.1", "2001:db8::1", "::ffff:10.2.0.1"})
    EXPECT_TRUE(wants(p, remote)) << remote;
  EXPECT_FALSE(ie::shim::wants_destination(p, nullptr, 0));
  sockaddr_in short_addr{};
  short_addr.sin_family = AF_INET;
  EXPECT_FALSE(ie::shim::wants_destination(p, reinterpret_cast<const sockaddr*>(&short_addr), 4));
  EXPECT_FALSE(wants(Policy{}, "10.2.0.1"));  // no service: nothing
}

TEST(ShimPolicy, DestinationPrefixesIncludingV4Mapped) {
  const Policy p = with_service("10.2.0.0/16,fd00::/8,192.0.2.128/25");
  EXPECT_TRUE(wants(p, "10.2.3.4"));
  EXPECT_TRUE(wants(p, "::ffff:10.2.3.4"));
  EXPECT_FALSE(wants(p, "10.3.0.1"));
  EXPECT_TRUE(wants(p, "fd12::1"));
  EXPECT_FALSE(wants(p, "fe80::1"));
  EXPECT_TRUE(wants(p, "192.0.2.200"));
  EXPECT_FALSE(wants(p, "192.0.2.100"));
}

TEST(ShimPolicy, EnvironmentValues) {
  ie::shim::PolicyInputs in;
  in.service = "ip-direct";
  in.options = "direct=prefer,x=1";
  in.strict = "1";
  in.debug = "1";
  Policy p = ie::shim::make_policy(in, nullptr);
  EXPECT_EQ(p.service, "ip-direct");
  EXPECT_EQ(p.options.count, 2u);
  EXPECT_TRUE(p.strict);
  EXPECT_TRUE(p.debug);

  std::vector<std::string> warnings;
  auto warn = [&](const std::string& w) { warnings.push_back(w); };
  in.service = "Bad Name";
  EXPECT_EQ(ie::shim::make_policy(in, warn).service, "");
  in.service = "ip";
  in.options = "NOPE";
  p = ie::shim::make_policy(in, warn);
  EXPECT_EQ(p.service, "ip");  // bad options are dropped, the service stays
  EXPECT_EQ(p.options.count, 0u);
  in.options = nullptr;
  in.destinations = "10.0.0.0/8,garbage";
  EXPECT_EQ(ie::shim::make_policy(in, warn).service, "");  // never widen to everything
  EXPECT_EQ(warnings.size(), 3u);
  in.service = "";
  in.destinations = nullptr;
  EXPECT_EQ(ie::shim::make_policy(in, warn).service, "");
}

TEST(ShimPolicy, FileLinesExactNameBeatsWildcard) {
  const std::string text =
      "# comment\n"
      "\n"
      "*        ip      -                  mode=any   # everyone else\n"
      "curl     ip-direct 10.2.0.0/16,fd00::/8 direct=prefer cache=off\n"
      "*        other\n";
  std::vector<std::string> warnings;
  auto warn = [&](const std::string& w) { warnings.push_back(w); };
  Policy p;
  ASSERT_TRUE(ie::shim::policy_from_file_text(text, {"curl"}, &p, warn));
  EXPECT_EQ(p.service, "ip-direct");
  EXPECT_EQ(p.destinations.size(), 2u);
  EXPECT_EQ(p.options.count, 2u);
  Policy q;
  ASSERT_TRUE(ie::shim::policy_from_file_text(text, {"wget", "wget2"}, &q, warn));
  EXPECT_EQ(q.service, "ip");  // the first `*` line
  EXPECT_TRUE(q.destinations.empty());
  EXPECT_STREQ(q.options.option[0].key, "mode");
  Policy r;
  ASSERT_TRUE(ie::shim::policy_from_file_text(text, {"python3", "curl"}, &r, warn));
  EXPECT_EQ(r.service, "ip-direct");  // the exe's name matches too
  EXPECT_TRUE(warnings.empty());
}

TEST(ShimPolicy, BadFileLinesAreIgnoredAndReported) {
  const std::string text =
      "curl\n"                 // no service
      "curl IP\n"              // bad service name
      "curl ip 10.0.0.0/99\n"  // bad destinations
      "curl ip - BAD=1\n"      // bad option
      "curl ip - novalue=\n"   // fine: an empty value
      "\x01\x02\xff garbage\n";
  std::vector<std::string> warnings;
  Policy p;
  ASSERT_TRUE(ie::shim::policy_from_file_text(
      text, {"curl"}, &p, [&](const std::string& w) { warnings.push_back(w); }));
  EXPECT_EQ(p.service, "ip");
  ASSERT_EQ(warnings.size(), 4u);
  EXPECT_NE(warnings[0].find("line 1"), std::string::npos);
  EXPECT_NE(warnings[3].find("line 4"), std::string::npos);
  Policy none;
  EXPECT_FALSE(ie::shim::policy_from_file_text("", {"curl"}, &none, nullptr));
  EXPECT_FALSE(ie::shim::policy_from_file_text(std::string(1000, '\n'), {"curl"}, &none, nullptr));
  EXPECT_EQ(none.service, "");
}

TEST(ShimPolicy, EnvironmentWinsOverTheFile) {
  const std::string text = "prog ip 10.0.0.0/8 a=1\n";
  ie::shim::PolicyInputs in;
  in.file_text = &text;
  in.program_names = {"prog"};
  Policy p = ie::shim::make_policy(in, nullptr);
  EXPECT_EQ(p.service, "ip");
  EXPECT_EQ(p.destinations.size(), 1u);
  in.destinations = "fd00::/8,192.0.2.0/24";  // IE_DESTINATIONS over the file's
  in.options = "b=2";
  p = ie::shim::make_policy(in, nullptr);
  EXPECT_EQ(p.destinations.size(), 2u);
  EXPECT_STREQ(p.options.option[0].key, "b");
  in.service = "ip-direct";  // IE_SERVICE: the file is not used at all
  in.destinations = nullptr;
  in.options = nullptr;
  p = ie::shim::make_policy(in, nullptr);
  EXPECT_EQ(p.service, "ip-direct");
  EXPECT_TRUE(p.destinations.empty());
  EXPECT_EQ(p.options.count, 0u);
}

}  // namespace
