// IPv4/IPv6 prefixes of the SN configuration (host_prefixes, [[route]]), kept in the
// 128-bit IPv4-mapped form so one comparison serves both families.
#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "ie/sn/config.hpp"

namespace ie::sn {
namespace {

constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool bit_set(const std::array<std::uint8_t, 16>& a, unsigned i) {
  return (a[i / 8] >> (7 - i % 8)) & 1;
}

}  // namespace

Addr16 mapped_v4(std::uint32_t a) {
  Addr16 r{};
  std::memcpy(r.data(), kMappedPrefix, 12);
  r[12] = static_cast<std::uint8_t>(a >> 24);
  r[13] = static_cast<std::uint8_t>(a >> 16);
  r[14] = static_cast<std::uint8_t>(a >> 8);
  r[15] = static_cast<std::uint8_t>(a);
  return r;
}

bool is_mapped_v4(const Addr16& a) {
  return std::memcmp(a.data(), kMappedPrefix, 12) == 0;
}

std::optional<Addr16> parse_addr(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  const std::string s(text);
  in_addr v4{};
  if (s.find(':') == std::string::npos && ::inet_pton(AF_INET, s.c_str(), &v4) == 1)
    return mapped_v4(ntohl(v4.s_addr));
  in6_addr v6{};
  if (::inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    Addr16 r;
    std::memcpy(r.data(), &v6, 16);
    return r;
  }
  return std::nullopt;
}

std::string addr_str(const Addr16& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_mapped_v4(a)) {
    ::inet_ntop(AF_INET, a.data() + 12, buf, sizeof buf);
  } else {
    ::inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
  }
  return buf;
}

bool Prefix::contains(const std::array<std::uint8_t, 16>& a) const {
  const unsigned b = bits > 128 ? 128 : bits;  // a hand-made Prefix may be out of range
  const unsigned whole = b / 8;
  if (std::memcmp(addr.data(), a.data(), whole) != 0) return false;
  const unsigned rest = b % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (addr[whole] & mask) == (a[whole] & mask);
}

bool Prefix::is_v4() const {
  return bits >= 96 && std::memcmp(addr.data(), kMappedPrefix, 12) == 0;
}

Result<Prefix> Prefix::parse(std::string_view text, bool clear_host_bits) {
  auto bad = [&](const char* why) {
    return fail(Errc::parse, "prefix \"" + std::string(text) + "\": " + why);
  };
  if (text.empty() || text.size() > 64) return bad("expected ADDRESS/LENGTH");
  const auto slash = text.find('/');
  const std::string host(text.substr(0, slash));
  Prefix p;
  unsigned max_len = 0;
  bool v4 = false;
  const auto a = parse_addr(host);
  if (!a) return bad("not a numeric IPv4 or IPv6 address");
  // Written as IPv4 (no ':'): lengths count IPv4 bits; "::ffff:a.b.c.d" is an IPv6 prefix.
  if (host.find(':') == std::string::npos) {
    v4 = true;
    max_len = 32;
  } else {
    max_len = 128;
  }
  p.addr = *a;
  unsigned len = max_len;
  if (slash != std::string_view::npos) {
    const std::string_view n = text.substr(slash + 1);
    const char* end = n.data() + n.size();
    const auto [ptr, ec] = std::from_chars(n.data(), end, len);
    // Digits only: from_chars would accept neither a sign nor spaces, but be explicit.
    if (n.empty() || n.size() > 3 || ec != std::errc{} || ptr != end || len > max_len)
      return bad(v4 ? "length must be 0..32" : "length must be 0..128");
  }
  p.bits = v4 ? 96 + len : len;
  for (unsigned i = p.bits; i < 128; ++i) {
    if (!bit_set(p.addr, i)) continue;
    if (!clear_host_bits) return bad("host bits set (the address must be the network's first)");
    p.addr[i / 8] = static_cast<std::uint8_t>(p.addr[i / 8] & ~(0x80u >> (i % 8)));
  }
  return p;
}

std::string Prefix::str() const {
  return addr_str(addr) + "/" + std::to_string(is_v4() ? bits - 96 : bits);
}

}  // namespace ie::sn
