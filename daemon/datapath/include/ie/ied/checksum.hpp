// The Internet checksum (RFC 1071) and the IPv6 upper-layer pseudo-header sum (RFC 8200 8.1):
// for the ICMP messages ied builds, the TCP segments it cuts and coalesces (tcp_offload.cpp:
// every byte forwarded with TUN offloads is summed here), and tests that verify them.
#pragma once

#include <cstdint>

#include "ie/util/bytes.hpp"

namespace ie::ied {

// One's-complement sum of data as 16-bit big-endian words (odd length padded with a zero
// byte), added to `initial`, folded to 16 bits with end-around carries (0 only when `initial`
// and data are all zero). Chain calls to sum several pieces, each of EVEN length except the
// last: checksum_add(b, checksum_add(a, s)) == checksum_add(a ++ b, s) exactly for even |a|
// (after an odd piece the next one's bytes would sit in the wrong half of their words).
// Fast: 32 bytes a step in four independent 64-bit accumulators of 32-bit host-order words
// (byte-order independent up to a final swap, RFC 1071 2(B)); any length and alignment.
std::uint32_t checksum_add(ConstByteSpan data, std::uint32_t initial = 0);
// Folds a sum to 16 bits with end-around carries, not complemented (a verifying sum of a
// message whose stored checksum is right folds to 0xffff).
std::uint16_t checksum_fold(std::uint32_t sum);
// Folds a sum to 16 bits and complements it: the value to store in a checksum field. A
// message whose stored checksum is right folds to 0 when summed whole.
std::uint16_t checksum_finish(std::uint32_t sum);
// Sum of the IPv6 pseudo-header: source, destination, upper-layer length, next header.
std::uint32_t ipv6_pseudo_sum(ConstByteSpan src16, ConstByteSpan dst16, std::uint32_t length,
                              std::uint8_t next_header);

}  // namespace ie::ied
