// Hierarchical timer wheel (ie/io/timer_wheel.hpp).
#include "ie/io/timer_wheel.hpp"

#include <utility>

namespace ie::io {

TimerWheel::Handle TimerWheel::add(std::uint64_t expiry_tick, Callback cb) {
  std::uint32_t i;
  if (!free_.empty()) {
    i = free_.back();
    free_.pop_back();
  } else {
    i = static_cast<std::uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  Node& n = nodes_[i];
  n.expiry = expiry_tick;
  n.cb = std::move(cb);
  place(i, false);
  ++live_;
  return Handle{i, n.generation};
}

// Links node i into the slot for its expiry relative to now_.
void TimerWheel::place(std::uint32_t i, bool cascading) {
  Node& n = nodes_[i];
  // A new timer that is already due fires on the next tick (this tick's slot may have been
  // processed). A cascading timer due now lands in this tick's slot, which fires right after.
  const std::uint64_t e = n.expiry > now_ || (cascading && n.expiry == now_) ? n.expiry : now_ + 1;
  int level = 0;
  std::uint64_t slot = e & (kSlots - 1);
  if (e - now_ >= kSlots || (e >> 8) != (now_ >> 8)) {
    // Level L holds timers whose tick differs from now_ only in bits 8L and up, less than
    // 256 units of level L ahead; further than level 3 reaches: park at level 3's farthest
    // slot and re-place on cascade.
    level = 3;
    slot = ((now_ >> 24) + 255) & (kSlots - 1);
    for (int l = 0; l < kLevels; ++l) {
      const int shift = 8 * l;
      if ((e >> shift) - (now_ >> shift) < kSlots) {
        level = l;
        slot = (e >> shift) & (kSlots - 1);
        break;
      }
    }
  }
  const std::uint32_t s =
      static_cast<std::uint32_t>(level) * kSlots + static_cast<std::uint32_t>(slot);
  n.slot = static_cast<std::uint16_t>(s);
  ++level_count_[level];
  n.prev = kNil;
  n.next = heads_[s];
  if (n.next != kNil) nodes_[n.next].prev = i;
  heads_[s] = i;
  n.linked = true;
}

void TimerWheel::unlink(std::uint32_t i) {
  Node& n = nodes_[i];
  --level_count_[n.slot / kSlots];
  if (n.prev != kNil)
    nodes_[n.prev].next = n.next;
  else
    heads_[n.slot] = n.next;
  if (n.next != kNil) nodes_[n.next].prev = n.prev;
  n.prev = n.next = kNil;
  n.linked = false;
}

bool TimerWheel::cancel(Handle h) {
  if (!h.valid() || h.index >= nodes_.size()) return false;
  Node& n = nodes_[h.index];
  if (n.generation != h.generation || !n.linked) return false;
  unlink(h.index);
  n.cb = nullptr;
  ++n.generation;
  free_.push_back(h.index);
  --live_;
  return true;
}

void TimerWheel::cascade(int level, std::uint32_t slot) {
  const std::uint32_t s = static_cast<std::uint32_t>(level) * kSlots + slot;
  std::uint32_t i = heads_[s];
  heads_[s] = kNil;
  while (i != kNil) {
    const std::uint32_t next = nodes_[i].next;
    nodes_[i].linked = false;
    --level_count_[level];
    place(i, true);
    i = next;
  }
}

std::size_t TimerWheel::advance(std::uint64_t to_tick) {
  std::size_t fired = 0;
  while (now_ < to_tick) {
    if (live_ == 0) {
      now_ = to_tick;
      break;
    }
    // Skip ticks with nothing to do: with the lower levels empty, nothing happens before the
    // next boundary at which the first non-empty level cascades.
    for (int l = 0; l < kLevels - 1 && level_count_[l] == 0; ++l) {
      const int shift = 8 * (l + 1);
      const std::uint64_t boundary = ((now_ >> shift) + 1) << shift;
      if (boundary - 1 > now_) now_ = std::min(boundary - 1, to_tick);
    }
    if (now_ >= to_tick) break;
    ++now_;
    const auto idx = static_cast<std::uint32_t>(now_ & (kSlots - 1));
    if (idx == 0) {
      // Cascade from the top down so timers land in the right lower slots.
      const auto i1 = static_cast<std::uint32_t>((now_ >> 8) & (kSlots - 1));
      if (i1 == 0) {
        const auto i2 = static_cast<std::uint32_t>((now_ >> 16) & (kSlots - 1));
        if (i2 == 0) cascade(3, static_cast<std::uint32_t>((now_ >> 24) & (kSlots - 1)));
        cascade(2, i2);
      }
      cascade(1, i1);
    }
    // Fire this tick's slot. Callbacks may add timers (to later ticks) or cancel others.
    while (heads_[idx] != kNil) {
      const std::uint32_t i = heads_[idx];
      unlink(i);
      Node& n = nodes_[i];
      Callback cb = std::move(n.cb);
      n.cb = nullptr;
      ++n.generation;
      free_.push_back(i);
      --live_;
      ++fired;
      if (cb) cb();
    }
  }
  return fired;
}

std::optional<std::uint64_t> TimerWheel::next_wakeup() const {
  if (live_ == 0) return std::nullopt;
  for (std::uint64_t t = now_ + 1; t <= now_ + kSlots; ++t) {
    if ((t & (kSlots - 1)) == 0) return t;  // a cascade happens here
    if (heads_[t & (kSlots - 1)] != kNil) return t;
  }
  return now_ + kSlots;
}

}  // namespace ie::io
