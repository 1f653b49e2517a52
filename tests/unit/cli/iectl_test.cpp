// iectl end to end: the real binary (IECTL_BIN) against a ctl::Server on a temporary socket,
// run on a reactor thread and serving canned results for every method. Covers each verb's
// human and --json output and the params it sends, exit codes 0..4, the socket path named
// when the daemon is down, --socket and IECTL_SOCKET, and null-safe human output.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "../common/ctl_server_thread.hpp"
#include "ie/ctl/server.hpp"

extern char** environ;

namespace {

using ie::Errc;
using ie::Result;
using ie::ctl::Json;

struct Ran {
  int rc = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The canned replies, shared with the reactor thread.
class Canned {
 public:
  void set(const std::string& method, Result<Json> r) {
    std::lock_guard<std::mutex> lock(mu_);
    replies_.insert_or_assign(method, std::move(r));
  }
  Result<Json> reply(const std::string& method, const Json& params) {
    std::lock_guard<std::mutex> lock(mu_);
    params_.insert_or_assign(method, params);
    ++calls_[method];
    auto it = replies_.find(method);
    if (it == replies_.end()) return ie::fail(Errc::internal, "no canned reply for " + method);
    return it->second;
  }
  std::optional<Json> params(const std::string& method) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = params_.find(method);
    if (it == params_.end()) return std::nullopt;
    return it->second;
  }
  int calls(const std::string& method) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[method];
  }

 private:
  std::mutex mu_;  // guards everything below
  std::map<std::string, Result<Json>> replies_;
  std::map<std::string, Json> params_;
  std::map<std::string, int> calls_;
};

const char* const kMethods[] = {
    "status", "sn.list",      "sn.discover",    "sn.ping",         "sn.use",       "peers",
    "flows",  "config.check", "service.enable", "service.disable", "service.list", "peer.resolve"};

Json sample_status() {
  return Json::parse(R"({
    "version":"0.1.0","identity":"q2hG5nJb0nF3eXo8mJwz3cR4bXl5dGh3eW5wcXJzdHU=","uptime_s":90061,
    "tun":{"name":"ie0","mtu":1400},"addresses":["10.1.0.2"],"prefixes":["10.2.0.0/16"],
    "sn":{"name":"dom1.sn2","endpoint":"172.16.1.1:1000","state":"established",
          "registered":true,"rtt_ms":0.4},
    "iesps":[{"name":"acme","default":true,"active":"dom1.sn2","candidates":2,"policies":0},
             {"name":"beta","default":false,"active":null,"candidates":1,"policies":1}],
    "discovery":{"order":["dns","anycast"],"dns":{"domain":"d.test","error":null},
                 "dns_iesps":[{"iesp":"acme","domain":"d.test","error":null},
                              {"iesp":"beta","domain":"b.test","error":"no answer"}],
                 "anycast":[{"address":"192.0.2.1:1000","probed":true,"error":"timed out"},
                            {"address":"192.0.2.2:1000","probed":true,"error":null}]},
    "counters":{"tun_rx_packets":1234,"tun_tx_packets":1200,"sn_tx_packets":1234567,
                "sn_rx_packets":0,"sn_tx_bytes":5242880},
    "drops":{"no_route":3,"replayed":0},
    "future_field":{"x":1}})");
}

Json sample_sns() {
  return Json::parse(R"({"sns":[
    {"name":"dom1.sn2","endpoint":"172.16.1.1:1000","key":"q2hG5nJb0nF3eXo8mJwz3cR4bXl5dGh3eW5wcXJzdHU=",
     "source":"dns","iesp":"acme","priority":10,"weight":5,"expires_in_s":300,"rtt_ms":0.4,"state":"active",
     "pinned":true},
    {"name":"dom1.sn3","endpoint":"172.16.2.1:1000","key":"AAAAC3NzaC1lZDI1NTE5AAAAIGx1ZGxlc3NrZXkxMjM=",
     "source":"static","iesp":"beta","priority":20,"weight":1,"expires_in_s":null,"rtt_ms":null,
     "state":"standby","pinned":false}]})");
}

Json sample_ping() {
  return Json::parse(R"({"results":[
    {"name":"dom1.sn2","endpoint":"172.16.1.1:1000","rtt_ms":0.42},
    {"name":"dom1.sn3","endpoint":"172.16.2.1:1000","rtt_ms":null,"error":"no reply in 1000 ms"}]})");
}

Json sample_peers() {
  return Json::parse(R"({"peers":[
    {"address":"10.2.0.2","key":"bWFueWJ5dGVzb2ZhcHVibGlja2V5Zm9ycGVlcnMxMjM=","sn":"dom1.sn2",
     "state":"established","via":"direct","tx_packets":12,"rx_packets":250000,"last_rx_age_ms":120,
     "direct":{"path":"closer","rtt_ms":0.214,"sn_rtt_ms":10.4,"sn_rtt_from":"end-to-end"}},
    {"address":"10.2.0.9","key":"","sn":"dom1.sn2","state":"resolving","via":"sn",
     "tx_packets":1,"rx_packets":0,"last_rx_age_ms":null,"direct":null},
    {"address":"10.2.0.7","key":"","sn":"dom1.sn2","state":"established","via":"sn",
     "tx_packets":3,"rx_packets":4,"last_rx_age_ms":5,
     "direct":{"path":"measuring","rtt_ms":null,"sn_rtt_ms":1.5,"sn_rtt_from":"first-hop"}},
    {"address":"10.3.0.1","key":"","sn":null,"state":"established","via":"direct",
     "direct":{"path":"on-link"}}]})");
}

Json sample_flows() {
  return Json::parse(R"({"flows":[
    {"proto":"tcp","src":"10.1.0.2:40000","dst":"10.2.0.2:80","service":"ip","via":"sn",
     "steered_by":"socket","service_requested":"ip-via-sn","iesp":"beta","sn":"dom2.sn1",
     "peer":"10.2.0.2","tx_packets":10,"rx_packets":12,"tx_bytes":1500,"rx_bytes":1572864,
     "idle_s":185},
    {"proto":"udp","src":"10.1.0.2:5353","dst":"10.2.0.2:53","service":"ip","via":"direct",
     "steered_by":"route","iesp":"acme","sn":null,"peer":"10.2.0.2","tx_packets":1,"rx_packets":1,"tx_bytes":60,
     "rx_bytes":90,"idle_s":3}]})");
}

// service.list: generation 3 applied by the active SN, a standby that refused it, and the
// refusal of generation 2 (already undone by ied).
Json sample_service_list() {
  return Json::parse(R"({"generation":3,
    "invocations":[{"service":"block","direction":"in","prefix":"198.51.100.0/24"},
                   {"service":"block","direction":"both","prefix":"fd00:9::/64"}],
    "sns":[{"name":"dom1.sn1","active":true,"state":"applied","acked_generation":3,"error":null,
            "applied":[{"service":"block","direction":"in","prefix":"198.51.100.0/24"},
                       {"service":"block","direction":"both","prefix":"fd00:9::/64"}]},
           {"name":"dom1.sn2","active":false,"state":"refused","acked_generation":0,
            "error":"service \"block\" is not offered","applied":[]}],
    "last_refusal":{"generation":2,"sn":"dom1.sn1",
                    "entry":{"service":"qos","direction":"out","prefix":"10.0.0.0/8"},
                    "error":"service \"qos\" is not offered"}})");
}

Json sample_enabled() {
  return Json::parse(R"({"changed":true,"generation":3,
    "invocation":{"service":"block","direction":"in","prefix":"198.51.100.0/24"}})");
}

class Iectl : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ie-iectl-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/ied.sock";
    canned_.set("status", sample_status());
    canned_.set("sn.list", sample_sns());
    canned_.set("sn.discover", sample_sns());
    canned_.set("sn.ping", sample_ping());
    canned_.set("sn.use", Json{{"active", "dom1.sn3"}});
    canned_.set("peers", sample_peers());
    canned_.set("flows", sample_flows());
    canned_.set("config.check", Json{{"ok", true}, {"path", "/etc/interedge/ied.toml"}});
    canned_.set("service.enable", sample_enabled());
    canned_.set("service.list", sample_service_list());

    ie::ctl::Dispatcher d;
    d.add_hello("ied test");
    for (const char* m : kMethods) {
      const std::string method = m;
      d.add(method, [this, method](const Json& params, const ie::ctl::Caller&) {
        return canned_.reply(method, params);
      });
    }
    srv_.start(path_, std::move(d));
  }

  void TearDown() override {
    srv_.stop();
    std::filesystem::remove_all(dir_);
  }

  // Runs iectl with args and the test's environment minus IECTL_SOCKET, plus `env`
  // ("K=V"). Unless args name a socket (or env sets one), --socket is the test's.
  Ran run(std::vector<std::string> args, std::vector<std::string> env = {},
          bool add_socket = true) {
    if (add_socket) args.insert(args.begin(), {"--socket", path_});
    std::vector<std::string> argv_s{IECTL_BIN};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_s;
    for (char** e = environ; *e != nullptr; ++e)
      if (std::string_view(*e).rfind("IECTL_SOCKET=", 0) != 0) env_s.emplace_back(*e);
    env_s.insert(env_s.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (auto& e : env_s)
      envp.push_back(e.data());
    envp.push_back(nullptr);

    const std::string out = dir_ + "/out", err = dir_ + "/err";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = -1;
    const int sr = ::posix_spawn(&pid, IECTL_BIN, &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    Ran ran;
    if (sr != 0) {
      ADD_FAILURE() << "posix_spawn " << IECTL_BIN << ": " << sr;
      return ran;
    }
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        ADD_FAILURE() << "iectl did not finish in 30 s";
        return ran;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ran.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    ran.out = slurp(out);
    ran.err = slurp(err);
    return ran;
  }

  std::string dir_, path_;
  Canned canned_;
  ie::testing::CtlServerThread srv_;
};

// --json prints the result as is (pretty), whatever the verb.
void expect_json(const Ran& r, const Json& want) {
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(Json::parse(r.out), want) << r.out;
  EXPECT_NE(r.out.find("\n  "), std::string::npos) << "not pretty: " << r.out;
}

TEST_F(Iectl, Status) {
  auto r = run({"status"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            "ied 0.1.0, up 1d 01:01:01\n"
            "identity   q2hG5nJb0nF3eXo8mJwz3cR4bXl5dGh3eW5wcXJzdHU=\n"
            "tun        ie0, mtu 1400\n"
            "addresses  10.1.0.2\n"
            "prefixes   10.2.0.0/16\n"
            "sn         dom1.sn2 at 172.16.1.1:1000, established, registered, rtt 0.40 ms\n"
            "iesps      acme (default): dom1.sn2; beta: none\n"
            "discovery  dns, anycast; dns b.test (IESP beta): no answer; anycast "
            "192.0.2.1:1000: timed out\n"
            "counters\n"
            "  sn_tx_bytes     5.00 MiB\n"
            "  sn_tx_packets   1.23M\n"
            "  tun_rx_packets  1234\n"
            "  tun_tx_packets  1200\n"
            "drops\n"
            "  no_route  3\n");
  expect_json(run({"status", "--json"}), sample_status());
  expect_json(run({"--json", "status"}), sample_status());
  EXPECT_EQ(canned_.params("status"), Json::object());
}

TEST_F(Iectl, SnListAndDiscover) {
  const std::string table =
      "NAME      ENDPOINT         IESP  STATE            SOURCE  PRIO  WEIGHT      RTT  EXPIRES  "
      "KEY\n"
      "dom1.sn2  172.16.1.1:1000  acme  active (pinned)  dns       10       5  0.40 ms    5m00s  "
      "q2hG5nJb...\n"
      "dom1.sn3  172.16.2.1:1000  beta  standby          static    20       1        -        -  "
      "AAAAC3Nz...\n";
  auto r = run({"sn", "list"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, table);
  expect_json(run({"sn", "list", "--json"}), sample_sns());
  r = run({"sn", "discover"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, table);
  EXPECT_EQ(canned_.calls("sn.discover"), 1);
  expect_json(run({"sn", "discover", "--json"}), sample_sns());
  canned_.set("sn.list", Json{{"sns", Json::array()}});
  r = run({"sn", "list"});
  EXPECT_EQ(r.out, "no SNs\n");
}

TEST_F(Iectl, SnPing) {
  auto r = run({"sn", "ping"});
  ASSERT_EQ(r.rc, 0) << r.err;  // a failed ping is a row, the daemon did answer
  EXPECT_EQ(r.out,
            "NAME      ENDPOINT         RTT\n"
            "dom1.sn2  172.16.1.1:1000  0.42 ms\n"
            "dom1.sn3  172.16.2.1:1000  error: no reply in 1000 ms\n");
  EXPECT_EQ(canned_.params("sn.ping"), Json::object());
  expect_json(run({"sn", "ping", "dom1.sn2", "--json"}), sample_ping());
  EXPECT_EQ(canned_.params("sn.ping"), (Json{{"name", "dom1.sn2"}}));
}

TEST_F(Iectl, SnUse) {
  auto r = run({"sn", "use", "dom1.sn3"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "active SN: dom1.sn3\n");
  EXPECT_EQ(canned_.params("sn.use"), (Json{{"name", "dom1.sn3"}}));
  expect_json(run({"sn", "use", "dom1.sn3", "--json"}), Json{{"active", "dom1.sn3"}});
}

TEST_F(Iectl, Peers) {
  auto r = run({"peers"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(
      r.out,
      "ADDRESS   SN        STATE        VIA     DIRECT                TX    RX      LAST RX  KEY\n"
      "10.2.0.2  dom1.sn2  established  direct  closer 0.21/10.40 ms  12  250k   120 ms ago  "
      "bWFueWJ5...\n"
      "10.2.0.9  dom1.sn2  resolving    sn      -                      1     0            -\n"
      "10.2.0.7  dom1.sn2  established  sn      measuring -/1.50+ ms   3     4  5.00 ms ago\n"
      "10.3.0.1  -         established  direct  on-link                -     -            -\n");
  expect_json(run({"peers", "--json"}), sample_peers());
  canned_.set("peers", Json{{"peers", Json::array()}});
  EXPECT_EQ(run({"peers"}).out, "no peers\n");
}

TEST_F(Iectl, Resolve) {
  const Json dom2 = Json::parse(R"({"address":"127.0.0.1","interedge":true,
    "sns":["dom2.sn1","dom1.sn1"],"source":"dns","expires_in_s":30,"pending":false})");
  canned_.set("peer.resolve", dom2);
  auto r = run({"resolve", "127.0.0.1"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "ADDRESS    INTEREDGE  SNS                 SOURCE\n"
            "127.0.0.1  yes        dom2.sn1, dom1.sn1  dns\n");
  EXPECT_EQ(canned_.params("peer.resolve"), (Json{{"address", "127.0.0.1"}}));
  expect_json(run({"resolve", "127.0.0.1", "--json"}),
              Json{{"host", "127.0.0.1"}, {"results", {dom2}}});
  // A name, through getaddrinfo: the numeric address goes to ied.
  r = run({"resolve", "-4", "localhost"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(canned_.params("peer.resolve"), (Json{{"address", "127.0.0.1"}}));
  // A name that does not resolve (an IPv4 literal as IPv6): exit 1, ied not asked.
  const int before = canned_.calls("peer.resolve");
  r = run({"resolve", "-6", "10.2.0.2"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("iectl: resolve: 10.2.0.2: ", 0), 0u) << r.err;
  EXPECT_EQ(canned_.calls("peer.resolve"), before);
  EXPECT_EQ(run({"resolve"}).rc, 2);
  EXPECT_EQ(run({"resolve", "-4", "-6", "localhost"}).rc, 2);
  // ied keeps answering pending: asked again for 2 s, then shown as it is.
  canned_.set("peer.resolve", Json::parse(R"({"address":"127.0.0.1","interedge":false,
    "sns":[],"source":"none","expires_in_s":null,"pending":true})"));
  const auto t0 = std::chrono::steady_clock::now();
  r = run({"resolve", "127.0.0.1"});
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1900));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "ADDRESS    INTEREDGE  SNS  SOURCE\n"
            "127.0.0.1  no         -    none (DNS lookup pending)\n");
  EXPECT_GT(canned_.calls("peer.resolve"), before + 5);
  canned_.set("peer.resolve", ie::fail(Errc::invalid_argument, "address: not an IP address"));
  r = run({"resolve", "127.0.0.1"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "iectl: address: not an IP address (invalid_argument)\n");
}

TEST_F(Iectl, Flows) {
  auto r = run({"flows"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(
      r.out,
      "PROTO  SRC             DST          SERVICE         STEERED  VIA     IESP  SN        PEER  "
      "    TX PKTS  RX PKTS        TX        RX   IDLE\n"
      "tcp    10.1.0.2:40000  10.2.0.2:80  ip (ip-via-sn)  socket   sn      beta  dom2.sn1  "
      "10.2.0.2       10       12  1.46 KiB  1.50 MiB  3m05s\n"
      "udp    10.1.0.2:5353   10.2.0.2:53  ip              route    direct  acme  -         "
      "10.2.0.2        1        1      60 B      90 B     3s\n");
  expect_json(run({"flows", "--json"}), sample_flows());
  canned_.set("flows", Json::object());  // no "flows" at all
  EXPECT_EQ(run({"flows"}).out, "no flows\n");
}

TEST_F(Iectl, ConfigCheck) {
  auto r = run({"config", "check"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "/etc/interedge/ied.toml: ok\n");
  EXPECT_EQ(canned_.params("config.check"), Json::object());
  expect_json(run({"config", "check", "/tmp/x.toml", "--json"}),
              Json{{"ok", true}, {"path", "/etc/interedge/ied.toml"}});
  EXPECT_EQ(canned_.params("config.check"), (Json{{"path", "/tmp/x.toml"}}));
  // An invalid file: the daemon's FILE:LINE:COL message, as is, and exit 1.
  canned_.set("config.check",
              ie::fail(Errc::invalid_argument, "/tmp/x.toml:3:11: ied.mtu must be 576..9000"));
  r = run({"config", "check", "/tmp/x.toml"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "/tmp/x.toml:3:11: ied.mtu must be 576..9000\n");
}

TEST_F(Iectl, DaemonErrorIsExit1) {
  canned_.set("sn.use", ie::fail(Errc::not_found, "sn.use: no SN named \"dom9.sn1\""));
  auto r = run({"sn", "use", "dom9.sn1"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "iectl: sn.use: no SN named \"dom9.sn1\" (not_found)\n");
  r = run({"sn", "use", "dom9.sn1", "--json"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
}

TEST_F(Iectl, PermissionIsExit4) {
  canned_.set("sn.discover",
              ie::fail(Errc::permission,
                       "\"sn.discover\" is an admin method; it needs root or a member of group "
                       "\"interedge\" (caller uid 1000)"));
  auto r = run({"sn", "discover"});
  EXPECT_EQ(r.rc, 4);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "iectl: \"sn.discover\" is an admin method; it needs root or a member of group "
            "\"interedge\" (caller uid 1000) (permission)\n");
}

TEST_F(Iectl, UsageErrorsAreExit2AndCallNothing) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"frobnicate"},
                                                                {},
                                                                {"sn"},
                                                                {"sn", "use"},
                                                                {"status", "--bogus"},
                                                                {"sn", "use", "a", "b"},
                                                                {"config", "check", "a", "b"}}) {
    auto r = run(args);
    EXPECT_EQ(r.rc, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_EQ(r.out, "") << ::testing::PrintToString(args);
    EXPECT_NE(r.err, "") << ::testing::PrintToString(args);
  }
  for (const char* m : kMethods)
    EXPECT_EQ(canned_.calls(m), 0) << m;
  EXPECT_EQ(run({"frobnicate"}).err, "iectl: unknown command \"frobnicate\" (see iectl --help)\n");
  auto help = run({"--help"});
  EXPECT_EQ(help.rc, 0);
  for (const char* verb : {"status", "sn", "peers", "flows", "config"})
    EXPECT_NE(help.out.find(verb), std::string::npos) << help.out;
  auto version = run({"--version"});
  EXPECT_EQ(version.rc, 0);
  EXPECT_EQ(version.out, "iectl 0.1.0\n");
}

TEST_F(Iectl, DaemonDownIsExit3AndNamesTheSocket) {
  const std::string missing = dir_ + "/nothing.sock";
  auto r = run({"--socket", missing, "status"}, {}, false);
  EXPECT_EQ(r.rc, 3);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("cannot connect to " + missing + " (is ied running?)"), std::string::npos)
      << r.err;
  // The default socket, when neither --socket nor IECTL_SOCKET is given (on a test machine
  // ied may be running: then it must at least not fail as "down" naming another path).
  r = run({"status"}, {}, false);
  if (r.rc == 3) {
    EXPECT_NE(r.err.find("/run/interedge/ied.sock"), std::string::npos) << r.err;
  }
}

TEST_F(Iectl, SocketFromEnvironmentAndFlag) {
  const std::string missing = dir_ + "/env.sock";
  auto r = run({"status"}, {"IECTL_SOCKET=" + missing}, false);
  EXPECT_EQ(r.rc, 3);
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  r = run({"status"}, {"IECTL_SOCKET=" + path_}, false);
  EXPECT_EQ(r.rc, 0) << r.err;
  // --socket wins over the environment, before or after the verb.
  r = run({"--socket", path_, "status"}, {"IECTL_SOCKET=" + missing}, false);
  EXPECT_EQ(r.rc, 0) << r.err;
  r = run({"peers", "--socket", path_}, {"IECTL_SOCKET=" + missing}, false);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(canned_.calls("peers"), 1);
}

TEST_F(Iectl, HumanOutputIsNullSafe) {
  canned_.set("status", Json::parse(R"({"version":7,"uptime_s":"soon","tun":null,
      "addresses":[1,"10.1.0.2",null],"sn":null,"counters":{"x":"y","tun_rx_packets":-1},
      "drops":[],"new":{"nested":[1,2]}})"));
  auto r = run({"status"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "ied 7, up -\n"
            "identity   -\n"
            "tun        -\n"
            "addresses  10.1.0.2\n"
            "prefixes   -\n"
            "sn         none\n"
            "counters\n"
            "  none\n"
            "drops\n"
            "  none\n");
  canned_.set("status", Json::object());
  EXPECT_EQ(run({"status"}).rc, 0);
  canned_.set("sn.list", Json::parse(R"({"sns":[{}, 3, {"name":"x","pinned":"yes","extra":1}]})"));
  r = run({"sn", "list"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAME  ENDPOINT  IESP  STATE  SOURCE  PRIO  WEIGHT  RTT  EXPIRES  KEY\n"
            "-     -         -     -      -          -       -    -        -  -\n"
            "-     -         -     -      -          -       -    -        -  -\n"
            "x     -         -     -      -          -       -    -        -  -\n");
  canned_.set("peers", Json::parse(R"({"peers":[{"tx_packets":null}]})"));
  EXPECT_EQ(run({"peers"}).rc, 0);
  canned_.set("flows", Json::parse(R"({"flows":"none"})"));
  EXPECT_EQ(run({"flows"}).out, "no flows\n");
  canned_.set("sn.ping", Json::parse(R"({"results":[{"name":"a"}]})"));
  r = run({"sn", "ping"});
  EXPECT_NE(r.out.find("no reply"), std::string::npos) << r.out;
}

TEST_F(Iectl, ServiceList) {
  auto r = run({"service", "list"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "generation 3\n"
            "SERVICE  DIRECTION  PREFIX\n"
            "block    in         198.51.100.0/24\n"
            "block    both       fd00:9::/64\n"
            "\n"
            "SN        ACTIVE  STATE    ACKED  APPLIED  ERROR\n"
            "dom1.sn1  yes     applied      3        2  -\n"
            "dom1.sn2  no      refused      0        0  service \"block\" is not offered\n"
            "\n"
            "last refusal (generation 2): dom1.sn1 refused qos out 10.0.0.0/8, removed again: "
            "service \"qos\" is not offered\n");
  expect_json(run({"service", "list", "--json"}), sample_service_list());
  canned_.set("service.list", Json::parse(R"({"generation":0,"invocations":[],"sns":[],
                                              "last_refusal":null})"));
  EXPECT_EQ(run({"service", "list"}).out, "generation 0\nno out-of-band invocations\n");
  canned_.set("service.list", Json::parse(R"({"invocations":"x","sns":[{}],"last_refusal":7})"));
  r = run({"service", "list"});
  EXPECT_EQ(r.rc, 0) << r.err;
}

// enable/disable: one change, then service.list until the active SN's verdict.
TEST_F(Iectl, ServiceEnableWaitsForTheActiveSn) {
  auto r = run({"service", "enable", "block", "--prefix", "198.51.100.7/24"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(canned_.params("service.enable"),
            (Json{{"service", "block"}, {"direction", "in"}, {"prefix", "198.51.100.7/24"}}));
  EXPECT_EQ(r.out,
            "enabled block in 198.51.100.0/24\n"
            "dom1.sn1 applies:\n"
            "  SERVICE  DIRECTION  PREFIX\n"
            "  block    in         198.51.100.0/24\n"
            "  block    both       fd00:9::/64\n");
  EXPECT_EQ(canned_.calls("service.list"), 1);
  Json want = sample_enabled();
  want["sn"] = "dom1.sn1";
  want["applied"] = sample_service_list()["sns"][0]["applied"];
  expect_json(run({"service", "enable", "block", "--prefix", "198.51.100.0/24", "--json"}), want);
  // Already there: no change, still waits for (and shows) what applies.
  canned_.set(
      "service.enable",
      Json{{"changed", false}, {"generation", 3}, {"invocation", sample_enabled()["invocation"]}});
  r = run({"service", "enable", "block", "--prefix", "198.51.100.0/24", "--direction", "in"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "block in 198.51.100.0/24 was already enabled");
}

TEST_F(Iectl, ServiceEnableRefusedOrPending) {
  // The active SN refused generation 3: ied undid it; exit 1 with the SN's reason.
  Json list = sample_service_list();
  list["last_refusal"]["generation"] = 3;
  list["last_refusal"]["entry"] = sample_enabled()["invocation"];
  list["sns"][0]["acked_generation"] = 4;  // the set without it, applied since
  canned_.set("service.list", list);
  auto r = run({"service", "enable", "block", "--prefix", "198.51.100.0/24"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "iectl: dom1.sn1 refused block in 198.51.100.0/24: service \"qos\" is not offered "
            "(ied removed it again)\n");
  // Not acknowledged in time: pending, exit 1.
  list = sample_service_list();
  list["sns"][0]["acked_generation"] = 2;
  list["sns"][0]["state"] = "pending";
  canned_.set("service.list", list);
  const auto t0 = std::chrono::steady_clock::now();
  r = run({"service", "enable", "block", "--prefix", "198.51.100.0/24", "--wait", "0.4"});
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("dom1.sn1 has not acknowledged it after 0.4 s: pending (generation 3)"),
            std::string::npos)
      << r.err;
  EXPECT_GE(took, std::chrono::milliseconds(400));
  EXPECT_GE(canned_.calls("service.list"), 3);
  // No active SN at all.
  list["sns"] = Json::array();
  canned_.set("service.list", list);
  r = run({"service", "enable", "block", "--prefix", "198.51.100.0/24", "--wait", "0"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no SN is active"), std::string::npos) << r.err;
  // --no-wait: stored is enough.
  const int lists = canned_.calls("service.list");
  r = run({"service", "enable", "block", "--prefix", "198.51.100.0/24", "--no-wait"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "enabled block in 198.51.100.0/24 (generation 3; not waiting for the SN)\n");
  EXPECT_EQ(canned_.calls("service.list"), lists);
  // The daemon's own refusal (a bad prefix, not an admin): its exit codes.
  canned_.set("service.enable", ie::fail(Errc::invalid_argument, "prefix: \"x\" is not ADDR/LEN"));
  r = run({"service", "enable", "block", "--prefix", "x"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "iectl: prefix: \"x\" is not ADDR/LEN (invalid_argument)\n");
  canned_.set("service.enable",
              ie::fail(Errc::permission, "\"service.enable\" is an admin method"));
  EXPECT_EQ(run({"service", "enable", "block", "--prefix", "10.0.0.0/8"}).rc, 4);
}

TEST_F(Iectl, ServiceDisable) {
  canned_.set("service.disable", Json::parse(R"({"changed":true,"generation":4,
                  "invocation":{"service":"block","direction":"both","prefix":"fd00:9::/64"}})"));
  Json list = sample_service_list();
  list["sns"][0]["acked_generation"] = 4;
  canned_.set("service.list", list);
  auto r = run({"service", "disable", "block", "--prefix", "fd00:9::/64", "--direction", "both"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(canned_.params("service.disable"),
            (Json{{"service", "block"}, {"direction", "both"}, {"prefix", "fd00:9::/64"}}));
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "disabled block both fd00:9::/64");
  canned_.set("service.disable", Json{{"changed", true}, {"generation", 4}});
  r = run({"service", "disable", "--all"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(canned_.params("service.disable"), (Json{{"all", true}}));
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "disabled every invocation");
  canned_.set("service.disable", ie::fail(Errc::not_found, "no out-of-band invocation x"));
  r = run({"service", "disable", "block", "--prefix", "10.0.0.0/8"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "iectl: no out-of-band invocation x (not_found)\n");
}

TEST_F(Iectl, ServiceUsageErrorsCallNothing) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"service"},
           {"service", "enable"},
           {"service", "enable", "block"},  // no --prefix
           {"service", "enable", "block", "--prefix", "10.0.0.0/8", "--direction", "up"},
           {"service", "enable", "block", "--prefix", "10.0.0.0/8", "--wait", "-1"},
           {"service", "disable"},
           {"service", "disable", "block"},
           {"service", "disable", "--prefix", "10.0.0.0/8"},
           {"service", "disable", "block", "--all"},
           {"service", "disable", "--all", "--prefix", "10.0.0.0/8"},
           {"service", "list", "extra"}}) {
    auto r = run(args);
    EXPECT_EQ(r.rc, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_EQ(r.out, "") << ::testing::PrintToString(args);
    EXPECT_NE(r.err, "") << ::testing::PrintToString(args);
  }
  for (const char* m : {"service.enable", "service.disable", "service.list"})
    EXPECT_EQ(canned_.calls(m), 0) << m;
}

}  // namespace
