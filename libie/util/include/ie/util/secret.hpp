// Secret-holding types. Secrets are move-only, wiped with sodium_memzero when destroyed or
// moved from, compared in constant time, and printed only as fingerprints (a short BLAKE2b
// hash), never as their bytes. Never put a secret in std::string.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ie {

void secure_wipe(void* p, std::size_t n);
// Constant-time equality of two equal-length buffers (sodium_memcmp). Different lengths: false.
bool ct_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);
// "fp:xxxxxxxx": first 4 bytes of BLAKE2b(data) in hex; safe to log.
std::string fingerprint(std::span<const std::uint8_t> data);

template <std::size_t N>
class Secret {
 public:
  static constexpr std::size_t kSize = N;

  Secret() { bytes_.fill(0); }
  explicit Secret(std::span<const std::uint8_t, N> from) {
    for (std::size_t i = 0; i < N; ++i) bytes_[i] = from[i];
  }
  ~Secret() { secure_wipe(bytes_.data(), N); }

  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  Secret(Secret&& o) noexcept : bytes_(o.bytes_) { secure_wipe(o.bytes_.data(), N); }
  Secret& operator=(Secret&& o) noexcept {
    if (this != &o) {
      bytes_ = o.bytes_;
      secure_wipe(o.bytes_.data(), N);
    }
    return *this;
  }

  // Explicit copy, so every duplication of key material is visible at the call site.
  Secret clone() const {
    Secret s;
    s.bytes_ = bytes_;
    return s;
  }

  std::uint8_t* data() { return bytes_.data(); }
  const std::uint8_t* data() const { return bytes_.data(); }
  static constexpr std::size_t size() { return N; }
  std::span<std::uint8_t, N> span() { return std::span<std::uint8_t, N>(bytes_); }
  std::span<const std::uint8_t, N> span() const { return std::span<const std::uint8_t, N>(bytes_); }

  bool operator==(const Secret& o) const { return ct_equal(span(), o.span()); }
  std::string fingerprint() const { return ie::fingerprint(span()); }

 private:
  std::array<std::uint8_t, N> bytes_;
};

using Key32 = Secret<32>;
using Key16 = Secret<16>;

}  // namespace ie
