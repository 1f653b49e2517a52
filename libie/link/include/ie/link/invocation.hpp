// Invocation: one out-of-band service invocation, as a host asks its first-hop SN for it
// (docs/sn.md "Out-of-band requests": {"op":"service.set","invocations":[...]}): the SN runs
// `service` on this host's traffic whose far end is in `prefix` — traffic TO the host whose
// inner source is in it ("in"), traffic FROM the host whose inner destination is in it
// ("out"), or both. A plain value: who checks the values (ied before it stores them, the SN
// before it applies them) is the caller's business; from_json only checks the shape.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

namespace ie::link {

struct Invocation {
  std::string service;           // a module name, [a-z0-9_]{1,32}
  std::string direction = "in";  // "in" | "out" | "both"
  std::string prefix;            // "ADDR/LEN", IPv4 or IPv6

  // {"service":...,"direction":...,"prefix":...}
  nlohmann::json to_json() const;
  // An object with string "service", "direction" and "prefix" (other keys ignored);
  // nullopt otherwise. Never throws.
  static std::optional<Invocation> from_json(const nlohmann::json& j);
  // "block in 10.3.0.0/24", for messages.
  std::string str() const { return service + " " + direction + " " + prefix; }

  bool operator==(const Invocation&) const = default;
};

}  // namespace ie::link
