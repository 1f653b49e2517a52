// The per-SPI anti-replay window for PSP sequence numbers (the 64-bit IV), RFC 6479 style:
// a ring of 64-bit blocks, one block kept spare so sliding forward clears whole blocks
// instead of shifting bits. Window: the last kWindow sequence numbers below the highest seen.
//
// Contract: call check() before authenticating a packet (cheap, no state change) and
// update() only AFTER the packet authenticated, so forged packets can never move the
// window. update() returns false (and changes nothing) if the number is no longer
// acceptable, which happens when two workers race; single-threaded use never sees that.
#pragma once

#include <array>
#include <cstdint>

namespace ie::crypto {

class ReplayWindow {
 public:
  static constexpr std::uint64_t kBlocks = 64;  // power of two
  static constexpr std::uint64_t kBitsPerBlock = 64;
  // 4032 sequence numbers (>= the 2048 ILP requires): all blocks but the spare one.
  static constexpr std::uint64_t kWindow = (kBlocks - 1) * kBitsPerBlock;

  // True if seq has not been seen and is not older than the window.
  bool check(std::uint64_t seq) const {
    if (!any_ || seq > last_) return true;
    if (last_ - seq >= kWindow) return false;
    return (blocks_[block_index(seq)] & bit(seq)) == 0;
  }

  // Marks seq as seen (after authentication). False (and no change) if check(seq) fails.
  bool update(std::uint64_t seq);

  std::uint64_t highest() const { return last_; }
  bool empty() const { return !any_; }

 private:
  static std::uint64_t block_index(std::uint64_t seq) { return (seq / kBitsPerBlock) % kBlocks; }
  static std::uint64_t bit(std::uint64_t seq) { return std::uint64_t{1} << (seq % kBitsPerBlock); }

  std::array<std::uint64_t, kBlocks> blocks_{};
  std::uint64_t last_ = 0;
  bool any_ = false;
};

}  // namespace ie::crypto
