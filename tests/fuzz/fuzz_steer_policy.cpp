// Fuzz target: every parser of a steering request, on arbitrary text. The input is split at
// its first two newlines into A, B and C:
//   - the shim's policy file (whole input) for program "curl", its prefix lists (A) and
//     IE_OPTIONS text (B) through make_policy, and ie_options_parse (B): nothing crashes, a
//     parsed prefix has family AF_INET/AF_INET6 and a length within it, options stay within
//     their fixed arrays and are NUL-terminated;
//   - ied's resolve_service (A as the name, B's "k=v,..." as options): an accepted choice
//     names a known service, and resolving it again by its own options gives the same.
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ie/ied/services.hpp"
#include "interedge/interedge.h"
#include "policy.hpp"

namespace {

void check(bool c) {
  if (!c) std::abort();
}

void check_prefixes(const std::vector<ie::shim::Prefix>& ps) {
  for (const auto& p : ps) {
    check(p.family == AF_INET || p.family == AF_INET6);
    check(p.len <= (p.family == AF_INET ? 32u : 128u));
  }
}

void check_options(const ie_options& o) {
  check(o.count <= IE_OPTIONS_MAX);
  for (std::uint32_t i = 0; i < o.count; ++i) {
    check(std::memchr(o.option[i].key, 0, sizeof o.option[i].key) != nullptr);
    check(std::memchr(o.option[i].value, 0, sizeof o.option[i].value) != nullptr);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 1 << 16) return 0;
  const std::string in(reinterpret_cast<const char*>(data), size);
  const auto n1 = in.find('\n');
  const std::string a = in.substr(0, n1);
  const std::string rest = n1 == std::string::npos ? "" : in.substr(n1 + 1);
  const auto n2 = rest.find('\n');
  const std::string b = rest.substr(0, n2);

  const auto quiet = [](const std::string&) {};
  ie::shim::Policy p;
  if (ie::shim::policy_from_file_text(in, {"curl"}, &p, quiet)) {
    check(!p.service.empty());
    check_prefixes(p.destinations);
    check_options(p.options);
  }
  std::vector<ie::shim::Prefix> ps;
  if (ie::shim::parse_prefixes(a, &ps)) check_prefixes(ps);

  ie::shim::PolicyInputs pi;
  const std::string svc = "ip";
  pi.service = svc.c_str();
  pi.options = b.c_str();
  pi.destinations = a.c_str();
  const auto mp = ie::shim::make_policy(pi, quiet);
  check_prefixes(mp.destinations);
  check_options(mp.options);

  ie_options o;
  ie_options_init(&o);
  (void)ie_options_parse(&o, b.c_str());
  check_options(o);

  ie::ied::ServiceOptions opts;
  for (std::uint32_t i = 0; i < o.count; ++i)
    opts[o.option[i].key] = o.option[i].value;
  auto c = ie::ied::resolve_service(a, opts);
  if (c) {
    check(c->service == "ip");
    auto again = ie::ied::resolve_service(c->requested, c->options);
    check(again && *again == *c);
  }
  return 0;
}
