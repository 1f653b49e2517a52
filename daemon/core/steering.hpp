// ied's socket steering (issue 5; docs/bpf.md): which sockets' traffic enters ie0, and with
// which service. Private to daemon/core.
//
// - Explicitly steered sockets (the C API / shim pass the fd over the control socket): ied
//   sets SO_MARK = IE_MARK_BASE | slot on it, one slot per distinct ServiceChoice; the rule
//   `fwmark IE_MARK_BASE/IE_MARK_EXPLICIT_MASK lookup <table>` sends every non-local
//   destination of such a socket to ie0.
// - [[steering.policy]] i: the cgroup/sock_create program marks sockets made in the policy's
//   cgroup (deepest configured cgroup wins) with IE_MARK_POLICY_BASE | i; the rule for that
//   mark looks up table+1+i, which holds only the policy's prefixes, so other destinations
//   fall through to the main table, packet by packet.
// - The tcx egress program on ie0 records flow -> mark; flow_service() maps it back.
// Routes carry ied's protocol 73 (flushed with the others at start); rules carry it too
// (flush_rules at start removes a killed ied's). The BPF links close with this object.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ie/ctl/protocol.hpp"
#include "ie/ied/config.hpp"
#include "ie/ied/flow_key.hpp"
#include "ie/ied/ip_addr.hpp"
#include "ie/ied/netlink.hpp"
#include "ie/ied/services.hpp"
#include "ie/util/result.hpp"

namespace ie::bpf {
class Steering;
}

namespace ie::ied {

class SocketSteering {
 public:
  // The most distinct (service, options) choices explicitly steered sockets may use at once.
  static constexpr std::size_t kMaxSlots = 1024;

  // Loads and attaches the BPF programs (tcx on the TUN; sock_create on every policy's
  // cgroup), adds the tables' routes and the rules. On failure nothing is left behind.
  static Result<std::unique_ptr<SocketSteering>> start(const SteeringConfig& cfg, Netlink& nl,
                                                       int tun_ifindex,
                                                       const std::vector<IpAddr>& addresses);
  ~SocketSteering();
  SocketSteering(const SocketSteering&) = delete;
  SocketSteering& operator=(const SocketSteering&) = delete;

  // Removes our rules and routes (the TUN's routes would go with it anyway).
  void stop(Netlink& nl);

  // Replaces the cgroup policies (reload). Explicitly steered sockets keep their marks; a
  // cgroup that loses its policy stops marking new sockets (its program stays attached,
  // finding no policy). On failure the old policies are restored as far as possible.
  Result<void> replace_policies(const std::vector<SteeringPolicy>& policies, Netlink& nl,
                                int tun_ifindex, const std::vector<IpAddr>& addresses);

  // socket.set_service / get_service / clear_service on a socket fd the caller passed.
  // set: Errc::invalid_argument (not an AF_INET/AF_INET6 TCP/UDP socket, a connected TCP
  // socket: errno EISCONN, bad options), not_found (unknown service), busy (the socket
  // carries a mark that is not ours: errno EBUSY; or every slot taken).
  Result<ctl::Json> set_service(int fd, const std::string& name, const ServiceOptions& options);
  Result<ctl::Json> get_service(int fd) const;
  Result<ctl::Json> clear_service(int fd);

  // The InterEdge mark of a flow's socket (recorded by the tcx program), if it was steered
  // by mark; nullopt for packets that reached ie0 by a [host] prefix route.
  std::optional<std::uint32_t> flow_mark(const FlowKey& k) const;
  // The service a mark stands for; nullopt for marks not (or no longer) ours.
  std::optional<ServiceChoice> choice_of_mark(std::uint32_t mark) const;

  ctl::Json status_json() const;

 private:
  SocketSteering() = default;
  Result<void> install(const SteeringConfig& cfg, Netlink& nl, int tun_ifindex,
                       const std::vector<IpAddr>& addresses);
  Result<void> add_policies(const std::vector<SteeringPolicy>& policies, Netlink& nl,
                            int tun_ifindex, const std::vector<IpAddr>& addresses);
  void remove_policies(Netlink& nl);
  std::vector<RuleSpec> policy_rules_;
  std::vector<RouteSpec> policy_routes_;
  std::vector<std::uint64_t> policy_ids_;

  std::unique_ptr<bpf::Steering> bpf_;
  std::vector<RuleSpec> rules_;
  std::vector<RouteSpec> routes_;
  std::vector<ServiceChoice> slots_;     // explicit marks: index = slot
  std::vector<ServiceChoice> policies_;  // policy marks: index = policy index
  std::vector<std::string> policy_cgroups_;
  std::vector<std::string> attached_cgroups_;  // sock_create linked here (once each)
  std::uint32_t rule_priority_ = 0;
  std::uint32_t table_ = 0;
  bool ipv6_ = true;  // IPv6 routes into the TUN possible
  std::uint64_t steered_ = 0, cleared_ = 0, refused_ = 0;
};

}  // namespace ie::ied
