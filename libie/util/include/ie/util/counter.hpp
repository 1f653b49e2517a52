// Counters for the share-nothing fast path: each counter has exactly one writing thread
// (a relaxed load + store, no locked instruction) and any number of readers (status output).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ie {

class Counter {
 public:
  // Single writer only.
  void add(std::uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const { return v_.load(std::memory_order_relaxed); }
  void reset() { v_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// A fixed set of counters indexed by an enum (e.g. the drop reasons of ie::wire).
template <typename Enum, std::size_t N>
class CounterArray {
 public:
  void add(Enum e, std::uint64_t n = 1) { c_[static_cast<std::size_t>(e)].add(n); }
  std::uint64_t get(Enum e) const { return c_[static_cast<std::size_t>(e)].get(); }
  std::uint64_t total() const {
    std::uint64_t t = 0;
    for (const auto& c : c_) t += c.get();
    return t;
  }
  static constexpr std::size_t size() { return N; }
  std::uint64_t at(std::size_t i) const { return c_[i].get(); }

 private:
  std::array<Counter, N> c_{};
};

}  // namespace ie
