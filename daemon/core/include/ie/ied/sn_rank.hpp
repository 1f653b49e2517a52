// Ranking an IESP's first-hop SN candidates (ARCHITECTURE.md "SN discovery and association":
// probe candidates' RTT, associate with the best). Pure: sn_set.cpp feeds it what discovery
// and the RTT survey know, tests/unit/ied/core/sn_rank_test.cpp checks it.
//
// Candidates fall in tiers: the discovery source's place in discovery.order, then priority
// (SRV priority or [[sn]] priority; lower first). The operator's tiers always win: RTT never
// moves a candidate into another tier. Within a tier, candidates fall in groups of about
// equal RTT, closest group first: the first group is every candidate within the margin
// (max(kRttMarginMs, kRttMarginShare x its RTT)) of the tier's closest, plus those not
// measured yet; the next group starts at the closest of the rest, and so on; candidates whose
// survey got no answer come last. Within a group the order stands: RFC 2782's weighted draw
// for DNS candidates, the listed order for static ones. So SRV weights still spread hosts over
// SNs that are about as close, and two SNs of similar RTT (near or far) do not trade places on
// every wobble of the RTT.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace ie::ied {

inline constexpr double kRttMarginMs = 2.0;
inline constexpr double kRttMarginShare = 0.25;

struct RankInput {
  std::size_t source_rank = 0;   // place of the candidate's source in discovery.order
  std::uint16_t priority = 0;    // lower first
  std::size_t order = 0;         // RFC 2782 / listed order, lower first
  std::optional<double> rtt_ms;  // measured round trip; nullopt: not measured
  bool unreachable = false;      // the last survey went unanswered
};

// Indices into candidates in preference order. use_rtt false: tiers and order only.
std::vector<std::size_t> rank_candidates(std::span<const RankInput> candidates, bool use_rtt);

// The candidates (indices) whose RTT can decide which `slots` of them come first: the members
// of the tiers that hold the first `slots` places by tier and order, except a tier of one.
// Others keep their place whatever their RTT, so they need no survey.
std::vector<std::size_t> rtt_contenders(std::span<const RankInput> candidates, std::size_t slots);

// A direct path to a peer host whose endpoint is not on one of our links is taken only while
// it is measurably closer than the first-hop SN the SN path starts with (the SN path is at
// least that long): its RTT must be below the SN's by a margin of max(kDirectMarginMs,
// kRttMarginShare x the SN's RTT) to start using it, and by half that margin to keep using it
// (`closer_now`: whether it is in use), so an RTT that wobbles around the threshold does not
// move flows back and forth. Either RTT unmeasured: not closer.
inline constexpr double kDirectMarginMs = 1.0;
bool direct_is_closer(std::optional<double> direct_ms, std::optional<double> sn_ms,
                      bool closer_now);

}  // namespace ie::ied
