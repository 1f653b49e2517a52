// The reverse-DNS name of an address, where a host's peer record lives:
// 10.2.0.2 -> "2.0.2.10.in-addr.arpa", 2001:db8::1 -> "1.0.0. ... .8.b.d.0.1.0.0.2.ip6.arpa"
// (RFC 1035 3.5, RFC 3596 2.5; no trailing dot).
#pragma once

#include <string>
#include <string_view>

#include "ie/util/result.hpp"

namespace ie::ied {

Result<std::string> reverse_name(std::string_view address);

}  // namespace ie::ied
