// FlowTable: ied's map from a flow (FlowKey, the 5-tuple of a packet read from the TUN) to
// where its packets go (FlowEntry: next ILP hop, service, connection, counters).
//
// Fixed capacity chosen at construction; every node and bucket is allocated then, so insert,
// lookup, erase and expire never allocate. When full, inserting evicts the least recently
// used flow. Buckets are indexed by a keyed hash (random seed per table) so a sender cannot
// aim packets at one bucket chain.
//
// Threading: none inside. One datapath worker owns a table; status listings (`iectl flows`)
// run on that worker's thread (e.g. posted to its reactor), never concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ie/ied/flow_key.hpp"
#include "ie/ied/ip_addr.hpp"

namespace ie::ied {

using FlowClock = std::chrono::steady_clock;

// How a flow's ILP packets leave the host.
enum class FlowVia : std::uint8_t {
  sn,      // through a first-hop SN (peer is the SN's address)
  direct,  // host to host (peer is the other InterEdge host)
};
const char* flow_via_name(FlowVia v);

struct FlowEntry {
  IpAddr peer;                // next ILP hop: first-hop SN or direct peer
  std::uint16_t service = 0;  // ie::wire::ServiceId value
  FlowVia via = FlowVia::sn;
  std::uint64_t conn_id = 0;  // the association/connection core chose for the flow
  // The InterEdge mark of the socket that sent the flow (docs/bpf.md), 0 when it reached the
  // TUN by a [host] prefix route; and whether its service allows a direct host-host path.
  std::uint32_t mark = 0;
  bool direct_allowed = true;
  // The socket chose options the SNs must see (ServiceChoice::carried_to_sns): its packets
  // carry them in ILP metadata, under a connection id of their own.
  bool sn_options = false;
  std::uint64_t packets_out = 0, bytes_out = 0;
  std::uint64_t packets_in = 0, bytes_in = 0;
  FlowClock::time_point last_seen{};  // set by the table on insert and lookup
};

struct FlowRecord {
  FlowKey key;
  FlowEntry entry;
};

class FlowTable {
 public:
  // capacity >= 1 flows; seed keys the bucket hash (pass a random one; tests pass fixed ones).
  FlowTable(std::size_t capacity, std::uint64_t seed);

  // The flow's entry, marked used at now (moves to most recent, updates last_seen), or nullptr.
  // The pointer stays valid until the flow is erased, evicted or expired.
  FlowEntry* lookup(const FlowKey& k, FlowClock::time_point now);
  // The entry without marking it used (status, tests).
  const FlowEntry* find(const FlowKey& k) const;
  // Inserts or replaces the flow's entry (last_seen = now, most recent); when the table is
  // full and k is new, first evicts the least recently used flow. Never fails.
  FlowEntry* insert(const FlowKey& k, const FlowEntry& e, FlowClock::time_point now);
  bool erase(const FlowKey& k);
  // Removes every flow idle for at least `idle` (last_seen + idle <= now); returns how many.
  // Costs O(removed): flows are kept in last-use order.
  std::size_t expire(FlowClock::time_point now, FlowClock::duration idle);
  void clear();

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return nodes_.size(); }
  std::uint64_t evictions() const { return evictions_; }

  // Every flow, most recently used first (allocates: control path only).
  std::vector<FlowRecord> list() const;
  // Visits every flow, most recently used first, without allocating.
  template <typename F>
  void for_each(F&& f) const {
    for (std::uint32_t i = head_; i != kNil; i = nodes_[i].next)
      f(nodes_[i].key, nodes_[i].entry);
  }

 private:
  static constexpr std::uint32_t kNil = 0xffffffffu;
  struct Node {
    FlowKey key;
    FlowEntry entry;
    std::uint32_t chain = kNil;  // next node in the same bucket, or next free node
    std::uint32_t prev = kNil;   // use order (head_ most recent); free nodes are unlinked
    std::uint32_t next = kNil;
  };

  std::size_t bucket_of(const FlowKey& k) const;
  std::uint32_t find_index(const FlowKey& k) const;
  void unlink_use(std::uint32_t i);
  void push_front(std::uint32_t i);
  void remove(std::uint32_t i);

  std::vector<Node> nodes_;
  std::vector<std::uint32_t> buckets_;  // power of two, >= 2 * capacity
  std::uint64_t seed_;
  std::uint32_t free_ = kNil;
  std::uint32_t head_ = kNil;  // most recently used
  std::uint32_t tail_ = kNil;  // least recently used
  std::size_t size_ = 0;
  std::uint64_t evictions_ = 0;
};

}  // namespace ie::ied
