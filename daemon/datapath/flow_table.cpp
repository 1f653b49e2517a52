// FlowTable (ie/ied/flow_table.hpp): nodes in one preallocated vector, chained per bucket
// and linked in use order by 32-bit indices; a free list holds unused nodes.
#include "ie/ied/flow_table.hpp"

#include <bit>
#include <cassert>

namespace ie::ied {

const char* flow_via_name(FlowVia v) {
  switch (v) {
    case FlowVia::sn:
      return "sn";
    case FlowVia::direct:
      return "direct";
  }
  return "?";
}

FlowTable::FlowTable(std::size_t capacity, std::uint64_t seed) : seed_(seed) {
  if (capacity == 0) capacity = 1;
  // Indices are 32-bit with one value reserved.
  if (capacity > (std::size_t{1} << 31)) capacity = std::size_t{1} << 31;
  nodes_.resize(capacity);
  buckets_.assign(std::bit_ceil(capacity * 2), kNil);
  clear();
}

void FlowTable::clear() {
  for (auto& b : buckets_)
    b = kNil;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    nodes_[i].prev = nodes_[i].next = kNil;
    nodes_[i].chain = i + 1 < nodes_.size() ? static_cast<std::uint32_t>(i + 1) : kNil;
  }
  free_ = 0;
  head_ = tail_ = kNil;
  size_ = 0;
}

std::size_t FlowTable::bucket_of(const FlowKey& k) const {
  return static_cast<std::size_t>(flow_hash(k, seed_)) & (buckets_.size() - 1);
}

std::uint32_t FlowTable::find_index(const FlowKey& k) const {
  for (std::uint32_t i = buckets_[bucket_of(k)]; i != kNil; i = nodes_[i].chain)
    if (nodes_[i].key == k) return i;
  return kNil;
}

void FlowTable::unlink_use(std::uint32_t i) {
  Node& n = nodes_[i];
  if (n.prev != kNil)
    nodes_[n.prev].next = n.next;
  else
    head_ = n.next;
  if (n.next != kNil)
    nodes_[n.next].prev = n.prev;
  else
    tail_ = n.prev;
  n.prev = n.next = kNil;
}

void FlowTable::push_front(std::uint32_t i) {
  Node& n = nodes_[i];
  n.prev = kNil;
  n.next = head_;
  if (head_ != kNil) nodes_[head_].prev = i;
  head_ = i;
  if (tail_ == kNil) tail_ = i;
}

void FlowTable::remove(std::uint32_t i) {
  // Unchain from the bucket.
  std::uint32_t* link = &buckets_[bucket_of(nodes_[i].key)];
  while (*link != i) {
    assert(*link != kNil);
    link = &nodes_[*link].chain;
  }
  *link = nodes_[i].chain;
  unlink_use(i);
  nodes_[i].chain = free_;
  free_ = i;
  --size_;
}

FlowEntry* FlowTable::lookup(const FlowKey& k, FlowClock::time_point now) {
  const std::uint32_t i = find_index(k);
  if (i == kNil) return nullptr;
  if (head_ != i) {
    unlink_use(i);
    push_front(i);
  }
  nodes_[i].entry.last_seen = now;
  return &nodes_[i].entry;
}

const FlowEntry* FlowTable::find(const FlowKey& k) const {
  const std::uint32_t i = find_index(k);
  return i == kNil ? nullptr : &nodes_[i].entry;
}

FlowEntry* FlowTable::insert(const FlowKey& k, const FlowEntry& e, FlowClock::time_point now) {
  std::uint32_t i = find_index(k);
  if (i != kNil) {
    unlink_use(i);
  } else {
    if (free_ == kNil) {
      remove(tail_);
      ++evictions_;
    }
    i = free_;
    free_ = nodes_[i].chain;
    const std::size_t b = bucket_of(k);
    nodes_[i].key = k;
    nodes_[i].chain = buckets_[b];
    buckets_[b] = i;
    ++size_;
  }
  nodes_[i].entry = e;
  nodes_[i].entry.last_seen = now;
  push_front(i);
  return &nodes_[i].entry;
}

bool FlowTable::erase(const FlowKey& k) {
  const std::uint32_t i = find_index(k);
  if (i == kNil) return false;
  remove(i);
  return true;
}

std::size_t FlowTable::expire(FlowClock::time_point now, FlowClock::duration idle) {
  std::size_t n = 0;
  // The tail is the least recently used, so the walk stops at the first fresh flow.
  while (tail_ != kNil && nodes_[tail_].entry.last_seen + idle <= now) {
    remove(tail_);
    ++n;
  }
  return n;
}

std::vector<FlowRecord> FlowTable::list() const {
  std::vector<FlowRecord> out;
  out.reserve(size_);
  for_each([&](const FlowKey& k, const FlowEntry& e) { out.push_back(FlowRecord{k, e}); });
  return out;
}

}  // namespace ie::ied
