// libinteredge's C API (linked as the shared library) against a fake ied in a thread of the
// test (fake_ied.hpp): the request line and the passed socket, every reply kind mapped to
// errno, ied not running, the size-prefix rules, option limits checked without contacting
// ied, the socket-option form, threads and fork.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fake_ied.hpp"
#include "interedge/interedge.h"

namespace {

using ie::testing::cookie_of;
using ie::testing::FakeIed;
using ie::testing::Json;
using Mode = FakeIed::Mode;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

class ShimApi : public ::testing::Test {
 protected:
  void SetUp() override { setenv("IE_SOCKET", ied_.path().c_str(), 1); }
  void TearDown() override { unsetenv("IE_SOCKET"); }

  // Runs f and returns errno if it failed (-1), 0 if it succeeded.
  template <typename F>
  static int err_of(F f) {
    errno = 0;
    const int r = f();
    if (r == 0) return 0;
    EXPECT_EQ(r, -1);
    return errno;
  }

  FakeIed ied_;
};

Fd tcp4() {
  return Fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
}

ie_service_info info_for(const char* service) {
  ie_service_info info;
  std::memset(&info, 0, sizeof info);
  info.size = sizeof info;
  std::snprintf(info.service, sizeof info.service, "%s", service);
  return info;
}

TEST_F(ShimApi, ApiVersionAndLayout) {
  EXPECT_EQ(ie_api_version(), IE_API_VERSION);
  EXPECT_EQ(sizeof(ie_option), 160u);
  EXPECT_EQ(sizeof(ie_options), 8u + 16 * 160);
  EXPECT_EQ(sizeof(ie_service_info), 2648u);
  EXPECT_EQ(offsetof(ie_service_info, cookie) % 8, 0u);
}

// The request: one line with method and params, exactly one fd, and that fd is our socket.
TEST_F(ShimApi, SetServiceSendsOneRequestWithTheSocketItself) {
  Fd s = tcp4();
  ie_options o;
  ie_options_init(&o);
  ASSERT_EQ(ie_options_add(&o, "direct", "prefer"), 0);
  ASSERT_EQ(ie_set_service(s.get(), "ip", &o), 0) << strerror(errno);
  const auto reqs = ied_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "socket.set_service");
  EXPECT_EQ(reqs[0].params, (Json{{"service", "ip"}, {"options", {{"direct", "prefer"}}}}));
  EXPECT_EQ(reqs[0].fds, 1);
  EXPECT_EQ(reqs[0].cookie, cookie_of(s.get()));
  EXPECT_NE(reqs[0].cookie, 0u);
}

TEST_F(ShimApi, NullOptionsSendAnEmptyObject) {
  Fd s = tcp4();
  ASSERT_EQ(ie_set_service(s.get(), "ip-direct", nullptr), 0);
  EXPECT_EQ(ied_.requests().at(0).params,
            (Json{{"service", "ip-direct"}, {"options", Json::object()}}));
}

TEST_F(ShimApi, UdpAndIpv6SocketsAreAccepted) {
  for (auto [domain, type] : {std::pair{AF_INET, SOCK_DGRAM}, std::pair{AF_INET6, SOCK_STREAM},
                              std::pair{AF_INET6, SOCK_DGRAM}}) {
    Fd s(socket(domain, type, 0));
    EXPECT_EQ(ie_set_service(s.get(), "ip", nullptr), 0) << domain << "/" << type;
  }
  const auto reqs = ied_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].domain, AF_INET6);
}

TEST_F(ShimApi, TheSocketsFlagsAreUnchanged) {
  Fd s(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  const int before = fcntl(s.get(), F_GETFL);
  ASSERT_EQ(ie_set_service(s.get(), "ip", nullptr), 0);
  EXPECT_EQ(fcntl(s.get(), F_GETFL), before);
  EXPECT_NE(before & O_NONBLOCK, 0);
}

TEST_F(ShimApi, GetServiceOfAnUnsteeredSocketIsEmpty) {
  Fd s = tcp4();
  ie_service_info info = info_for("junk");
  ASSERT_EQ(ie_get_service(s.get(), &info), 0);
  EXPECT_STREQ(info.service, "");
  EXPECT_EQ(info.option_count, 0u);
  EXPECT_EQ(info.mark, 0u);
  EXPECT_EQ(info.cookie, cookie_of(s.get()));
  EXPECT_EQ(ied_.requests().at(0).method, "socket.get_service");
  EXPECT_EQ(ied_.requests().at(0).cookie, cookie_of(s.get()));
}

TEST_F(ShimApi, GetServiceReturnsWhatWasSet) {
  Fd s = tcp4();
  ie_options o;
  ie_options_init(&o);
  ASSERT_EQ(ie_options_parse(&o, "direct=prefer,cache=off"), 0);
  ASSERT_EQ(ie_set_service(s.get(), "ip", &o), 0);
  ie_service_info info;
  info.size = sizeof info;
  ASSERT_EQ(ie_get_service(s.get(), &info), 0);
  EXPECT_STREQ(info.service, "ip");
  ASSERT_EQ(info.option_count, 2u);
  EXPECT_STREQ(info.option[0].key, "cache");  // JSON objects come back sorted
  EXPECT_STREQ(info.option[0].value, "off");
  EXPECT_EQ(info.mark & 0xfff00000u, 0x1e100000u);
  EXPECT_EQ(info.size, sizeof info);
}

TEST_F(ShimApi, ClearServiceThenGetIsEmpty) {
  Fd s = tcp4();
  ASSERT_EQ(ie_set_service(s.get(), "ip", nullptr), 0);
  ASSERT_EQ(ie_clear_service(s.get()), 0);
  ASSERT_EQ(ie_clear_service(s.get()), 0);  // not steered is not an error
  ie_service_info info;
  info.size = sizeof info;
  ASSERT_EQ(ie_get_service(s.get(), &info), 0);
  EXPECT_STREQ(info.service, "");
  EXPECT_EQ(ied_.count("socket.clear_service"), 2u);
}

// ied's refusals come back as its errno.
TEST_F(ShimApi, ErrorRepliesSetTheirErrno) {
  Fd s = tcp4();
  const std::pair<int, const char*> cases[] = {
      {ENOENT, "not_found"}, {EINVAL, "invalid_argument"}, {EOPNOTSUPP, "unsupported"}};
  for (auto [e, code] : cases) {
    ied_.set_mode(Mode::error, e, code);
    EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "nosuch", nullptr); }), e) << code;
    ie_service_info info;
    info.size = sizeof info;
    EXPECT_EQ(err_of([&] { return ie_get_service(s.get(), &info); }), e) << code;
    EXPECT_EQ(err_of([&] { return ie_clear_service(s.get()); }), e) << code;
  }
}

TEST_F(ShimApi, ErrorRepliesWithoutErrnoUseTheCode) {
  Fd s = tcp4();
  ied_.set_mode(Mode::error, 0, "not_found");
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "x", nullptr); }), ENOENT);
  ied_.set_mode(Mode::error, 0, "unsupported");
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "x", nullptr); }), EOPNOTSUPP);
  ied_.set_mode(Mode::error, 0, "something_new");
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "x", nullptr); }), EIO);
}

TEST_F(ShimApi, GarbageHugeAndWrongCookieRepliesAreEproto) {
  Fd s = tcp4();
  for (Mode m : {Mode::garbage, Mode::huge, Mode::wrong_cookie}) {
    ied_.set_mode(m);
    EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "ip", nullptr); }), EPROTO)
        << static_cast<int>(m);
  }
}

TEST_F(ShimApi, ClosedWithoutAReplyIsEconnreset) {
  Fd s = tcp4();
  for (Mode m : {Mode::close, Mode::partial}) {
    ied_.set_mode(m);
    EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "ip", nullptr); }), ECONNRESET);
  }
}

TEST_F(ShimApi, NoReplyIsEtimedoutAfterAboutTwoSeconds) {
  Fd s = tcp4();
  ied_.set_mode(Mode::silent);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "ip", nullptr); }), ETIMEDOUT);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(1900));
  EXPECT_LT(took, std::chrono::milliseconds(4000));
}

TEST_F(ShimApi, EventsAndOtherIdsBeforeTheReplyAreSkipped) {
  Fd s = tcp4();
  ied_.set_mode(Mode::event_first);
  EXPECT_EQ(ie_set_service(s.get(), "ip", nullptr), 0) << strerror(errno);
}

TEST_F(ShimApi, IedNotRunningIsEconnrefused) {
  Fd s = tcp4();
  // No file at the path.
  setenv("IE_SOCKET", (ied_.dir() + "/absent.sock").c_str(), 1);
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "ip", nullptr); }), ECONNREFUSED);
  // A socket file nobody listens on (ied died without removing it).
  const std::string stale = ied_.dir() + "/stale.sock";
  {
    Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", stale.c_str());
    ASSERT_EQ(bind(l.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  }
  setenv("IE_SOCKET", stale.c_str(), 1);
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "ip", nullptr); }), ECONNREFUSED);
}

TEST_F(ShimApi, WrongDescriptorsAreRefusedLocally) {
  EXPECT_EQ(err_of([] { return ie_set_service(-1, "ip", nullptr); }), EBADF);
  EXPECT_EQ(err_of([] { return ie_set_service(1000000, "ip", nullptr); }), EBADF);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_EQ(err_of([&] { return ie_set_service(p[0], "ip", nullptr); }), ENOTSOCK);
  close(p[0]);
  close(p[1]);
  Fd u(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_EQ(err_of([&] { return ie_set_service(u.get(), "ip", nullptr); }), EINVAL);
  Fd ping(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));  // if this host allows ping sockets
  if (ping.get() >= 0) {
    EXPECT_EQ(err_of([&] { return ie_set_service(ping.get(), "ip", nullptr); }), EINVAL);
  }
  EXPECT_EQ(ied_.requests().size(), 0u);
}

TEST_F(ShimApi, BadNamesAndOptionsAreEinvalWithoutContactingIed) {
  Fd s = tcp4();
  for (const char* bad : {"", "IP", "a b", "ip/x", "caf\xc3\xa9"})
    EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), bad, nullptr); }), EINVAL) << bad;
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), nullptr, nullptr); }), EINVAL);
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), std::string(64, 'a').c_str(), nullptr); }),
            EINVAL);
  EXPECT_EQ(ie_set_service(s.get(), std::string(63, 'a').c_str(), nullptr), 0);  // the longest

  ie_options o;
  ie_options_init(&o);
  o.count = 17;  // more than the array holds
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "ip", &o); }), EINVAL);
  // A key without its NUL, a key of bad characters, a value with a control character, a
  // duplicate key: each refused.
  ie_options_init(&o);
  o.count = 1;
  std::memset(o.option[0].key, 'a', sizeof o.option[0].key);
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "ip", &o); }), EINVAL);
  ie_options_init(&o);
  o.count = 1;
  std::strcpy(o.option[0].key, "Direct");
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "ip", &o); }), EINVAL);
  ie_options_init(&o);
  o.count = 1;
  std::strcpy(o.option[0].key, "k");
  std::strcpy(o.option[0].value, "a\tb");
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "ip", &o); }), EINVAL);
  ie_options_init(&o);
  o.count = 2;
  std::strcpy(o.option[0].key, "k");
  std::strcpy(o.option[1].key, "k");
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "ip", &o); }), EINVAL);
  EXPECT_EQ(ied_.requests().size(), 1u);  // only the 63-character name went out
}

TEST_F(ShimApi, OptionHelpers) {
  ie_options o;
  ie_options_init(&o);
  EXPECT_EQ(o.size, sizeof o);
  for (int i = 0; i < IE_OPTIONS_MAX; ++i)
    ASSERT_EQ(ie_options_add(&o, ("k" + std::to_string(i)).c_str(), "v"), 0);
  EXPECT_EQ(err_of([&] { return ie_options_add(&o, "k99", "v"); }), E2BIG);
  ie_options_init(&o);
  EXPECT_EQ(err_of([&] { return ie_options_add(&o, std::string(32, 'k').c_str(), "v"); }), EINVAL);
  EXPECT_EQ(ie_options_add(&o, std::string(31, 'k').c_str(), std::string(127, 'v').c_str()), 0);
  EXPECT_EQ(err_of([&] { return ie_options_add(&o, "x", std::string(128, 'v').c_str()); }), EINVAL);
  EXPECT_EQ(err_of([&] { return ie_options_add(&o, std::string(31, 'k').c_str(), "again"); }),
            EINVAL);  // duplicate
  // parse: all or nothing.
  ie_options_init(&o);
  ASSERT_EQ(ie_options_parse(&o, "a=1,b=,c=x y"), 0);
  EXPECT_EQ(o.count, 3u);
  EXPECT_STREQ(o.option[1].value, "");
  EXPECT_EQ(err_of([&] { return ie_options_parse(&o, "d=4,novalue"); }), EINVAL);
  EXPECT_EQ(err_of([&] { return ie_options_parse(&o, "e=5,A=6"); }), EINVAL);
  EXPECT_EQ(o.count, 3u);
}

// A struct from an older or newer header.
TEST_F(ShimApi, SizePrefixRules) {
  Fd s = tcp4();
  struct Bigger {
    ie_options o;
    std::uint64_t future;
  } big{};
  ie_options_init(&big.o);
  big.o.size = sizeof big;
  EXPECT_EQ(ie_set_service(s.get(), "ip", &big.o), 0);  // the unknown tail is zero
  big.future = 1;
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "ip", &big.o); }), EINVAL);
  big.o.size = sizeof big.o - 1;
  EXPECT_EQ(err_of([&] { return ie_set_service(s.get(), "ip", &big.o); }), EINVAL);
  big.o.size = 0;
  EXPECT_EQ(err_of([&] { return ie_options_add(&big.o, "k", "v"); }), EINVAL);
  EXPECT_EQ(ied_.count("socket.set_service"), 1u);

  // ie_get_service into a bigger struct: the part this version does not know is zeroed.
  struct BigInfo {
    ie_service_info i;
    char future[24];
  } bi;
  std::memset(&bi, 0x55, sizeof bi);
  bi.i.size = sizeof bi;
  ASSERT_EQ(ie_get_service(s.get(), &bi.i), 0);
  EXPECT_EQ(bi.i.size, sizeof bi.i);
  EXPECT_STREQ(bi.i.service, "ip");
  for (char c : bi.future)
    EXPECT_EQ(c, 0);
  bi.i.size = sizeof bi.i - 8;
  EXPECT_EQ(err_of([&] { return ie_get_service(s.get(), &bi.i); }), EINVAL);
}

TEST_F(ShimApi, SocketOptionForm) {
  Fd s = tcp4();
  ie_service_info in = info_for("ip");
  in.option_count = 1;
  std::strcpy(in.option[0].key, "direct");
  std::strcpy(in.option[0].value, "prefer");
  ASSERT_EQ(ie_setsockopt(s.get(), SOL_INTEREDGE, IE_SERVICE, &in, sizeof in), 0);
  EXPECT_EQ(ied_.requests().at(0).params["options"], (Json{{"direct", "prefer"}}));

  ie_service_info out;
  socklen_t len = sizeof out;
  ASSERT_EQ(ie_getsockopt(s.get(), SOL_INTEREDGE, IE_SERVICE, &out, &len), 0);
  EXPECT_EQ(len, sizeof out);
  EXPECT_STREQ(out.service, "ip");
  EXPECT_STREQ(out.option[0].value, "prefer");

  len = sizeof out - 1;
  EXPECT_EQ(err_of([&] { return ie_getsockopt(s.get(), SOL_INTEREDGE, IE_SERVICE, &out, &len); }),
            EINVAL);
  EXPECT_EQ(err_of([&] { return ie_setsockopt(s.get(), SOL_INTEREDGE, 99, &in, sizeof in); }),
            ENOPROTOOPT);
  EXPECT_EQ(err_of([&] { return ie_setsockopt(s.get(), SOL_SOCKET, IE_SERVICE, &in, sizeof in); }),
            ENOPROTOOPT);
  EXPECT_EQ(
      err_of([&] { return ie_setsockopt(s.get(), SOL_INTEREDGE, IE_SERVICE, &in, sizeof in - 1); }),
      EINVAL);
  in.flags = 1;
  EXPECT_EQ(
      err_of([&] { return ie_setsockopt(s.get(), SOL_INTEREDGE, IE_SERVICE, &in, sizeof in); }),
      EINVAL);
  in.flags = 0;
  in.size = sizeof in + 8;  // claims more than optlen
  EXPECT_EQ(
      err_of([&] { return ie_setsockopt(s.get(), SOL_INTEREDGE, IE_SERVICE, &in, sizeof in); }),
      EINVAL);
  // service "" clears.
  ie_service_info clear = info_for("");
  ASSERT_EQ(ie_setsockopt(s.get(), SOL_INTEREDGE, IE_SERVICE, &clear, sizeof clear), 0);
  EXPECT_EQ(ied_.requests().back().method, "socket.clear_service");
}

TEST_F(ShimApi, ConcurrentCallsFromThreads) {
  constexpr int kThreads = 8, kEach = 10;
  std::vector<std::thread> ts;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([t, &failures] {
      for (int i = 0; i < kEach; ++i) {
        Fd s(socket(i % 2 ? AF_INET6 : AF_INET, i % 3 ? SOCK_DGRAM : SOCK_STREAM, 0));
        if (ie_set_service(s.get(), "ip", nullptr) != 0) ++failures[t];
      }
    });
  }
  for (auto& t : ts)
    t.join();
  for (int f : failures)
    EXPECT_EQ(f, 0);
  EXPECT_EQ(ied_.count("socket.set_service"), static_cast<std::size_t>(kThreads * kEach));
}

TEST_F(ShimApi, WorksInAForkedChild) {
  Fd s = tcp4();
  ASSERT_EQ(ie_set_service(s.get(), "ip", nullptr), 0);  // in the parent first
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Fd c(socket(AF_INET, SOCK_DGRAM, 0));
    _exit(ie_set_service(c.get(), "ip", nullptr) == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(ied_.count("socket.set_service"), 2u);
}

}  // namespace
