// RFC 2782 ordering of SRV records: by priority ascending, and within one priority a
// weighted random order (records with weight 0 first in random order, then repeated picks
// with probability weight / remaining total, where a weight-0 record keeps a small chance).
// c-ares does not sort SRV answers; this does, with the random source injected so tests can
// check the distribution.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "ie/ied/sn_candidate.hpp"

namespace ie::ied {

struct SrvRank {
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
};

// Returns a uniformly random integer in [0, bound); bound >= 1.
using RandBelow = std::function<std::uint32_t(std::uint32_t bound)>;

// A cryptographically random RandBelow (libsodium randombytes_uniform).
std::uint32_t system_rand_below(std::uint32_t bound);

// The indices of `records` in RFC 2782 order (a permutation of 0..size-1).
std::vector<std::size_t> rfc2782_order(std::span<const SrvRank> records,
                                       const RandBelow& rand_below);
std::vector<std::size_t> rfc2782_order(std::span<const SnCandidate> candidates,
                                       const RandBelow& rand_below);

}  // namespace ie::ied
