// Which IESP (edge-service provider) carries a flow's first hop: the [[policy]] table of
// ied.toml (docs/discovery.md "Several IESPs"). A flow is matched by its destination address
// and its service name (the service or bundle its socket or [[steering.policy]] chose; "ip"
// for flows that reached the TUN by a route):
//   1. the policies whose prefix contains the destination (a policy without prefix matches
//      every destination, less specific than /0) and whose service is the flow's (one
//      without service matches every service);
//   2. of those the longest prefix wins, then one naming the service beats one that does not;
//   3. none matches: the default IESP (discovery.default_iesp).
// Pure and cheap: a table of at most kMaxFlowPolicies entries, sorted once; choose() with no
// policies returns the default at once.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ie/ied/config.hpp"
#include "ie/ied/ip_addr.hpp"
#include "ie/util/result.hpp"

namespace ie::ied {

class IespPolicy {
 public:
  IespPolicy() = default;
  // Validates as the configuration does (prefixes, IESP names, no duplicate (prefix,
  // service)); Errc::invalid_argument says which entry is wrong.
  static Result<IespPolicy> build(const std::vector<FlowPolicy>& policies,
                                  const std::string& default_iesp);

  // The IESP for a flow to dst. service and requested: the flow's service and the name its
  // chooser used (a bundle such as "ip-uncached"); a policy's service matches either.
  const std::string& choose(const IpAddr& dst, std::string_view service = "ip",
                            std::string_view requested = {}) const;
  const std::string& default_iesp() const { return default_; }
  bool has_service_rules() const { return service_rules_; }
  std::size_t size() const { return rules_.size(); }

 private:
  struct Rule {
    bool any_dst = true;
    IpPrefix prefix;
    std::string service;  // "" any
    std::string iesp;
  };
  std::vector<Rule> rules_;  // most specific first
  std::string default_ = kDefaultIesp;
  bool service_rules_ = false;
};

}  // namespace ie::ied
