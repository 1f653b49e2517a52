// The IP headers the end-to-end layer reads and writes: parsing an IPv4/IPv6 packet's fixed
// header (bounds-checked, never trusting a length field beyond the buffer) and writing the
// header of an end-to-end packet, protocol kE2eProto, from one host's address to another's.
//
//   IPv4 (20 B, written without options):      IPv6 (40 B, written without extension headers):
//   0 ver/ihl  1 tos  2 total length           0 ver/class/flow label (4 B)  4 payload length
//   4 id (0)   6 flags (DF) / fragment offset  6 next header  7 hop limit
//   8 ttl (64) 9 protocol  10 header checksum  8 source (16 B)  24 destination (16 B)
//   12 source  16 destination
#pragma once

#include <cstddef>
#include <cstdint>

#include "ie/ied/ip_addr.hpp"
#include "ie/util/bytes.hpp"
#include "ie/wire/drop_reason.hpp"

namespace ie::ied {

// Protocol number of end-to-end packets: 253, RFC 3692's experimental value (the same number
// PSP uses as next header for ILP, wire::kIlpNextHeader; nothing else on our hosts uses it).
inline constexpr std::uint8_t kE2eProto = 253;
inline constexpr std::size_t kIpv4HeaderLen = 20;
inline constexpr std::size_t kIpv6HeaderLen = 40;
inline constexpr std::uint8_t kE2eTtl = 64;
inline constexpr std::size_t kMaxIpPacket = 65535;

constexpr std::size_t ip_header_len(bool ipv6) {
  return ipv6 ? kIpv6HeaderLen : kIpv4HeaderLen;
}

struct IpView {
  IpAddr src;
  IpAddr dst;
  std::uint8_t protocol = 0;  // IPv4 protocol or IPv6 next header
  bool fragment = false;      // IPv4: MF set or a non-zero fragment offset
  ConstByteSpan packet;       // the whole packet as its length field says (trailing bytes cut)
  ConstByteSpan payload;      // after the fixed header (and IPv4 options)
};

// Parses the header of an IPv4 or IPv6 packet: version, header length, total/payload length
// within the buffer; for IPv4 also the header checksum when check_v4_checksum. Returns none,
// truncated (shorter than its header or its length field) or bad_inner_packet.
wire::DropReason parse_ip(ConstByteSpan pkt, bool check_v4_checksum, IpView* out);

// Writes the header of an end-to-end packet carrying payload_len bytes from src to dst (same
// family) into out; returns the header length, or 0 if out is too small, the families differ
// or the packet would exceed kMaxIpPacket.
std::size_t write_e2e_header(const IpAddr& src, const IpAddr& dst, std::size_t payload_len,
                             ByteSpan out);

// The Internet checksum (RFC 1071) of an IPv4 header (its checksum field included as is:
// a valid header sums to 0).
std::uint16_t ipv4_header_checksum(ConstByteSpan header);

}  // namespace ie::ied
