// The anti-replay window for 64-bit sequence numbers (PSP IVs, control-channel counters),
// RFC 6479 style: a ring of 64-bit blocks, one block kept spare so sliding forward clears whole
// blocks instead of shifting bits. Window: the last kWindow sequence numbers below the highest
// seen. Two sizes: ReplayWindow (64 blocks, 4032 numbers, 528 bytes) for PSP data, and
// ControlReplayWindow (4 blocks, 192 numbers, 48 bytes) for the control channel, which
// carries a few messages per keepalive interval and sees little reordering (an SN keeps one
// per session, 100,000 of them).
//
// Contract: call check() before authenticating a packet (cheap, no state change) and
// update() only AFTER the packet authenticated, so forged packets can never move the
// window. update() returns false (and changes nothing) if the number is no longer
// acceptable, which happens when two workers race; single-threaded use never sees that.
#pragma once

#include <array>
#include <cstdint>

namespace ie::crypto {

template <std::uint64_t Blocks>
class BasicReplayWindow {
  static_assert(Blocks >= 2 && (Blocks & (Blocks - 1)) == 0, "Blocks: a power of two, >= 2");

 public:
  static constexpr std::uint64_t kBlocks = Blocks;
  static constexpr std::uint64_t kBitsPerBlock = 64;
  // All blocks but the spare one.
  static constexpr std::uint64_t kWindow = (kBlocks - 1) * kBitsPerBlock;

  // True if seq has not been seen and is not older than the window.
  bool check(std::uint64_t seq) const {
    if (!any_ || seq > last_) return true;
    if (last_ - seq >= kWindow) return false;
    return (blocks_[block_index(seq)] & bit(seq)) == 0;
  }

  // Marks seq as seen (after authentication). False (and no change) if check(seq) fails.
  // Slides the ring forward when a higher number arrives, clearing at most kBlocks blocks (a
  // jump larger than the window clears them all), then sets the number's bit.
  bool update(std::uint64_t seq) {
    if (!check(seq)) return false;
    if (!any_ || seq > last_) {
      const std::uint64_t cur = any_ ? last_ / kBitsPerBlock : 0;
      const std::uint64_t next = seq / kBitsPerBlock;
      std::uint64_t diff = any_ ? next - cur : kBlocks;
      if (diff > kBlocks) diff = kBlocks;
      for (std::uint64_t i = 1; i <= diff; ++i)
        blocks_[(cur + i) % kBlocks] = 0;
      if (!any_) blocks_[next % kBlocks] = 0;
      last_ = seq;
      any_ = true;
    }
    blocks_[block_index(seq)] |= bit(seq);
    return true;
  }

  std::uint64_t highest() const { return last_; }
  bool empty() const { return !any_; }

 private:
  static std::uint64_t block_index(std::uint64_t seq) { return (seq / kBitsPerBlock) % kBlocks; }
  static std::uint64_t bit(std::uint64_t seq) { return std::uint64_t{1} << (seq % kBitsPerBlock); }

  std::array<std::uint64_t, kBlocks> blocks_{};
  std::uint64_t last_ = 0;
  bool any_ = false;
};

// 4032 sequence numbers (>= the 2048 ILP requires): PSP receive SAs.
using ReplayWindow = BasicReplayWindow<64>;
// 192 sequence numbers: the association control channel (one per session).
using ControlReplayWindow = BasicReplayWindow<4>;

extern template class BasicReplayWindow<64>;
extern template class BasicReplayWindow<4>;

}  // namespace ie::crypto
