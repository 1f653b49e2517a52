// Internet checksum (ie/ied/checksum.hpp).
#include "ie/ied/checksum.hpp"

#include <bit>
#include <cstring>

namespace ie::ied {

namespace {

std::uint64_t load_host64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// The two 32-bit halves of a 64-bit word, added: at most 2^33 - 2.
std::uint64_t halves(std::uint64_t w) {
  return (w & 0xffffffffu) + (w >> 32);
}

// Sum of p[0, n) as 32-bit host-order words (a short tail as 32-bit, 16-bit and zero-padded
// 16-bit host-order words), not folded. Every 32-bit word w = hi * 2^16 + lo is congruent to
// hi + lo modulo 0xffff, so folded this is the sum of 16-bit host-order words. Four
// independent accumulators, no carry chain: each takes at most 2^33 per 32-byte step, exact
// for any span under 64 GiB. Words count from p, so p's alignment does not matter.
std::uint64_t sum_host(const std::uint8_t* p, std::size_t n) {
  std::uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (; n >= 32; p += 32, n -= 32) {
    const std::uint64_t w0 = load_host64(p), w1 = load_host64(p + 8);
    const std::uint64_t w2 = load_host64(p + 16), w3 = load_host64(p + 24);
    a0 += halves(w0);
    a1 += halves(w1);
    a2 += halves(w2);
    a3 += halves(w3);
  }
  for (; n >= 8; p += 8, n -= 8) {
    const std::uint64_t w = load_host64(p);
    a0 += halves(w);
  }
  if (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    a1 += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    a2 += w;
    p += 2;
    n -= 2;
  }
  if (n == 1) {
    const std::uint8_t pad[2] = {p[0], 0};
    std::uint16_t w;
    std::memcpy(&w, pad, 2);
    a3 += w;
  }
  return (a0 + a1) + (a2 + a3);
}

std::uint16_t fold64(std::uint64_t sum) {
  while (sum >> 16)
    sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

}  // namespace

// The host-order sum folded, byte-swapped to big-endian order on a little-endian host (RFC
// 1071 2(B)), plus initial, folded. A folded sum in [1, 0xffff] swaps to [1, 0xffff] and 0 to
// 0, so the result is the one value in [1, 0xffff] congruent to the sum modulo 0xffff (0 for
// the all-zero sum), whatever even-length pieces the bytes were summed in.
std::uint32_t checksum_add(ConstByteSpan data, std::uint32_t initial) {
  std::uint16_t s = fold64(sum_host(data.data(), data.size()));
  if constexpr (std::endian::native == std::endian::little)
    s = static_cast<std::uint16_t>((s >> 8) | (s << 8));
  return fold64(std::uint64_t{initial} + s);
}

std::uint16_t checksum_fold(std::uint32_t sum) {
  return fold64(sum);
}

std::uint16_t checksum_finish(std::uint32_t sum) {
  return static_cast<std::uint16_t>(~checksum_fold(sum) & 0xffffu);
}

std::uint32_t ipv6_pseudo_sum(ConstByteSpan src16, ConstByteSpan dst16, std::uint32_t length,
                              std::uint8_t next_header) {
  std::uint32_t sum = checksum_add(src16);
  sum = checksum_add(dst16, sum);
  std::uint8_t tail[8];
  store_be32(tail, length);
  tail[4] = tail[5] = tail[6] = 0;
  tail[7] = next_header;
  return checksum_add(ConstByteSpan(tail, sizeof tail), sum);
}

}  // namespace ie::ied
