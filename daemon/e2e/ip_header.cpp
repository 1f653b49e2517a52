// Parsing and writing the IP headers of end-to-end packets (ip_header.hpp).
#include "ie/ied/ip_header.hpp"

#include <cstring>

namespace ie::ied {

std::uint16_t ipv4_header_checksum(ConstByteSpan header) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < header.size(); i += 2)
    sum += load_be16(header.data() + i);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

wire::DropReason parse_ip(ConstByteSpan pkt, bool check_v4_checksum, IpView* out) {
  if (pkt.empty()) return wire::DropReason::truncated;
  const std::uint8_t version = pkt[0] >> 4;
  if (version == 4) {
    if (pkt.size() < kIpv4HeaderLen) return wire::DropReason::truncated;
    const std::size_t ihl = std::size_t{pkt[0] & 0x0fu} * 4;
    const std::size_t total = load_be16(pkt.data() + 2);
    if (ihl < kIpv4HeaderLen || total < ihl) return wire::DropReason::bad_inner_packet;
    if (total > pkt.size()) return wire::DropReason::truncated;
    if (check_v4_checksum && ipv4_header_checksum(pkt.first(ihl)) != 0)
      return wire::DropReason::bad_inner_packet;
    const std::uint16_t frag = load_be16(pkt.data() + 6);
    out->fragment = (frag & 0x2000) != 0 || (frag & 0x1fff) != 0;
    out->protocol = pkt[9];
    out->src = *IpAddr::from_bytes(pkt.subspan(12, 4));
    out->dst = *IpAddr::from_bytes(pkt.subspan(16, 4));
    out->packet = pkt.first(total);
    out->payload = pkt.subspan(ihl, total - ihl);
    return wire::DropReason::none;
  }
  if (version == 6) {
    if (pkt.size() < kIpv6HeaderLen) return wire::DropReason::truncated;
    const std::size_t payload = load_be16(pkt.data() + 4);
    // A payload length of 0 with a hop-by-hop jumbogram option is not supported (never on
    // a TUN or an SN path with 16-bit ILP lengths).
    if (kIpv6HeaderLen + payload > pkt.size()) return wire::DropReason::truncated;
    out->fragment = false;
    out->protocol = pkt[6];
    out->src = *IpAddr::from_bytes(pkt.subspan(8, 16));
    out->dst = *IpAddr::from_bytes(pkt.subspan(24, 16));
    out->packet = pkt.first(kIpv6HeaderLen + payload);
    out->payload = pkt.subspan(kIpv6HeaderLen, payload);
    return wire::DropReason::none;
  }
  return wire::DropReason::bad_inner_packet;
}

std::size_t write_e2e_header(const IpAddr& src, const IpAddr& dst, std::size_t payload_len,
                             ByteSpan out) {
  if (src.size() != dst.size() || (!src.is_v4() && !src.is_v6())) return 0;
  const std::size_t hlen = ip_header_len(src.is_v6());
  if (out.size() < hlen || hlen + payload_len > kMaxIpPacket) return 0;
  std::uint8_t* h = out.data();
  std::memset(h, 0, hlen);
  if (src.is_v4()) {
    h[0] = 0x45;
    store_be16(h + 2, static_cast<std::uint16_t>(hlen + payload_len));
    store_be16(h + 6, 0x4000);  // DF, id 0 (RFC 6864: atomic datagrams need no id)
    h[8] = kE2eTtl;
    h[9] = kE2eProto;
    std::memcpy(h + 12, src.bytes().data(), 4);
    std::memcpy(h + 16, dst.bytes().data(), 4);
    store_be16(h + 10, ipv4_header_checksum(ConstByteSpan(h, hlen)));
  } else {
    h[0] = 0x60;
    store_be16(h + 4, static_cast<std::uint16_t>(payload_len));
    h[6] = kE2eProto;
    h[7] = kE2eTtl;
    std::memcpy(h + 8, src.bytes().data(), 16);
    std::memcpy(h + 24, dst.bytes().data(), 16);
  }
  return hlen;
}

}  // namespace ie::ied
