// parse_flow and friends (ie/ied/flow_key.hpp).
#include "ie/ied/flow_key.hpp"

#include <cstring>

namespace ie::ied {
namespace {

bool has_ports(std::uint8_t proto) {
  return proto == kProtoTcp || proto == kProtoUdp || proto == kProtoSctp || proto == kProtoUdpLite;
}

// Fills the ports of k from the upper-layer header at l4 (which is the packet end at most).
// false if the header is too short for what the protocol needs.
bool fill_ports(FlowKey* k, ConstByteSpan l4) {
  if (has_ports(k->proto)) {
    if (l4.size() < 4) return false;
    k->src_port = load_be16(l4.data());
    k->dst_port = load_be16(l4.data() + 2);
    return true;
  }
  const bool icmp = k->proto == kProtoIcmp && k->version == 4;
  const bool icmp6 = k->proto == kProtoIcmpV6 && k->version == 6;
  if (icmp || icmp6) {
    if (l4.size() < 8) return false;  // type, code, checksum, identifier, sequence
    const std::uint8_t type = l4[0];
    const bool echo = icmp ? (type == 8 || type == 0) : (type == 128 || type == 129);
    if (echo) k->src_port = load_be16(l4.data() + 4);
  }
  return true;
}

std::optional<FlowKey> parse_v4(ConstByteSpan ip) {
  if (ip.size() < 20) return std::nullopt;
  const std::size_t ihl = (ip[0] & 0x0fu) * 4u;
  const std::size_t total = load_be16(ip.data() + 2);
  if (ihl < 20 || total < ihl || total > ip.size()) return std::nullopt;
  FlowKey k;
  k.version = 4;
  k.proto = ip[9];
  std::memcpy(k.src.data(), ip.data() + 12, 4);
  std::memcpy(k.dst.data(), ip.data() + 16, 4);
  const std::uint16_t frag_offset = load_be16(ip.data() + 6) & 0x1fff;
  if (frag_offset != 0) {
    k.fragment = 1;
    return k;
  }
  if (!fill_ports(&k, ip.subspan(ihl, total - ihl))) return std::nullopt;
  return k;
}

std::optional<FlowKey> parse_v6(ConstByteSpan ip) {
  if (ip.size() < 40) return std::nullopt;
  const std::size_t total = 40u + load_be16(ip.data() + 4);
  if (total > ip.size()) return std::nullopt;
  ip = ip.first(total);
  const auto upper = walk_ipv6_headers(ip);
  if (!upper) return std::nullopt;
  FlowKey k;
  k.version = 6;
  k.proto = upper->proto;
  std::memcpy(k.src.data(), ip.data() + 8, 16);
  std::memcpy(k.dst.data(), ip.data() + 24, 16);
  if (!upper->first_fragment) {
    k.fragment = 1;
    return k;
  }
  if (!fill_ports(&k, ip.subspan(upper->offset))) return std::nullopt;
  return k;
}

}  // namespace

std::optional<Ipv6Upper> walk_ipv6_headers(ConstByteSpan ip) {
  if (ip.size() < 40 || (ip[0] >> 4) != 6) return std::nullopt;
  Ipv6Upper u;
  u.offset = 40;
  u.proto = ip[6];
  for (int n = 0;; ++n) {
    std::size_t len = 0;
    switch (u.proto) {
      case 0:   // hop-by-hop options
      case 43:  // routing
      case 60:  // destination options
        if (ip.size() - u.offset < 8) return std::nullopt;
        len = (std::size_t{ip[u.offset + 1]} + 1) * 8;
        break;
      case 44: {  // fragment: fixed 8 bytes
        if (ip.size() - u.offset < 8) return std::nullopt;
        len = 8;
        if ((load_be16(ip.data() + u.offset + 2) & 0xfff8) != 0) u.first_fragment = false;
        break;
      }
      default:
        return u;
    }
    if (n >= kMaxIpv6ExtHeaders || len > ip.size() - u.offset) return std::nullopt;
    u.proto = ip[u.offset];
    u.offset += len;
    // The headers after a non-first fragment's fragment header are not the packet's own (they
    // are payload bytes of the original packet), so the walk stops there.
    if (!u.first_fragment) return u;
  }
}

std::optional<FlowKey> parse_flow(ConstByteSpan ip) {
  if (ip.empty()) return std::nullopt;
  switch (ip[0] >> 4) {
    case 4:
      return parse_v4(ip);
    case 6:
      return parse_v6(ip);
    default:
      return std::nullopt;
  }
}

IpAddr FlowKey::src_addr() const {
  return *IpAddr::from_bytes(ConstByteSpan(src.data(), version == 4 ? 4 : 16));
}

IpAddr FlowKey::dst_addr() const {
  return *IpAddr::from_bytes(ConstByteSpan(dst.data(), version == 4 ? 4 : 16));
}

FlowKey FlowKey::reversed() const {
  FlowKey r = *this;
  r.src = dst;
  r.dst = src;
  if (has_ports(proto)) {
    r.src_port = dst_port;
    r.dst_port = src_port;
  }
  return r;
}

namespace {

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  // One 64x64->128 multiply folded (the wyhash/rapidhash mixing step).
  const unsigned __int128 m = static_cast<unsigned __int128>(a) * b;
  return static_cast<std::uint64_t>(m) ^ static_cast<std::uint64_t>(m >> 64);
}

}  // namespace

std::uint64_t flow_hash(const FlowKey& k, std::uint64_t seed) {
  static_assert(sizeof(FlowKey) % 8 == 0);
  std::uint64_t w[sizeof(FlowKey) / 8];
  std::memcpy(w, &k, sizeof w);
  constexpr std::uint64_t kP0 = 0xa0761d6478bd642full, kP1 = 0xe7037ed1a0b428dbull,
                          kP2 = 0x8ebc6af09c88c6e3ull;
  std::uint64_t h = seed ^ kP0;
  for (std::size_t i = 0; i < std::size(w); ++i)
    h = mix(w[i] ^ kP1, h ^ kP2 ^ i);
  return mix(h, kP1 ^ sizeof(FlowKey));
}

}  // namespace ie::ied
