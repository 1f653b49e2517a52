// ICMP "packet too big" for packets ied cannot carry: when a packet read from the TUN is
// larger than the path allows once ILP headers are added, ied writes one of these back into
// the TUN so the sending socket learns the smaller MTU (path MTU discovery, RFC 1191 / 8201),
// exactly as if a router had sent it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ie/ied/ip_addr.hpp"
#include "ie/util/bytes.hpp"

namespace ie::ied {

// Smallest MTUs the message may carry (RFC 791's 68 for IPv4, RFC 8200's 1280 for IPv6);
// smaller values are raised to these.
inline constexpr std::uint32_t kMinMtuV4 = 68;
inline constexpr std::uint32_t kMinMtuV6 = 1280;
// Largest ICMP error we build: RFC 1812 4.3.2.3 (576) for IPv4, RFC 4443 2.4(c) (1280) for
// IPv6; as much of the offending packet is quoted as fits.
inline constexpr std::size_t kPtbMaxV4 = 576;
inline constexpr std::size_t kPtbMaxV6 = 1280;

// Writes into out the complete IP packet to inject into the TUN: for IPv4, ICMP type 3 code 4
// "fragmentation needed" with the next-hop MTU (RFC 1191); for IPv6, ICMPv6 type 2 "packet
// too big" (RFC 4443). Source `from` (same family as the packet; e.g. the TUN peer address),
// destination the offending packet's source; checksums filled. Returns the length written, or
// 0 when no PTB must (or can) be sent: a malformed packet; a packet no larger than mtu; IPv4
// without DF or a fragment with offset != 0; an ICMP(v6) error message; an unspecified,
// multicast or broadcast source; a multicast or broadcast IPv4 destination; `from` of the
// other family; out too small for the headers plus 8 bytes of the quoted packet.
std::size_t build_ptb(ConstByteSpan offending_ip_packet, std::uint32_t mtu, const IpAddr& from,
                      ByteSpan out);

}  // namespace ie::ied
