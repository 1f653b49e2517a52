// The Internet checksum (RFC 1071) and the IPv6 upper-layer pseudo-header sum (RFC 8200 8.1),
// for the ICMP messages ied builds and for tests that verify them.
#pragma once

#include <cstdint>

#include "ie/util/bytes.hpp"

namespace ie::ied {

// One's-complement sum of data as 16-bit big-endian words (odd length padded with zero),
// added to `initial`, not folded. Chain calls to sum several pieces (each even-length except
// the last).
std::uint32_t checksum_add(ConstByteSpan data, std::uint32_t initial = 0);
// Folds a sum to 16 bits and complements it: the value to store in a checksum field. A
// message whose stored checksum is right folds to 0 when summed whole.
std::uint16_t checksum_finish(std::uint32_t sum);
// Sum of the IPv6 pseudo-header: source, destination, upper-layer length, next header.
std::uint32_t ipv6_pseudo_sum(ConstByteSpan src16, ConstByteSpan dst16, std::uint32_t length,
                              std::uint8_t next_header);

}  // namespace ie::ied
