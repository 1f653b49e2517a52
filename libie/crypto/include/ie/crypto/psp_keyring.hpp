// The receive side of PSP's key model. A node keeps two 256-bit master keys; the SPI's top
// bit says which one derived a given SPI's key. The node allocates SPIs in the active epoch,
// derives each SPI's key on demand and hands it to the sender over the control channel, so
// its receive state does not grow with its peers. rotate() replaces the inactive master key
// and makes it active: SPIs of the previous epoch keep working until the next rotation,
// which is the overlap a rekey needs.
//
// Not thread-safe: one owner (the node's control plane); workers get derived Sa objects.
#pragma once

#include <cstdint>

#include "ie/crypto/psp.hpp"
#include "ie/util/secret.hpp"

namespace ie::crypto::psp {

class RxKeyring {
 public:
  // Fresh random master keys; epoch 0 active.
  RxKeyring();
  // Fixed master keys (tests, vectors); epoch `active` (0 or 1) active.
  RxKeyring(Key32 master0, Key32 master1, int active = 0);

  // A new SPI in the active epoch: top bit = active epoch, never 0, never repeated within
  // the epoch (a counter from 1; rotate() resets it with the new master key). An epoch holds
  // 2^31 - 1 SPIs; past that the counter wraps to 1, so rotate well before (ied rotates on
  // time, which is many orders of magnitude sooner).
  std::uint32_t allocate_spi();
  // The key for spi (whichever epoch it belongs to).
  Key key_for(std::uint32_t spi, Version version);
  // Replace the inactive master key with a fresh random one and make it active.
  void rotate();

  int active_epoch() const { return active_; }
  static int epoch_of(std::uint32_t spi) { return (spi >> 31) & 1; }

 private:
  // The two master keys, each with its CMAC context keyed once (derivations are per
  // handshake on an SN: re-keying a context per SPI was a visible share of its CPU).
  MasterKey master_[2];
  int active_ = 0;
  std::uint32_t next_[2] = {1, 1};
};

}  // namespace ie::crypto::psp
