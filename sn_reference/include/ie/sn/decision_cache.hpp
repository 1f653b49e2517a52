// The SN's decision cache (paper section 4, appendix B): a fixed-capacity exact-match table
// from (source L3 address, service id, connection id) to what the pipe-terminus does with a
// packet: drop it, forward it to a list of next hops (multicast replication: up to
// kMaxNextHops), or hand it to the service module. Entries carry a hit count and last-use
// time; when the table is full, insert evicts with the CLOCK algorithm (one reference bit per
// entry), so any entry may vanish at any time and a module must always be able to decide
// again (a miss is never an error).
//
// Layout: entries in one fixed array, found through an open-addressing index (linear
// probing, load <= 1/2, backward-shift deletion: no tombstones). No allocation after
// construction. Single-threaded: one cache shard per worker.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace ie::sn {

struct FlowKey {
  std::array<std::uint8_t, 16> src{};  // IPv6, or IPv4-mapped (::ffff:a.b.c.d)
  std::uint16_t service_id = 0;
  std::uint64_t connection_id = 0;

  bool operator==(const FlowKey&) const = default;
  static FlowKey ipv4(std::uint32_t addr_host_order, std::uint16_t service, std::uint64_t conn);
};

enum class Action : std::uint8_t { drop, forward, to_service };

inline constexpr std::size_t kMaxNextHops = 8;
using NextHop = std::uint32_t;  // an SN pipe / peer id

struct Decision {
  Action action = Action::to_service;
  std::uint8_t hop_count = 0;
  std::array<NextHop, kMaxNextHops> hops{};
  // Opaque to the cache. The worker sets it at insert to what its hops' role epochs sum to
  // (Worker::hop_stamp) and compares on a hit: a sum that moved means a hop's role changed
  // since (a host turned standby or active), and the decision is made again.
  std::uint32_t stamp = 0;

  std::span<const NextHop> next_hops() const { return {hops.data(), hop_count}; }
  static Decision forward_to(std::span<const NextHop> hops);
};

struct CacheStats {
  std::uint64_t hits = 0, misses = 0, inserts = 0, evictions = 0, removes = 0;
};

class DecisionCache {
 public:
  // capacity >= 1 entries.
  explicit DecisionCache(std::size_t capacity);

  // The decision for key, or nullptr (a miss). A hit bumps the hit count, the last-use time
  // and the CLOCK reference bit. The pointer is valid until the next insert or remove.
  const Decision* lookup(const FlowKey& key, std::uint64_t now);

  // Batch hints (no effect on results): start loading what lookup(key) will read, so that
  // the cache misses of a batch's packets overlap instead of each paying DRAM latency in
  // turn. prefetch_slot first (the key's index slot); prefetch_entry some time later (it
  // reads that slot to find the entry, so it should be in cache by then).
  void prefetch_slot(const FlowKey& key) const { __builtin_prefetch(&index_[slot_of(key)]); }
  void prefetch_entry(const FlowKey& key) const {
    const std::uint32_t e = index_[slot_of(key)];
    if (e != kEmpty) __builtin_prefetch(&entries_[e]);
  }

  // Inserts or replaces; evicts another entry if full. False only if the decision is invalid
  // (forward with 0 or more than kMaxNextHops hops).
  bool insert(const FlowKey& key, const Decision& d, std::uint64_t now);
  bool remove(const FlowKey& key);
  // The entry lookup(key) just returned cannot be used (a hop is gone, or its role changed:
  // Decision::stamp): removes it, and that lookup counts as a miss, not a hit.
  void remove_stale(const FlowKey& key);

  // For modules: how often the entry was hit, and whether it was used since `since`.
  std::optional<std::uint64_t> hit_count(const FlowKey& key) const;
  bool recently_used(const FlowKey& key, std::uint64_t since) const;

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return entries_.size(); }
  const CacheStats& stats() const { return stats_; }

 private:
  static constexpr std::uint32_t kEmpty = UINT32_MAX;
  struct Entry {
    FlowKey key;
    Decision decision;
    std::uint64_t hits = 0;
    std::uint64_t last_use = 0;
    bool used = false;        // slot holds an entry
    bool referenced = false;  // CLOCK bit
  };

  std::size_t slot_of(const FlowKey& key) const;
  std::optional<std::size_t> find_slot(const FlowKey& key) const;
  void erase_slot(std::size_t slot);
  std::uint32_t take_entry();  // a free entry, evicting with CLOCK if none

  std::vector<Entry> entries_;
  std::vector<std::uint32_t> index_;  // slot -> entry index or kEmpty
  std::vector<std::uint32_t> free_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
  std::size_t hand_ = 0;
  CacheStats stats_;
};

}  // namespace ie::sn
