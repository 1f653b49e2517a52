// build_ptb (ie/ied/icmp_ptb.hpp).
#include "ie/ied/icmp_ptb.hpp"

#include <algorithm>
#include <cstring>

#include "ie/ied/checksum.hpp"
#include "ie/ied/flow_key.hpp"

namespace ie::ied {
namespace {

constexpr std::uint8_t kTtl = 64;

// RFC 792 types that are errors (RFC 1122 3.2.2: never answer an error with an error).
bool is_icmp4_error(std::uint8_t type) {
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

std::size_t build_v4(ConstByteSpan pkt, std::uint32_t mtu, const IpAddr& from, ByteSpan out) {
  if (pkt.size() < 20 || !from.is_v4()) return 0;
  const std::size_t ihl = (pkt[0] & 0x0fu) * 4u;
  const std::size_t total = load_be16(pkt.data() + 2);
  if (ihl < 20 || total < ihl || total > pkt.size()) return 0;
  pkt = pkt.first(total);
  mtu = std::max(mtu, kMinMtuV4);
  if (total <= mtu) return 0;
  const std::uint16_t frag = load_be16(pkt.data() + 6);
  if ((frag & 0x4000) == 0 || (frag & 0x1fff) != 0) return 0;  // no DF, or not the first part
  if (pkt[9] == kProtoIcmp && (total - ihl < 1 || is_icmp4_error(pkt[ihl]))) return 0;
  const auto src = *IpAddr::from_bytes(pkt.subspan(12, 4));
  const auto dst = *IpAddr::from_bytes(pkt.subspan(16, 4));
  if (src.is_unspecified() || src.is_multicast() || src.v4_host_order() == 0xffffffffu) return 0;
  if (dst.is_multicast() || dst.v4_host_order() == 0xffffffffu) return 0;

  constexpr std::size_t kHdr = 20 + 8;
  const std::size_t room = std::min(out.size(), kPtbMaxV4);
  if (room < kHdr + ihl + 8) return 0;
  const std::size_t quote = std::min(total, room - kHdr);
  const std::size_t len = kHdr + quote;
  std::uint8_t* p = out.data();
  std::memset(p, 0, kHdr);
  p[0] = 0x45;
  store_be16(p + 2, static_cast<std::uint16_t>(len));
  p[8] = kTtl;
  p[9] = kProtoIcmp;
  std::memcpy(p + 12, from.bytes().data(), 4);
  std::memcpy(p + 16, src.bytes().data(), 4);
  store_be16(p + 10, checksum_finish(checksum_add(ConstByteSpan(p, 20))));
  std::uint8_t* icmp = p + 20;
  icmp[0] = 3;  // destination unreachable
  icmp[1] = 4;  // fragmentation needed and DF set
  store_be16(icmp + 6, static_cast<std::uint16_t>(std::min<std::uint32_t>(mtu, 0xffff)));
  std::memcpy(icmp + 8, pkt.data(), quote);
  store_be16(icmp + 2, checksum_finish(checksum_add(ConstByteSpan(icmp, 8 + quote))));
  return len;
}

std::size_t build_v6(ConstByteSpan pkt, std::uint32_t mtu, const IpAddr& from, ByteSpan out) {
  if (pkt.size() < 40 || !from.is_v6()) return 0;
  const std::size_t total = 40u + load_be16(pkt.data() + 4);
  if (total > pkt.size()) return 0;
  pkt = pkt.first(total);
  mtu = std::max(mtu, kMinMtuV6);
  if (total <= mtu) return 0;
  const auto upper = walk_ipv6_headers(pkt);
  if (!upper) return 0;
  // ICMPv6 types below 128 are errors (RFC 4443 2.4(e)); a non-first fragment's bytes are not
  // an ICMPv6 header, so only a first fragment is checked.
  if (upper->first_fragment && upper->proto == kProtoIcmpV6 &&
      (upper->offset >= total || pkt[upper->offset] < 128))
    return 0;
  const auto src = *IpAddr::from_bytes(pkt.subspan(8, 16));
  if (src.is_unspecified() || src.is_multicast()) return 0;

  constexpr std::size_t kHdr = 40 + 8;
  const std::size_t room = std::min(out.size(), kPtbMaxV6);
  if (room < kHdr + 40 + 8) return 0;
  const std::size_t quote = std::min(total, room - kHdr);
  const std::size_t len = kHdr + quote;
  std::uint8_t* p = out.data();
  std::memset(p, 0, kHdr);
  p[0] = 0x60;
  store_be16(p + 4, static_cast<std::uint16_t>(8 + quote));
  p[6] = kProtoIcmpV6;
  p[7] = kTtl;
  std::memcpy(p + 8, from.bytes().data(), 16);
  std::memcpy(p + 24, src.bytes().data(), 16);
  std::uint8_t* icmp = p + 40;
  icmp[0] = 2;  // packet too big
  icmp[1] = 0;
  store_be32(icmp + 4, mtu);
  std::memcpy(icmp + 8, pkt.data(), quote);
  const std::uint32_t sum = ipv6_pseudo_sum(ConstByteSpan(p + 8, 16), ConstByteSpan(p + 24, 16),
                                            static_cast<std::uint32_t>(8 + quote), kProtoIcmpV6);
  store_be16(icmp + 2, checksum_finish(checksum_add(ConstByteSpan(icmp, 8 + quote), sum)));
  return len;
}

}  // namespace

std::size_t build_ptb(ConstByteSpan offending_ip_packet, std::uint32_t mtu, const IpAddr& from,
                      ByteSpan out) {
  if (offending_ip_packet.empty()) return 0;
  switch (offending_ip_packet[0] >> 4) {
    case 4:
      return build_v4(offending_ip_packet, mtu, from, out);
    case 6:
      return build_v6(offending_ip_packet, mtu, from, out);
    default:
      return 0;
  }
}

}  // namespace ie::ied
