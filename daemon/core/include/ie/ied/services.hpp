// The services ied can carry a socket's traffic with, and the bundles that name a service
// with options (docs/socket-api.md "Services and bundles"). One place validates a name and
// its options for every way in: the control protocol (socket.set_service, from the C API
// and the shim) and the configuration ([[steering.policy]] service).
//
//   service "ip"        the IP-like service (endpoints keep their addresses); options:
//                       direct = "allow" (default: a direct host-host path when there is
//                       one) | "never" (always through the SNs);
//                       sn_cache = "on" (default: SNs may cache the flow's forwarding
//                       decision) | "off" (every packet is decided afresh by the SNs'
//                       service: carried to them in ILP metadata, the cache_control TLV)
//   bundle "ip-via-sn"   = "ip" with direct = "never"
//   bundle "ip-uncached" = "ip" with sn_cache = "off"
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "ie/util/result.hpp"

namespace ie::ied {

inline constexpr std::size_t kMaxServiceOptions = 16;
inline constexpr std::size_t kMaxServiceNameLen = 63;
inline constexpr std::size_t kMaxOptionKeyLen = 31;
inline constexpr std::size_t kMaxOptionValueLen = 127;

using ServiceOptions = std::map<std::string, std::string>;

struct ServiceChoice {
  std::string service;     // the service itself ("ip"), bundles expanded
  std::string requested;   // the name the caller used ("ip-via-sn")
  ServiceOptions options;  // bundle options, then the caller's on top, then defaults
  bool operator==(const ServiceChoice&) const = default;
  bool allows_direct() const;
  bool sn_cache_off() const;
  // Whether an option must reach the SNs (in ILP metadata), so the flow needs its own
  // connection id and TLVs.
  bool carried_to_sns() const;
};

// Syntax only: [a-z0-9_.+-]{1,63}.
bool valid_service_syntax(std::string_view name);

// Validates and expands: Errc::invalid_argument for bad syntax, too many options, an option
// the service does not know or a value it does not accept (the message says which and what
// is accepted); Errc::not_found for a name that is neither a service nor a bundle.
Result<ServiceChoice> resolve_service(std::string_view name, const ServiceOptions& options = {});

}  // namespace ie::ied
