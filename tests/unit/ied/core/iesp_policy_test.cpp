// Several IESPs: the [[policy]] table (longest prefix, then service, then the default) and
// the configuration's IESP fields, with errors that point at the bad reference.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ie/ied/config.hpp"
#include "ie/ied/iesp_policy.hpp"

namespace ie::ied {
namespace {

const std::string kKey = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const std::string kKey2 = "IB8eHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";  // kKey reversed

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}

IespPolicy table(const std::vector<FlowPolicy>& p, const std::string& def = "default") {
  auto t = IespPolicy::build(p, def);
  EXPECT_TRUE(t) << t.error().to_string();
  return t ? std::move(*t) : IespPolicy();
}

TEST(IespPolicy, EmptyTableIsTheDefault) {
  const auto t = table({}, "acme");
  EXPECT_EQ(t.choose(ip("10.2.0.1")), "acme");
  EXPECT_EQ(t.choose(ip("fd00::1"), "ip", "ip-uncached"), "acme");
  EXPECT_EQ(t.default_iesp(), "acme");
  EXPECT_FALSE(t.has_service_rules());
  EXPECT_EQ(IespPolicy().choose(ip("10.0.0.1")), "default");
}

TEST(IespPolicy, LongestPrefixWins) {
  // Listed least specific first: the order in the file does not matter.
  const auto t = table({{"10.0.0.0/8", "", "wide"},
                        {"10.2.0.0/16", "", "mid"},
                        {"10.2.3.0/24", "", "narrow"},
                        {"10.2.3.4/32", "", "host"},
                        {"fd00::/8", "", "six"}});
  EXPECT_EQ(t.choose(ip("10.9.0.1")), "wide");
  EXPECT_EQ(t.choose(ip("10.2.9.1")), "mid");
  EXPECT_EQ(t.choose(ip("10.2.3.9")), "narrow");
  EXPECT_EQ(t.choose(ip("10.2.3.4")), "host");
  EXPECT_EQ(t.choose(ip("11.0.0.1")), "default");
  EXPECT_EQ(t.choose(ip("fd00::5")), "six");
  EXPECT_EQ(t.choose(ip("fe80::1")), "default");
  // An IPv4 prefix never matches an IPv6 address, nor the reverse (::/0 is IPv6's).
  const auto z = table({{"0.0.0.0/0", "", "all4"}, {"::/0", "", "all6"}});
  EXPECT_EQ(z.choose(ip("192.0.2.1")), "all4");
  EXPECT_EQ(z.choose(ip("2001:db8::1")), "all6");
}

TEST(IespPolicy, PrefixFirstThenService) {
  const auto t = table({{"", "ip-uncached", "svc"},
                        {"10.2.0.0/16", "", "dst"},
                        {"10.2.0.0/16", "ip-via-sn", "dst-svc"},
                        {"10.3.0.0/16", "ip", "dst-ip"}});
  EXPECT_TRUE(t.has_service_rules());
  // Service only: any destination no prefix matches.
  EXPECT_EQ(t.choose(ip("192.0.2.1"), "ip", "ip-uncached"), "svc");
  EXPECT_EQ(t.choose(ip("192.0.2.1"), "ip", "ip"), "default");
  // A matching prefix beats a service-only policy; with the same prefix, the one naming the
  // service beats the one that does not.
  EXPECT_EQ(t.choose(ip("10.2.0.1"), "ip", "ip-uncached"), "dst");
  EXPECT_EQ(t.choose(ip("10.2.0.1"), "ip", "ip-via-sn"), "dst-svc");
  EXPECT_EQ(t.choose(ip("10.2.0.1")), "dst");
  // The service matches the expanded service too ("ip" of a bundle); a different service
  // falls through to the default.
  EXPECT_EQ(t.choose(ip("10.3.0.1"), "ip", "ip-via-sn"), "dst-ip");
  EXPECT_EQ(t.choose(ip("10.3.0.1"), "other", "other"), "default");
}

TEST(IespPolicy, RefusesBadTables) {
  struct Case {
    std::vector<FlowPolicy> p;
    std::string def;
    std::string expect;
  };
  const Case cases[] = {
      {{{"10.2.0.1/16", "", "a"}}, "default", "policy 1: prefix \"10.2.0.1/16\" is not a prefix"},
      {{{"", "", "a"}}, "default", "policy 1: needs prefix and/or service"},
      {{{"10.2.0.0/16", "", "A B"}}, "default", "iesp \"A B\" is not an IESP name"},
      {{{"10.2.0.0/16", "", "a"}, {"10.2.0.0/16", "", "b"}},
       "default",
       "policy 2: the same prefix and service as another"},
      {{}, "", "default IESP \"\" is not an IESP name"},
  };
  for (const auto& c : cases) {
    auto r = IespPolicy::build(c.p, c.def);
    ASSERT_FALSE(r) << c.expect;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_NE(r.error().context.find(c.expect), std::string::npos) << r.error().context;
  }
  std::vector<FlowPolicy> many(kMaxFlowPolicies + 1, FlowPolicy{"", "ip", "a"});
  EXPECT_FALSE(IespPolicy::build(many, "a"));
}

TEST(IespPolicy, NameSyntax) {
  EXPECT_TRUE(valid_iesp_name("default"));
  EXPECT_TRUE(valid_iesp_name("acme-edge_2.eu"));
  EXPECT_FALSE(valid_iesp_name(""));
  EXPECT_FALSE(valid_iesp_name("Acme"));
  EXPECT_FALSE(valid_iesp_name("a b"));
  EXPECT_FALSE(valid_iesp_name(std::string(32, 'a')));
  EXPECT_TRUE(valid_iesp_name(std::string(31, 'a')));
}

// Each [[sn]] of one file needs its own key (config.cpp refuses a shared one).
std::string sn(const std::string& name, const std::string& iesp, const std::string& key = kKey) {
  std::string s =
      "[[sn]]\nname = \"" + name + "\"\nendpoint = \"192.0.2.1:1\"\nkey = \"" + key + "\"\n";
  if (!iesp.empty()) s += "iesp = \"" + iesp + "\"\n";
  return s;
}

TEST(IespConfig, OldConfigsAreTheDefaultIesp) {
  auto c = parse_ied_config(sn("a.b", ""), "x.toml");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->sns.at(0).iesp, "default");
  EXPECT_EQ(c->default_iesp, "default");
  EXPECT_TRUE(c->policies.empty());
  EXPECT_EQ(config_iesps(*c), (std::vector<std::string>{"default"}));
  // DNS discovery only: its candidates are the default IESP's.
  auto d = parse_ied_config("[discovery]\ndns_domain = \"dom1.example\"\n", "x.toml");
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(config_iesps(*d), (std::vector<std::string>{"default"}));
}

TEST(IespConfig, SeveralIespsAndPolicies) {
  const std::string text =
      "[discovery]\ndns_domain = \"dom2.example\"\niesp = \"beta\"\n"
      "default_iesp = \"acme\"\n" +
      sn("dom1.sn1", "acme") + sn("dom1.sn2", "acme", kKey2) +
      "[[policy]]\nprefix = \"10.3.0.0/16\"\niesp = \"beta\"\n"
      "[[policy]]\nservice = \"ip-uncached\"\niesp = \"beta\"\n"
      "[[policy]]\nprefix = \"10.3.1.0/24\"\nservice = \"ip\"\n"
      "iesp = \"acme\"\n";
  auto c = parse_ied_config(text, "x.toml");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->discovery_iesp, "beta");
  EXPECT_EQ(c->default_iesp, "acme");
  EXPECT_EQ(config_iesps(*c), (std::vector<std::string>{"acme", "beta"}));
  ASSERT_EQ(c->policies.size(), 3u);
  EXPECT_EQ(c->policies[0], (FlowPolicy{"10.3.0.0/16", "", "beta"}));
  EXPECT_EQ(c->policies[1], (FlowPolicy{"", "ip-uncached", "beta"}));
  EXPECT_EQ(c->policies[2], (FlowPolicy{"10.3.1.0/24", "ip", "acme"}));
  const auto t = table(c->policies, c->default_iesp);
  EXPECT_EQ(t.choose(ip("10.3.1.1")), "acme");
  EXPECT_EQ(t.choose(ip("10.3.2.1")), "beta");
  EXPECT_EQ(t.choose(ip("10.9.0.1")), "acme");
  EXPECT_EQ(t.choose(ip("10.9.0.1"), "ip", "ip-uncached"), "beta");
}

// [[iesp]] tables: more IESPs found in DNS, each under its own domain. dns_discoveries lists
// discovery.dns_domain's first; a policy may name them; without "dns" in the order none runs.
TEST(IespConfig, EachIespMayHaveItsOwnDnsDomain) {
  const std::string text =
      "[discovery]\ndns_domain = \"dom1.example\"\niesp = \"acme\"\ndefault_iesp = \"acme\"\n"
      "[[iesp]]\nname = \"beta\"\ndns_domain = \"dom2.example\"\n"
      "[[iesp]]\nname = \"gamma\"\ndns_domain = \"gamma.example\"\n"
      "[[policy]]\nprefix = \"10.3.0.0/16\"\niesp = \"gamma\"\n";
  auto c = parse_ied_config(text, "x.toml");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(config_iesps(*c), (std::vector<std::string>{"acme", "beta", "gamma"}));
  const auto d = dns_discoveries(*c);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0], (IedConfig::IespDns{"acme", "dom1.example"}));
  EXPECT_EQ(d[1], (IedConfig::IespDns{"beta", "dom2.example"}));
  EXPECT_EQ(d[2], (IedConfig::IespDns{"gamma", "gamma.example"}));
  // [[iesp]] alone is enough discovery; its IESP may be the default one.
  auto only =
      parse_ied_config("[[iesp]]\nname = \"default\"\ndns_domain = \"d.example\"\n", "x.toml");
  ASSERT_TRUE(only) << only.error().to_string();
  EXPECT_EQ(dns_discoveries(*only), (std::vector<IedConfig::IespDns>{{"default", "d.example"}}));
  // Without "dns" in the order there is no DNS discovery (and [[iesp]] is refused, below).
  auto no_dns = parse_ied_config(sn("a.b", "") +
                                     "[discovery]\norder = [\"static\"]\n"
                                     "dns_domain = \"d.example\"\n",
                                 "x.toml");
  ASSERT_TRUE(no_dns) << no_dns.error().to_string();
  EXPECT_TRUE(dns_discoveries(*no_dns).empty());
}

// [[iesp]] anycast: an IESP's own anycast addresses. anycast_targets lists discovery.anycast's
// first (for discovery.iesp), each with its IESP and its place in that IESP's list.
TEST(IespConfig, EachIespMayHaveItsOwnAnycastAddresses) {
  const std::string text =
      "[discovery]\norder = [\"anycast\", \"dns\"]\nanycast = [\"192.0.2.1:1000\"]\n"
      "iesp = \"acme\"\ndefault_iesp = \"acme\"\n"
      "[[iesp]]\nname = \"beta\"\nanycast = [\"192.0.2.2:1000\", \"[2001:db8::2]:1000\"]\n"
      "[[iesp]]\nname = \"gamma\"\ndns_domain = \"g.example\"\nanycast = [\"192.0.2.3:1000\"]\n";
  auto c = parse_ied_config(text, "x.toml");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(config_iesps(*c), (std::vector<std::string>{"acme", "beta", "gamma"}));
  EXPECT_EQ(anycast_targets(*c), (std::vector<AnycastTarget>{{"192.0.2.1:1000", "acme", 0},
                                                             {"192.0.2.2:1000", "beta", 0},
                                                             {"[2001:db8::2]:1000", "beta", 1},
                                                             {"192.0.2.3:1000", "gamma", 0}}));
  EXPECT_EQ(dns_discoveries(*c), (std::vector<IedConfig::IespDns>{{"gamma", "g.example"}}));
  // Anycast of an [[iesp]] alone is discovery enough.
  auto only = parse_ied_config(
      "[discovery]\norder = [\"anycast\"]\n"
      "[[iesp]]\nname = \"default\"\nanycast = [\"192.0.2.9:1\"]\n",
      "x.toml");
  ASSERT_TRUE(only) << only.error().to_string();
  EXPECT_EQ(anycast_targets(*only), (std::vector<AnycastTarget>{{"192.0.2.9:1", "default", 0}}));
}

// Bad references and fields: FILE:LINE:COL and what is wrong.
TEST(IespConfig, ErrorsPointAtTheProblem) {
  struct Case {
    std::string text;
    std::string expect;
  };
  const std::string a = sn("a.b", "acme");  // lines 1..5
  const Case cases[] = {
      {a + "[[policy]]\nprefix = \"10.0.0.0/8\"\niesp = \"nope\"\n",
       "f.toml:8:8: policy.iesp \"nope\" is unknown: no [[sn]] or discovery serves it (known: "
       "acme)"},
      {a + "[discovery]\ndefault_iesp = \"acme\"\n[[policy]]\nservice = \"ip\"\niesp = \"x\"\n",
       "f.toml:10:8: policy.iesp \"x\" is unknown"},
      {a + "[discovery]\ndefault_iesp = \"zeta\"\n",
       "f.toml:7:16: discovery.default_iesp \"zeta\" is unknown"},
      {a,
       "no SN serves the IESP \"default\" (flows no [[policy]] names): set "
       "discovery.default_iesp to one of acme"},
      {sn("a.b", "Bad Name"), "f.toml:5:8: sn.iesp \"Bad Name\" is not an IESP name"},
      {sn("a.b", "") + "[discovery]\niesp = \"beta\"\n",
       "f.toml:6:8: discovery.iesp is set but neither DNS nor anycast discovery is configured"},
      {sn("a.b", "") + "[[policy]]\niesp = \"default\"\n",
       "f.toml:5:1: policy needs prefix and/or service"},
      {sn("a.b", "") + "[[policy]]\nprefix = \"10.0.0.0/8\"\n", "missing policy.iesp"},
      {sn("a.b", "") + "[[policy]]\nprefix = \"10.0.0.1/8\"\niesp = \"default\"\n",
       "f.toml:6:10: policy.prefix \"10.0.0.1/8\" is not an address or prefix"},
      {sn("a.b", "") + "[[policy]]\nservice = \"teleport\"\niesp = \"default\"\n",
       "f.toml:6:11: policy.service: unknown service \"teleport\""},
      {sn("a.b", "") + "[[policy]]\nprefix = \"10.0.0.0/8\"\niesp = \"default\"\nbogus = 1\n",
       "unknown key \"bogus\""},
      {sn("a.b", "") + "[[policy]]\nprefix = \"10.0.0.0/8\"\niesp = \"default\"\n"
                       "[[policy]]\nprefix = \"10.0.0.0/8\"\niesp = \"default\"\n",
       "f.toml:8:1: policy for prefix \"10.0.0.0/8\" and service \"\" twice"},
      {a + "[[iesp]]\ndns_domain = \"d.example\"\n", "f.toml:6:1: missing iesp.name"},
      {a + "[[iesp]]\nname = \"beta\"\n",
       "f.toml:6:1: iesp \"beta\" needs dns_domain (the domain its SNs are listed under) "
       "and/or anycast"},
      {a + "[[iesp]]\nname = \"beta\"\ndns_domain = \"\"\n", "f.toml:8:14: iesp.dns_domain: empty"},
      {a + "[[iesp]]\nname = \"Beta!\"\ndns_domain = \"d.example\"\n",
       "f.toml:7:8: iesp.name \"Beta!\" is not an IESP name"},
      {a + "[[iesp]]\nname = \"beta\"\ndns_domain = \"d.example\"\nbogus = []\n",
       "unknown key \"bogus\""},
      {a + "[[iesp]]\nname = \"beta\"\nanycast = []\n", "f.toml:8:11: iesp.anycast: empty"},
      {a + "[[iesp]]\nname = \"beta\"\nanycast = [\"192.0.2.1\"]\n",
       "f.toml:8:12: iesp.anycast: \"192.0.2.1\" is not a numeric IP:PORT"},
      {a + "[discovery]\ndefault_iesp = \"acme\"\nanycast = [\"192.0.2.1:1\"]\niesp = \"x\"\n"
           "[[iesp]]\nname = \"beta\"\nanycast = [\"192.0.2.1:1\"]\n",
       "f.toml:12:12: iesp.anycast: \"192.0.2.1:1\" is another IESP's anycast address"},
      {a + "[[iesp]]\nname = \"beta\"\nanycast = [\"192.0.2.1:1\"]\n"
           "[[iesp]]\nname = \"gamma\"\nanycast = [\"192.0.2.1:1\"]\n",
       "f.toml:11:12: iesp.anycast: \"192.0.2.1:1\" is another IESP's anycast address"},
      {a + "[discovery]\norder = [\"static\", \"dns\"]\ndefault_iesp = \"acme\"\n"
           "[[iesp]]\nname = \"beta\"\nanycast = [\"192.0.2.1:1\"]\n",
       "f.toml:11:11: iesp.anycast is set but discovery.order does not list \"anycast\""},
      {a + "[discovery]\nanycast = [\"192.0.2.1:1\"]\niesp = \"acme\"\n"
           "[[iesp]]\nname = \"acme\"\nanycast = [\"192.0.2.2:1\"]\n",
       "f.toml:10:8: iesp.name \"acme\" is discovery.iesp, whose anycast addresses are "
       "discovery.anycast"},
      {a + "[[iesp]]\nname = \"beta\"\ndns_domain = \"d.example\"\n"
           "[[iesp]]\nname = \"beta\"\ndns_domain = \"e.example\"\n",
       "f.toml:10:8: iesp.name \"beta\" twice"},
      {a + "[discovery]\ndns_domain = \"d.example\"\niesp = \"acme\"\n"
           "[[iesp]]\nname = \"acme\"\ndns_domain = \"e.example\"\n",
       "f.toml:10:8: iesp.name \"acme\" is discovery.iesp, which discovery.dns_domain already "
       "serves"},
      {a + "[discovery]\norder = [\"static\"]\ndefault_iesp = \"acme\"\n"
           "[[iesp]]\nname = \"beta\"\ndns_domain = \"d.example\"\n",
       "f.toml:11:14: iesp.dns_domain is set but discovery.order does not list \"dns\""},
  };
  for (const auto& c : cases) {
    auto r = parse_ied_config(c.text, "f.toml");
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().context.find(c.expect), std::string::npos)
        << "got: " << r.error().context << "\nwanted: " << c.expect;
  }
}

}  // namespace
}  // namespace ie::ied
