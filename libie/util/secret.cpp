// Wiping, constant-time comparison and fingerprints for secret material (libsodium).
#include "ie/util/secret.hpp"

#include <sodium.h>

#include "ie/util/bytes.hpp"

namespace ie {

void secure_wipe(void* p, std::size_t n) { sodium_memzero(p, n); }

bool ct_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string fingerprint(std::span<const std::uint8_t> data) {
  std::uint8_t h[4];
  crypto_generichash(h, sizeof h, data.data(), data.size(), nullptr, 0);
  return "fp:" + to_hex(h);
}

}  // namespace ie
