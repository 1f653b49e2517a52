// The service-id registry: which SN service module an ILP packet is for. One X-macro list,
// expanded into the enum and the name lookups used by config files, the CLI and logs.
// 0x0000-0x7fff are assigned here; 0x8000-0xffff are for experiments and private use.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

// X(name, number, "description")
#define IE_SERVICES(X)                                                  \
  X(null, 0, "no service: the SN forwards by the inner destination")    \
  X(ip, 1, "IP-like forwarding to the inner packet's destination")      \
  X(pubsub, 2, "publish/subscribe on topics")                           \
  X(multicast, 3, "delivery to every member of a group")                \
  X(anycast, 4, "delivery to one member of a group")                    \
  X(qos, 5, "last-hop QoS scheduling towards a household")              \
  X(passthrough, 6, "operator pass-through (e.g. allow-list firewall)") \
  X(control, 7, "out-of-band service requests to the SN")               \
  X(block, 8, "drops the traffic a host's out-of-band invocation names")

namespace ie::wire {

enum class ServiceId : std::uint16_t {
#define IE_X(name, num, text) name = num,
  IE_SERVICES(IE_X)
#undef IE_X
};

inline constexpr std::uint16_t kFirstPrivateServiceId = 0x8000;

// "ip" for ServiceId::ip; "private-0x8001" style names are not produced: nullopt if unknown.
std::optional<std::string_view> service_name(std::uint16_t id);
std::optional<std::uint16_t> service_from_name(std::string_view name);
bool is_registered_service(std::uint16_t id);

}  // namespace ie::wire
