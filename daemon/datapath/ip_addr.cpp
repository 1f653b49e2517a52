// IpAddr and IpPrefix (ie/ied/ip_addr.hpp).
#include "ie/ied/ip_addr.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace ie::ied {

IpAddr IpAddr::v4(const std::array<std::uint8_t, 4>& b) {
  IpAddr a;
  a.family_ = AF_INET;
  std::memcpy(a.b_.data(), b.data(), 4);
  return a;
}

IpAddr IpAddr::v4(std::uint32_t addr) {
  IpAddr a;
  a.family_ = AF_INET;
  store_be32(a.b_.data(), addr);
  return a;
}

IpAddr IpAddr::v6(const std::array<std::uint8_t, 16>& b) {
  IpAddr a;
  a.family_ = AF_INET6;
  a.b_ = b;
  return a;
}

std::optional<IpAddr> IpAddr::from_bytes(ConstByteSpan b) {
  IpAddr a;
  if (b.size() == 4) {
    a.family_ = AF_INET;
  } else if (b.size() == 16) {
    a.family_ = AF_INET6;
  } else {
    return std::nullopt;
  }
  std::memcpy(a.b_.data(), b.data(), b.size());
  return a;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string; the longest IPv6 text is 45 characters.
  char buf[INET6_ADDRSTRLEN + 1];
  // An embedded NUL would end the text early for inet_pton ("10.0.0.1\0junk"): refuse it.
  if (text.empty() || text.size() >= sizeof buf || text.find('\0') != std::string_view::npos)
    return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddr a;
  if (text.find(':') == std::string_view::npos) {
    a.family_ = AF_INET;
    if (::inet_pton(AF_INET, buf, a.b_.data()) != 1) return std::nullopt;
  } else {
    a.family_ = AF_INET6;
    if (::inet_pton(AF_INET6, buf, a.b_.data()) != 1) return std::nullopt;
  }
  return a;
}

std::optional<IpAddr> IpAddr::from_sockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr) return std::nullopt;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in sin;
    std::memcpy(&sin, sa, sizeof sin);
    return from_bytes(ConstByteSpan(reinterpret_cast<const std::uint8_t*>(&sin.sin_addr), 4));
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, sa, sizeof sin6);
    return from_bytes(ConstByteSpan(reinterpret_cast<const std::uint8_t*>(&sin6.sin6_addr), 16));
  }
  return std::nullopt;
}

bool IpAddr::is_unspecified() const {
  for (std::size_t i = 0; i < size(); ++i)
    if (b_[i] != 0) return false;
  return true;
}

bool IpAddr::is_multicast() const {
  return is_v4() ? (b_[0] & 0xf0) == 0xe0 : b_[0] == 0xff;
}

std::array<std::uint8_t, 16> IpAddr::as_mapped() const {
  if (is_v6()) return b_;
  std::array<std::uint8_t, 16> m{};
  m[10] = 0xff;
  m[11] = 0xff;
  std::memcpy(m.data() + 12, b_.data(), 4);
  return m;
}

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN];
  if (::inet_ntop(family_, b_.data(), buf, sizeof buf) == nullptr) return "?";
  return buf;
}

socklen_t IpAddr::to_sockaddr(std::uint16_t port, sockaddr_storage* ss) const {
  std::memset(ss, 0, sizeof *ss);
  if (is_v4()) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    std::memcpy(&sin.sin_addr, b_.data(), 4);
    std::memcpy(ss, &sin, sizeof sin);
    return sizeof sin;
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  std::memcpy(&sin6.sin6_addr, b_.data(), 16);
  std::memcpy(ss, &sin6, sizeof sin6);
  return sizeof sin6;
}

namespace {

// Clears every bit of b past the first len bits.
void mask_bytes(std::uint8_t* b, std::size_t size, unsigned len) {
  for (std::size_t i = 0; i < size; ++i) {
    const unsigned bit = static_cast<unsigned>(i) * 8;
    if (bit >= len) {
      b[i] = 0;
    } else if (len - bit < 8) {
      b[i] = static_cast<std::uint8_t>(b[i] & (0xff00u >> (len - bit)));
    }
  }
}

}  // namespace

IpPrefix IpPrefix::covering(const IpAddr& addr, unsigned len) {
  const unsigned width = addr.is_v4() ? 32 : 128;
  if (len > width) len = width;
  std::array<std::uint8_t, 16> b{};
  std::memcpy(b.data(), addr.bytes().data(), addr.size());
  mask_bytes(b.data(), addr.size(), len);
  auto masked = IpAddr::from_bytes(ConstByteSpan(b.data(), addr.size()));
  return IpPrefix{*masked, len};
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text, bool clear_host_bits) {
  const auto slash = text.find('/');
  auto addr = IpAddr::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  const unsigned width = addr->is_v4() ? 32 : 128;
  unsigned len = width;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), len);
    if (ec != std::errc{} || end != digits.data() + digits.size() || len > width)
      return std::nullopt;
  }
  const IpPrefix p = covering(*addr, len);
  if (p.addr != *addr && !clear_host_bits) return std::nullopt;  // host bits set
  return p;
}

bool IpPrefix::contains(const IpAddr& a) const {
  if (a.family() != addr.family()) return false;
  return covering(a, len).addr == addr;
}

std::string IpPrefix::str() const {
  return addr.str() + "/" + std::to_string(len);
}

}  // namespace ie::ied
