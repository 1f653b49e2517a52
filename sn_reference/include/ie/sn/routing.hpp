// Where an SN sends things: its pipes (hosts and SNs), the hosts' registered addresses, and
// the edomain topology from its configuration (docs/sn.md "Pipes, hosts and routing").
//
// One RouteTable per worker. Worker 0 holds the master: it validates and applies every change
// (RouteOp) and then posts the same op to the other workers, whose copies apply it too, so
// the packet path reads its own copy without locks. apply() is deterministic: the same ops in
// the same order give the same table.
//
// Also here: the built-in `control` service's request handler (host registration and
// out-of-band invocations, JSON bodies) and the built-in `ip` module.
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

// An out-of-band invocation (docs/sn.md "Out-of-band invocation"): a host asks its SN to
// apply a service to a portion of its traffic. direction in: packets TO the host whose inner
// source is in prefix; out: packets FROM the host whose inner destination is in prefix.
enum class Direction : std::uint8_t { in = 1, out = 2, both = 3 };
std::string_view direction_name(Direction d);
std::optional<Direction> parse_direction(std::string_view s);
struct Invocation {
  std::string service;           // module name
  std::uint16_t service_id = 0;  // the module's service id
  Direction direction = Direction::in;
  Prefix prefix;
  bool applies(Direction d, const Addr16& peer_addr) const {
    return (static_cast<unsigned>(direction) & static_cast<unsigned>(d)) != 0 &&
           prefix.contains(peer_addr);
  }
  bool operator==(const Invocation&) const = default;
};
inline constexpr std::size_t kMaxInvocationsPerHost = 32;

struct RouteOp {
  enum class Kind : std::uint8_t {
    pipe_up,
    pipe_down,
    register_host,
    unregister_host,
    set_invocations
  };
  Kind kind = Kind::pipe_up;
  PipeId pipe = 0;
  ie_sn_pipe_kind pipe_kind = IE_SN_PIPE_HOST;  // pipe_up
  std::string sn_name;                          // pipe_up of an SN pipe
  std::vector<Addr16> addrs;                    // register_host / unregister_host
  std::vector<Invocation> invocations;          // set_invocations (replaces the pipe's set)
  bool standby = false;                         // register_host: as the host's warm standby
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
  // Whether we have a pipe straight to that SN (sn_route then returns it).
  bool has_sn_pipe(std::string_view sn_name) const { return sn_pipe(sn_name).has_value(); }
  // The SN the most specific static route covering dst names (nullptr: none).
  const std::string* static_route_sn(const Addr16& dst) const;
  // What a pipe is; flags has IE_SN_PIPE_F_STANDBY for a host registered as standby.
  std::optional<ie_sn_pipe_info> pipe_info(PipeId pipe) const;
  // Whether the host pipe registered here as its warm standby (register_host sets it on every
  // successful registration; false for no such pipe). A change of it (a failover) outdates
  // cached decisions that name the pipe.
  bool standby_of(PipeId pipe) const;
  // The host pipe an address is registered by.
  std::optional<PipeId> host_of(const Addr16& addr) const;
  std::vector<Addr16> registered(PipeId pipe) const;
  // The pipe's out-of-band invocations (empty if none or no such pipe).
  const std::vector<Invocation>& invocations(PipeId pipe) const;
  // How many pipes have at least one invocation (0: the packet path skips the check).
  std::size_t invoking_pipes() const { return invoking_pipes_; }

  std::size_t pipe_count() const { return pipes_.size(); }
  std::size_t host_addr_count() const { return hosts_.size(); }
  const RouteConfig& config() const { return cfg_; }

 private:
  struct Pipe {
    ie_sn_pipe_kind kind = IE_SN_PIPE_HOST;
    std::string sn_name;
    std::set<Addr16> addrs;
    std::vector<Invocation> invocations;
    bool standby = false;
  };
  struct AddrHash {
    std::size_t operator()(const Addr16& a) const;
  };
  std::optional<PipeId> sn_pipe(std::string_view name) const;

  RouteConfig cfg_;
  std::unordered_map<PipeId, Pipe> pipes_;
  std::unordered_map<Addr16, PipeId, AddrHash> hosts_;
  std::map<std::string, PipeId, std::less<>> sn_pipes_;  // DOM.SN -> pipe
  std::size_t invoking_pipes_ = 0;
};

// The built-in `control` service (service id 7): one JSON request body from a pipe -> the
// JSON response, plus the RouteOps it applied to `table` (to be replayed on the other
// workers' copies). Never throws; every bad request gets {"ok":false,"error":"..."}.
struct ControlInfo {
  std::string sn_name;
  std::vector<std::string> services;  // names of the services this SN serves
  // Modules hosts may invoke out of band ([services] out_of_band): name -> service id.
  std::map<std::string, std::uint16_t, std::less<>> out_of_band;
  std::string endpoint;  // [sn] advertise: in the info answer when set (anycast discovery)
  // On-demand direct pipes (docs/sn.md "On-demand direct pipes"): whether this SN takes
  // them, its own public key (base64), and the SNs its configuration names (edomain SNs,
  // peer gateways) with their endpoints and keys, which sn.locate answers from.
  bool direct_pipes = false;
  noise::PublicKey public_key{};
  std::vector<SnRef> known_sns;
};
// sn.locate travels at most this many SNs beyond the first.
inline constexpr unsigned kMaxLocateTtl = 4;
struct ControlResult {
  std::string response;  // empty when the answer is deferred (relay, hello below)
  std::vector<RouteOp> applied;
  // sn.locate of an SN not known here: the caller asks the next SN towards it (relay_via)
  // with ttl `relay_ttl` and answers with what comes back.
  std::string relay_name;
  PipeId relay_via = 0;
  unsigned relay_ttl = 0;
  // sn.hello: the pipe's peer says it is this SN; the caller answers once it verified that
  // the SN's key is the pipe's (it locates the SN itself).
  std::string hello_name;
};
// The body of an sn.locate request / its answer (the control service's JSON).
std::string locate_request(std::string_view name, unsigned ttl);
std::string hello_request(std::string_view self_name);
// A positive sn.locate answer, checked: the name asked for, a numeric unicast endpoint with
// a port, a 32-byte base64 key. Errc::invalid_argument with the reason otherwise (also for
// {"ok":false,"error":...}: its error).
Result<SnRef> parse_locate_answer(std::string_view body, std::string_view name);
inline constexpr std::size_t kMaxControlRequest = 4096;
ControlResult handle_control_request(RouteTable& table, PipeId from, std::string_view body,
                                     const ControlInfo& info);

// Out-of-band request framing: service id (u16, big-endian) || body.
std::optional<std::pair<std::uint16_t, std::string_view>> split_service_request(ConstByteSpan data);
Bytes make_service_request(std::uint16_t service_id, std::string_view body);

// The built-in `ip` module (service 1): IP-like point-to-point delivery (docs/sn.md).
const ie_sn_module_descriptor* ip_module();
// The built-in `block` module (service 8): drops every packet it is given; invoked out of
// band by hosts to keep traffic (e.g. an attack's sources) off their access link.
const ie_sn_module_descriptor* block_module();
// The built-in `passthrough` module (service 6): an operator's allow-list firewall, imposed
// on every packet from and to the hosts of a pass-through SN (docs/sn.md "Imposed services").
const ie_sn_module_descriptor* passthrough_module();

}  // namespace ie::sn
