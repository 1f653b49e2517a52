// RxKeyring: PSP master keys, SPI allocation and rotation (ie/crypto/psp_keyring.hpp).
#include "ie/crypto/psp_keyring.hpp"

#include <sodium.h>

namespace ie::crypto::psp {
namespace {
Key32 random_key() {
  Key32 k;
  randombytes_buf(k.data(), k.size());
  return k;
}
}  // namespace

RxKeyring::RxKeyring() : master_{MasterKey(random_key()), MasterKey(random_key())} {}

RxKeyring::RxKeyring(Key32 master0, Key32 master1, int active)
    : master_{MasterKey(master0), MasterKey(master1)}, active_(active & 1) {}

std::uint32_t RxKeyring::allocate_spi() {
  std::uint32_t& n = next_[active_];
  const std::uint32_t spi = (static_cast<std::uint32_t>(active_) << 31) | n;
  n = n == 0x7fffffffu ? 1 : n + 1;
  return spi;
}

Key RxKeyring::key_for(std::uint32_t spi, Version version) {
  return master_[epoch_of(spi)].derive(spi, version);
}

void RxKeyring::rotate() {
  const int next = active_ ^ 1;
  master_[next] = MasterKey(random_key());
  next_[next] = 1;
  active_ = next;
}

}  // namespace ie::crypto::psp
