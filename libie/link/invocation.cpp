// Invocation (invocation.hpp): the contract's JSON form of one out-of-band invocation.
#include "ie/link/invocation.hpp"

#include <nlohmann/json.hpp>

namespace ie::link {

nlohmann::json Invocation::to_json() const {
  return {{"service", service}, {"direction", direction}, {"prefix", prefix}};
}

std::optional<Invocation> Invocation::from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  const auto str = [&j](const char* key) -> const std::string* {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
  };
  const std::string* service = str("service");
  const std::string* direction = str("direction");
  const std::string* prefix = str("prefix");
  if (service == nullptr || direction == nullptr || prefix == nullptr) return std::nullopt;
  return Invocation{*service, *direction, *prefix};
}

}  // namespace ie::link
