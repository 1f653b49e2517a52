// `iectl invoke` end to end: the real iectl (IECTL_BIN) runs the plain-C helper under
// libinteredge-preload.so, which it finds next to itself in the build tree; a fake ied in
// this test (fake_ied.hpp) sees the steering. Covers the environment it sets (LD_PRELOAD
// prepended, IE_SERVICE, IE_OPTIONS, IE_DESTINATIONS, IE_STRICT, IE_SOCKET from --socket),
// steering through it, and exit codes 127 (command not found), 2 (usage) and 1 (no shim).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <link.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fake_ied.hpp"

extern char** environ;

namespace {

using ie::testing::FakeIed;

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

class ShimInvoke : public ::testing::Test {
 protected:
  Ran iectl(std::vector<std::string> args, std::vector<std::string> extra = {}) {
    args.insert(args.begin(), IECTL_BIN);
    std::vector<std::string> env_s;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view v(*e);
      if (v.rfind("LD_PRELOAD=", 0) == 0 || v.rfind("IE_", 0) == 0 || v.rfind("IECTL_", 0) == 0 ||
          v.rfind("ASAN_OPTIONS=", 0) == 0)
        continue;
      env_s.emplace_back(v);
    }
#ifdef IE_TEST_SANITIZED
    // iectl puts the (instrumented) shim first in LD_PRELOAD, so the ASan runtime it needs
    // loads after it: ASan refuses to start that way unless told not to check.
    env_s.push_back("ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0");
#endif
    env_s.insert(env_s.end(), extra.begin(), extra.end());
    std::vector<char*> argv, envp;
    for (auto& a : args)
      argv.push_back(a.data());
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
    const int sr = posix_spawn(&pid, IECTL_BIN, &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    Ran ran;
    if (sr != 0) {
      ADD_FAILURE() << "posix_spawn: " << sr;
      return ran;
    }
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      if (waitpid(pid, &status, WNOHANG) == pid) break;
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ADD_FAILURE() << "iectl invoke did not finish in 30 s";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ran.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    ran.out = slurp(out);
    ran.err = slurp(err);
    return ran;
  }

  FakeIed ied_;
};

TEST_F(ShimInvoke, SetsTheShimsEnvironment) {
  const Ran r =
      iectl({"--socket", ied_.path(), "invoke", "ip-direct", "-o", "direct=prefer", "-o", "x=1",
             "--destinations", "10.2.0.0/16,fd00::/8", "--strict", "--", IE_HELPER_BIN, "env"},
            {"LD_PRELOAD=/nonexistent/other.so", "IE_OPTIONS=stale=1"});
  ASSERT_EQ(r.rc, 0) << r.err;
  std::string ld = r.out.substr(r.out.find("LD_PRELOAD=") + 11);
  ld = ld.substr(0, ld.find('\n'));
  EXPECT_NE(ld.find("libinteredge-preload.so:"), std::string::npos) << ld;
  EXPECT_NE(ld.find(":/nonexistent/other.so"), std::string::npos) << ld;  // kept, after ours
  EXPECT_NE(r.out.find("IE_SERVICE=ip-direct\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("IE_OPTIONS=direct=prefer,x=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("IE_DESTINATIONS=10.2.0.0/16,fd00::/8\n"), std::string::npos);
  EXPECT_NE(r.out.find("IE_STRICT=1\n"), std::string::npos);
  EXPECT_NE(r.out.find("IE_SOCKET=" + ied_.path() + "\n"), std::string::npos);
}

TEST_F(ShimInvoke, NothingInheritedFromAnOuterInvocation) {
  const Ran r = iectl({"invoke", "ip", "--", IE_HELPER_BIN, "env"},
                      {"IE_OPTIONS=stale=1", "IE_DESTINATIONS=10.0.0.0/8", "IE_STRICT=1",
                       "IE_SOCKET=/keep/me.sock"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("IE_OPTIONS=<unset>"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("IE_DESTINATIONS=<unset>"), std::string::npos);
  EXPECT_NE(r.out.find("IE_STRICT=<unset>"), std::string::npos);
  EXPECT_NE(r.out.find("IE_SOCKET=/keep/me.sock"), std::string::npos);  // no --socket given
}

TEST_F(ShimInvoke, TheCommandsSocketsAreSteered) {
  const Ran r = iectl({"--socket", ied_.path(), "invoke", "ip", "-o", "direct=prefer", "--",
                       IE_HELPER_BIN, "connect", "198.51.100.1", "9"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto reqs = ied_.requests();
  ASSERT_EQ(reqs.size(), 1u) << r.out << r.err;
  EXPECT_EQ(reqs[0].method, "socket.set_service");
  EXPECT_EQ(reqs[0].params["options"], (ie::testing::Json{{"direct", "prefer"}}));
  EXPECT_NE(r.out.find("cookie=" + std::to_string(reqs[0].cookie)), std::string::npos);
}

TEST_F(ShimInvoke, ExitCodes) {
  Ran r = iectl({"invoke", "ip", "--", "/nonexistent/program"});
  EXPECT_EQ(r.rc, 127);
  EXPECT_NE(r.err.find("command not found"), std::string::npos) << r.err;
  r = iectl({"invoke", "ip", "--", "/bin/sh", "-c", "exit 7"});
  EXPECT_EQ(r.rc, 7);                        // the command's own status: iectl is gone after exec
  EXPECT_EQ(iectl({"invoke", "ip"}).rc, 2);  // no command
  EXPECT_EQ(iectl({"invoke", "IP", "--", "/bin/true"}).rc, 2);  // bad service
  EXPECT_EQ(iectl({"invoke", "ip", "-o", "NOPE", "--", "/bin/true"}).rc, 2);
  EXPECT_EQ(iectl({"invoke", "ip", "-o", "k=a,b", "--", "/bin/true"}).rc, 2);
  r = iectl({"invoke", "ip", "--destinations", "10.0.0.0/40", "--", "/bin/true"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("10.0.0.0/40"), std::string::npos) << r.err;
  r = iectl({"invoke", "ip", "--", "/bin/true"}, {"IE_PRELOAD=/nonexistent/shim.so"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("/nonexistent/shim.so"), std::string::npos) << r.err;
}

}  // namespace
