// RFC 2782 SRV ordering (see rfc2782.hpp).
#include "ie/ied/rfc2782.hpp"

#include <sodium.h>

#include <algorithm>
#include <numeric>

namespace ie::ied {

std::uint32_t system_rand_below(std::uint32_t bound) {
  return bound <= 1 ? 0 : randombytes_uniform(bound);
}

std::vector<std::size_t> rfc2782_order(std::span<const SrvRank> records,
                                       const RandBelow& rand_below) {
  const RandBelow& rnd = rand_below;
  auto pick = [&](std::uint32_t bound) -> std::uint32_t {
    if (bound <= 1) return 0;
    const std::uint32_t v = rnd ? rnd(bound) : system_rand_below(bound);
    return v < bound ? v : bound - 1;  // a broken source must not index out of range
  };

  std::vector<std::size_t> idx(records.size());
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    return records[a].priority < records[b].priority;
  });

  std::vector<std::size_t> out;
  out.reserve(records.size());
  std::vector<std::size_t> group;
  for (std::size_t begin = 0; begin < idx.size();) {
    std::size_t end = begin;
    while (end < idx.size() && records[idx[end]].priority == records[idx[begin]].priority)
      ++end;
    // "all those with weight 0 are placed at the beginning of the list" - in random order
    // (a Fisher-Yates shuffle), so that a set of weight-0 records is spread evenly.
    group.clear();
    for (std::size_t i = begin; i < end; ++i)
      if (records[idx[i]].weight == 0) group.push_back(idx[i]);
    for (std::size_t i = group.size(); i > 1; --i)
      std::swap(group[i - 1], group[pick(static_cast<std::uint32_t>(i))]);
    for (std::size_t i = begin; i < end; ++i)
      if (records[idx[i]].weight != 0) group.push_back(idx[i]);

    // Repeatedly: a random number in [0, total]; take the first record whose running sum
    // reaches it. A weight-0 record at the front is taken only when the number is 0.
    while (!group.empty()) {
      std::uint64_t total = 0;
      for (std::size_t i : group)
        total += records[i].weight;
      // total <= 65535 * 65536 records; clamp to the random source's range regardless.
      const auto bound = static_cast<std::uint32_t>(std::min<std::uint64_t>(total + 1, UINT32_MAX));
      const std::uint64_t r = pick(bound);
      std::uint64_t sum = 0;
      std::size_t chosen = group.size() - 1;
      for (std::size_t i = 0; i < group.size(); ++i) {
        sum += records[group[i]].weight;
        if (sum >= r) {
          chosen = i;
          break;
        }
      }
      out.push_back(group[chosen]);
      group.erase(group.begin() + static_cast<std::ptrdiff_t>(chosen));
    }
    begin = end;
  }
  return out;
}

std::vector<std::size_t> rfc2782_order(std::span<const SnCandidate> candidates,
                                       const RandBelow& rand_below) {
  std::vector<SrvRank> ranks;
  ranks.reserve(candidates.size());
  for (const auto& c : candidates)
    ranks.push_back(SrvRank{c.priority, c.weight});
  return rfc2782_order(ranks, rand_below);
}

}  // namespace ie::ied
