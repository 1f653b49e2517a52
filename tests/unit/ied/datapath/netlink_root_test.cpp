// Netlink against the real kernel, each test in a network namespace of its own with a veth
// pair (v0 <-> v1, both ends in the namespace):
//   - routes added for IPv4 and IPv6 (main table, another table, with src and mtu) are listed
//     by protocol, `ip route` agrees, a foreign route is neither listed nor flushed, and the
//     flush leaves none of ours behind;
//   - routes left by a child process that was SIGKILLed are flushed by a new socket;
//   - route_get tells a connected destination (no gateway) from a gatewayed one, and reports
//     route and link MTUs; addresses, link state, MTU and device lookup; errors carry errno
//     and name the prefix/device.
// Needs root: fails, never skips, without it.
#include "ie/ied/netlink.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <thread>

#include "netns_guard.hpp"

namespace ie::ied {
namespace {

using test::sh;

class NetlinkRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "needs root (CAP_NET_ADMIN); CI runs these as root";
    static int n = 0;
    ns_.emplace("nl" + std::to_string(n++));
    ASSERT_TRUE(ns_->ok()) << "could not create/enter netns " << ns_->name();
    int st = 0;
    sh("ip link add v0 type veth peer name v1 2>&1", &st);
    ASSERT_EQ(st, 0);
    auto nl = Netlink::open();
    ASSERT_TRUE(nl.ok()) << nl.error().to_string();
    nl_.emplace(std::move(*nl));
    auto i0 = nl_->ifindex("v0");
    ASSERT_TRUE(i0.ok()) << i0.error().to_string();
    v0_ = *i0;
    auto i1 = nl_->ifindex("v1");
    ASSERT_TRUE(i1.ok());
    ASSERT_TRUE(nl_->set_link(v0_, true).ok());
    ASSERT_TRUE(nl_->set_link(*i1, true).ok());
    auto a4 = nl_->add_address(v0_, *IpAddr::parse("10.77.1.1"), 24);
    ASSERT_TRUE(a4.ok()) << a4.error().to_string();
    auto a6 = nl_->add_address(v0_, *IpAddr::parse("fd77:1::1"), 64);
    ASSERT_TRUE(a6.ok()) << a6.error().to_string();
  }
  void TearDown() override {
    nl_.reset();  // close the socket inside the namespace, then leave and delete it
    ns_.reset();
  }

  static IpPrefix P(const char* s) { return *IpPrefix::parse(s); }
  static IpAddr A(const char* s) { return *IpAddr::parse(s); }

  std::optional<test::NetnsGuard> ns_;
  std::optional<Netlink> nl_;
  int v0_ = 0;
};

TEST_F(NetlinkRoot, AddressesLinkAndDeviceLookup) {
  const std::string addrs = sh("ip addr show dev v0");
  EXPECT_NE(addrs.find("inet 10.77.1.1/24"), std::string::npos) << addrs;
  EXPECT_NE(addrs.find("inet6 fd77:1::1/64"), std::string::npos) << addrs;
  // No duplicate address detection: usable at once, never "tentative".
  const auto line = addrs.substr(addrs.find("inet6 fd77:1::1/64"));
  const auto eol = line.substr(0, line.find('\n'));
  EXPECT_NE(eol.find("nodad"), std::string::npos) << eol;
  EXPECT_EQ(eol.find("tentative"), std::string::npos) << eol;
  EXPECT_NE(sh("ip link show dev v0").find(",UP"), std::string::npos);
  ASSERT_TRUE(nl_->set_link(v0_, true, 1400).ok());
  EXPECT_EQ(nl_->link_mtu(v0_).value_or(0), 1400u);
  EXPECT_NE(sh("ip link show dev v0").find("mtu 1400"), std::string::npos);
  ASSERT_TRUE(nl_->set_link(v0_, false).ok());
  EXPECT_EQ(sh("ip link show dev v0").find(",UP"), std::string::npos);
  ASSERT_TRUE(nl_->set_link(v0_, true).ok());

  auto missing = nl_->ifindex("nosuchdev0");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  EXPECT_EQ(missing.error().sys_errno, ENODEV);
  EXPECT_NE(missing.error().context.find("nosuchdev0"), std::string::npos);
  auto dup = nl_->add_address(v0_, A("10.77.1.1"), 24);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::exists);
  EXPECT_EQ(dup.error().sys_errno, EEXIST);
  EXPECT_NE(dup.error().context.find("10.77.1.1/24"), std::string::npos);
}

TEST_F(NetlinkRoot, RoutesAddListFlushByProtocol) {
  ASSERT_TRUE(nl_->list_routes()->empty());
  ASSERT_TRUE(nl_->add_route({.dst = P("10.88.0.0/16"), .ifindex = v0_}).ok());
  ASSERT_TRUE(
      nl_->add_route({.dst = P("10.89.1.0/24"), .ifindex = v0_, .src = A("10.77.1.1"), .mtu = 1300})
          .ok());
  ASSERT_TRUE(nl_->add_route({.dst = P("fd88::/48"), .ifindex = v0_, .mtu = 1350}).ok());
  ASSERT_TRUE(nl_->add_route({.dst = P("10.90.0.0/16"), .ifindex = v0_, .table = 100}).ok());
  ASSERT_TRUE(nl_->add_route({.dst = P("fd90::/32"), .ifindex = v0_, .table = 100}).ok());
  // Someone else's route, same device.
  int st = 0;
  sh("ip route add 10.91.0.0/16 dev v0 proto static", &st);
  ASSERT_EQ(st, 0);

  auto routes = nl_->list_routes();
  ASSERT_TRUE(routes.ok()) << routes.error().to_string();
  ASSERT_EQ(routes->size(), 5u);
  int found = 0;
  for (const Route& r : *routes) {
    EXPECT_EQ(r.protocol, kRouteProtocol);
    EXPECT_EQ(r.ifindex, v0_);
    EXPECT_FALSE(r.gateway);
    if (r.dst == P("10.89.1.0/24")) {
      ++found;
      EXPECT_EQ(r.mtu, 1300u);
      EXPECT_EQ(r.src, A("10.77.1.1"));
      EXPECT_EQ(r.table, kMainTable);
    } else if (r.dst == P("fd88::/48")) {
      ++found;
      EXPECT_EQ(r.mtu, 1350u);
    } else if (r.dst == P("10.90.0.0/16") || r.dst == P("fd90::/32")) {
      ++found;
      EXPECT_EQ(r.table, 100u);
    } else if (r.dst == P("10.88.0.0/16")) {
      ++found;
      EXPECT_FALSE(r.mtu);
    }
  }
  EXPECT_EQ(found, 5);
  // iproute2 sees exactly these under protocol 73.
  const std::string v4 = sh("ip -4 route show table all proto 73");
  const std::string v6 = sh("ip -6 route show table all proto 73");
  EXPECT_NE(v4.find("10.88.0.0/16 dev v0"), std::string::npos) << v4;
  EXPECT_NE(v4.find("10.89.1.0/24 dev v0"), std::string::npos) << v4;
  EXPECT_NE(v4.find("src 10.77.1.1"), std::string::npos) << v4;
  EXPECT_NE(v4.find("mtu 1300"), std::string::npos) << v4;
  EXPECT_NE(v4.find("10.90.0.0/16 dev v0 table 100"), std::string::npos) << v4;
  EXPECT_EQ(v4.find("10.91.0.0"), std::string::npos) << v4;
  EXPECT_NE(v6.find("fd88::/48 dev v0"), std::string::npos) << v6;
  EXPECT_NE(v6.find("fd90::/32 dev v0 table 100"), std::string::npos) << v6;

  // Adding the same route again is refused; deleting one that is not there is not found.
  auto again = nl_->add_route({.dst = P("10.88.0.0/16"), .ifindex = v0_});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::exists);
  EXPECT_NE(again.error().context.find("10.88.0.0/16"), std::string::npos);
  auto gone = nl_->del_route({.dst = P("10.87.0.0/16"), .ifindex = v0_});
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, Errc::not_found);
  EXPECT_EQ(gone.error().sys_errno, ESRCH);
  EXPECT_NE(gone.error().context.find("10.87.0.0/16"), std::string::npos);
  // Our protocol tag protects the foreign route from del_route.
  EXPECT_FALSE(nl_->del_route({.dst = P("10.91.0.0/16"), .ifindex = v0_}).ok());
  // One delete, then the flush takes the rest.
  ASSERT_TRUE(nl_->del_route({.dst = P("10.88.0.0/16"), .ifindex = v0_}).ok());
  EXPECT_EQ(nl_->list_routes()->size(), 4u);
  auto flushed = nl_->flush_routes();
  ASSERT_TRUE(flushed.ok()) << flushed.error().to_string();
  EXPECT_EQ(*flushed, 4u);
  EXPECT_TRUE(nl_->list_routes()->empty());
  EXPECT_EQ(sh("ip route show table all proto 73; ip -6 route show table all proto 73"), "");
  EXPECT_NE(sh("ip route show proto static").find("10.91.0.0/16"), std::string::npos);
  EXPECT_EQ(*nl_->flush_routes(), 0u);
}

TEST_F(NetlinkRoot, FwmarkRulesSteerMarkedLookupsAndFallThrough) {
  ASSERT_TRUE(nl_->list_rules()->empty());
  // Table 7301 knows only 10.95.0.0/16 (via v0's neighbour); marked lookups for other
  // destinations fall through to main.
  int st = 0;
  sh("ip route add 10.95.0.0/16 via 10.77.1.2 dev v0 table 7301 proto 73", &st);
  ASSERT_EQ(st, 0);
  sh("ip route add 10.96.0.0/16 via 10.77.1.3 dev v0", &st);
  ASSERT_EQ(st, 0);
  const RuleSpec r4{.family = AF_INET,
                    .priority = 7300,
                    .fwmark = 0x1e180000,
                    .fwmask = 0xffffffff,
                    .table = 7301};
  RuleSpec r6 = r4;
  r6.family = AF_INET6;
  ASSERT_TRUE(nl_->add_rule(r4).ok());
  auto a6 = nl_->add_rule(r6);
  ASSERT_TRUE(a6.ok()) << a6.error().to_string();
  auto again = nl_->add_rule(r4);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::exists);
  EXPECT_NE(again.error().context.find("fwmark 0x1e180000/0xffffffff"), std::string::npos)
      << again.error().context;
  // Someone else's rule.
  sh("ip rule add fwmark 0x99 lookup 99 pref 7400", &st);
  ASSERT_EQ(st, 0);

  auto rules = nl_->list_rules();
  ASSERT_TRUE(rules.ok()) << rules.error().to_string();
  ASSERT_EQ(rules->size(), 2u);
  for (const RuleSpec& r : *rules) {
    EXPECT_EQ(r.priority, 7300u);
    EXPECT_EQ(r.fwmark, 0x1e180000u);
    EXPECT_EQ(r.fwmask, 0xffffffffu);
    EXPECT_EQ(r.table, 7301u);
    EXPECT_EQ(r.protocol, kRouteProtocol);
  }
  const std::string shown = sh("ip rule show proto 73");
  EXPECT_NE(shown.find("7300:"), std::string::npos) << shown;
  EXPECT_NE(shown.find("lookup 7301"), std::string::npos) << shown;

  // The kernel's lookups: marked to 10.95/16 -> table 7301's gateway; marked elsewhere falls
  // through to main; unmarked to 10.95/16 has no route at all.
  EXPECT_NE(sh("ip route get 10.95.1.1 mark 0x1e180000").find("via 10.77.1.2"), std::string::npos);
  EXPECT_NE(sh("ip route get 10.96.1.1 mark 0x1e180000").find("via 10.77.1.3"), std::string::npos);
  EXPECT_EQ(sh("ip route get 10.95.1.1 2>&1").find("via 10.77.1.2"), std::string::npos);

  ASSERT_TRUE(nl_->del_rule(r6).ok());
  auto gone = nl_->del_rule(r6);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, Errc::not_found);
  auto flushed = nl_->flush_rules();
  ASSERT_TRUE(flushed.ok()) << flushed.error().to_string();
  EXPECT_EQ(*flushed, 1u);
  EXPECT_TRUE(nl_->list_rules()->empty());
  EXPECT_NE(sh("ip rule show").find("lookup 99"), std::string::npos);
  RuleSpec bad = r4;
  bad.family = 0;
  EXPECT_EQ(nl_->add_rule(bad).error().code, Errc::invalid_argument);
}

TEST_F(NetlinkRoot, FlushRemovesRoutesOfAKilledProcess) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child inherits the namespace; it plays an ied that adds its routes and dies.
    ::close(ready[0]);
    auto nl = Netlink::open();
    const bool ok = nl.ok() && nl->add_route({.dst = P("10.66.0.0/16"), .ifindex = v0_}).ok() &&
                    nl->add_route({.dst = P("fd66::/48"), .ifindex = v0_}).ok() &&
                    nl->add_route({.dst = P("10.67.0.0/16"), .ifindex = v0_, .table = 200}).ok() &&
                    nl->add_route({.dst = P("fd67::/48"), .ifindex = v0_, .table = 200}).ok();
    const char c = ok ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    for (;;)
      ::pause();
  }
  ::close(ready[1]);
  char c = 0;
  const ssize_t r = ::read(ready[0], &c, 1);
  ::close(ready[0]);
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(r, 1);
  ASSERT_EQ(c, 'y') << "child could not add its routes";

  // The device lives on, and so do the dead process's routes.
  EXPECT_EQ(nl_->list_routes()->size(), 4u);
  EXPECT_NE(sh("ip -6 route show table 200 proto 73").find("fd67::/48"), std::string::npos);
  // A new ied's startup.
  auto fresh = Netlink::open();
  ASSERT_TRUE(fresh.ok());
  auto n = fresh->flush_routes();
  ASSERT_TRUE(n.ok()) << n.error().to_string();
  EXPECT_EQ(*n, 4u);
  EXPECT_EQ(sh("ip route show table all proto 73; ip -6 route show table all proto 73"), "");
}

TEST_F(NetlinkRoot, RouteGetConnectedVersusGatewayed) {
  ASSERT_TRUE(nl_->set_link(v0_, true, 1450).ok());
  ASSERT_TRUE(
      nl_->add_route({.dst = P("10.55.0.0/16"), .ifindex = v0_, .gateway = A("10.77.1.254")}).ok());
  ASSERT_TRUE(
      nl_->add_route(
             {.dst = P("10.56.0.0/16"), .ifindex = v0_, .gateway = A("10.77.1.254"), .mtu = 1280})
          .ok());
  ASSERT_TRUE(
      nl_->add_route({.dst = P("fd55::/48"), .ifindex = v0_, .gateway = A("fd77:1::fe")}).ok());
  EXPECT_NE(sh("ip route show proto 73").find("10.55.0.0/16 via 10.77.1.254 dev v0"),
            std::string::npos);

  auto on_link = nl_->route_get(A("10.77.1.9"));
  ASSERT_TRUE(on_link.ok()) << on_link.error().to_string();
  EXPECT_EQ(on_link->ifindex, v0_);
  EXPECT_FALSE(on_link->gateway);
  EXPECT_EQ(on_link->src, A("10.77.1.1"));
  EXPECT_EQ(on_link->link_mtu, 1450u);
  EXPECT_EQ(on_link->path_mtu(), 1450u);

  auto via = nl_->route_get(A("10.55.3.4"));
  ASSERT_TRUE(via.ok()) << via.error().to_string();
  EXPECT_EQ(via->ifindex, v0_);
  EXPECT_EQ(via->gateway, A("10.77.1.254"));
  EXPECT_FALSE(via->route_mtu);

  auto small = nl_->route_get(A("10.56.0.1"));
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->route_mtu, 1280u);
  EXPECT_EQ(small->path_mtu(), 1280u);

  auto on_link6 = nl_->route_get(A("fd77:1::9"));
  ASSERT_TRUE(on_link6.ok()) << on_link6.error().to_string();
  EXPECT_EQ(on_link6->ifindex, v0_);
  EXPECT_FALSE(on_link6->gateway);
  auto via6 = nl_->route_get(A("fd55::1"));
  ASSERT_TRUE(via6.ok()) << via6.error().to_string();
  EXPECT_EQ(via6->gateway, A("fd77:1::fe"));

  // Nothing routes there: the namespace has no default route.
  auto none = nl_->route_get(A("192.0.2.1"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::not_found);
  EXPECT_EQ(none.error().sys_errno, ENETUNREACH);
  EXPECT_NE(none.error().context.find("192.0.2.1"), std::string::npos);
  EXPECT_EQ(*nl_->flush_routes(), 3u);
}

TEST_F(NetlinkRoot, RefusesMixedFamiliesBeforeAsking) {
  auto r = nl_->add_route({.dst = P("10.1.0.0/16"), .ifindex = v0_, .gateway = A("fd00::1")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  auto n = nl_->add_route({.dst = P("10.1.0.0/16"), .ifindex = 0});
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, Errc::invalid_argument);
}

}  // namespace
}  // namespace ie::ied
