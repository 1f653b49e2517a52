#include "ie/ied/sn_rank.hpp"

#include <algorithm>
#include <numeric>

namespace ie::ied {

namespace {

bool same_tier(const RankInput& a, const RankInput& b) {
  return a.source_rank == b.source_rank && a.priority == b.priority;
}

// Tier, then order: the operator's preference alone.
std::vector<std::size_t> by_tier(std::span<const RankInput> c) {
  std::vector<std::size_t> idx(c.size());
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    if (c[a].source_rank != c[b].source_rank) return c[a].source_rank < c[b].source_rank;
    if (c[a].priority != c[b].priority) return c[a].priority < c[b].priority;
    return c[a].order < c[b].order;
  });
  return idx;
}

}  // namespace

std::vector<std::size_t> rank_candidates(std::span<const RankInput> c, bool use_rtt) {
  std::vector<std::size_t> idx = by_tier(c);
  if (!use_rtt) return idx;
  for (std::size_t begin = 0; begin < idx.size();) {
    std::size_t end = begin + 1;
    while (end < idx.size() && same_tier(c[idx[begin]], c[idx[end]]))
      ++end;
    // Groups of about equal RTT, closest first: the first holds every measured candidate
    // within the margin of the tier's closest (and the unmeasured ones), the next starts at
    // the closest of the rest, and so on; unreachable ones last. Within a group the order
    // stands, so neither near nor far SNs of similar RTT trade places on every wobble.
    std::vector<std::pair<double, std::size_t>> measured;  // (rtt, position in the tier)
    for (std::size_t k = begin; k < end; ++k) {
      const RankInput& r = c[idx[k]];
      if (!r.unreachable && r.rtt_ms) measured.emplace_back(*r.rtt_ms, k);
    }
    std::sort(measured.begin(), measured.end());
    std::vector<std::size_t> group(end - begin, 0);
    std::size_t g = 0;
    double base = measured.empty() ? 0.0 : measured.front().first;
    for (const auto& [rtt, k] : measured) {
      if (rtt > base + std::max(kRttMarginMs, kRttMarginShare * base)) {
        ++g;
        base = rtt;
      }
      group[k - begin] = g;
    }
    for (std::size_t k = begin; k < end; ++k)
      if (c[idx[k]].unreachable) group[k - begin] = g + 1;
    std::vector<std::size_t> pos(end - begin);
    std::iota(pos.begin(), pos.end(), std::size_t{0});
    std::stable_sort(pos.begin(), pos.end(),
                     [&](std::size_t a, std::size_t b) { return group[a] < group[b]; });
    std::vector<std::size_t> tier(end - begin);
    for (std::size_t k = 0; k < pos.size(); ++k)
      tier[k] = idx[begin + pos[k]];
    std::copy(tier.begin(), tier.end(), idx.begin() + static_cast<std::ptrdiff_t>(begin));
    begin = end;
  }
  return idx;
}

std::vector<std::size_t> rtt_contenders(std::span<const RankInput> c, std::size_t slots) {
  const std::vector<std::size_t> idx = by_tier(c);
  std::vector<std::size_t> out;
  std::size_t places = 0;
  for (std::size_t begin = 0; begin < idx.size() && places < slots;) {
    std::size_t end = begin + 1;
    while (end < idx.size() && same_tier(c[idx[begin]], c[idx[end]]))
      ++end;
    if (end - begin > 1)  // a tier of one keeps its place whatever its RTT
      out.insert(out.end(), idx.begin() + static_cast<std::ptrdiff_t>(begin),
                 idx.begin() + static_cast<std::ptrdiff_t>(end));
    places += end - begin;
    begin = end;
  }
  return out;
}

bool direct_is_closer(std::optional<double> direct_ms, std::optional<double> sn_ms,
                      bool closer_now) {
  if (!direct_ms || !sn_ms) return false;
  const double margin = std::max(kDirectMarginMs, kRttMarginShare * *sn_ms);
  return *direct_ms < *sn_ms - (closer_now ? margin / 2 : margin);
}

}  // namespace ie::ied
