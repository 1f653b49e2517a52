// Where an SN sends things: its pipes (hosts and SNs), the hosts' registered addresses, and
// the edomain topology from its configuration (docs/sn.md "Pipes, hosts and routing").
//
// One RouteTable per worker. Worker 0 holds the master: it validates and applies every change
// (RouteOp) and then posts the same op to the other workers, whose copies apply it too, so
// the packet path reads its own copy without locks. apply() is deterministic: the same ops in
// the same order give the same table.
//
// Also here: the built-in `control` service's request handler (host registration, JSON
// bodies) and the built-in `ip` module.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ie/sn/config.hpp"
#include "ie/sn/env.hpp"
#include "ie/util/result.hpp"
#include "interedge/sn_module.h"

namespace ie::sn {

// Addr16, mapped_v4, parse_addr, addr_str: ie/sn/config.hpp.
inline Addr16 to_addr16(const ie_sn_addr& a) {
  Addr16 r;
  for (std::size_t i = 0; i < 16; ++i)
    r[i] = a.bytes[i];
  return r;
}
inline ie_sn_addr to_sn_addr(const Addr16& a) {
  ie_sn_addr r;
  for (std::size_t i = 0; i < 16; ++i)
    r.bytes[i] = a[i];
  return r;
}

// The inner packet's addresses (IPv4 or IPv6 header); nullopt if it is not a well-formed
// start of an IP packet.
struct InnerAddrs {
  Addr16 src;
  Addr16 dst;
};
std::optional<InnerAddrs> inner_addrs(const std::uint8_t* p, std::size_t len);

// The part of the SN configuration routing needs.
struct RouteConfig {
  std::string self;                                  // DOM.SN
  std::string gateway;                               // DOM.SN of this edomain's gateway
  std::map<std::string, std::string> peer_gateways;  // remote edomain -> its gateway DOM.SN
  std::vector<StaticRoute> routes;
  std::vector<Prefix> host_prefixes;  // empty: hosts may register any address
  std::size_t max_addrs_per_host = 16;
};
RouteConfig route_config(const SnConfig& c);

// The edomain of DOM.SN ("" if malformed).
std::string_view edomain_of(std::string_view sn_name);

struct RouteOp {
  enum class Kind : std::uint8_t { pipe_up, pipe_down, register_host, unregister_host };
  Kind kind = Kind::pipe_up;
  PipeId pipe = 0;
  ie_sn_pipe_kind pipe_kind = IE_SN_PIPE_HOST;  // pipe_up
  std::string sn_name;                          // pipe_up of an SN pipe
  std::vector<Addr16> addrs;                    // register_host / unregister_host
};

class RouteTable {
 public:
  explicit RouteTable(RouteConfig cfg);

  // Applies a change. register_host is all-or-nothing and fails (Errc::invalid_argument /
  // Errc::exists / Errc::not_found, with a message fit for the host) if the pipe is not a
  // host pipe, an address is outside host_prefixes, registered by another pipe, or the
  // host would exceed max_addrs_per_host. Other ops never fail (unknown pipes are ignored).
  Result<void> apply(const RouteOp& op);
  // Reload: new topology and static routes; pipes and registrations stay.
  void set_config(RouteConfig cfg);

  // The pipe towards an inner destination: a host registered here, else the SN of a static
  // route (via sn_route).
  std::optional<PipeId> route(const Addr16& dst) const;
  // The pipe towards an SN (see docs/sn.md): direct, else via gateways; nullopt for this SN
  // itself or an unreachable one.
  std::optional<PipeId> sn_route(std::string_view sn_name) const;
  std::optional<ie_sn_pipe_info> pipe_info(PipeId pipe) const;
  // The host pipe an address is registered by.
  std::optional<PipeId> host_of(const Addr16& addr) const;
  std::vector<Addr16> registered(PipeId pipe) const;

  std::size_t pipe_count() const { return pipes_.size(); }
  std::size_t host_addr_count() const { return hosts_.size(); }
  const RouteConfig& config() const { return cfg_; }

 private:
  struct Pipe {
    ie_sn_pipe_kind kind = IE_SN_PIPE_HOST;
    std::string sn_name;
    std::set<Addr16> addrs;
  };
  struct AddrHash {
    std::size_t operator()(const Addr16& a) const;
  };
  std::optional<PipeId> sn_pipe(std::string_view name) const;

  RouteConfig cfg_;
  std::unordered_map<PipeId, Pipe> pipes_;
  std::unordered_map<Addr16, PipeId, AddrHash> hosts_;
  std::map<std::string, PipeId, std::less<>> sn_pipes_;  // DOM.SN -> pipe
};

// The built-in `control` service (service id 7): one JSON request body from a pipe -> the
// JSON response, plus the RouteOps it applied to `table` (to be replayed on the other
// workers' copies). Never throws; every bad request gets {"ok":false,"error":"..."}.
struct ControlInfo {
  std::string sn_name;
  std::vector<std::string> services;  // names of the services this SN serves
};
struct ControlResult {
  std::string response;
  std::vector<RouteOp> applied;
};
inline constexpr std::size_t kMaxControlRequest = 4096;
ControlResult handle_control_request(RouteTable& table, PipeId from, std::string_view body,
                                     const ControlInfo& info);

// Out-of-band request framing: service id (u16, big-endian) || body.
std::optional<std::pair<std::uint16_t, std::string_view>> split_service_request(ConstByteSpan data);
Bytes make_service_request(std::uint16_t service_id, std::string_view body);

// The built-in `ip` module (service 1): IP-like point-to-point delivery (docs/sn.md).
const ie_sn_module_descriptor* ip_module();

}  // namespace ie::sn
