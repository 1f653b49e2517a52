// Decision cache (ie/sn/decision_cache.hpp).
#include "ie/sn/decision_cache.hpp"

#include <algorithm>
#include <cstring>

namespace ie::sn {
namespace {

std::uint64_t mix(std::uint64_t h) {  // splitmix64 finaliser
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

std::uint64_t hash_key(const FlowKey& k) {
  std::uint64_t a, b;
  std::memcpy(&a, k.src.data(), 8);
  std::memcpy(&b, k.src.data() + 8, 8);
  return mix(a ^ mix(b ^ mix(k.connection_id ^ (std::uint64_t{k.service_id} << 48))));
}

}  // namespace

FlowKey FlowKey::ipv4(std::uint32_t addr, std::uint16_t service, std::uint64_t conn) {
  FlowKey k;
  k.src[10] = k.src[11] = 0xff;
  k.src[12] = static_cast<std::uint8_t>(addr >> 24);
  k.src[13] = static_cast<std::uint8_t>(addr >> 16);
  k.src[14] = static_cast<std::uint8_t>(addr >> 8);
  k.src[15] = static_cast<std::uint8_t>(addr);
  k.service_id = service;
  k.connection_id = conn;
  return k;
}

Decision Decision::forward_to(std::span<const NextHop> hops) {
  Decision d;
  d.action = Action::forward;
  d.hop_count = static_cast<std::uint8_t>(std::min(hops.size(), kMaxNextHops));
  for (std::size_t i = 0; i < d.hop_count; ++i)
    d.hops[i] = hops[i];
  return d;
}

DecisionCache::DecisionCache(std::size_t capacity) : entries_(capacity == 0 ? 1 : capacity) {
  // 1M entries in 96 MB plus a 16 MB index (docs/performance.md's 1M-entry figures).
  static_assert(sizeof(Entry) == 96);
  std::size_t slots = 2;
  while (slots < 2 * entries_.size())
    slots *= 2;
  index_.assign(slots, kEmpty);
  mask_ = slots - 1;
  free_.reserve(entries_.size());
  for (std::size_t i = entries_.size(); i-- > 0;)
    free_.push_back(static_cast<std::uint32_t>(i));
}

std::size_t DecisionCache::slot_of(const FlowKey& key) const {
  return hash_key(key) & mask_;
}

std::optional<std::size_t> DecisionCache::find_slot(const FlowKey& key) const {
  for (std::size_t s = slot_of(key);; s = (s + 1) & mask_) {
    const std::uint32_t e = index_[s];
    if (e == kEmpty) return std::nullopt;
    if (entries_[e].key == key) return s;
  }
}

const Decision* DecisionCache::lookup(const FlowKey& key, std::uint64_t now) {
  const auto s = find_slot(key);
  if (!s) {
    ++stats_.misses;
    return nullptr;
  }
  Entry& e = entries_[index_[*s]];
  ++e.hits;
  e.last_use = now;
  e.referenced = true;
  ++stats_.hits;
  return &e.decision;
}

// Removes the index slot and shifts later members of the probe run back (no tombstones).
void DecisionCache::erase_slot(std::size_t slot) {
  const std::uint32_t e = index_[slot];
  entries_[e].used = false;
  free_.push_back(e);
  --size_;
  std::size_t hole = slot;
  for (std::size_t s = (slot + 1) & mask_;; s = (s + 1) & mask_) {
    const std::uint32_t cur = index_[s];
    if (cur == kEmpty) break;
    const std::size_t home = slot_of(entries_[cur].key);
    // Move cur into the hole if its home is not in (hole, s] (cyclically).
    const bool stays = hole <= s ? (home > hole && home <= s) : (home > hole || home <= s);
    if (!stays) {
      index_[hole] = cur;
      hole = s;
    }
  }
  index_[hole] = kEmpty;
}

std::uint32_t DecisionCache::take_entry() {
  if (!free_.empty()) {
    const std::uint32_t e = free_.back();
    free_.pop_back();
    return e;
  }
  // CLOCK: sweep, clearing reference bits, until an unreferenced entry turns up (at most
  // two passes).
  for (;;) {
    Entry& e = entries_[hand_];
    const std::size_t at = hand_;
    hand_ = (hand_ + 1) % entries_.size();
    if (e.referenced) {
      e.referenced = false;
      continue;
    }
    const auto s = find_slot(e.key);
    erase_slot(*s);
    ++stats_.evictions;
    free_.pop_back();  // erase_slot returned it; take it straight back
    return static_cast<std::uint32_t>(at);
  }
}

bool DecisionCache::insert(const FlowKey& key, const Decision& d, std::uint64_t now) {
  if (d.action == Action::forward && (d.hop_count == 0 || d.hop_count > kMaxNextHops)) return false;
  ++stats_.inserts;
  if (const auto s = find_slot(key)) {
    Entry& e = entries_[index_[*s]];
    e.decision = d;
    e.last_use = now;
    return true;
  }
  const std::uint32_t idx = take_entry();
  Entry& e = entries_[idx];
  e.key = key;
  e.decision = d;
  e.hits = 0;
  e.last_use = now;
  e.used = true;
  e.referenced = true;  // a new entry survives the next sweep
  std::size_t s = slot_of(key);
  while (index_[s] != kEmpty)
    s = (s + 1) & mask_;
  index_[s] = idx;
  ++size_;
  return true;
}

bool DecisionCache::remove(const FlowKey& key) {
  const auto s = find_slot(key);
  if (!s) return false;
  erase_slot(*s);
  ++stats_.removes;
  return true;
}

void DecisionCache::remove_stale(const FlowKey& key) {
  const auto s = find_slot(key);
  if (!s) return;
  erase_slot(*s);
  ++stats_.removes;
  if (stats_.hits > 0) {
    --stats_.hits;
    ++stats_.misses;
  }
}

std::optional<std::uint64_t> DecisionCache::hit_count(const FlowKey& key) const {
  const auto s = find_slot(key);
  if (!s) return std::nullopt;
  return entries_[index_[*s]].hits;
}

bool DecisionCache::recently_used(const FlowKey& key, std::uint64_t since) const {
  const auto s = find_slot(key);
  return s && entries_[index_[*s]].last_use >= since;
}

}  // namespace ie::sn
