// The Internet checksum (RFC 1071) ied computes over every TCP segment it cuts from a TUN
// super packet or verifies before coalescing (daemon/datapath/tcp_offload.cpp): the two loops
// it replaced (copied here as they were: 16-bit big-endian words; 32-bit host-order words)
// against checksum_add. Bytes/s at 64, 576, 1236 and 1500 bytes.
// Prints figures; not a test.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "ie/ied/checksum.hpp"

namespace {

using ie::ConstByteSpan;

// The old checksum_add (daemon/datapath/checksum.cpp before 2026-12-03), verbatim.
std::uint32_t old_checksum_add16(ConstByteSpan data, std::uint32_t initial = 0) {
  std::uint64_t sum = initial;
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2)
    sum += ie::load_be16(data.data() + i);
  if (i < data.size()) sum += std::uint32_t{data[i]} << 8;
  while (sum >> 32)
    sum = (sum & 0xffffffffu) + (sum >> 32);
  return static_cast<std::uint32_t>(sum);
}

// The old csum of tcp_offload.cpp (before 2026-12-03), verbatim.
std::uint32_t old_csum32(ConstByteSpan data, std::uint32_t initial = 0) {
  std::uint64_t sum = 0;
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  for (; n >= 4; p += 4, n -= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    sum += w;
  }
  if (n >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    sum += w;
    p += 2;
    n -= 2;
  }
  if (n == 1) {
    const std::uint8_t tail[2] = {p[0], 0};
    std::uint16_t w;
    std::memcpy(&w, tail, 2);
    sum += w;
  }
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  const std::uint16_t h = static_cast<std::uint16_t>(sum);
  const std::uint16_t be = ie::load_be16(reinterpret_cast<const std::uint8_t*>(&h));
  return initial + be;
}

std::vector<std::uint8_t> data(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<std::uint8_t>(i * 131 + 7);
  return v;
}

template <std::uint32_t (*Sum)(ConstByteSpan, std::uint32_t)>
void BM_Sum(benchmark::State& state) {
  const auto v = data(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(v.data());
    benchmark::DoNotOptimize(Sum(v, 0));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_Old16BitLoop(benchmark::State& state) {
  BM_Sum<old_checksum_add16>(state);
}
void BM_Old32BitCsum(benchmark::State& state) {
  BM_Sum<old_csum32>(state);
}
void BM_ChecksumAdd(benchmark::State& state) {
  BM_Sum<ie::ied::checksum_add>(state);
}

#define IE_SIZES Arg(64)->Arg(576)->Arg(1236)->Arg(1500)
BENCHMARK(BM_Old16BitLoop)->IE_SIZES;
BENCHMARK(BM_Old32BitCsum)->IE_SIZES;
BENCHMARK(BM_ChecksumAdd)->IE_SIZES;

}  // namespace

BENCHMARK_MAIN();
