// Netlink: an RAII rtnetlink (NETLINK_ROUTE) socket with the few requests ied needs to plumb
// its TUN into the host: routes tagged with our own protocol number (add, delete, list, flush
// of stale ones after a crash), interface addresses, link state and MTU, and "route get" for
// the outgoing device, gateway and path MTU towards a peer.
//
// Raw netlink, no libnl. Every request is acknowledged (NLM_F_ACK) and the ack checked; errors
// carry the kernel's errno, its extended-ack message when it sends one, and what was being
// done ("add route 10.1.0.0/16 dev 7"). Replies are parsed with bounds checks. Works in the
// network namespace of the thread that called open(). Blocking, with a receive timeout; not
// for the packet path. Not thread-safe: one owner.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ie/ied/ip_addr.hpp"
#include "ie/util/result.hpp"

namespace ie::ied {

// The rtnetlink route protocol (rtm_protocol) ied tags its routes with, so `ip route show
// proto 73` lists exactly ours and a restart can flush what a killed ied left. 73 is in no
// list of linux/rtnetlink.h (RTPROT_*) or iproute2's rt_protos.
inline constexpr std::uint8_t kRouteProtocol = 73;
inline constexpr std::uint32_t kMainTable = 254;  // RT_TABLE_MAIN

struct RouteSpec {
  IpPrefix dst{};
  int ifindex = 0;                     // outgoing device (required)
  std::optional<IpAddr> gateway{};     // none: on-link (scope link)
  std::optional<IpAddr> src{};         // preferred source address (RTA_PREFSRC)
  std::optional<std::uint32_t> mtu{};  // route MTU metric (RTAX_MTU)
  std::uint32_t table = kMainTable;
  std::uint8_t protocol = kRouteProtocol;
  std::uint32_t metric = 0;  // RTA_PRIORITY; 0: the kernel's default
};

// A route as the kernel lists it.
struct Route {
  IpPrefix dst;
  int ifindex = 0;
  std::optional<IpAddr> gateway;
  std::optional<IpAddr> src;
  std::optional<std::uint32_t> mtu;
  std::uint32_t table = 0;
  std::uint8_t protocol = 0;
  std::uint8_t type = 0;  // RTN_*
  std::uint32_t metric = 0;
};

// A policy-routing rule (`ip rule`): packets whose mark matches (mark & fwmask) == fwmark
// look up `table`; a lookup that finds no route there falls through to the next rule.
struct RuleSpec {
  int family = 0;  // AF_INET or AF_INET6
  std::uint32_t priority = 0;
  std::uint32_t fwmark = 0;
  std::uint32_t fwmask = 0xffffffff;
  std::uint32_t table = 0;
  std::uint8_t protocol = kRouteProtocol;  // FRA_PROTOCOL: `ip rule show proto 73`
};

// What `ip route get DST` says.
struct RouteLookup {
  int ifindex = 0;
  std::optional<IpAddr> gateway;           // none: DST is on the link (a direct-connect candidate)
  std::optional<IpAddr> src;               // the source address the kernel would pick
  std::optional<std::uint32_t> route_mtu;  // a route MTU or a learned path MTU, if any
  std::uint32_t link_mtu = 0;              // the outgoing device's MTU
  std::uint32_t path_mtu() const { return route_mtu.value_or(link_mtu); }
};

class Netlink {
 public:
  // Opens and binds the socket in the calling thread's network namespace.
  static Result<Netlink> open();

  Netlink(Netlink&& o) noexcept;
  Netlink& operator=(Netlink&& o) noexcept;
  Netlink(const Netlink&) = delete;
  Netlink& operator=(const Netlink&) = delete;
  ~Netlink();

  // Adds a unicast route; Errc::exists if the same route is there already.
  Result<void> add_route(const RouteSpec& r);
  // Deletes the route matching dst, table, protocol, and (when set) ifindex/gateway/metric;
  // Errc::not_found if none.
  Result<void> del_route(const RouteSpec& r);
  // Routes of every table and both families whose protocol is `protocol` (the kernel's
  // cached exceptions are not listed).
  Result<std::vector<Route>> list_routes(std::uint8_t protocol = kRouteProtocol);
  // Deletes every route list_routes(protocol) returns (table main and any other, IPv4 and
  // IPv6); returns how many. Used at startup for routes a killed ied left behind.
  Result<std::size_t> flush_routes(std::uint8_t protocol = kRouteProtocol);

  // Adds a fwmark rule (FR_ACT_TO_TBL); Errc::exists if an identical one is there already.
  Result<void> add_rule(const RuleSpec& r);
  // Deletes the rule matching family, priority, fwmark/fwmask, table and protocol;
  // Errc::not_found if none.
  Result<void> del_rule(const RuleSpec& r);
  // Rules of both families tagged with `protocol`.
  Result<std::vector<RuleSpec>> list_rules(std::uint8_t protocol = kRouteProtocol);
  // Deletes every rule list_rules(protocol) returns; returns how many (startup clean-up).
  Result<std::size_t> flush_rules(std::uint8_t protocol = kRouteProtocol);

  // Adds addr/prefix_len to the device (IPv6 without duplicate address detection, so the
  // address is usable at once: ied's TUN is point-to-point).
  Result<void> add_address(int ifindex, const IpAddr& addr, unsigned prefix_len);
  // Sets the link up or down and, when given, its MTU.
  Result<void> set_link(int ifindex, bool up, std::optional<std::uint32_t> mtu = std::nullopt);
  // The interface index of a device name; Errc::not_found if there is none.
  Result<int> ifindex(const std::string& name);
  Result<std::uint32_t> link_mtu(int ifindex);
  // The kernel's route lookup for dst (RTM_GETROUTE), with the device MTU.
  Result<RouteLookup> route_get(const IpAddr& dst);

 private:
  explicit Netlink(int fd) : fd_(fd) {}
  // Sends the request in msg (its nlmsghdr filled but for seq/pid/ACK) and reads replies up
  // to the ack or NLMSG_DONE; each data message goes to on_msg (may be empty).
  template <typename F>
  Result<void> transact(std::vector<std::uint8_t>& msg, const std::string& what, F&& on_msg);

  int fd_ = -1;
  std::uint32_t seq_ = 0;
  std::vector<std::uint8_t> rx_;  // receive buffer, allocated once
};

}  // namespace ie::ied
