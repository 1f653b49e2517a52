// A peer's UDP endpoint (IPv4 or IPv6 address and port) in 28 bytes, the size of a
// sockaddr_in6, for state kept per pipe: a sockaddr_storage is 128 bytes, and an SN with
// 100,000 pipes keeps two copies per pipe (the control plane's and each worker's).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "ie/io/udp.hpp"

namespace ie::sn {

class Endpoint {
 public:
  Endpoint() { std::memset(&u_, 0, sizeof u_); }

  // An AF_INET or AF_INET6 address of at least its family's size; anything else (another
  // family, a short length) gives an empty Endpoint.
  static Endpoint from(const sockaddr_storage& s, socklen_t len) {
    Endpoint e;
    if (s.ss_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
      std::memcpy(&e.u_.in, &s, sizeof(sockaddr_in));
    } else if (s.ss_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
      std::memcpy(&e.u_.in6, &s, sizeof(sockaddr_in6));
    }
    return e;
  }

  bool empty() const { return len() == 0; }
  sa_family_t family() const { return u_.sa.sa_family; }
  // sizeof(sockaddr_in) or sizeof(sockaddr_in6); 0 when empty.
  socklen_t len() const {
    if (u_.sa.sa_family == AF_INET) return sizeof(sockaddr_in);
    if (u_.sa.sa_family == AF_INET6) return sizeof(sockaddr_in6);
    return 0;
  }
  // Writes the address into out (only its first len() bytes are meaningful; nothing beyond
  // sizeof(sockaddr_in6) is written) and returns len().
  socklen_t to(sockaddr_storage* out) const {
    std::memcpy(out, &u_, sizeof u_);
    return len();
  }
  sockaddr_storage storage() const {
    sockaddr_storage s{};
    to(&s);
    return s;
  }
  std::string str() const { return io::endpoint_str(storage()); }  // "?" when empty

  bool operator==(const Endpoint& o) const { return std::memcmp(&u_, &o.u_, sizeof u_) == 0; }

 private:
  union {
    sockaddr sa;
    sockaddr_in in;
    sockaddr_in6 in6;
  } u_;
};
static_assert(sizeof(Endpoint) == sizeof(sockaddr_in6));

}  // namespace ie::sn
