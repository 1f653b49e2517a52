// Name lookups for the service-id registry (ie/wire/service_id.hpp).
#include "ie/wire/service_id.hpp"

namespace ie::wire {

std::optional<std::string_view> service_name(std::uint16_t id) {
  switch (id) {
#define IE_X(name, num, text) \
  case num:                   \
    return #name;
    IE_SERVICES(IE_X)
#undef IE_X
  }
  return std::nullopt;
}

std::optional<std::uint16_t> service_from_name(std::string_view n) {
#define IE_X(name, num, text) \
  if (n == #name) return static_cast<std::uint16_t>(num);
  IE_SERVICES(IE_X)
#undef IE_X
  return std::nullopt;
}

bool is_registered_service(std::uint16_t id) {
  return service_name(id).has_value();
}

}  // namespace ie::wire
