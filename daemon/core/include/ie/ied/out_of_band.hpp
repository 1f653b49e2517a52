// Out-of-band service invocations as ied keeps them (docs/ied.md "Out-of-band services"):
// the checks a control request's entry must pass before ied stores it and sends it to its
// first-hop SNs, and the ordered set of entries itself. Pure values, no I/O: the daemon
// (out_of_band.cpp) persists the set in its state database and hands it to the HostLink.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "ie/ctl/protocol.hpp"
#include "ie/link/invocation.hpp"
#include "ie/util/result.hpp"

namespace ie::ied {

// The contract's limit (docs/sn.md): an SN refuses a longer set.
inline constexpr std::size_t kMaxInvocations = 32;

// One entry from its parts: service [a-z0-9_]{1,32}; direction in|out|both; prefix
// "ADDR/LEN" (IPv4 or IPv6; host bits may be set) or a bare address (/32, /128). Returns
// it canonical (prefix with host bits cleared, "10.3.0.0/24"), or invalid_argument naming
// the field.
Result<link::Invocation> make_invocation(std::string_view service, std::string_view direction,
                                         std::string_view prefix);
// The same from control params {"service","direction"?: default "in","prefix"}.
Result<link::Invocation> invocation_from_params(const ctl::Json& params);

// The desired set, in the order entries were enabled; no duplicates.
class InvocationSet {
 public:
  InvocationSet() = default;
  // Entries loaded from storage: each is checked again (a bad one is dropped and named in
  // *dropped), duplicates and entries past the limit are dropped too.
  static InvocationSet from_stored(const std::vector<link::Invocation>& stored,
                                   std::vector<std::string>* dropped);

  // Adds inv (canonical); false if it is already there; too_large when the set is full.
  Result<bool> enable(const link::Invocation& inv);
  // Removes inv; not_found if absent.
  Result<void> disable(const link::Invocation& inv);
  // Removes inv if present.
  bool remove(const link::Invocation& inv);
  // Removes everything; false if it was empty.
  bool clear();

  const std::vector<link::Invocation>& entries() const { return entries_; }
  bool contains(const link::Invocation& inv) const;

 private:
  std::vector<link::Invocation> entries_;
};

}  // namespace ie::ied
