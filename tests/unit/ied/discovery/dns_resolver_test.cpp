// DnsResolver against a real dnsmasq (tests/unit/ied/discovery/dnsmasq_server.hpp): SRV
// priority and weight, TXT keys, A/AAAA from the additional section or queried, TTLs and
// re-resolution after a change, NXDOMAIN / refused / timeout errors, peer records by reverse
// name (IPv4 and IPv6), malformed records, and destroying the resolver mid-query.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "dnsmasq_server.hpp"
#include "ie/ied/dns_resolver.hpp"
#include "ie/ied/ie_txt_record.hpp"
#include "ie/io/reactor.hpp"

namespace ie::ied {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using crypto::noise::PublicKey;

PublicKey random_key() {
  PublicKey k{};
  randombytes_buf(k.data(), k.size());
  k[0] |= 1;  // never all zero
  return k;
}

std::string sn_txt(const std::string& name, const PublicKey& k) {
  return "\"v=ie1 name=" + name + " key=" + key_to_base64(k) + "\"";
}

// Seconds from now until t, rounded to the nearest second.
long secs_until(Clock::time_point t) {
  return static_cast<long>(std::llround(std::chrono::duration<double>(t - Clock::now()).count()));
}

class DnsResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    auto r = io::Reactor::create();
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    reactor_ = std::move(*r);
  }

  void start_dns(const std::string& config, int local_ttl = 60) {
    ASSERT_TRUE(dns_.start(config, local_ttl)) << "dnsmasq did not start:\n" << dns_.log();
  }

  std::unique_ptr<DnsResolver> resolver(std::vector<std::string> servers = {},
                                        std::chrono::milliseconds timeout = 1000ms, int tries = 2) {
    ResolverOptions o;
    o.servers = servers.empty() ? std::vector<std::string>{dns_.server()} : std::move(servers);
    o.timeout = timeout;
    o.tries = tries;
    auto r = DnsResolver::create(*reactor_, std::move(o));
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? std::move(*r) : nullptr;
  }

  // Runs the reactor until pred() or the deadline.
  template <typename Pred>
  bool run_until(Pred pred, std::chrono::milliseconds limit = 10s) {
    const auto deadline = Clock::now() + limit;
    while (!pred()) {
      if (Clock::now() >= deadline) return false;
      EXPECT_TRUE(reactor_->run_once(10ms).ok());
    }
    return true;
  }

  Result<std::vector<SnCandidate>> discover(DnsResolver& r, const std::string& domain) {
    std::optional<Result<std::vector<SnCandidate>>> out;
    r.discover_sns(domain, [&](Result<std::vector<SnCandidate>> res) { out = std::move(res); });
    EXPECT_FALSE(out.has_value()) << "callback ran inside discover_sns";
    if (!run_until([&] { return out.has_value(); }))
      return fail(Errc::internal, "test: no callback within 10 s");
    return std::move(*out);
  }

  Result<PeerRecord> peer(DnsResolver& r, const std::string& address) {
    std::optional<Result<PeerRecord>> out;
    r.lookup_peer(address, [&](Result<PeerRecord> res) { out = std::move(res); });
    if (!run_until([&] { return out.has_value(); }))
      return fail(Errc::internal, "test: no callback within 10 s");
    return std::move(*out);
  }

  std::unique_ptr<io::Reactor> reactor_;
  test::Dnsmasq dns_;
};

TEST_F(DnsResolverTest, CandidatesInPriorityOrderWithKeysAndEndpoints) {
  const auto k1 = random_key(), k2 = random_key(), k3 = random_key();
  start_dns(
      // sn1: addresses from host-record, which dnsmasq also puts in the SRV answer's
      // additional section. sn3: address= only, so the resolver must query A/AAAA itself.
      "srv-host=_interedge._udp.example.test,sn1.example.test,1000,10,0\n"
      "srv-host=_interedge._udp.example.test,sn2.example.test,1001,20,0\n"
      "srv-host=_interedge._udp.example.test,sn3.example.test,1002,5,0\n"
      "host-record=sn1.example.test,192.0.2.1,2001:db8::1\n"
      "host-record=sn2.example.test,192.0.2.2\n"
      "address=/sn3.example.test/192.0.2.3\n"
      "txt-record=sn1.example.test," +
      sn_txt("dom1.sn1", k1) + "\n" + "txt-record=sn2.example.test," + sn_txt("dom1.sn2", k2) +
      "\n" + "txt-record=sn3.example.test," + sn_txt("dom1.sn3", k3) + "\n");
  auto r = resolver();
  ASSERT_TRUE(r);
  auto c = discover(*r, "Example.Test.");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  ASSERT_EQ(c->size(), 4u);
  EXPECT_EQ((*c)[0].name, "dom1.sn3");
  EXPECT_EQ((*c)[0].endpoint, "192.0.2.3:1002");
  EXPECT_EQ((*c)[0].key, k3);
  EXPECT_EQ((*c)[0].priority, 5);
  EXPECT_EQ((*c)[1].name, "dom1.sn1");
  EXPECT_EQ((*c)[1].endpoint, "192.0.2.1:1000");
  EXPECT_EQ((*c)[2].endpoint, "[2001:db8::1]:1000");
  EXPECT_EQ((*c)[2].key, k1);
  EXPECT_EQ((*c)[2].target, "sn1.example.test");
  EXPECT_EQ((*c)[3].name, "dom1.sn2");
  EXPECT_EQ((*c)[3].endpoint, "192.0.2.2:1001");
  EXPECT_EQ((*c)[3].key, k2);
  EXPECT_EQ(r->in_flight(), 0u);
  // Addresses came from the additional section for sn1, from queries for sn3.
  EXPECT_EQ(dns_.queries_for("query[A] sn1.example.test"), 0) << dns_.log();
  EXPECT_EQ(dns_.queries_for("query[A] sn3.example.test"), 1) << dns_.log();
  EXPECT_EQ(dns_.queries_for("query[AAAA] sn3.example.test"), 1) << dns_.log();
}

TEST_F(DnsResolverTest, WeightsHonouredThroughRealDns) {
  const auto k = random_key();
  start_dns(
      "srv-host=_interedge._udp.w.test,light.w.test,1000,1,10\n"
      "srv-host=_interedge._udp.w.test,heavy.w.test,1000,1,90\n"
      "host-record=light.w.test,192.0.2.10\n"
      "host-record=heavy.w.test,192.0.2.90\n"
      "txt-record=light.w.test," +
      sn_txt("w.light", k) + "\n" + "txt-record=heavy.w.test," + sn_txt("w.heavy", k) + "\n");
  auto r = resolver();
  ASSERT_TRUE(r);
  constexpr int kRuns = 200;
  int heavy_first = 0, done = 0, failed = 0;
  for (int batch = 0; batch < kRuns / 50; ++batch) {
    for (int i = 0; i < 50; ++i) {
      r->discover_sns("w.test", [&](Result<std::vector<SnCandidate>> res) {
        ++done;
        if (!res.ok() || res->size() != 2) {
          ++failed;
          return;
        }
        if ((*res)[0].name == "w.heavy") ++heavy_first;
      });
    }
    ASSERT_TRUE(run_until([&] { return done == (batch + 1) * 50; }));
  }
  EXPECT_EQ(failed, 0);
  // p = 90/101 per RFC 2782's [0, total] draw: mean 178, sd 4.4; bounds are > 6 sd wide.
  EXPECT_GT(heavy_first, 150);
  EXPECT_LT(heavy_first, 198);
}

TEST_F(DnsResolverTest, ExpiresIsTheSmallestTtlOfTheRecordsUsed) {
  const auto k = random_key();
  start_dns(
      "srv-host=_interedge._udp.ttl.test,a.ttl.test,1000,1,1\n"
      "srv-host=_interedge._udp.ttl.test,b.ttl.test,1000,2,1\n"
      "host-record=a.ttl.test,192.0.2.1,30\n"    // address TTL 30 < local TTL 120
      "host-record=b.ttl.test,192.0.2.2,3600\n"  // address TTL 3600 > local TTL 120
      "txt-record=a.ttl.test," +
          sn_txt("t.a", k) + "\n" + "txt-record=b.ttl.test," + sn_txt("t.b", k) + "\n",
      /*local_ttl=*/120);
  auto r = resolver();
  ASSERT_TRUE(r);
  auto c = discover(*r, "ttl.test");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  ASSERT_EQ(c->size(), 2u);
  EXPECT_NEAR(secs_until((*c)[0].expires), 30, 2);
  EXPECT_NEAR(secs_until((*c)[1].expires), 120, 2);
}

TEST_F(DnsResolverTest, ChangedRecordSeenByANewLookupAfterExpiry) {
  const auto k1 = random_key(), k2 = random_key();
  const std::string base =
      "srv-host=_interedge._udp.chg.test,sn.chg.test,1000,1,1\n"
      "host-record=sn.chg.test,192.0.2.1,1\n";
  start_dns(base + "txt-record=sn.chg.test," + sn_txt("c.one", k1) + "\n", /*local_ttl=*/1);
  auto r = resolver();
  ASSERT_TRUE(r);
  auto first = discover(*r, "chg.test");
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].key, k1);
  const auto expires = (*first)[0].expires;
  EXPECT_LE(expires, Clock::now() + 1s);

  // The provider rotates the SN's key; after the TTL a new lookup must see it.
  start_dns(base + "txt-record=sn.chg.test," + sn_txt("c.two", k2) + "\n", 1);
  std::this_thread::sleep_until(expires + 10ms);
  auto second = discover(*r, "chg.test");
  ASSERT_TRUE(second.ok()) << second.error().to_string();
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].key, k2);
  EXPECT_EQ((*second)[0].name, "c.two");
}

TEST_F(DnsResolverTest, NxDomainIsAClearNotFound) {
  start_dns("");
  auto r = resolver();
  ASSERT_TRUE(r);
  const auto t0 = Clock::now();
  auto c = discover(*r, "nope.test");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::not_found);
  EXPECT_NE(c.error().context.find("nope.test"), std::string::npos) << c.error().context;
  EXPECT_NE(c.error().context.find("NXDOMAIN"), std::string::npos) << c.error().context;
  EXPECT_LT(Clock::now() - t0, 1s);
}

TEST_F(DnsResolverTest, ServiceNotOfferedAndNoSrv) {
  start_dns(
      "srv-host=_interedge._udp.none.test\n"  // target "." = decidedly not offered
      "txt-record=nosrv.test,\"hello\"\n");
  auto r = resolver();
  ASSERT_TRUE(r);
  auto none = discover(*r, "none.test");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::unsupported) << none.error().to_string();
  auto nosrv = discover(*r, "nosrv.test");
  ASSERT_FALSE(nosrv.ok());
  EXPECT_EQ(nosrv.error().code, Errc::not_found) << nosrv.error().to_string();
  auto bad = discover(*r, "bad..name");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::invalid_argument);
}

TEST_F(DnsResolverTest, MalformedTxtRejectedWithReasons) {
  const auto k = random_key();
  start_dns(
      "srv-host=_interedge._udp.m.test,good.m.test,1000,1,1\n"
      "srv-host=_interedge._udp.m.test,b64.m.test,1000,1,1\n"
      "srv-host=_interedge._udp.m.test,len.m.test,1000,1,1\n"
      "srv-host=_interedge._udp.m.test,nokey.m.test,1000,1,1\n"
      "srv-host=_interedge._udp.m.test,v2.m.test,1000,1,1\n"
      "srv-host=_interedge._udp.m.test,twice.m.test,1000,1,1\n"
      "srv-host=_interedge._udp.m.test,noaddr.m.test,1000,1,1\n"
      "host-record=good.m.test,192.0.2.1\nhost-record=b64.m.test,192.0.2.2\n"
      "host-record=len.m.test,192.0.2.3\nhost-record=nokey.m.test,192.0.2.4\n"
      "host-record=v2.m.test,192.0.2.5\nhost-record=twice.m.test,192.0.2.6\n"
      // good: an unrelated TXT beside it is ignored, unknown fields too.
      "txt-record=good.m.test,\"v=spf1 -all\"\n"
      "txt-record=good.m.test,\"v=ie1 name=m.good future=1 key=" +
      key_to_base64(k) + "\"\n" + "txt-record=b64.m.test,\"v=ie1 name=m.b key=!!!!" +
      key_to_base64(k).substr(4) + "\"\n" +
      "txt-record=len.m.test,\"v=ie1 name=m.l key=AAAA\"\n"
      "txt-record=nokey.m.test,\"v=ie1 name=m.n\"\n"
      "txt-record=v2.m.test,\"v=ie2 name=m.v key=" +
      key_to_base64(k) + "\"\n" + "txt-record=twice.m.test," + sn_txt("m.t1", k) + "\n" +
      "txt-record=twice.m.test," + sn_txt("m.t2", random_key()) + "\n" +
      "txt-record=noaddr.m.test," + sn_txt("m.na", k) + "\n");
  auto r = resolver();
  ASSERT_TRUE(r);
  auto c = discover(*r, "m.test");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].name, "m.good");

  // Without the good one, the error lists every target's reason.
  start_dns(
      "srv-host=_interedge._udp.m.test,b64.m.test,1000,1,1\n"
      "srv-host=_interedge._udp.m.test,len.m.test,1000,1,1\n"
      "srv-host=_interedge._udp.m.test,nokey.m.test,1000,1,1\n"
      "srv-host=_interedge._udp.m.test,v2.m.test,1000,1,1\n"
      "srv-host=_interedge._udp.m.test,twice.m.test,1000,1,1\n"
      "srv-host=_interedge._udp.m.test,noaddr.m.test,1000,1,1\n"
      "srv-host=_interedge._udp.m.test,notxt.m.test,1000,1,1\n"
      "host-record=b64.m.test,192.0.2.2\nhost-record=len.m.test,192.0.2.3\n"
      "host-record=nokey.m.test,192.0.2.4\nhost-record=v2.m.test,192.0.2.5\n"
      "host-record=twice.m.test,192.0.2.6\nhost-record=notxt.m.test,192.0.2.7\n"
      "txt-record=b64.m.test,\"v=ie1 name=m.b key=!!!!" +
      key_to_base64(k).substr(4) + "\"\n" +
      "txt-record=len.m.test,\"v=ie1 name=m.l key=AAAA\"\n"
      "txt-record=nokey.m.test,\"v=ie1 name=m.n\"\n"
      "txt-record=v2.m.test,\"v=ie2 name=m.v key=" +
      key_to_base64(k) + "\"\n" + "txt-record=twice.m.test," + sn_txt("m.t1", k) + "\n" +
      "txt-record=twice.m.test," + sn_txt("m.t2", random_key()) + "\n" +
      "txt-record=noaddr.m.test," + sn_txt("m.na", k) + "\n");
  auto bad = discover(*r, "m.test");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::not_found);
  const std::string& why = bad.error().context;
  for (const char* part :
       {"no usable SN", "b64.m.test: TXT: record rejected: not a base64 32-byte key",
        "len.m.test: TXT: record rejected: not a base64 32-byte key",
        "nokey.m.test: TXT: record rejected: missing key=",
        "v2.m.test: TXT: record rejected: version v=ie2", "twice.m.test: TXT: more than one",
        "noaddr.m.test: no A/AAAA record", "notxt.m.test: TXT: no TXT record"})
    EXPECT_NE(why.find(part), std::string::npos) << "missing \"" << part << "\" in: " << why;
}

TEST_F(DnsResolverTest, PeerRecordsByReverseNameIpv4AndIpv6) {
  const auto k4 = random_key(), k6 = random_key();
  start_dns("txt-record=2.0.2.10.in-addr.arpa,\"v=ie1 sn=dom2.sn1 key=" + key_to_base64(k4) +
                "\"\n"
                "txt-record=1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6."
                "arpa,\"v=ie1 sn=dom2.sn6 key=" +
                key_to_base64(k6) +
                " ep=[2001:db8::1]:1001\"\n"
                "txt-record=3.0.2.10.in-addr.arpa,\"v=ie2 sn=dom2.sn1 key=" +
                key_to_base64(k4) + "\"\n",
            /*local_ttl=*/45);
  auto r = resolver();
  ASSERT_TRUE(r);
  auto p4 = peer(*r, "10.2.0.2");
  ASSERT_TRUE(p4.ok()) << p4.error().to_string();
  EXPECT_EQ(p4->sn, "dom2.sn1");
  EXPECT_EQ(p4->key, k4);
  EXPECT_NEAR(secs_until(p4->expires), 45, 2);
  auto p6 = peer(*r, "2001:db8::1");
  ASSERT_TRUE(p6.ok()) << p6.error().to_string();
  EXPECT_EQ(p6->sn, "dom2.sn6");
  EXPECT_EQ(p6->key, k6);
  EXPECT_EQ(p6->endpoint, "[2001:db8::1]:1001");  // its ep= (direct path)
  EXPECT_EQ(p4->endpoint, "");                    // none published

  auto none = peer(*r, "10.2.0.9");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::not_found);
  EXPECT_NE(none.error().context.find("9.0.2.10.in-addr.arpa"), std::string::npos);
  EXPECT_NE(none.error().context.find("NXDOMAIN"), std::string::npos);
  auto v2 = peer(*r, "10.2.0.3");
  ASSERT_FALSE(v2.ok());
  EXPECT_NE(v2.error().context.find("v=ie2"), std::string::npos) << v2.error().context;
  auto junk = peer(*r, "10.2.0");
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.error().code, Errc::invalid_argument);
}

TEST_F(DnsResolverTest, RefusedPortIsAnIoErrorWithinTheTimeout) {
  const std::uint16_t port = test::free_port();  // nothing listens: ICMP port unreachable
  ASSERT_NE(port, 0);
  auto r = resolver({"127.0.0.1:" + std::to_string(port)}, 300ms, 2);
  ASSERT_TRUE(r);
  const auto t0 = Clock::now();
  auto c = discover(*r, "example.test");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::io) << c.error().to_string();
  EXPECT_NE(c.error().context.find("refused"), std::string::npos) << c.error().context;
  EXPECT_LT(Clock::now() - t0, 900ms);  // timeout * (1 + 2)
}

// A UDP socket that receives queries and never answers.
struct BlackHole {
  BlackHole() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
  }
  ~BlackHole() {
    if (fd >= 0) ::close(fd);
  }
  std::string server() const { return "127.0.0.1:" + std::to_string(port); }
  int fd = -1;
  std::uint16_t port = 0;
};

TEST_F(DnsResolverTest, SilentServerTimesOutWithinTheBound) {
  BlackHole hole;
  ASSERT_NE(hole.port, 0);
  auto r = resolver({hole.server()}, 200ms, 2);
  ASSERT_TRUE(r);
  const auto t0 = Clock::now();
  auto p = peer(*r, "10.2.0.2");
  const auto took = Clock::now() - t0;
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::timeout) << p.error().to_string();
  EXPECT_NE(p.error().context.find("timed out"), std::string::npos);
  // Two tries: 200 ms, then 400 ms (c-ares doubles per round).
  EXPECT_GE(took, 550ms);
  EXPECT_LT(took, 1500ms);
  EXPECT_EQ(reactor_->timer_count(), 0u);
}

TEST_F(DnsResolverTest, DestroyingMidQueryCallsNothingAndCleansUp) {
  BlackHole hole;
  ASSERT_NE(hole.port, 0);
  auto r = resolver({hole.server()}, 500ms, 3);
  ASSERT_TRUE(r);
  auto token = std::make_shared<int>(0);
  int called = 0;
  r->discover_sns("example.test", [&called, token](Result<std::vector<SnCandidate>>) { ++called; });
  r->lookup_peer("10.2.0.2", [&called, token](Result<PeerRecord>) { ++called; });
  EXPECT_EQ(r->in_flight(), 2u);
  // Let the queries go out (the hole receives them), then destroy.
  ASSERT_TRUE(run_until(
      [&] {
        char buf[512];
        return ::recv(hole.fd, buf, sizeof buf, MSG_DONTWAIT | MSG_PEEK) > 0;
      },
      2s));
  EXPECT_GT(reactor_->timer_count(), 0u);
  r.reset();
  EXPECT_EQ(token.use_count(), 1) << "callbacks must be released with the resolver";
  EXPECT_EQ(reactor_->timer_count(), 0u);
  const auto until = Clock::now() + 300ms;
  while (Clock::now() < until)
    ASSERT_TRUE(reactor_->run_once(10ms).ok());
  EXPECT_EQ(called, 0);
}

TEST_F(DnsResolverTest, ACallbackMayDestroyTheResolver) {
  const auto k = random_key();
  start_dns("txt-record=2.0.2.10.in-addr.arpa,\"v=ie1 sn=dom2.sn1 key=" + key_to_base64(k) +
            "\"\n");
  auto r = resolver();
  ASSERT_TRUE(r);
  int peer_called = 0, other_called = 0;
  r->lookup_peer("10.2.0.2", [&](Result<PeerRecord> p) {
    ++peer_called;
    EXPECT_TRUE(p.ok());
    r.reset();  // from inside its own callback
  });
  r->lookup_peer("10.2.0.99", [&](Result<PeerRecord>) { ++other_called; });
  r->lookup_peer("10.2.0.2", [&](Result<PeerRecord>) { ++other_called; });
  ASSERT_TRUE(run_until([&] { return peer_called == 1; }));
  const auto until = Clock::now() + 200ms;
  while (Clock::now() < until)
    ASSERT_TRUE(reactor_->run_once(10ms).ok());
  EXPECT_EQ(r, nullptr);
  // dnsmasq answers in order, so the other two are either still in flight or already posted
  // when the first callback destroys the resolver: either way they must never run.
  EXPECT_EQ(other_called, 0);
}

}  // namespace
}  // namespace ie::ied
