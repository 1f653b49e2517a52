// ied.toml parsing: a full valid file, defaults, and errors that point at the right place.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "ie/crypto/key_file.hpp"
#include "ie/ied/config.hpp"

namespace ie::ied {
namespace {

const std::string kKey = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

std::string full() {
  return R"(
[daemon]
state_dir = "/var/lib/ie-test"
socket = "/run/ie-test.sock"
admin_group = "interedge"
listen = "0.0.0.0:0"

[tun]
name = "ie7"
mtu = 1400

[host]
addresses = ["10.1.0.2", "fd00::2"]
prefixes = ["10.2.0.0/16", "fd01::/64"]

[discovery]
order = ["dns", "static"]
dns_domain = "dom1.example"
dns_servers = ["127.0.0.1:5353"]
peer_dns = true

[[sn]]
name = "dom1.sn1"
endpoint = "192.0.2.1:1000"
key = ")" +
         kKey + R"("
priority = 5
weight = 10

[[peer]]
prefix = "10.2.0.0/24"
sn = "dom2.sn1"
key = ")" +
         kKey + R"("

[timers]
keepalive_ms = 500
dead_after_ms = 2000

[steering]
enabled = true
table = 9000
rule_priority = 9000

[[steering.policy]]
cgroup = "/sys/fs/cgroup/apps.slice"
prefixes = ["10.2.0.0/16", "fd02::/32"]
service = "ip-via-sn"

[[steering.policy]]
cgroup = "/sys/fs/cgroup/other.slice"
prefixes = ["10.3.0.0/16"]
)";
}

TEST(IedConfig, FullFile) {
  auto c = parse_ied_config(full(), "ied.toml");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->state_dir, "/var/lib/ie-test");
  EXPECT_EQ(c->socket, "/run/ie-test.sock");
  EXPECT_EQ(c->admin_group, "interedge");
  EXPECT_EQ(c->tun_name, "ie7");
  EXPECT_EQ(c->tun_mtu, 1400u);
  EXPECT_EQ(c->addresses.size(), 2u);
  EXPECT_EQ(c->prefixes[1], "fd01::/64");
  ASSERT_EQ(c->order.size(), 2u);
  EXPECT_EQ(c->order[0], DiscoverySource::dns);
  EXPECT_TRUE(c->peer_dns);
  ASSERT_EQ(c->sns.size(), 1u);
  EXPECT_EQ(c->sns[0].priority, 5);
  EXPECT_EQ(c->sns[0].key, *crypto::key_from_base64(kKey));
  ASSERT_EQ(c->peers.size(), 1u);
  EXPECT_EQ(c->peers[0].sn, "dom2.sn1");
  EXPECT_EQ(c->keepalive, std::chrono::milliseconds(500));
  EXPECT_EQ(c->dead_after, std::chrono::milliseconds(2000));
  EXPECT_TRUE(c->steering.enabled);
  EXPECT_EQ(c->steering.table, 9000u);
  EXPECT_EQ(c->steering.rule_priority, 9000u);
  ASSERT_EQ(c->steering.policies.size(), 2u);
  EXPECT_EQ(c->steering.policies[0].cgroup, "/sys/fs/cgroup/apps.slice");
  EXPECT_EQ(c->steering.policies[0].prefixes[1], "fd02::/32");
  EXPECT_EQ(c->steering.policies[0].service, "ip-via-sn");
  EXPECT_EQ(c->steering.policies[1].service, "ip");
}

TEST(IedConfig, MinimalFileGetsDefaults) {
  auto c = parse_ied_config(
      "[[sn]]\nname = \"a.b\"\nendpoint = \"192.0.2.1:1\"\nkey = \"" + kKey + "\"\n", "x.toml");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->state_dir, "/var/lib/interedge");
  EXPECT_EQ(c->socket, "/run/interedge/ied.sock");
  EXPECT_EQ(c->tun_name, "ie0");
  EXPECT_EQ(c->tun_mtu, 0u);
  EXPECT_TRUE(c->steering.enabled);
  EXPECT_EQ(c->steering.table, 7300u);
  EXPECT_TRUE(c->steering.policies.empty());
}

TEST(IedConfig, AnycastOnly) {
  auto c = parse_ied_config(
      "[discovery]\norder = [\"anycast\"]\nanycast = [\"192.0.2.1:1000\", "
      "\"[2001:db8::1]:1000\"]\nanycast_interval_s = 5\n",
      "x.toml");
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_EQ(c->order.size(), 1u);
  EXPECT_EQ(c->order[0], DiscoverySource::anycast);
  EXPECT_EQ(c->anycast, (std::vector<std::string>{"192.0.2.1:1000", "[2001:db8::1]:1000"}));
  EXPECT_EQ(c->anycast_interval, std::chrono::seconds(5));
  EXPECT_TRUE(c->sns.empty());
  EXPECT_STREQ(discovery_source_name(DiscoverySource::anycast), "anycast");
  EXPECT_STREQ(discovery_source_name(DiscoverySource::lookup), "lookup");
}

TEST(IedConfig, AnycastDefaults) {
  // The default order lists anycast (last), so an anycast list alone is enough.
  auto c = parse_ied_config("[discovery]\nanycast = [\"192.0.2.1:1000\"]\n", "x.toml");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->order,
            (std::vector<DiscoverySource>{DiscoverySource::static_config, DiscoverySource::dns,
                                          DiscoverySource::anycast}));
  EXPECT_EQ(c->anycast_interval, std::chrono::seconds(60));
  EXPECT_EQ(c->rtt_survey, std::chrono::seconds(300));
}

TEST(IedConfig, RttSurvey) {
  for (const int v : {0, 1, 86400}) {
    auto c = parse_ied_config(
        "[discovery]\nanycast = [\"192.0.2.1:1000\"]\nrtt_survey_s = " + std::to_string(v) + "\n",
        "x.toml");
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ(c->rtt_survey, std::chrono::seconds(v));
  }
}

// Each bad input: the error names file, line and column, and says what is wrong.
TEST(IedConfig, ErrorsPointAtTheProblem) {
  struct Case {
    std::string text;
    std::string expect;  // a substring of the message
  };
  const std::string sn =
      "[[sn]]\nname = \"a.b\"\nendpoint = \"192.0.2.1:1\"\nkey = \"" + kKey + "\"\n";
  const Case cases[] = {
      {"[daemon\n", "f.toml:1:"},
      {sn + "[tun]\nmtu = 100\n", "f.toml:6:7: tun.mtu must be 0 (automatic) or 1280..65535"},
      {sn + "[tun]\nname = \"a/b\"\n", "f.toml:6:8: tun.name"},
      {sn + "[host]\naddresses = [\"10.0.0.300\"]\n", "is not an IP address"},
      {sn + "[host]\nprefixes = [\"10.0.0.1/8\"]\n", "host bits must be zero"},
      {sn + "[discovery]\norder = [\"carrier-pigeon\"]\n",
       "unknown source \"carrier-pigeon\" (known: static, dns, anycast)"},
      {sn + "[discovery]\norder = [\"dns\", \"dns\"]\n", "twice"},
      {sn + "[bogus]\n", "unknown key \"bogus\""},
      {sn + "[discovery]\norder = [\"lookup\"]\n",
       "f.toml:6:10: discovery.order: the lookup service source does not exist yet"},
      {sn + "[discovery]\nanycast = [\"192.0.2.1\"]\n",
       "f.toml:6:12: discovery.anycast: \"192.0.2.1\" is not a numeric IP:PORT"},
      {sn + "[discovery]\nanycast = [\"0.0.0.0:1000\"]\n", "(port and address not 0)"},
      {sn + "[discovery]\nanycast = [\"192.0.2.1:0\"]\n", "(port and address not 0)"},
      {sn + "[discovery]\nanycast = [\"[::]:1000\"]\n", "(port and address not 0)"},
      {sn + "[discovery]\nanycast = [\"sn.example:1000\"]\n", "is not a numeric IP:PORT"},
      {sn + "[discovery]\nanycast = [\"192.0.2.1:1\", \"192.0.2.1:1\"]\n",
       "f.toml:6:27: discovery.anycast: \"192.0.2.1:1\" twice"},
      {sn + "[discovery]\nanycast = \"192.0.2.1:1\"\n", "discovery.anycast"},
      {sn + "[discovery]\nanycast_interval_s = 0\n", "discovery.anycast_interval_s must be 1.."},
      {sn + "[discovery]\nrtt_survey_s = -1\n",
       "f.toml:6:16: discovery.rtt_survey_s must be 0..86400"},
      {sn + "[discovery]\nrtt_survey_s = 86401\n", "discovery.rtt_survey_s must be 0..86400"},
      {sn + "[discovery]\nrtt_survey_s = \"300\"\n", "discovery.rtt_survey_s"},
      {sn + "[discovery]\norder = [\"static\"]\nanycast = [\"192.0.2.1:1\"]\n",
       "f.toml:7:11: discovery.anycast is set but discovery.order does not list \"anycast\""},
      {"[discovery]\norder = [\"anycast\"]\n",
       "no SN: configure [[sn]] entries, "
       "discovery.dns_domain, discovery.anycast or an [[iesp]] with dns_domain or anycast"},
      {sn + "[daemon]\nstate_dir = \"relative\"\n", "absolute path"},
      {"[[sn]]\nname = \"A.b\"\nendpoint = \"192.0.2.1:1\"\nkey = \"" + kKey + "\"\n",
       "f.toml:2:8: sn.name \"A.b\" is not DOM.SN"},
      {"[[sn]]\nname = \"a.b\"\nendpoint = \"nope\"\nkey = \"" + kKey + "\"\n", "sn.endpoint"},
      {"[[sn]]\nname = \"a.b\"\nendpoint = \"192.0.2.1:1\"\nkey = \"short\"\n",
       "sn.key: not a base64 32-byte key"},
      {"[[sn]]\nname = \"a.b\"\nendpoint = \"192.0.2.1:1\"\n", "missing sn.key"},
      {"[host]\naddresses = [\"10.0.0.1\"]\n", "no SN"},
      {sn + "[timers]\nkeepalive_ms = 1000\ndead_after_ms = 500\n", "must be larger"},
      {sn + "[[peer]]\nprefix = \"10.2.0.0/24\"\nsn = \"x\"\nkey = \"" + kKey + "\"\n",
       "peer.sn \"x\" is not DOM.SN"},
      {sn + "[[peer]]\nprefix = \"10.2.0.0/24\"\nsn = \"a.b\"\nendpoint = \"10.0.0.1:1\"\n",
       "peer.endpoint needs peer.key"},
      {sn + "[[peer]]\nprefix = \"10.2.0.0/24\"\nsn = \"a.b\"\nkey = \"" + kKey +
           "\"\nendpoint = \"10.0.0.1\"\n",
       "peer.endpoint: expected a numeric IP:PORT"},
      {sn + "[steering]\nenabled = 1\n", "steering.enabled must be a boolean"},
      {sn + "[steering]\ntable = 254\n", "steering.table must be 256.."},
      {sn + "[steering]\nrule_priority = 40000\n", "steering.rule_priority must be 1..32765"},
      {sn + "[steering]\nbogus = 1\n", "unknown key \"bogus\""},
      {sn + "[[steering.policy]]\nprefixes = [\"10.2.0.0/16\"]\n", "needs cgroup"},
      {sn + "[[steering.policy]]\ncgroup = \"rel\"\nprefixes = [\"10.2.0.0/16\"]\n",
       "absolute path"},
      {sn + "[[steering.policy]]\ncgroup = \"/c\"\n", "needs prefixes"},
      {sn + "[[steering.policy]]\ncgroup = \"/c\"\nprefixes = [\"10.2.0.1/16\"]\n",
       "host bits must be zero"},
      {sn + "[[steering.policy]]\ncgroup = \"/c\"\nprefixes = [\"10.2.0.0/16\"]\nservice = "
            "\"teleport\"\n",
       "unknown service \"teleport\""},
      {sn + "[[steering.policy]]\ncgroup = \"/c\"\nprefixes = [\"10.2.0.0/16\"]\n"
            "[[steering.policy]]\ncgroup = \"/c\"\nprefixes = [\"10.3.0.0/16\"]\n",
       "steering.policy.cgroup \"/c\" twice"},
      // Two SNs with one key: the error points at the second key and names the first.
      {sn + "[[sn]]\nname = \"a.c\"\nendpoint = \"192.0.2.2:1\"\nkey = \"" + kKey + "\"\n",
       "f.toml:8:7: sn.key of \"a.c\" is also the key of \"a.b\" (f.toml:4:7)"},
  };
  for (const auto& c : cases) {
    auto r = parse_ied_config(c.text, "f.toml");
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().context.find(c.expect), std::string::npos)
        << "got: " << r.error().context << "\nwanted: " << c.expect;
  }
}

TEST(IedConfig, SnsWithDistinctKeysAreAccepted) {
  const std::string other = "AgIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
  auto c = parse_ied_config("[[sn]]\nname = \"a.b\"\nendpoint = \"192.0.2.1:1\"\nkey = \"" + kKey +
                                "\"\n[[sn]]\nname = \"a.c\"\nendpoint = \"192.0.2.2:1\"\n" +
                                "key = \"" + other + "\"\n",
                            "f.toml");
  ASSERT_TRUE(c) << c.error().context;
  ASSERT_EQ(c->sns.size(), 2u);
  EXPECT_NE(c->sns[0].key, c->sns[1].key);
}

TEST(IedConfig, TheDocumentedExampleIsValid) {
  auto c = load_ied_config(std::string(IE_SOURCE_DIR) + "/docs/examples/ied.toml");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->sns.size(), 1u);
  EXPECT_EQ(c->peers.size(), 1u);
}

// A FIFO (or a device, or a directory) is refused at once: checking a path must never block.
TEST(IedConfig, RefusesWhatIsNotARegularFile) {
  const std::string fifo = ::testing::TempDir() + "ied_cfg_fifo_" + std::to_string(::getpid());
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& p : {fifo, std::string("/dev/zero"), std::string("/")}) {
    auto c = load_ied_config(p);
    ASSERT_FALSE(c) << p;
    EXPECT_EQ(c.error().code, Errc::invalid_argument) << p;
  }
  ::unlink(fifo.c_str());
  auto nul = load_ied_config(std::string("/etc/hosts\0.bak", 15));
  ASSERT_FALSE(nul);
  EXPECT_EQ(nul.error().code, Errc::invalid_argument);
}

TEST(IedConfig, MissingFileNamesThePath) {
  auto c = load_ied_config("/nonexistent/ied.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::not_found);
  EXPECT_NE(c.error().to_string().find("/nonexistent/ied.toml"), std::string::npos);
}

}  // namespace
}  // namespace ie::ied
