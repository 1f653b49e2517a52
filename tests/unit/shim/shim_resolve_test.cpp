// ie_resolve (libinteredge, linked as the shared library) against the fake ied
// (fake_ied.hpp): numeric names and "localhost" through the system's getaddrinfo, one
// peer.resolve per distinct address with no descriptor passed, pending answers asked again
// within the 2 s budget, max/count, the struct's layout and size prefix (a larger caller
// struct is the stride), and every error (EINVAL without contacting ied, ENOENT, ied down,
// ied's own errors, malformed results).
#include <arpa/inet.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>

#include <chrono>
#include <cstring>
#include <set>
#include <string>

#include "fake_ied.hpp"
#include "interedge/interedge.h"

namespace {

using ie::testing::FakeIed;
using ie::testing::Json;
using Mode = FakeIed::Mode;
using Clock = std::chrono::steady_clock;

class ShimResolve : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("IE_SOCKET", ied_.path().c_str(), 1);
    for (auto& p : peers_)
      init(&p);
  }
  void TearDown() override { unsetenv("IE_SOCKET"); }

  static void init(ie_peer* p) {
    std::memset(p, 0, sizeof *p);
    p->size = sizeof *p;
  }

  // ie_resolve into peers_ (max entries); errno if it failed, else 0 and count_ set.
  int resolve(const char* host, const char* port = nullptr, int family = AF_UNSPEC,
              std::size_t max = 8) {
    errno = 0;
    count_ = 99;
    const int r = ie_resolve(host, port, family, peers_, max, &count_);
    if (r == 0) return 0;
    EXPECT_EQ(r, -1);
    EXPECT_EQ(count_, 0u);
    return errno;
  }

  static std::string addr_text(const ie_peer& p) {
    char b[INET6_ADDRSTRLEN] = "?";
    if (p.addr.ss_family == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&p.addr)->sin_addr, b, sizeof b);
    else if (p.addr.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&p.addr)->sin6_addr, b, sizeof b);
    return b;
  }

  FakeIed ied_;
  ie_peer peers_[8];
  std::size_t count_ = 0;
};

const Json kDom2 = {{"interedge", true},
                    {"sns", {"dom2.sn1"}},
                    {"source", "dns"},
                    {"expires_in_s", 30},
                    {"pending", false}};

TEST_F(ShimResolve, Layout) {
  EXPECT_EQ(sizeof(ie_peer), 424u);
  EXPECT_EQ(offsetof(ie_peer, addr), 8u);
  EXPECT_EQ(offsetof(ie_peer, sns), 148u);
  EXPECT_EQ(offsetof(ie_peer, source), 404u);
  EXPECT_EQ(sizeof(ie_peer) % alignof(ie_peer), 0u);
}

TEST_F(ShimResolve, NumericIpv4) {
  ied_.set_peer("10.2.0.2", kDom2);
  ASSERT_EQ(resolve("10.2.0.2", "8080"), 0);
  ASSERT_EQ(count_, 1u);
  const ie_peer& p = peers_[0];
  EXPECT_EQ(p.size, sizeof(ie_peer));
  EXPECT_EQ(p.addrlen, sizeof(sockaddr_in));
  EXPECT_EQ(p.addr.ss_family, AF_INET);
  EXPECT_EQ(addr_text(p), "10.2.0.2");
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in*>(&p.addr)->sin_port), 8080);
  EXPECT_EQ(p.interedge, 1);
  ASSERT_EQ(p.sn_count, 1u);
  EXPECT_STREQ(p.sns[0], "dom2.sn1");
  EXPECT_STREQ(p.source, "dns");
  // One request, for the numeric address, with no descriptor attached.
  const auto reqs = ied_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "peer.resolve");
  EXPECT_EQ(reqs[0].params, (Json{{"address", "10.2.0.2"}}));
  EXPECT_EQ(reqs[0].fds, 0);
}

TEST_F(ShimResolve, NumericIpv6AndUnknownAddress) {
  ASSERT_EQ(resolve("fd00::2", nullptr, AF_INET6), 0);
  ASSERT_EQ(count_, 1u);
  EXPECT_EQ(peers_[0].addr.ss_family, AF_INET6);
  EXPECT_EQ(peers_[0].addrlen, sizeof(sockaddr_in6));
  EXPECT_EQ(addr_text(peers_[0]), "fd00::2");
  // ied knows nothing of it.
  EXPECT_EQ(peers_[0].interedge, 0);
  EXPECT_EQ(peers_[0].sn_count, 0u);
  EXPECT_STREQ(peers_[0].source, "none");
  EXPECT_EQ(ied_.requests().at(0).params, (Json{{"address", "fd00::2"}}));
}

TEST_F(ShimResolve, LocalhostByName) {
  ied_.set_peer("127.0.0.1", {{"interedge", false}, {"sns", Json::array()}, {"source", "none"}});
  ASSERT_EQ(resolve("localhost", nullptr, AF_INET), 0);
  ASSERT_EQ(count_, 1u);  // one address, though getaddrinfo returns one per socket type
  EXPECT_EQ(addr_text(peers_[0]), "127.0.0.1");
  EXPECT_STREQ(peers_[0].source, "none");
  EXPECT_EQ(ied_.count("peer.resolve"), 1u);

  // Every family: distinct addresses, one request each.
  ASSERT_EQ(resolve("localhost"), 0);
  ASSERT_GE(count_, 1u);
  std::set<std::string> seen;
  for (std::size_t i = 0; i < count_; ++i)
    EXPECT_TRUE(seen.insert(addr_text(peers_[i])).second) << addr_text(peers_[i]);
  EXPECT_TRUE(seen.count("127.0.0.1") == 1 || seen.count("::1") == 1);
  EXPECT_EQ(ied_.count("peer.resolve"), 1u + count_);
}

TEST_F(ShimResolve, PendingIsAskedAgain) {
  ied_.set_peer("10.2.0.2", kDom2, 3);
  const auto t0 = Clock::now();
  ASSERT_EQ(resolve("10.2.0.2"), 0);
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(1500));
  ASSERT_EQ(count_, 1u);
  EXPECT_STREQ(peers_[0].source, "dns");
  EXPECT_EQ(peers_[0].interedge, 1);
  EXPECT_EQ(ied_.count("peer.resolve"), 4u);
}

TEST_F(ShimResolve, PendingForeverEndsAfterTheBudget) {
  ied_.set_peer("10.2.0.9", kDom2, -1);
  const auto t0 = Clock::now();
  ASSERT_EQ(resolve("10.2.0.9"), 0);
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(1900));
  EXPECT_LT(took, std::chrono::milliseconds(3000));
  ASSERT_EQ(count_, 1u);
  EXPECT_STREQ(peers_[0].source, "pending");
  EXPECT_EQ(peers_[0].interedge, 0);
  EXPECT_GT(ied_.count("peer.resolve"), 5u);
  EXPECT_LT(ied_.count("peer.resolve"), 30u);  // paced, not a busy loop
}

TEST_F(ShimResolve, MaxAndCount) {
  ASSERT_EQ(resolve("localhost", nullptr, AF_UNSPEC, 1), 0);
  EXPECT_EQ(count_, 1u);
  EXPECT_EQ(ied_.count("peer.resolve"), 1u);  // no request for addresses past max
  EXPECT_EQ(peers_[1].size, sizeof(ie_peer));
  EXPECT_EQ(peers_[1].addrlen, 0u);  // untouched
}

TEST_F(ShimResolve, LargerStructIsTheStride) {
  struct Newer {
    ie_peer p;
    char extra[24];
  } newer[2];
  std::memset(newer, 0xaa, sizeof newer);
  newer[0].p.size = sizeof(Newer);
  std::size_t n = 0;
  ASSERT_EQ(ie_resolve("localhost", "80", AF_UNSPEC, &newer[0].p, 2, &n), 0);
  ASSERT_GE(n, 1u);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(newer[i].p.size, sizeof(ie_peer));
    EXPECT_EQ(newer[i].p.sn_count, 0u);
    EXPECT_STREQ(newer[i].p.source, "none");
    for (char c : newer[i].extra)
      EXPECT_EQ(c, 0);
  }
  if (n == 1) {
    EXPECT_EQ(static_cast<unsigned char>(newer[1].extra[0]), 0xaa);
  }
}

TEST_F(ShimResolve, InvalidArgumentsNeverAskIed) {
  std::size_t n = 0;
  EXPECT_EQ(resolve(nullptr), EINVAL);
  EXPECT_EQ(resolve(""), EINVAL);
  EXPECT_EQ(resolve("10.2.0.2", nullptr, AF_UNIX), EINVAL);
  EXPECT_EQ(resolve("10.2.0.2", nullptr, AF_UNSPEC, 0), EINVAL);
  errno = 0;
  EXPECT_EQ(ie_resolve("10.2.0.2", nullptr, AF_UNSPEC, nullptr, 1, &n), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(ie_resolve("10.2.0.2", nullptr, AF_UNSPEC, peers_, 1, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  peers_[0].size = sizeof(ie_peer) - 8;
  EXPECT_EQ(resolve("10.2.0.2"), EINVAL);
  peers_[0].size = sizeof(ie_peer) + 4;  // not a multiple of the struct's alignment
  EXPECT_EQ(resolve("10.2.0.2"), EINVAL);
  peers_[0].size = sizeof(ie_peer);
  EXPECT_EQ(resolve("10.2.0.2", "no-such-service-x"), EINVAL);
  EXPECT_EQ(ied_.requests().size(), 0u);
}

TEST_F(ShimResolve, NameThatDoesNotResolveIsEnoent) {
  // An IPv4 literal asked for as IPv6 (EAI_ADDRFAMILY/EAI_NONAME, decided without DNS).
  EXPECT_EQ(resolve("10.2.0.2", nullptr, AF_INET6), ENOENT);
  EXPECT_EQ(ied_.requests().size(), 0u);
}

TEST_F(ShimResolve, IedNotRunning) {
  setenv("IE_SOCKET", (ied_.dir() + "/nothing.sock").c_str(), 1);
  EXPECT_EQ(resolve("10.2.0.2"), ECONNREFUSED);
}

TEST_F(ShimResolve, IedErrorsAndMalformedResults) {
  ied_.set_mode(Mode::error, EINVAL, "invalid_argument");
  EXPECT_EQ(resolve("10.2.0.2"), EINVAL);
  ied_.set_mode(Mode::garbage);
  EXPECT_EQ(resolve("10.2.0.2"), EPROTO);
  ied_.set_mode(Mode::ok);
  ied_.set_peer("10.2.0.3", {{"interedge", "yes"}});
  EXPECT_EQ(resolve("10.2.0.3"), EPROTO);
  ied_.set_peer("10.2.0.4", {{"sns", {std::string(64, 'a')}}});
  EXPECT_EQ(resolve("10.2.0.4"), EPROTO);
  ied_.set_peer("10.2.0.5", {{"source", "a-source-name-too-long"}});
  EXPECT_EQ(resolve("10.2.0.5"), EPROTO);
  ied_.set_peer("10.2.0.6", {{"pending", 1}});
  EXPECT_EQ(resolve("10.2.0.6"), EPROTO);
  // More SNs than IE_MAX_SNS: the most recent ones; missing fields read as "none".
  ied_.set_peer("10.2.0.7", {{"sns", {"d.s1", "d.s2", "d.s3", "d.s4", "d.s5"}}});
  ASSERT_EQ(resolve("10.2.0.7"), 0);
  ASSERT_EQ(peers_[0].sn_count, 4u);
  EXPECT_STREQ(peers_[0].sns[3], "d.s4");
  EXPECT_STREQ(peers_[0].source, "none");
  EXPECT_EQ(peers_[0].interedge, 0);
}

}  // namespace
