// Reverse-DNS names of IPv4 and IPv6 addresses (see reverse_name.hpp).
#include "ie/ied/reverse_name.hpp"

#include <arpa/inet.h>

#include <cstdint>

namespace ie::ied {

Result<std::string> reverse_name(std::string_view address) {
  const std::string a(address.substr(0, INET6_ADDRSTRLEN));
  if (a.size() != address.size())
    return fail(Errc::invalid_argument, "not an IP address: too long");
  std::uint8_t b[16];
  if (inet_pton(AF_INET, a.c_str(), b) == 1) {
    std::string out;
    for (int i = 3; i >= 0; --i)
      out += std::to_string(b[i]) + ".";
    return out + "in-addr.arpa";
  }
  if (inet_pton(AF_INET6, a.c_str(), b) == 1) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(64 + 8);
    for (int i = 15; i >= 0; --i) {
      out += kHex[b[i] & 0x0F];
      out += '.';
      out += kHex[b[i] >> 4];
      out += '.';
    }
    return out + "ip6.arpa";
  }
  return fail(Errc::invalid_argument, "not an IP address: \"" + a + "\"");
}

}  // namespace ie::ied
