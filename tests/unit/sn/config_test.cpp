// iesn's configuration (ie/sn/config.hpp): a full file, defaults, every error class with the
// file:line:col it must point at, key files (modes, contents, round trips) and prefixes.
#include "ie/sn/config.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ie::sn {
namespace {

noise::KeyPair fixed_key(std::uint8_t seed) {
  std::array<std::uint8_t, 32> priv{};
  for (std::size_t i = 0; i < priv.size(); ++i)
    priv[i] = static_cast<std::uint8_t>(seed + i);
  return noise::KeyPair::from_private(std::span<const std::uint8_t, 32>(priv));
}
const std::string kKey2 = key_to_base64(fixed_key(2).pub);
const std::string kKey3 = key_to_base64(fixed_key(3).pub);
const std::string kKey9 = key_to_base64(fixed_key(9).pub);

// Lines 1-3; tests append from line 4.
const std::string kBase =
    "[sn]\n"
    "name = \"dom1.sn1\"\n"
    "private_key_file = \"/etc/interedge/iesn.key\"\n";

std::string error_of(const std::string& text) {
  auto r = parse_config(text, "t.toml");
  EXPECT_FALSE(r.ok()) << "accepted:\n" << text;
  return r.ok() ? std::string() : r.error().context;
}

// The error starts with "t.toml:LINE:COL: " and contains `what`.
#define EXPECT_CONFIG_ERROR(text, line, col, what)                                               \
  do {                                                                                           \
    const std::string e_ = error_of(text);                                                       \
    const std::string at_ = "t.toml:" + std::to_string(line) + ":" + std::to_string(col) + ": "; \
    EXPECT_EQ(e_.rfind(at_, 0), 0u) << "expected at " << at_ << " got: " << e_;                  \
    EXPECT_NE(e_.find(what), std::string::npos) << "expected \"" << (what) << "\" in: " << e_;   \
  } while (0)

SnConfig parse_ok(const std::string& text) {
  auto r = parse_config(text, "t.toml");
  EXPECT_TRUE(r.ok()) << r.error().context << "\n" << text;
  return r.ok() ? std::move(*r) : SnConfig{};
}

TEST(Config, FullFileParses) {
  const std::string text = R"([sn]
name = "dom1.sn1"
listen = "[::1]:1000"
workers = 4
private_key_file = "/etc/interedge/iesn.key"
state_db = "/var/lib/interedge/iesn.db"
control_socket = "/run/interedge/other.sock"
cache_capacity = 5000
host_prefixes = ["10.1.0.0/16", "fd00:1::/32"]
psp_contexts_per_worker = 16384

[edomain]
gateway = "dom1.sn2"
rekey_seconds = 30
direct_pipes = true
direct_idle_seconds = 45

[[edomain.sn]]
name = "dom1.sn2"
address = "10.0.0.2:1000"
public_key = ")" + kKey2 + R"("

[[edomain.sn]]
name = "dom1.sn3"
address = "[fd00::3]:1001"
public_key = ")" + kKey3 + R"("

[[peer]]
edomain = "dom2"
gateway = "dom2.sn1"
address = "10.9.0.2:1000"
public_key = ")" + kKey9 + R"("

[[route]]
prefix = "10.2.0.0/16"
sn = "dom2.sn1"

[[route]]
prefix = "10.1.128.0/17"
sn = "dom1.sn3"

[modules]
load = ["/usr/lib/interedge/modules/libfoo.so"]

[modules.foo]
to = "dom2.sn1"
count = 3
ratio = 0.5
on = true
)";
  const SnConfig c = parse_ok(text);
  EXPECT_EQ(c.name, "dom1.sn1");
  EXPECT_EQ(c.edomain, "dom1");
  EXPECT_EQ(c.listen, "[::1]:1000");
  EXPECT_EQ(c.workers, 4u);
  EXPECT_EQ(c.private_key_file, "/etc/interedge/iesn.key");
  EXPECT_EQ(c.state_db, "/var/lib/interedge/iesn.db");
  EXPECT_EQ(c.control_socket, "/run/interedge/other.sock");
  EXPECT_EQ(c.cache_capacity, 5000u);
  EXPECT_EQ(c.psp_contexts_per_worker, 16384u);
  ASSERT_EQ(c.host_prefixes.size(), 2u);
  EXPECT_EQ(c.host_prefixes[0].str(), "10.1.0.0/16");
  EXPECT_EQ(c.host_prefixes[1].str(), "fd00:1::/32");
  EXPECT_EQ(c.gateway, "dom1.sn2");
  EXPECT_FALSE(c.is_gateway());
  EXPECT_EQ(c.rekey_seconds, 30u);
  EXPECT_TRUE(c.direct_pipes);
  EXPECT_EQ(c.direct_idle_seconds, 45u);
  ASSERT_EQ(c.domain_sns.size(), 2u);
  EXPECT_EQ(c.domain_sns[0].name, "dom1.sn2");
  EXPECT_EQ(c.domain_sns[0].address, "10.0.0.2:1000");
  EXPECT_EQ(c.domain_sns[0].public_key, fixed_key(2).pub);
  EXPECT_EQ(c.domain_sns[1].name, "dom1.sn3");
  EXPECT_EQ(c.domain_sns[1].address, "[fd00::3]:1001");
  EXPECT_EQ(c.domain_sns[1].public_key, fixed_key(3).pub);
  ASSERT_EQ(c.peers.size(), 1u);
  EXPECT_EQ(c.peers[0].edomain, "dom2");
  EXPECT_EQ(c.peers[0].gateway.name, "dom2.sn1");
  EXPECT_EQ(c.peers[0].gateway.address, "10.9.0.2:1000");
  EXPECT_EQ(c.peers[0].gateway.public_key, fixed_key(9).pub);
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[0].prefix.str(), "10.2.0.0/16");
  EXPECT_EQ(c.routes[0].sn, "dom2.sn1");
  EXPECT_EQ(c.routes[1].prefix.str(), "10.1.128.0/17");
  EXPECT_EQ(c.routes[1].sn, "dom1.sn3");
  ASSERT_EQ(c.module_paths.size(), 1u);
  EXPECT_EQ(c.module_paths[0], "/usr/lib/interedge/modules/libfoo.so");
  const std::map<std::string, std::string> foo{
      {"to", "dom2.sn1"}, {"count", "3"}, {"ratio", "0.5"}, {"on", "true"}};
  ASSERT_EQ(c.module_config.count("foo"), 1u);
  EXPECT_EQ(c.module_config.at("foo"), foo);
}

TEST(Config, Defaults) {
  const SnConfig c = parse_ok(kBase);
  EXPECT_EQ(c.name, "dom1.sn1");
  EXPECT_EQ(c.edomain, "dom1");
  EXPECT_EQ(c.listen, "0.0.0.0:1000");
  EXPECT_EQ(c.workers, 0u);
  EXPECT_EQ(c.state_db, "");
  EXPECT_EQ(c.control_socket, kDefaultControlSocket);
  EXPECT_EQ(c.cache_capacity, 1000000u);
  EXPECT_EQ(c.psp_contexts_per_worker, crypto::psp::kDefaultContextCacheCapacity);
  EXPECT_TRUE(c.host_prefixes.empty());
  EXPECT_EQ(c.gateway, "dom1.sn1");  // an edomain of one SN: this SN is its gateway
  EXPECT_TRUE(c.is_gateway());
  EXPECT_EQ(c.rekey_seconds, 180u);
  EXPECT_FALSE(c.direct_pipes);
  EXPECT_EQ(c.direct_idle_seconds, 120u);
  EXPECT_TRUE(c.domain_sns.empty());
  EXPECT_TRUE(c.peers.empty());
  EXPECT_TRUE(c.routes.empty());
  EXPECT_TRUE(c.module_paths.empty());
  EXPECT_TRUE(c.module_config.empty());
}

TEST(Config, EmptyPathsMeanDisabled) {
  const SnConfig c = parse_ok(kBase + "state_db = \"\"\ncontrol_socket = \"\"\n");
  EXPECT_EQ(c.state_db, "");
  EXPECT_EQ(c.control_socket, "");
}

TEST(Config, InlineTablesAreTablesToo) {
  const SnConfig c = parse_ok(
      kBase +
      "[edomain]\nsn = [{name = \"dom1.sn2\", address = \"10.0.0.2:1000\", public_key = \"" +
      kKey2 + "\"}]\n");
  ASSERT_EQ(c.domain_sns.size(), 1u);
  EXPECT_EQ(c.domain_sns[0].name, "dom1.sn2");
}

TEST(Config, SyntaxErrorsArePositioned) {
  auto r = parse_config("[sn]\nname = \"dom1.sn1\"\nworkers = = 3\n", "t.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::parse);
  EXPECT_EQ(r.error().context.rfind("t.toml:3:", 0), 0u) << r.error().context;
  auto u = parse_config("[sn\n", "t.toml");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code, Errc::parse);
  EXPECT_EQ(u.error().context.rfind("t.toml:1:", 0), 0u) << u.error().context;
  // A key defined twice is a TOML error.
  auto d = parse_config(kBase + "name = \"dom1.sn2\"\n", "t.toml");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, Errc::parse);
  EXPECT_EQ(d.error().context.rfind("t.toml:4:", 0), 0u) << d.error().context;
}

TEST(Config, SemanticErrorsAreInvalidArgument) {
  auto r = parse_config(kBase + "workers = 999\n", "t.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
}

TEST(Config, UnknownKeysAndTables) {
  EXPECT_CONFIG_ERROR(kBase + "nmae = \"x\"\n", 4, 1, "unknown key \"nmae\" in [sn]");
  EXPECT_CONFIG_ERROR(kBase + "[snn]\nx = 1\n", 4, 2, "unknown key \"snn\"");
  EXPECT_CONFIG_ERROR(kBase + "[edomain]\nrekey = 5\n", 5, 1, "unknown key \"rekey\" in [edomain]");
  EXPECT_CONFIG_ERROR(kBase + "[[peer]]\nedomain = \"dom2\"\ngatway = \"dom2.sn1\"\n", 6, 1,
                      "unknown key \"gatway\" in [[peer]]");
  EXPECT_CONFIG_ERROR(kBase + "[[route]]\nprefix = \"10.0.0.0/8\"\nsn = \"dom1.sn1\"\nvia = 1\n", 7,
                      1, "unknown key \"via\" in [[route]]");
  EXPECT_CONFIG_ERROR(kBase + "[modules]\nlaod = [\"/a.so\"]\n", 5, 1,
                      "unknown key \"laod\" in [modules]");
  EXPECT_CONFIG_ERROR(kBase + "[[edomain.sn]]\nname = \"dom1.sn2\"\nport = 1\n", 6, 1,
                      "unknown key \"port\" in [[edomain.sn]]");
}

TEST(Config, WrongTypes) {
  EXPECT_CONFIG_ERROR(kBase + "workers = \"4\"\n", 4, 11,
                      "sn.workers must be an integer (got a string)");
  EXPECT_CONFIG_ERROR(kBase + "cache_capacity = 1.5\n", 4, 18, "must be an integer (got a float)");
  EXPECT_CONFIG_ERROR(kBase + "listen = 1000\n", 4, 10,
                      "sn.listen must be a string (got an integer)");
  EXPECT_CONFIG_ERROR(kBase + "host_prefixes = \"10.0.0.0/8\"\n", 4, 17,
                      "must be an array of strings");
  EXPECT_CONFIG_ERROR(kBase + "host_prefixes = [\"10.0.0.0/8\", 7]\n", 4, 32,
                      "must hold strings (got an integer)");
  EXPECT_CONFIG_ERROR("[sn]\nname = 5\n", 2, 8, "sn.name must be a string");
  EXPECT_CONFIG_ERROR("sn = 1\n", 1, 6, "sn must be a table (got an integer)");
  EXPECT_CONFIG_ERROR(kBase + "[edomain.sn]\nname = \"dom1.sn2\"\n", 4, 1,
                      "edomain.sn must be an array of tables");
  EXPECT_CONFIG_ERROR(kBase + "[peer]\nedomain = \"dom2\"\n", 4, 1,
                      "peer must be an array of tables");
  EXPECT_CONFIG_ERROR("route = [1]\n" + kBase, 1, 10, "route must hold tables");
  EXPECT_CONFIG_ERROR(kBase + "[edomain]\nrekey_seconds = true\n", 5, 17,
                      "must be an integer (got a boolean)");
  EXPECT_CONFIG_ERROR(kBase + "[edomain]\ndirect_pipes = 1\n", 5, 16,
                      "edomain.direct_pipes must be a boolean (got an integer)");
  EXPECT_CONFIG_ERROR(kBase + "[edomain]\ndirect_idle_seconds = 0\n", 5, 23,
                      "edomain.direct_idle_seconds");
  EXPECT_CONFIG_ERROR(kBase + "state_db = 1979-05-27\n", 4, 12,
                      "must be a string (got a date/time)");
}

TEST(Config, Ranges) {
  EXPECT_CONFIG_ERROR(kBase + "workers = 257\n", 4, 11, "sn.workers must be 0..256 (got 257)");
  EXPECT_CONFIG_ERROR(kBase + "workers = -1\n", 4, 11, "sn.workers must be 0..256");
  EXPECT_CONFIG_ERROR(kBase + "cache_capacity = 0\n", 4, 18, "must be 1..67108864");
  EXPECT_CONFIG_ERROR(kBase + "cache_capacity = 67108865\n", 4, 18, "must be 1..67108864");
  EXPECT_CONFIG_ERROR(kBase + "[edomain]\nrekey_seconds = 0\n", 5, 17, "must be 1..86400");
  EXPECT_CONFIG_ERROR(kBase + "[edomain]\nrekey_seconds = 86401\n", 5, 17, "must be 1..86400");
  EXPECT_EQ(parse_ok(kBase + "workers = 256\n").workers, 256u);
  EXPECT_EQ(parse_ok(kBase + "cache_capacity = 67108864\n").cache_capacity, std::size_t{1} << 26);
  EXPECT_EQ(parse_ok(kBase + "cache_capacity = 1\n").cache_capacity, 1u);
  EXPECT_EQ(parse_ok(kBase + "[edomain]\nrekey_seconds = 1\n").rekey_seconds, 1u);
  EXPECT_EQ(parse_ok(kBase + "[edomain]\nrekey_seconds = 86400\n").rekey_seconds, 86400u);
}

// [sn] max_handshakes_per_second: the responder handshake budget (0, the default: none).
TEST(Config, HandshakeBudget) {
  EXPECT_EQ(parse_ok(kBase).max_handshakes_per_second, 0u);
  EXPECT_EQ(parse_ok(kBase + "max_handshakes_per_second = 0\n").max_handshakes_per_second, 0u);
  EXPECT_EQ(parse_ok(kBase + "max_handshakes_per_second = 2000\n").max_handshakes_per_second,
            2000u);
  EXPECT_EQ(parse_ok(kBase + "max_handshakes_per_second = 1000000\n").max_handshakes_per_second,
            1000000u);
  EXPECT_CONFIG_ERROR(kBase + "max_handshakes_per_second = -1\n", 4, 29,
                      "sn.max_handshakes_per_second must be 0..1000000 (got -1)");
  EXPECT_CONFIG_ERROR(kBase + "max_handshakes_per_second = 1000001\n", 4, 29, "must be 0..1000000");
  EXPECT_CONFIG_ERROR(kBase + "max_handshakes_per_second = \"fast\"\n", 4, 29,
                      "must be an integer (got a string)");
  EXPECT_CONFIG_ERROR(kBase + "max_handshakes_per_second = 2.5\n", 4, 29,
                      "must be an integer (got a float)");
  // Only in [sn].
  EXPECT_CONFIG_ERROR(kBase + "[edomain]\nmax_handshakes_per_second = 5\n", 5, 1,
                      "max_handshakes_per_second");
}

// [sn] psp_contexts_per_worker: each worker thread's PSP (AES-GCM) context cache; default
// psp::kDefaultContextCacheCapacity (4096), 1..2^20.
TEST(Config, PspContextsPerWorker) {
  EXPECT_EQ(parse_ok(kBase).psp_contexts_per_worker, 4096u);
  EXPECT_EQ(parse_ok(kBase + "psp_contexts_per_worker = 1\n").psp_contexts_per_worker, 1u);
  EXPECT_EQ(parse_ok(kBase + "psp_contexts_per_worker = 65536\n").psp_contexts_per_worker, 65536u);
  EXPECT_EQ(parse_ok(kBase + "psp_contexts_per_worker = 1048576\n").psp_contexts_per_worker,
            kMaxPspContextsPerWorker);
  EXPECT_EQ(kMaxPspContextsPerWorker, std::size_t{1} << 20);
  EXPECT_CONFIG_ERROR(kBase + "psp_contexts_per_worker = 0\n", 4, 27,
                      "sn.psp_contexts_per_worker must be 1..1048576 (got 0)");
  EXPECT_CONFIG_ERROR(kBase + "psp_contexts_per_worker = -4096\n", 4, 27,
                      "must be 1..1048576 (got -4096)");
  EXPECT_CONFIG_ERROR(kBase + "psp_contexts_per_worker = 1048577\n", 4, 27,
                      "sn.psp_contexts_per_worker must be 1..1048576 (got 1048577)");
  EXPECT_CONFIG_ERROR(kBase + "psp_contexts_per_worker = 9223372036854775807\n", 4, 27,
                      "must be 1..1048576");
  EXPECT_CONFIG_ERROR(kBase + "psp_contexts_per_worker = \"4096\"\n", 4, 27,
                      "sn.psp_contexts_per_worker must be an integer (got a string)");
  EXPECT_CONFIG_ERROR(kBase + "psp_contexts_per_worker = 4096.0\n", 4, 27,
                      "must be an integer (got a float)");
  EXPECT_CONFIG_ERROR(kBase + "psp_contexts_per_worker = true\n", 4, 27,
                      "must be an integer (got a boolean)");
  EXPECT_CONFIG_ERROR(kBase + "psp_contexts_per_worker = [4096]\n", 4, 27,
                      "must be an integer (got an array)");
  // Only in [sn].
  EXPECT_CONFIG_ERROR(kBase + "[edomain]\npsp_contexts_per_worker = 64\n", 5, 1,
                      "unknown key \"psp_contexts_per_worker\" in [edomain]");
}

TEST(Config, MissingThings) {
  EXPECT_CONFIG_ERROR("", 1, 1, "missing [sn] table");
  EXPECT_CONFIG_ERROR("[edomain]\n", 1, 1, "missing [sn] table");
  EXPECT_CONFIG_ERROR("# comment\n[sn]\nprivate_key_file = \"/k\"\n", 2, 1, "missing sn.name");
  EXPECT_CONFIG_ERROR("[sn]\nname = \"dom1.sn1\"\n", 1, 1, "missing sn.private_key_file");
  EXPECT_CONFIG_ERROR(
      kBase + "[[peer]]\nedomain = \"dom2\"\ngateway = \"dom2.sn1\"\naddress = \"10.0.0.9:1\"\n", 4,
      1, "missing peer.public_key");
  EXPECT_CONFIG_ERROR(kBase + "[[route]]\nsn = \"dom1.sn1\"\n", 4, 1, "missing route.prefix");
}

TEST(Config, Names) {
  EXPECT_TRUE(valid_sn_name("dom1.sn1"));
  EXPECT_TRUE(valid_sn_name("a.b"));
  EXPECT_TRUE(valid_sn_name("my-dom.0-9"));
  EXPECT_TRUE(valid_sn_name(std::string(31, 'a') + "." + std::string(31, 'b')));
  EXPECT_FALSE(valid_sn_name(std::string(32, 'a') + ".b"));
  EXPECT_FALSE(valid_sn_name("a." + std::string(32, 'b')));
  EXPECT_FALSE(valid_sn_name("dom1"));
  EXPECT_FALSE(valid_sn_name("Dom1.sn1"));
  EXPECT_FALSE(valid_sn_name("dom1.sn1.x"));
  EXPECT_FALSE(valid_sn_name("dom1..sn1"));
  EXPECT_FALSE(valid_sn_name(".sn1"));
  EXPECT_FALSE(valid_sn_name("dom1."));
  EXPECT_FALSE(valid_sn_name("dom_1.sn1"));
  EXPECT_FALSE(valid_sn_name(""));
  EXPECT_CONFIG_ERROR("[sn]\nname = \"dom1\"\n", 2, 8, "sn.name \"dom1\" is not DOM.SN");
  EXPECT_CONFIG_ERROR("[sn]\nname = \"DOM1.sn1\"\n", 2, 8, "is not DOM.SN");
  EXPECT_CONFIG_ERROR("[sn]\nname = \"a.b.c\"\n", 2, 8, "is not DOM.SN");
  EXPECT_CONFIG_ERROR(kBase + "[[peer]]\nedomain = \"Dom2\"\n", 5, 11,
                      "peer.edomain \"Dom2\" is not a label");
  // A control character in a name is quoted, not printed raw.
  const std::string e = error_of("[sn]\nname = \"a\\u0001.b\"\n");
  EXPECT_NE(e.find("\\x01"), std::string::npos) << e;
}

TEST(Config, Endpoints) {
  EXPECT_CONFIG_ERROR(kBase + "listen = \"0.0.0.0\"\n", 4, 10,
                      "sn.listen: expected a numeric IP:PORT");
  EXPECT_CONFIG_ERROR(kBase + "listen = \"localhost:1000\"\n", 4, 10, "sn.listen");
  EXPECT_CONFIG_ERROR(kBase + "listen = \"::1:1000\"\n", 4, 10, "sn.listen");
  EXPECT_EQ(parse_ok(kBase + "listen = \"127.0.0.1:0\"\n").listen,
            "127.0.0.1:0");  // tests: any port
  // advertise: explicit; by default listen unless that is a wildcard (or port 0).
  EXPECT_EQ(parse_ok(kBase + "advertise = \"192.0.2.10:1000\"\n").advertise, "192.0.2.10:1000");
  EXPECT_EQ(parse_ok(kBase + "advertise = \"[2001:db8::1]:1000\"\n").advertise,
            "[2001:db8::1]:1000");
  EXPECT_EQ(parse_ok(kBase).advertise, "");
  EXPECT_EQ(parse_ok(kBase + "listen = \"[::]:1000\"\n").advertise, "");
  EXPECT_EQ(parse_ok(kBase + "listen = \"10.0.0.1:1000\"\n").advertise, "10.0.0.1:1000");
  EXPECT_EQ(parse_ok(kBase + "listen = \"10.0.0.1:0\"\n").advertise, "");
  EXPECT_CONFIG_ERROR(kBase + "advertise = \"0.0.0.0:1000\"\n", 4, 13,
                      "sn.advertise: \"0.0.0.0:1000\" is a wildcard address");
  EXPECT_CONFIG_ERROR(kBase + "advertise = \"[::]:1000\"\n", 4, 13, "is a wildcard address");
  EXPECT_CONFIG_ERROR(kBase + "advertise = \"10.0.0.1:0\"\n", 4, 13, "sn.advertise: port 0");
  EXPECT_CONFIG_ERROR(kBase + "advertise = \"sn.example:1000\"\n", 4, 13,
                      "sn.advertise: expected a numeric IP:PORT");
  EXPECT_CONFIG_ERROR(kBase + "advertise = 1000\n", 4, 13, "sn.advertise must be a string");
  const std::string sn2 =
      kBase + "[[edomain.sn]]\nname = \"dom1.sn2\"\npublic_key = \"" + kKey2 + "\"\n";
  EXPECT_CONFIG_ERROR(sn2 + "address = \"sn2.example:1000\"\n", 7, 11,
                      "edomain.sn.address: expected a numeric");
  EXPECT_CONFIG_ERROR(sn2 + "address = \"10.0.0.2:0\"\n", 7, 11, "edomain.sn.address: port 0");
  EXPECT_CONFIG_ERROR(sn2 + "address = \"10.0.0.2:65536\"\n", 7, 11, "edomain.sn.address");
  EXPECT_CONFIG_ERROR(sn2, 4, 1, "missing edomain.sn.address");
}

TEST(Config, PublicKeys) {
  const std::string sn2 =
      kBase + "[[edomain.sn]]\nname = \"dom1.sn2\"\naddress = \"10.0.0.2:1000\"\n";
  EXPECT_CONFIG_ERROR(sn2 + "public_key = \"not base64!\"\n", 7, 14, "not a base64 32-byte key");
  // 31 and 33 bytes, and 32 bytes without padding.
  const std::string k31 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==";
  const std::string k33 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g";
  const std::string unpadded = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
  EXPECT_CONFIG_ERROR(sn2 + "public_key = \"" + k31 + "\"\n", 7, 14, "not a base64 32-byte key");
  EXPECT_CONFIG_ERROR(sn2 + "public_key = \"" + k33 + "\"\n", 7, 14, "not a base64 32-byte key");
  EXPECT_CONFIG_ERROR(sn2 + "public_key = \"" + unpadded + "\"\n", 7, 14,
                      "not a base64 32-byte key");
  EXPECT_CONFIG_ERROR(sn2 + "public_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n", 7,
                      14, "all zero");
  // One key for two SNs.
  EXPECT_CONFIG_ERROR(
      sn2 + "public_key = \"" + kKey2 +
          "\"\n[[peer]]\nedomain = \"dom2\"\ngateway = \"dom2.sn1\"\naddress = \"10.9.0.2:1000\"\n"
          "public_key = \"" +
          kKey2 + "\"\n",
      12, 14, "already the key of another SN");
}

TEST(Config, Prefixes) {
  EXPECT_CONFIG_ERROR(kBase + "host_prefixes = [\"10.1.0.1/16\"]\n", 4, 18, "host bits set");
  EXPECT_CONFIG_ERROR(kBase + "host_prefixes = [\"10.1.0.0/33\"]\n", 4, 18, "length must be 0..32");
  EXPECT_CONFIG_ERROR(kBase + "host_prefixes = [\"fd00::/129\"]\n", 4, 18, "length must be 0..128");
  EXPECT_CONFIG_ERROR(kBase + "host_prefixes = [\"ten/8\"]\n", 4, 18,
                      "not a numeric IPv4 or IPv6 address");
  EXPECT_CONFIG_ERROR(kBase + "host_prefixes = [\"10.0.0.0/8\", \"10.0.0.0/8\"]\n", 4, 32,
                      "listed twice");
  EXPECT_CONFIG_ERROR(kBase + "[[route]]\nprefix = \"fd00::1/64\"\nsn = \"dom1.sn1\"\n", 5, 10,
                      "route.prefix: prefix \"fd00::1/64\": host bits set");
}

TEST(Config, EdomainMembersAndGateway) {
  const std::string sn2 =
      "[[edomain.sn]]\nname = \"dom1.sn2\"\naddress = \"10.0.0.2:1000\"\npublic_key = \"" + kKey2 +
      "\"\n";
  // Listing this SN itself, or an SN of another edomain, or one SN twice.
  EXPECT_CONFIG_ERROR(kBase + "[[edomain.sn]]\nname = \"dom1.sn1\"\n", 5, 8, "is this SN");
  EXPECT_CONFIG_ERROR(kBase + "[[edomain.sn]]\nname = \"dom2.sn1\"\n", 5, 8,
                      "is not in this SN's edomain");
  EXPECT_CONFIG_ERROR(kBase + sn2 + "[[edomain.sn]]\nname = \"dom1.sn2\"\n", 9, 8, "listed twice");
  // The gateway: this SN, or one listed.
  EXPECT_EQ(parse_ok(kBase + "[edomain]\ngateway = \"dom1.sn1\"\n").gateway, "dom1.sn1");
  const SnConfig member = parse_ok(kBase + "[edomain]\ngateway = \"dom1.sn2\"\n" + sn2);
  EXPECT_EQ(member.gateway, "dom1.sn2");
  EXPECT_FALSE(member.is_gateway());
  EXPECT_CONFIG_ERROR(
      kBase + "[edomain]\ngateway = \"dom1.sn7\"\n" + sn2, 5, 11,
      "edomain.gateway \"dom1.sn7\" is neither this SN nor listed in [[edomain.sn]]");
  EXPECT_CONFIG_ERROR(kBase + "[edomain]\ngateway = \"dom2.sn1\"\n", 5, 11,
                      "is not in this SN's edomain");
  EXPECT_CONFIG_ERROR(kBase + "[edomain]\ngateway = \"gw\"\n", 5, 11, "is not DOM.SN");
}

TEST(Config, Peers) {
  auto peer = [](const std::string& ed, const std::string& gw, const std::string& key) {
    return "[[peer]]\nedomain = \"" + ed + "\"\ngateway = \"" + gw +
           "\"\naddress = \"10.9.0.2:1000\"\npublic_key = \"" + key + "\"\n";
  };
  const SnConfig two =
      parse_ok(kBase + peer("dom2", "dom2.sn1", kKey2) + peer("dom3", "dom3.gw", kKey3));
  ASSERT_EQ(two.peers.size(), 2u);
  EXPECT_EQ(two.peers[1].gateway.name, "dom3.gw");
  EXPECT_CONFIG_ERROR(kBase + peer("dom1", "dom1.sn2", kKey2), 5, 11, "is this SN's own edomain");
  EXPECT_CONFIG_ERROR(kBase + peer("dom2", "dom2.sn1", kKey2) + peer("dom2", "dom2.sn2", kKey3), 10,
                      11, "peer.edomain \"dom2\" listed twice");
  EXPECT_CONFIG_ERROR(kBase + peer("dom2", "dom3.sn1", kKey2), 6, 11,
                      "peer.gateway \"dom3.sn1\" is not in edomain \"dom2\"");
  EXPECT_CONFIG_ERROR(kBase + peer("dom2", "dom2", kKey2), 6, 11, "is not DOM.SN");
}

TEST(Config, Routes) {
  const std::string peer2 =
      "[[peer]]\nedomain = \"dom2\"\ngateway = \"dom2.sn1\"\naddress = "
      "\"10.9.0.2:1000\"\npublic_key = \"" +
      kKey2 + "\"\n";
  auto route = [](const std::string& pre, const std::string& sn) {
    return "[[route]]\nprefix = \"" + pre + "\"\nsn = \"" + sn + "\"\n";
  };
  EXPECT_EQ(parse_ok(kBase + peer2 + route("10.2.0.0/16", "dom2.sn9")).routes.size(), 1u);
  EXPECT_EQ(parse_ok(kBase + route("10.1.0.0/16", "dom1.sn1")).routes.size(), 1u);  // this SN
  EXPECT_CONFIG_ERROR(kBase + route("10.2.0.0/16", "dom2"), 6, 6,
                      "route.sn \"dom2\" is not DOM.SN");
  EXPECT_CONFIG_ERROR(
      kBase + peer2 + route("10.2.0.0/16", "dom2.sn1") + route("10.2.0.0/16", "dom2.sn2"), 13, 10,
      "route.prefix 10.2.0.0/16 listed twice");
  // An SN of this edomain must be known; on the gateway, a remote edomain must be peered.
  EXPECT_CONFIG_ERROR(kBase + route("10.2.0.0/16", "dom1.sn5"), 6, 6,
                      "is in this edomain but neither this SN nor listed");
  EXPECT_CONFIG_ERROR(kBase + route("10.2.0.0/16", "dom3.sn1"), 6, 6,
                      "edomain \"dom3\" has no [[peer]]");
  // A member SN sends other edomains' traffic to its gateway: no [[peer]] needed.
  const std::string member =
      kBase +
      "[edomain]\ngateway = \"dom1.sn2\"\n[[edomain.sn]]\nname = \"dom1.sn2\"\n"
      "address = \"10.0.0.2:1000\"\npublic_key = \"" +
      kKey3 + "\"\n";
  EXPECT_EQ(parse_ok(member + route("10.3.0.0/16", "dom3.sn1")).routes[0].sn, "dom3.sn1");
}

TEST(Config, Services) {
  const std::string sn2 =
      "[[edomain.sn]]\nname = \"dom1.sn2\"\naddress = \"10.0.0.2:1000\"\npublic_key = \"" + kKey2 +
      "\"\n";
  const SnConfig c = parse_ok(kBase + sn2 +
                              "[services]\nout_of_band = [\"block\"]\nimposed = [\"passthrough\"]\n"
                              "upstream = \"dom1.sn2\"\n");
  EXPECT_EQ(c.out_of_band, std::vector<std::string>{"block"});
  EXPECT_EQ(c.imposed, std::vector<std::string>{"passthrough"});
  EXPECT_EQ(c.upstream, "dom1.sn2");
  EXPECT_TRUE(parse_ok(kBase).upstream.empty());
  EXPECT_CONFIG_ERROR(kBase + "[services]\nimposed = [\"Pass\"]\n", 5, 12,
                      "services.imposed: \"Pass\" is not a module name");
  EXPECT_CONFIG_ERROR(kBase + "[services]\nout_of_band = [\"block\", \"block\"]\n", 5, 25,
                      "listed twice");
  EXPECT_CONFIG_ERROR(kBase + "[services]\nupstream = \"dom1.sn7\"\n", 5, 12,
                      "services.upstream \"dom1.sn7\" is neither in [[edomain.sn]] nor a [[peer]]");
  EXPECT_CONFIG_ERROR(kBase + "[services]\nupstream = \"sn7\"\n", 5, 12, "is not DOM.SN");
  EXPECT_CONFIG_ERROR(kBase + "[services]\nimposed = \"passthrough\"\n", 5, 11, "");
  EXPECT_CONFIG_ERROR(kBase + "[services]\nfirewall = []\n", 5, 1, "unknown key \"firewall\"");
}

TEST(Config, Paths) {
  EXPECT_CONFIG_ERROR("[sn]\nname = \"dom1.sn1\"\nprivate_key_file = \"iesn.key\"\n", 3, 20,
                      "sn.private_key_file must be an absolute path (got \"iesn.key\")");
  EXPECT_CONFIG_ERROR("[sn]\nname = \"dom1.sn1\"\nprivate_key_file = \"\"\n", 3, 20,
                      "must be an absolute path");
  EXPECT_CONFIG_ERROR(kBase + "state_db = \"var/iesn.db\"\n", 4, 12,
                      "sn.state_db must be an absolute path");
  EXPECT_CONFIG_ERROR(kBase + "control_socket = \"./s\"\n", 4, 18,
                      "sn.control_socket must be an absolute path");
  EXPECT_CONFIG_ERROR(kBase + "control_socket = \"/" + std::string(120, 's') + "\"\n", 4, 18,
                      "longer than a Unix socket path");
  EXPECT_CONFIG_ERROR(kBase + "[modules]\nload = [\"libfoo.so\"]\n", 5, 9,
                      "modules.load: \"libfoo.so\" is not an absolute path");
  EXPECT_CONFIG_ERROR(kBase + "[modules]\nload = [\"/a.so\", \"/a.so\"]\n", 5, 18, "listed twice");
}

TEST(Config, ModuleSettingsAreStrings) {
  const SnConfig c = parse_ok(kBase +
                              "[modules.fanout]\n"
                              "to = \"dom1.sn2,dom2.sn1\"\n"
                              "n = -42\n"
                              "big = 9223372036854775807\n"
                              "hex = 0xff\n"
                              "f = 1.25\n"
                              "e = 1e300\n"
                              "whole = 3.0\n"
                              "yes = true\n"
                              "no = false\n"
                              "[modules.other_mod]\n");
  const auto& m = c.module_config.at("fanout");
  EXPECT_EQ(m.at("to"), "dom1.sn2,dom2.sn1");
  EXPECT_EQ(m.at("n"), "-42");
  EXPECT_EQ(m.at("big"), "9223372036854775807");
  EXPECT_EQ(m.at("hex"), "255");
  EXPECT_EQ(m.at("f"), "1.25");
  EXPECT_EQ(m.at("e"), "1e+300");
  EXPECT_EQ(m.at("whole"), "3");
  EXPECT_EQ(m.at("yes"), "true");
  EXPECT_EQ(m.at("no"), "false");
  ASSERT_EQ(c.module_config.count("other_mod"), 1u);  // an empty section is kept
  EXPECT_TRUE(c.module_config.at("other_mod").empty());

  EXPECT_CONFIG_ERROR(
      kBase + "[modules.foo]\nlist = [1, 2]\n", 5, 8,
      "modules.foo.list must be a string, integer, boolean or float (got an array)");
  EXPECT_CONFIG_ERROR(kBase + "[modules.foo.deep]\nx = 1\n", 4, 1,
                      "modules.foo.deep must be a string");
  EXPECT_CONFIG_ERROR(kBase + "[modules.Foo]\nx = 1\n", 4, 10,
                      "module names are 1..63 of a-z, 0-9, '_'");
  EXPECT_CONFIG_ERROR(kBase + "[modules]\nfoo = 1\n", 5, 1, "unknown key \"foo\" in [modules]");
}

TEST(Config, NeverThrowsOnGarbage) {
  const std::string junk[] = {
      std::string("\0\xff\xfe[[[", 7), "[sn]\nname = \"\xff\xfe\"\n", "a = [[[[[[[[[[[[[",
      std::string(300, '['),           "[sn]\nname = '''\n",          "=\n"};
  for (const auto& j : junk) {
    auto r = parse_config(j, "t.toml");
    EXPECT_FALSE(r.ok());
  }
}

// ---- Files ----

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ie-sn-config-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& content, mode_t mode = 0600) {
    const std::string p = dir_ + "/" + name;
    {
      std::ofstream f(p, std::ios::binary | std::ios::trunc);
      f << content;
    }
    EXPECT_EQ(::chmod(p.c_str(), mode), 0);
    return p;
  }
  std::size_t file_count() const {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_))
      ++n;
    return n;
  }
  std::string dir_;
};

using ConfigFile = TempDir;
using KeyFile = TempDir;

TEST_F(ConfigFile, LoadConfigNamesTheFile) {
  const std::string p = write("iesn.toml", kBase + "workers = 999\n");
  auto r = load_config(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().context.rfind(p + ":4:11: ", 0), 0u) << r.error().context;
  auto ok = load_config(write("good.toml", kBase));
  ASSERT_TRUE(ok.ok()) << ok.error().context;
  EXPECT_EQ(ok->name, "dom1.sn1");
  auto missing = load_config(dir_ + "/nope.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  EXPECT_NE(missing.error().context.find(dir_ + "/nope.toml"), std::string::npos);
  auto big = load_config(write("big.toml", kBase + std::string(kMaxConfigBytes, '#')));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, Errc::too_large);
}

TEST_F(KeyFile, WriteIs0600AndRoundTrips) {
  const noise::KeyPair kp = noise::KeyPair::generate();
  const std::string p = dir_ + "/iesn.key";
  auto w = write_private_key(p, kp);
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(file_count(), 1u);  // the temporary file is gone
  std::ifstream f(p);
  std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content.size(), 45u);
  EXPECT_EQ(content.back(), '\n');
  auto r = load_private_key(p);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(r->priv == kp.priv);
  EXPECT_EQ(r->pub, kp.pub);
}

TEST_F(KeyFile, WriteRefusesToReplaceAKey) {
  const std::string p = write("iesn.key", "old\n");
  auto w = write_private_key(p, noise::KeyPair::generate());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, Errc::exists);
  std::ifstream f(p);
  std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "old\n");
  EXPECT_EQ(file_count(), 1u);
  auto nodir = write_private_key(dir_ + "/missing/iesn.key", noise::KeyPair::generate());
  EXPECT_FALSE(nodir.ok());
}

TEST_F(KeyFile, PublicKeyIsDerivedLikeNoise) {
  const noise::KeyPair kp = fixed_key(40);
  const std::string p = dir_ + "/k";
  ASSERT_TRUE(write_private_key(p, kp).ok());
  auto r = load_private_key(p);
  ASSERT_TRUE(r.ok());
  // The same derivation as noise::KeyPair::generate()/from_private (crypto_scalarmult_base).
  const noise::KeyPair again = noise::KeyPair::from_private(r->priv.span());
  EXPECT_EQ(r->pub, again.pub);
  EXPECT_EQ(r->pub, kp.pub);
  EXPECT_NE(r->pub, noise::PublicKey{});
}

TEST_F(KeyFile, GroupOrOtherAccessIsRefused) {
  const std::string text =
      key_to_base64(fixed_key(5).pub) + "\n";  // any 32 bytes make a private key
  for (const mode_t mode : {0644, 0640, 0604, 0620, 0602, 0610, 0601}) {
    const std::string p = write("k" + std::to_string(mode), text, mode);
    auto r = load_private_key(p);
    ASSERT_FALSE(r.ok()) << std::oct << mode;
    EXPECT_EQ(r.error().code, Errc::permission);
    EXPECT_NE(r.error().context.find("chmod 600"), std::string::npos) << r.error().context;
  }
  char expect_mode[] = "mode 0644";
  auto r = load_private_key(write("k", text, 0644));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().context.find(expect_mode), std::string::npos) << r.error().context;
  EXPECT_TRUE(load_private_key(write("ok600", text, 0600)).ok());
  EXPECT_TRUE(load_private_key(write("ok400", text, 0400)).ok());
}

TEST_F(KeyFile, ContentMustBeExactlyOneKey) {
  const std::string k = key_to_base64(fixed_key(5).pub);
  EXPECT_TRUE(load_private_key(write("a", k)).ok());  // newline optional
  EXPECT_TRUE(load_private_key(write("b", k + "\n")).ok());
  const std::string bad[] = {
      "",
      "\n",
      k + "\n\n",
      k + "\r\n",
      k + " ",
      " " + k,
      k + "\n" + k + "\n",
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n",    // 31 bytes
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\n",    // 33 bytes
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",     // no padding
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=AAAA",  // trailing base64
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd-h8=\n"};   // URL-safe alphabet
  int i = 0;
  for (const auto& b : bad) {
    auto r = load_private_key(write("bad" + std::to_string(i++), b));
    ASSERT_FALSE(r.ok()) << "accepted: " << b;
    EXPECT_EQ(r.error().code, Errc::parse) << b;
    EXPECT_EQ(r.error().context.find(k), std::string::npos);  // never echoes the content
  }
}

TEST_F(KeyFile, NotAFile) {
  auto r = load_private_key(dir_);
  ASSERT_FALSE(r.ok());
  auto m = load_private_key(dir_ + "/none");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::not_found);
  EXPECT_NE(m.error().context.find(dir_ + "/none"), std::string::npos);
}

TEST(KeyText, Base64RoundTripAndVector) {
  noise::PublicKey k{};
  for (std::size_t i = 0; i < k.size(); ++i)
    k[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(key_to_base64(k), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  auto back = key_from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, k);
  const noise::KeyPair kp = noise::KeyPair::generate();
  auto pub = key_from_base64(key_to_base64(kp.pub));
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, kp.pub);
  EXPECT_FALSE(key_from_base64("").ok());
  EXPECT_FALSE(key_from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").ok());
  EXPECT_FALSE(key_from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").ok());
}

// ---- Prefixes ----

std::array<std::uint8_t, 16> v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}
std::array<std::uint8_t, 16> v6(std::uint16_t first, std::uint16_t last) {
  std::array<std::uint8_t, 16> a{};
  a[0] = static_cast<std::uint8_t>(first >> 8);
  a[1] = static_cast<std::uint8_t>(first);
  a[14] = static_cast<std::uint8_t>(last >> 8);
  a[15] = static_cast<std::uint8_t>(last);
  return a;
}
Prefix P(std::string_view s) {
  auto p = Prefix::parse(s);
  EXPECT_TRUE(p.ok()) << s;
  return p.ok() ? *p : Prefix{};
}

TEST(Prefix, V4Contains) {
  const Prefix p = P("10.2.0.0/16");
  EXPECT_TRUE(p.is_v4());
  EXPECT_EQ(p.bits, 96u + 16);
  EXPECT_TRUE(p.contains(v4(10, 2, 0, 0)));
  EXPECT_TRUE(p.contains(v4(10, 2, 255, 255)));
  EXPECT_FALSE(p.contains(v4(10, 3, 0, 0)));
  EXPECT_FALSE(p.contains(v4(11, 2, 0, 0)));
  const Prefix odd = P("10.128.0.0/9");  // not on a byte boundary
  EXPECT_TRUE(odd.contains(v4(10, 200, 0, 1)));
  EXPECT_FALSE(odd.contains(v4(10, 127, 0, 1)));
}

TEST(Prefix, V6Contains) {
  const Prefix p = P("fd00::/8");
  EXPECT_FALSE(p.is_v4());
  EXPECT_TRUE(p.contains(v6(0xfd12, 1)));
  EXPECT_FALSE(p.contains(v6(0xfe80, 1)));
  EXPECT_FALSE(p.contains(v4(10, 0, 0, 1)));
  const Prefix q = P("2001:db8:0:0:8000::/65");
  auto a = v6(0x2001, 1);
  a[2] = 0x0d;
  a[3] = 0xb8;
  EXPECT_FALSE(q.contains(a));
  a[8] = 0x80;
  EXPECT_TRUE(q.contains(a));
}

TEST(Prefix, HostBitsMustBeZero) {
  EXPECT_FALSE(Prefix::parse("10.2.0.1/16").ok());
  EXPECT_FALSE(Prefix::parse("10.128.0.0/8").ok());
  EXPECT_FALSE(Prefix::parse("fd00::1/8").ok());
  EXPECT_FALSE(Prefix::parse("1.0.0.0/0").ok());
  auto r = Prefix::parse("10.2.0.1/16");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::parse);
  EXPECT_NE(r.error().context.find("10.2.0.1/16"), std::string::npos);
}

TEST(Prefix, Extremes) {
  const Prefix all4 = P("0.0.0.0/0");  // every IPv4 address, no IPv6 one
  EXPECT_EQ(all4.bits, 96u);
  EXPECT_TRUE(all4.contains(v4(1, 2, 3, 4)));
  EXPECT_TRUE(all4.contains(v4(255, 255, 255, 255)));
  EXPECT_FALSE(all4.contains(v6(0xfd00, 1)));
  const Prefix all = P("::/0");  // everything, IPv4-mapped included
  EXPECT_EQ(all.bits, 0u);
  EXPECT_TRUE(all.contains(v6(0xfd00, 1)));
  EXPECT_TRUE(all.contains(v4(1, 2, 3, 4)));
  const Prefix host = P("1.2.3.4/32");
  EXPECT_EQ(host, P("1.2.3.4"));
  EXPECT_EQ(host.bits, 128u);
  EXPECT_TRUE(host.contains(v4(1, 2, 3, 4)));
  EXPECT_FALSE(host.contains(v4(1, 2, 3, 5)));
  const Prefix host6 = P("fd00::1/128");
  EXPECT_EQ(host6, P("fd00::1"));
  EXPECT_TRUE(host6.contains(v6(0xfd00, 1)));
  EXPECT_FALSE(host6.contains(v6(0xfd00, 2)));
}

TEST(Prefix, MappedFormIsIPv4) {
  const Prefix m = P("::ffff:10.0.0.0/104");
  EXPECT_EQ(m, P("10.0.0.0/8"));
  EXPECT_TRUE(m.is_v4());
  EXPECT_EQ(m.str(), "10.0.0.0/8");
  const Prefix all4 = P("::ffff:0.0.0.0/96");
  EXPECT_EQ(all4, P("0.0.0.0/0"));
  const Prefix wider = P("::fffe:0:0/95");  // wider than the IPv4 space: shown as IPv6
  EXPECT_FALSE(wider.is_v4());
  EXPECT_TRUE(wider.contains(v4(1, 2, 3, 4)));
  EXPECT_EQ(wider.str(), "::fffe:0:0/95");
  EXPECT_FALSE(Prefix::parse("::ffff:0:0/95").ok());  // the last bit of ffff is a host bit
  EXPECT_EQ(P(wider.str()), wider);
}

TEST(Prefix, Malformed) {
  for (const char* s : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8",
                        "10.0.0.0/8/8", "10.0.0.0/ 8", "10.0.0/8", "fd00::/129", "fd00::/1000",
                        "host/8", "10.0.0.0/8x", "::ffff:1.2.3.4:5/128"}) {
    EXPECT_FALSE(Prefix::parse(s).ok()) << s;
  }
}

TEST(Prefix, StrRoundTrips) {
  for (const char* s : {"10.2.0.0/16", "0.0.0.0/0", "1.2.3.4/32", "fd00::/8", "::/0", "fd00::1/128",
                        "2001:db8::/32", "10.128.0.0/9"}) {
    const Prefix p = P(s);
    EXPECT_EQ(p.str(), s);
    EXPECT_EQ(P(p.str()), p);
  }
}

}  // namespace
}  // namespace ie::sn
