// The [[policy]] table (iesp_policy.hpp).
#include "ie/ied/iesp_policy.hpp"

#include <algorithm>

namespace ie::ied {

Result<IespPolicy> IespPolicy::build(const std::vector<FlowPolicy>& policies,
                                     const std::string& default_iesp) {
  if (!valid_iesp_name(default_iesp))
    return fail(Errc::invalid_argument,
                "default IESP \"" + default_iesp.substr(0, 40) + "\" is not an IESP name");
  if (policies.size() > kMaxFlowPolicies)
    return fail(Errc::invalid_argument,
                "at most " + std::to_string(kMaxFlowPolicies) + " policies");
  IespPolicy t;
  t.default_ = default_iesp;
  for (std::size_t i = 0; i < policies.size(); ++i) {
    const FlowPolicy& p = policies[i];
    const std::string which = "policy " + std::to_string(i + 1) + ": ";
    Rule r;
    if (!p.prefix.empty()) {
      const auto pf = IpPrefix::parse(p.prefix);
      if (!pf)
        return fail(Errc::invalid_argument,
                    which + "prefix \"" + p.prefix.substr(0, 60) + "\" is not a prefix");
      r.any_dst = false;
      r.prefix = *pf;
    }
    if (p.prefix.empty() && p.service.empty())
      return fail(Errc::invalid_argument, which + "needs prefix and/or service");
    if (!valid_iesp_name(p.iesp))
      return fail(Errc::invalid_argument,
                  which + "iesp \"" + p.iesp.substr(0, 40) + "\" is not an IESP name");
    r.service = p.service;
    r.iesp = p.iesp;
    for (const Rule& o : t.rules_)
      if (o.any_dst == r.any_dst && (r.any_dst || o.prefix == r.prefix) && o.service == r.service)
        return fail(Errc::invalid_argument, which + "the same prefix and service as another");
    t.service_rules_ = t.service_rules_ || !r.service.empty();
    t.rules_.push_back(std::move(r));
  }
  // Most specific first: longer prefix, then any prefix before none, then with a service.
  std::stable_sort(t.rules_.begin(), t.rules_.end(), [](const Rule& a, const Rule& b) {
    if (a.any_dst != b.any_dst) return !a.any_dst;
    if (!a.any_dst && a.prefix.len != b.prefix.len) return a.prefix.len > b.prefix.len;
    return !a.service.empty() && b.service.empty();
  });
  return t;
}

const std::string& IespPolicy::choose(const IpAddr& dst, std::string_view service,
                                      std::string_view requested) const {
  for (const Rule& r : rules_) {
    if (!r.any_dst && !r.prefix.contains(dst)) continue;
    if (!r.service.empty() && r.service != service && r.service != requested) continue;
    return r.iesp;
  }
  return default_;
}

}  // namespace ie::ied
