// What libinteredge-preload.so applies to an unmodified program: a service, its options and
// the destinations to steer, from the environment (IE_SERVICE, IE_OPTIONS, IE_DESTINATIONS,
// IE_STRICT, IE_DEBUG) or from the program's line of a policy file (docs/socket-api.md).
// Parsing is defensive: a bad value or line is reported through `warn` and ignored.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "interedge/interedge.h"

namespace ie::shim {

struct Prefix {
  int family = 0;           // AF_INET or AF_INET6
  std::uint8_t addr[16]{};  // network byte order; 4 bytes used for AF_INET
  unsigned len = 0;         // prefix length
};

struct Policy {
  std::string service;  // empty: steer nothing
  ie_options options{};
  std::vector<Prefix> destinations;  // empty: every destination that is not loopback
  bool strict = false;               // a failed steering fails the call
  bool debug = false;                // one stderr line per failure or ignored setting
};

using Warn = std::function<void(const std::string&)>;

// "10.2.0.0/16", "fd00::/8", "192.0.2.1" (a host). False if it does not parse.
bool parse_prefix(std::string_view text, Prefix* out);
// A comma-separated list; false (and out unchanged) if any element does not parse.
bool parse_prefixes(std::string_view text, std::vector<Prefix>* out);

// The policy-file line for the program (a line naming one of `programs` first, else the
// first `*` line), parsed into *out (service, destinations, options). Returns false when no
// valid line applies; invalid lines are reported and skipped. Lines:
//   # comment
//   PROGRAM SERVICE [DESTINATIONS|-] [KEY=VALUE ...]
bool policy_from_file_text(std::string_view text, const std::vector<std::string>& programs,
                           Policy* out, const Warn& warn);

// The whole policy from environment values (nullptr = unset) and, when IE_SERVICE is unset,
// the policy file's text (nullptr = no file). program: the names the file may use.
struct PolicyInputs {
  const char* service = nullptr;       // IE_SERVICE ("" disables steering, file ignored)
  const char* options = nullptr;       // IE_OPTIONS
  const char* destinations = nullptr;  // IE_DESTINATIONS
  const char* strict = nullptr;        // IE_STRICT
  const char* debug = nullptr;         // IE_DEBUG
  const std::string* file_text = nullptr;
  std::vector<std::string> program_names;
};
Policy make_policy(const PolicyInputs& in, const Warn& warn);

// Whether a connect()/sendto() destination is one to steer under p: AF_INET/AF_INET6, not
// loopback or unspecified (0.0.0.0/8, 127/8, ::, ::1, their v4-mapped forms), and inside
// p.destinations when that is set (v4 prefixes also match v4-mapped v6 addresses).
bool wants_destination(const Policy& p, const sockaddr* sa, socklen_t len);

}  // namespace ie::shim
