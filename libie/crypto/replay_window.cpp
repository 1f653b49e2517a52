// ReplayWindow::update (ie/crypto/replay_window.hpp): slides the ring of 64-bit blocks forward
// when a higher sequence number authenticates, clearing at most kBlocks blocks (a jump larger
// than the window clears them all), then sets the number's bit.
#include "ie/crypto/replay_window.hpp"

namespace ie::crypto {

bool ReplayWindow::update(std::uint64_t seq) {
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

}  // namespace ie::crypto
