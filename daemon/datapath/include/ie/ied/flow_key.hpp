// FlowKey: the 5-tuple ied classifies a packet read from the TUN by, and parse_flow(), which
// extracts it from a raw IPv4/IPv6 packet. Parsing never trusts a length field: every read is
// bounds-checked against the packet, and a malformed packet yields nullopt (the caller counts
// the drop). No allocation.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "ie/ied/ip_addr.hpp"
#include "ie/util/bytes.hpp"

namespace ie::ied {

// Upper-layer protocol numbers the parser gives meaning to.
inline constexpr std::uint8_t kProtoIcmp = 1;
inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;
inline constexpr std::uint8_t kProtoIcmpV6 = 58;
inline constexpr std::uint8_t kProtoNoNext = 59;  // IPv6 "no next header"
inline constexpr std::uint8_t kProtoSctp = 132;
inline constexpr std::uint8_t kProtoUdpLite = 136;

// Bounds the IPv6 extension-header walk (besides the packet length): real packets carry a
// handful at most, and a chain longer than this is treated as malformed.
inline constexpr int kMaxIpv6ExtHeaders = 8;

// A flat, padding-free key: equal flows have equal bytes, so it hashes and compares as bytes.
struct FlowKey {
  std::array<std::uint8_t, 16> src{};  // IPv4 in the first 4 bytes, the rest zero
  std::array<std::uint8_t, 16> dst{};
  // TCP/UDP/SCTP/UDP-Lite: the ports. ICMP/ICMPv6 echo request/reply: src_port is the echo
  // identifier and dst_port 0 (so a request and its reply share a key once reversed). Anything
  // else, and non-first fragments: 0/0.
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint8_t proto = 0;     // the upper-layer protocol after any IPv6 extension headers
  std::uint8_t version = 0;   // 4 or 6
  std::uint8_t fragment = 0;  // 1 for a non-first fragment (ports unknown)
  std::uint8_t pad = 0;       // always 0

  IpAddr src_addr() const;
  IpAddr dst_addr() const;
  // The key of the opposite direction (addresses and ports swapped; echo ids stay put).
  FlowKey reversed() const;
  bool operator==(const FlowKey&) const = default;
};
static_assert(sizeof(FlowKey) == 40);
static_assert(std::is_trivially_copyable_v<FlowKey>);
static_assert(std::has_unique_object_representations_v<FlowKey>);

// The flow of one IPv4 or IPv6 packet (the bytes the TUN returned). nullopt if malformed:
// bad version, header or total length past the buffer, options or an extension-header chain
// that overruns, a first fragment too short for the ports. Bytes after the IP total length
// are ignored.
std::optional<FlowKey> parse_flow(ConstByteSpan ip);

// A keyed hash of the key (the seed makes bucket collisions unpredictable to a sender).
std::uint64_t flow_hash(const FlowKey& k, std::uint64_t seed);

// Where an IPv6 packet's upper-layer header starts: offset and protocol after walking
// hop-by-hop/routing/destination-options/fragment headers. nullopt if the chain overruns the
// packet or kMaxIpv6ExtHeaders. first_fragment is false for a fragment with offset != 0.
struct Ipv6Upper {
  std::size_t offset = 0;
  std::uint8_t proto = 0;
  bool first_fragment = true;
};
std::optional<Ipv6Upper> walk_ipv6_headers(ConstByteSpan ip);

}  // namespace ie::ied
