// libinteredge-preload.so in real processes: the plain-C helper (preload_helper.c) and
// /bin/sh run with LD_PRELOAD=the built library and IE_SOCKET at a fake ied in this test
// (fake_ied.hpp). Covers SOL_INTEREDGE with and without the shim, IE_SERVICE steering of TCP
// v4/v6 and connected/unconnected UDP (one request per socket), loopback left alone,
// IE_DESTINATIONS, the policy file, fork + exec, threads, non-blocking connect, fd reuse, and
// ied down with and without IE_STRICT. Non-loopback destinations are documentation
// addresses reached by non-blocking connects, so no test waits on the network.
//
// Under the asan preset the library and helper are instrumented: the child then gets the
// ASan runtime first in LD_PRELOAD (as ASan requires), found in this test's own process.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <link.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fake_ied.hpp"
#include "interedge/interedge.h"

extern char** environ;

namespace {

using ie::testing::FakeIed;
using Mode = FakeIed::Mode;

constexpr const char* kV4 = "198.51.100.1";  // TEST-NET-2: never answers
constexpr const char* kV6 = "2001:db8::1";

struct Ran {
  int rc = -1;
  std::string out, err;
  // The values of key in lines starting with tag.
  std::vector<std::string> values(const std::string& tag, const std::string& key) const {
    std::vector<std::string> v;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(tag + " ", 0) != 0) continue;
      const auto at = line.find(" " + key + "=");
      if (at == std::string::npos) continue;
      const auto start = at + key.size() + 2;
      v.push_back(line.substr(start, line.find(' ', start) - start));
    }
    return v;
  }
  std::string value(const std::string& tag, const std::string& key) const {
    const auto v = values(tag, key);
    return v.empty() ? "<none>" : v.front();
  }
};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The ASan runtime this (instrumented) test runs with, to preload ahead of the shim.
[[maybe_unused]] std::string asan_runtime() {
  std::string found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* p) {
        if (info->dlpi_name != nullptr && std::strstr(info->dlpi_name, "libasan") != nullptr)
          *static_cast<std::string*>(p) = info->dlpi_name;
        return 0;
      },
      &found);
  return found;
}

std::string preload_value() {
#ifdef IE_TEST_SANITIZED
  const std::string rt = asan_runtime();
  return rt.empty() ? "" : rt + ":" + IE_PRELOAD_SO;
#else
  return IE_PRELOAD_SO;
#endif
}

class ShimPreload : public ::testing::Test {
 protected:
  void SetUp() override {
    if (preload_value().empty())
      GTEST_SKIP() << "sanitized build, but the ASan runtime was not found to preload first";
  }

  // Runs argv with env: this process's environment minus LD_PRELOAD and IE_*, plus
  // LD_PRELOAD (unless preload is false), IE_SOCKET=the fake, plus extra.
  Ran run(std::vector<std::string> argv_s, std::vector<std::string> extra = {},
          bool preload = true) {
    std::vector<std::string> env_s;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view v(*e);
      if (v.rfind("LD_PRELOAD=", 0) == 0 || v.rfind("IE_", 0) == 0) continue;
      env_s.emplace_back(v);
    }
    if (preload) env_s.push_back("LD_PRELOAD=" + preload_value());
    bool own_socket = false;
    for (const auto& e : extra)
      own_socket = own_socket || e.rfind("IE_SOCKET=", 0) == 0;
    if (!own_socket) env_s.push_back("IE_SOCKET=" + ied_.path());
    env_s.insert(env_s.end(), extra.begin(), extra.end());
    return spawn(argv_s, env_s);
  }

  Ran helper(std::vector<std::string> args, std::vector<std::string> extra = {},
             bool preload = true) {
    args.insert(args.begin(), IE_HELPER_BIN);
    return run(args, std::move(extra), preload);
  }

  Ran spawn(const std::vector<std::string>& argv_s, std::vector<std::string> env_s) {
    std::vector<char*> argv, envp;
    for (const auto& a : argv_s)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : env_s)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string out = ied_.dir() + "/out", err = ied_.dir() + "/err";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = -1;
    const int sr = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    Ran ran;
    if (sr != 0) {
      ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << strerror(sr);
      return ran;
    }
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      if (waitpid(pid, &status, WNOHANG) == pid) break;
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ADD_FAILURE() << argv_s[0] << " did not finish in 30 s";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ran.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    ran.out = slurp(out);
    ran.err = slurp(err);
    return ran;
  }

  // The cookies ied was asked to steer (socket.set_service), in order.
  std::vector<std::string> steered() {
    std::vector<std::string> v;
    for (const auto& r : ied_.requests())
      if (r.method == "socket.set_service") v.push_back(std::to_string(r.cookie));
    return v;
  }

  FakeIed ied_;
};

// A non-blocking connect that really ran: in progress (a route), or no route at all.
bool really_connected(const std::string& err) {
  return err == std::to_string(EINPROGRESS) || err == std::to_string(ENETUNREACH) ||
         err == std::to_string(EHOSTUNREACH);
}

TEST_F(ShimPreload, SolInteredgeWithoutTheShimIsEnoprotoopt) {
  const Ran r = helper({"sockopt", "ip"}, {}, /*preload=*/false);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.value("setsockopt", "rc"), "-1");
  EXPECT_EQ(r.value("setsockopt", "errno"), std::to_string(ENOPROTOOPT));
  // The kernel's getsockopt says EOPNOTSUPP for an unknown level of an IP socket.
  const std::string get_errno = r.value("getsockopt", "errno");
  EXPECT_TRUE(get_errno == std::to_string(ENOPROTOOPT) || get_errno == std::to_string(EOPNOTSUPP))
      << get_errno;
  EXPECT_EQ(ied_.requests().size(), 0u);
}

TEST_F(ShimPreload, SolInteredgeUnderTheShimReachesIed) {
  const Ran r = helper({"sockopt", "ip"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.value("setsockopt", "rc"), "0") << r.out;
  EXPECT_EQ(r.value("getsockopt", "rc"), "0") << r.out;
  EXPECT_EQ(r.value("getsockopt", "service"), "ip");
  EXPECT_EQ(r.value("getsockopt", "len"), std::to_string(sizeof(ie_service_info)));
  EXPECT_EQ(r.value("keepalive", "rc"), "0");  // other levels still go to the kernel
  EXPECT_EQ(steered(), std::vector<std::string>{r.value("setsockopt", "cookie")});
}

TEST_F(ShimPreload, SolInteredgeErrorsComeFromIed) {
  ied_.set_mode(Mode::error, ENOENT, "not_found");
  const Ran r = helper({"sockopt", "nosuch"});
  EXPECT_EQ(r.value("setsockopt", "errno"), std::to_string(ENOENT));
}

TEST_F(ShimPreload, NothingIsSteeredWithoutAPolicy) {
  const Ran r = helper({"connect", kV4, "9"}, {"IE_POLICY_FILE=/nonexistent"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(really_connected(r.value("connect", "errno"))) << r.out;
  EXPECT_EQ(ied_.requests().size(), 0u);
}

TEST_F(ShimPreload, TcpV4IsSteeredBeforeConnect) {
  const Ran r = helper({"connect", kV4, "9"}, {"IE_SERVICE=ip", "IE_OPTIONS=direct=prefer"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(steered(), std::vector<std::string>{r.value("connect", "cookie")});
  EXPECT_EQ(ied_.requests().at(0).params,
            (ie::testing::Json{{"service", "ip"}, {"options", {{"direct", "prefer"}}}}));
  // The connect still ran, non-blocking as the program asked.
  EXPECT_TRUE(really_connected(r.value("connect", "errno"))) << r.out;
  EXPECT_EQ(r.value("connect", "nonblock"), "1");
}

TEST_F(ShimPreload, TcpV6IsSteered) {
  const Ran r = helper({"connect", kV6, "9"}, {"IE_SERVICE=ip"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(steered(), std::vector<std::string>{r.value("connect", "cookie")});
  EXPECT_EQ(ied_.requests().at(0).domain, AF_INET6);
}

TEST_F(ShimPreload, ConnectedUdpIsSteeredOnce) {
  const Ran r = helper({"udp-connect", kV4, "9"}, {"IE_SERVICE=ip"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(steered(), std::vector<std::string>{r.value("udp-connect", "cookie")});
}

TEST_F(ShimPreload, UnconnectedUdpIsSteeredOnceForManySendto) {
  const Ran r = helper({"udp-sendto", kV4, "9", "5"}, {"IE_SERVICE=ip"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(steered(), std::vector<std::string>{r.value("udp-sendto", "cookie")});
  EXPECT_EQ(r.value("udp-sendto", "rc"), "1") << r.out;  // the datagrams still went out
}

TEST_F(ShimPreload, SendmsgAndSendmmsgAreSteered) {
  const Ran r = helper({"udp-sendmsg", kV6, "9"}, {"IE_SERVICE=ip"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(steered(), (std::vector<std::string>{r.value("sendmsg", "cookie"),
                                                 r.value("sendmmsg", "cookie")}));
}

TEST_F(ShimPreload, LoopbackIsNotSteered) {
  for (const char* lo : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"})
    helper({"udp-sendto", lo, "9", "1"}, {"IE_SERVICE=ip"});
  EXPECT_EQ(ied_.requests().size(), 0u);
}

TEST_F(ShimPreload, DestinationsFilter) {
  helper({"connect", kV4, "9"}, {"IE_SERVICE=ip", "IE_DESTINATIONS=203.0.113.0/24,fd00::/8"});
  EXPECT_EQ(ied_.requests().size(), 0u);
  const Ran r = helper({"connect", "203.0.113.7", "9"},
                       {"IE_SERVICE=ip", "IE_DESTINATIONS=203.0.113.0/24,fd00::/8"});
  EXPECT_EQ(steered(), std::vector<std::string>{r.value("connect", "cookie")});
  const Ran r6 = helper({"udp-sendto", "fd00:1::5", "9", "1"},
                        {"IE_SERVICE=ip", "IE_DESTINATIONS=203.0.113.0/24,fd00::/8"});
  EXPECT_EQ(steered().size(), 2u);
}

TEST_F(ShimPreload, BadDestinationsTurnSteeringOffAndSayWhyWithDebug) {
  const Ran r =
      helper({"connect", kV4, "9"}, {"IE_SERVICE=ip", "IE_DESTINATIONS=10.0.0.0/99", "IE_DEBUG=1"});
  ASSERT_EQ(r.rc, 0);
  EXPECT_EQ(ied_.requests().size(), 0u);
  EXPECT_NE(r.err.find("IE_DESTINATIONS"), std::string::npos) << r.err;
}

TEST_F(ShimPreload, PolicyFileByProgramName) {
  const std::string conf = ied_.dir() + "/shim.conf";
  std::ofstream(conf) << "# test policy\n"
                         "shim_preload_helper IP\n"
                         "otherprog ip\n"
                         "shim_preload_helper ip 198.51.100.0/24 direct=prefer\n";
  const Ran r = helper({"connect", kV4, "9"}, {"IE_POLICY_FILE=" + conf, "IE_DEBUG=1"});
  ASSERT_EQ(r.rc, 0) << r.err;
  ASSERT_EQ(steered(), std::vector<std::string>{r.value("connect", "cookie")}) << r.err;
  EXPECT_EQ(ied_.requests().at(0).params["options"], (ie::testing::Json{{"direct", "prefer"}}));
  EXPECT_NE(r.err.find("policy line 2 ignored"), std::string::npos) << r.err;
  // Outside the line's destinations: not steered.
  helper({"connect", kV6, "9"}, {"IE_POLICY_FILE=" + conf});
  EXPECT_EQ(steered().size(), 1u);
  // The environment wins over the file: IE_SERVICE="" turns steering off.
  helper({"connect", kV4, "9"}, {"IE_POLICY_FILE=" + conf, "IE_SERVICE="});
  EXPECT_EQ(steered().size(), 1u);
}

TEST_F(ShimPreload, ForkAndExecChildrenAreSteeredToo) {
  const Ran r = helper({"fork-exec", "connect", kV4, "9"}, {"IE_SERVICE=ip"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.value("child", "exit"), "0");
  EXPECT_EQ(steered(), std::vector<std::string>{r.value("connect", "cookie")});
}

TEST_F(ShimPreload, ThroughAShellToo) {
  const std::string cmd = std::string("exec ") + IE_HELPER_BIN + " connect " + kV4 + " 9";
  const Ran r = run({"/bin/sh", "-c", cmd}, {"IE_SERVICE=ip", "ASAN_OPTIONS=detect_leaks=0"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(steered(), std::vector<std::string>{r.value("connect", "cookie")});
}

TEST_F(ShimPreload, RealProgramsRunUnharmed) {
  const Ran t = run({"/bin/true"}, {"IE_SERVICE=ip", "ASAN_OPTIONS=detect_leaks=0"});
  EXPECT_EQ(t.rc, 0) << t.err;
  const Ran s =
      run({"/bin/sh", "-c", "echo hi; exit 3"}, {"IE_SERVICE=ip", "ASAN_OPTIONS=detect_leaks=0"});
  EXPECT_EQ(s.rc, 3) << s.err;
  EXPECT_EQ(s.out, "hi\n");
}

TEST_F(ShimPreload, ThreadsEachSocketSteeredOnce) {
  const Ran r = helper({"threads", "8", kV4, "9"}, {"IE_SERVICE=ip"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto cookies = r.values("connect", "cookie");
  ASSERT_EQ(cookies.size(), 32u) << r.out;
  auto got = steered();
  EXPECT_EQ(std::multiset<std::string>(got.begin(), got.end()),
            std::multiset<std::string>(cookies.begin(), cookies.end()));
}

TEST_F(ShimPreload, AReusedFdIsSteeredAgain) {
  const Ran r = helper({"reuse", kV4, "9"}, {"IE_SERVICE=ip"});
  ASSERT_EQ(r.rc, 0) << r.err;
  ASSERT_EQ(r.value("first", "fd"), r.value("second", "fd"));  // same number, new socket
  EXPECT_EQ(steered(),
            (std::vector<std::string>{r.value("first", "cookie"), r.value("second", "cookie")}));
}

TEST_F(ShimPreload, Dup2OverASteeredFd) {
  const Ran r = helper({"dup2", kV4, "9"}, {"IE_SERVICE=ip"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(steered(),
            (std::vector<std::string>{r.value("dup2", "first"), r.value("dup2", "second")}));
}

TEST_F(ShimPreload, NonBlockingConnectStillEinprogressAfterExplicitSteering) {
  const int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(listen(l, 8), 0);
  socklen_t len = sizeof sa;
  getsockname(l, reinterpret_cast<sockaddr*>(&sa), &len);
  const Ran r = helper({"loopback-nb", std::to_string(ntohs(sa.sin_port))});
  close(l);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.value("loopback", "setsockopt"), "0");
  const std::string e = r.value("loopback", "errno");
  EXPECT_TRUE(e == std::to_string(EINPROGRESS) || e == "0") << r.out;
  EXPECT_EQ(r.value("loopback", "nonblock"), "1");
  EXPECT_EQ(r.value("loopback", "ready"), "1");
  EXPECT_EQ(r.value("loopback", "so_error"), "0");
  EXPECT_EQ(steered().size(), 1u);
}

TEST_F(ShimPreload, IedDownTheConnectStillHappens) {
  const Ran r = helper({"connect", kV4, "9"},
                       {"IE_SERVICE=ip", "IE_SOCKET=" + ied_.dir() + "/absent.sock", "IE_DEBUG=1"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(really_connected(r.value("connect", "errno"))) << r.out;
  EXPECT_NE(r.err.find("continuing unsteered"), std::string::npos) << r.err;
}

TEST_F(ShimPreload, IedDownUnderStrictFailsTheConnect) {
  const Ran r =
      helper({"connect", kV4, "9"},
             {"IE_SERVICE=ip", "IE_SOCKET=" + ied_.dir() + "/absent.sock", "IE_STRICT=1"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.value("connect", "rc"), "-1");
  EXPECT_EQ(r.value("connect", "errno"), std::to_string(ECONNREFUSED));
  EXPECT_EQ(r.err, "");  // silent without IE_DEBUG
}

TEST_F(ShimPreload, RefusedServiceUnderStrictFailsWithIedsErrno) {
  ied_.set_mode(Mode::error, ENOENT, "not_found");
  const Ran r = helper({"udp-sendto", kV4, "9", "2"}, {"IE_SERVICE=nosuch", "IE_STRICT=1"});
  EXPECT_EQ(r.value("udp-sendto", "errno"), std::to_string(ENOENT));
  EXPECT_EQ(ied_.count("socket.set_service"), 2u);  // strict: each send tries again
}

}  // namespace
