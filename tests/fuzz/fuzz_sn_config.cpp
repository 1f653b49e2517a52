// Fuzz target: iesn.toml parsing and validation (ie::sn::parse_config) on arbitrary bytes.
// Must never crash, hang or let an exception out; every error must carry a FILE:LINE:COL
// position; every accepted configuration must satisfy the invariants validation promises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "ie/sn/config.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ie::sn;
  if (size > 65536) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = parse_config(text, "fuzz.toml");
  if (!r) {
    const ie::Error& e = r.error();
    check(e.code == ie::Errc::parse || e.code == ie::Errc::invalid_argument);
    check(e.context.rfind("fuzz.toml:", 0) == 0);
    return 0;
  }
  const SnConfig& c = *r;
  check(valid_sn_name(c.name));
  check(c.name.rfind(c.edomain + ".", 0) == 0);
  check(c.workers <= kMaxWorkers);
  check(c.cache_capacity >= 1 && c.cache_capacity <= kMaxCacheCapacity);
  check(c.rekey_seconds >= 1 && c.rekey_seconds <= kMaxRekeySeconds);
  check(!c.private_key_file.empty() && c.private_key_file.front() == '/');
  std::set<std::string> names{c.name};
  bool gateway_known = c.gateway == c.name;
  for (const auto& s : c.domain_sns) {
    check(valid_sn_name(s.name) && s.name.rfind(c.edomain + ".", 0) == 0);
    check(names.insert(s.name).second);
    gateway_known = gateway_known || s.name == c.gateway;
  }
  check(gateway_known);
  std::set<std::string> edomains{c.edomain};
  for (const auto& p : c.peers) {
    check(valid_edomain(p.edomain));
    check(edomains.insert(p.edomain).second);
    check(p.gateway.name.rfind(p.edomain + ".", 0) == 0);
  }
  for (const auto& p : c.host_prefixes) {
    auto again = Prefix::parse(p.str());
    check(again.ok() && *again == p);
  }
  for (const auto& rt : c.routes) {
    check(valid_sn_name(rt.sn));
    auto again = Prefix::parse(rt.prefix.str());
    check(again.ok() && *again == rt.prefix);
    check(rt.prefix.contains(rt.prefix.addr));
  }
  for (const auto& m : c.module_paths)
    check(!m.empty() && m.front() == '/');
  return 0;
}
