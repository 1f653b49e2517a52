// DNS-learned peer records with their TTLs (peer_records.hpp).
#include "ie/ied/peer_records.hpp"

#include <algorithm>
#include <utility>

namespace ie::ied {

const PeerRoute* PeerRecords::find(const IpAddr& addr, Clock::time_point now) const {
  const auto it = records_.find(addr);
  if (it == records_.end() || expired(it->second, now)) return nullptr;
  return &it->second;
}

void PeerRecords::put(const IpAddr& addr, PeerRoute route, Clock::time_point now) {
  if (const auto it = records_.find(addr); it != records_.end()) {
    route.connection_id = it->second.connection_id;
    it->second = std::move(route);
    return;
  }
  if (records_.size() >= kMaxRecords && expire(now) == 0) {
    // Full of live records: the one expiring soonest makes room.
    const auto soonest = std::min_element(records_.begin(), records_.end(), [](auto& a, auto& b) {
      const auto never = Clock::time_point::max();
      return a.second.expires.value_or(never) < b.second.expires.value_or(never);
    });
    records_.erase(soonest);
  }
  records_.emplace(addr, std::move(route));
}

std::size_t PeerRecords::expire(Clock::time_point now) {
  return std::erase_if(records_, [&](const auto& e) { return expired(e.second, now); });
}

}  // namespace ie::ied
