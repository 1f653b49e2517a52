// A hierarchical timer wheel (4 levels x 256 slots, in ticks of whatever unit the owner
// chooses; the reactor uses 1 ms) for very many timers: add and cancel are O(1), advancing
// one tick is O(1) amortised (timers cascade down at most 3 times). Timers never fire early
// and fire on the tick they are due, in tick order; a timer due at or before now fires on the
// next tick. Handles carry a generation, so cancelling a fired or cancelled timer is harmless.
// Callbacks may add and cancel timers (including re-arming themselves).
//
// Single-threaded. Nodes live in one slab vector (reused through a free list), so 100k timers
// cost 100k nodes and no allocation per add once the slab has grown.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace ie::io {

class TimerWheel {
 public:
  using Callback = std::function<void()>;
  struct Handle {
    std::uint32_t index = UINT32_MAX;
    std::uint32_t generation = 0;
    bool valid() const { return index != UINT32_MAX; }
  };

  explicit TimerWheel(std::uint64_t start_tick = 0) : now_(start_tick) {}

  Handle add(std::uint64_t expiry_tick, Callback cb);
  // False if the timer already fired or was cancelled (or the handle is empty).
  bool cancel(Handle h);
  // Fires every timer due up to and including to_tick; returns how many fired.
  std::size_t advance(std::uint64_t to_tick);

  std::uint64_t now() const { return now_; }
  std::size_t size() const { return live_; }
  // A tick at or before the next expiry (exact when a timer is due within 256 ticks;
  // otherwise the next tick at which timers cascade). nullopt when empty.
  std::optional<std::uint64_t> next_wakeup() const;

 private:
  static constexpr int kLevels = 4;
  static constexpr std::uint32_t kSlots = 256;
  static constexpr std::uint32_t kNil = UINT32_MAX;

  struct Node {
    std::uint64_t expiry = 0;
    Callback cb;
    std::uint32_t prev = kNil, next = kNil;
    std::uint32_t generation = 0;
    std::uint16_t slot = 0;  // level * kSlots + slot index, while linked
    bool linked = false;
  };

  void place(std::uint32_t i, bool cascading);
  void unlink(std::uint32_t i);
  void cascade(int level, std::uint32_t slot);

  std::vector<Node> nodes_;
  std::vector<std::uint32_t> free_;
  std::array<std::uint32_t, kLevels* kSlots> heads_ = [] {
    std::array<std::uint32_t, kLevels * kSlots> a{};
    a.fill(kNil);
    return a;
  }();
  std::uint64_t now_;
  std::size_t live_ = 0;
  std::array<std::size_t, kLevels> level_count_{};  // linked timers per level
};

}  // namespace ie::io
