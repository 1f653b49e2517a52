// IpAddr and IpPrefix: small value types for an IPv4 or IPv6 address and a prefix, as ied's
// datapath, routes and flow table use them. Trivially copyable, no allocation except str().
// (sn_reference keeps its own Addr16, IPv4-mapped; it could move onto these.)
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ie/util/bytes.hpp"

namespace ie::ied {

class IpAddr {
 public:
  // 0.0.0.0.
  constexpr IpAddr() = default;

  static IpAddr v4(const std::array<std::uint8_t, 4>& b);
  // addr in host byte order: IpAddr::v4(0x0a000001) is 10.0.0.1.
  static IpAddr v4(std::uint32_t addr);
  static IpAddr v6(const std::array<std::uint8_t, 16>& b);
  // 4 bytes: IPv4, 16 bytes: IPv6 (network order, as in a packet header); nullopt otherwise.
  static std::optional<IpAddr> from_bytes(ConstByteSpan b);
  // Numeric text only ("10.0.0.1", "fd00::1", "::ffff:10.0.0.1" stays IPv6); nullopt otherwise.
  static std::optional<IpAddr> parse(std::string_view text);
  // AF_INET/AF_INET6 sockaddr; nullopt for another family or a short length.
  static std::optional<IpAddr> from_sockaddr(const sockaddr* sa, socklen_t len);

  bool is_v4() const { return family_ == AF_INET; }
  bool is_v6() const { return family_ == AF_INET6; }
  int family() const { return family_; }  // AF_INET or AF_INET6
  // 4 or 16 bytes, network order.
  ConstByteSpan bytes() const { return ConstByteSpan(b_.data(), is_v4() ? 4 : 16); }
  std::size_t size() const { return is_v4() ? 4 : 16; }
  std::uint32_t v4_host_order() const { return load_be32(b_.data()); }  // IPv4 only
  bool is_unspecified() const;
  bool is_multicast() const;
  // IPv4 as ::ffff:a.b.c.d, IPv6 unchanged (the SN's Addr16 form).
  std::array<std::uint8_t, 16> as_mapped() const;

  // "10.0.0.1" / "fd00::1".
  std::string str() const;
  // Fills *ss and returns its length.
  socklen_t to_sockaddr(std::uint16_t port, sockaddr_storage* ss) const;

  // IPv4 orders before IPv6; then by bytes.
  auto operator<=>(const IpAddr&) const = default;
  bool operator==(const IpAddr&) const = default;

 private:
  // family_ first so the defaulted ordering compares it first. Unused bytes stay zero so the
  // defaulted comparisons are exact.
  std::uint8_t family_ = AF_INET;
  std::array<std::uint8_t, 16> b_{};
};

// An address and prefix length. parse() requires zero host bits (a route destination);
// an interface address with host bits ("10.0.0.1/24") is an IpAddr plus a length instead.
struct IpPrefix {
  IpAddr addr;
  unsigned len = 0;  // 0..32 or 0..128

  // "10.2.0.0/16", "fd00::/8", "10.0.0.1" (/32), "fd00::1" (/128). Errc-free: nullopt on
  // malformed text, a length past the family's width, or non-zero host bits (unless
  // clear_host_bits: then "10.2.0.9/16" is 10.2.0.0/16).
  static std::optional<IpPrefix> parse(std::string_view text, bool clear_host_bits = false);
  // The prefix covering addr with the host bits cleared.
  static IpPrefix covering(const IpAddr& addr, unsigned len);
  bool contains(const IpAddr& a) const;
  std::string str() const;  // "10.2.0.0/16"
  bool operator==(const IpPrefix&) const = default;
};

}  // namespace ie::ied
