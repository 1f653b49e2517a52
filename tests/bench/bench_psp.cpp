// PSP datapath cost: libie's PSP v1 (AES-256-GCM) seal and open at 64/512/1400-byte payloads
// next to a bare OpenSSL AES-256-GCM baseline doing the same work (key set once; per op: set
// IV, 16 B AAD, encrypt/decrypt, tag), so the overhead of the PSP layer is visible; and the
// replay window's check+update cost in order and randomly within the window; and a seal on a
// cold SA (its key expanded into a cached context first: BM_PspSealColdSa); and the SPI key
// derivation (PSP's AES-CMAC KDF, once per handshake on an SN) with a CMAC context keyed per
// call (derive_key, the baseline) and kept keyed (MasterKey, what RxKeyring uses). The program
// prints "psp_overhead <op> <size> <ratio>" lines (PSP time / baseline time) and
// "psp_kdf <bits> <ratio>" lines (kept / per call) at the end.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ie/crypto/psp.hpp"
#include "ie/crypto/replay_window.hpp"

namespace {

namespace psp = ie::crypto::psp;

// Per-op times (ns) per (op, size), filled by the benchmarks for the final ratio lines.
std::map<std::pair<std::string, std::int64_t>, double>& timings() {
  static std::map<std::pair<std::string, std::int64_t>, double> t;
  return t;
}

void record(benchmark::State& state, const std::string& op, double elapsed_ns) {
  if (state.iterations() > 0)
    timings()[{op, state.range(0)}] = elapsed_ns / static_cast<double>(state.iterations());
}

psp::Sa make_sa() {
  ie::Key32 m0, m1;
  for (std::size_t i = 0; i < 32; ++i) {
    m0.data()[i] = static_cast<std::uint8_t>(i);
    m1.data()[i] = static_cast<std::uint8_t>(0x80 + i);
  }
  auto sa = psp::Sa::create(psp::derive_key(m0, m1, 0x1234, psp::Version::aes_gcm_256));
  if (!sa.ok()) std::abort();
  return std::move(*sa);
}

void BM_PspSeal(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  psp::Sa sa = make_sa();
  std::vector<std::uint8_t> payload(size, 0x5a), out(size + 64);
  ie::wire::PspHeader h;
  h.spi = 0x1234;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    ++h.iv;
    benchmark::DoNotOptimize(sa.seal(h, payload, out));
    benchmark::ClobberMemory();
  }
  record(state, "seal",
         static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_PspOpen(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  psp::Sa sa = make_sa();
  std::vector<std::uint8_t> payload(size, 0x5a), packet(size + 32), out(size);
  ie::wire::PspHeader h;
  h.spi = 0x1234;
  h.iv = 1;
  if (sa.seal(h, payload, packet) != packet.size()) std::abort();
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    ie::wire::PspHeader got;
    std::size_t len = 0;
    if (ie::wire::parse_psp_header(packet, &got) != ie::wire::DropReason::none ||
        sa.open(got, packet, out, &len) != ie::wire::DropReason::none) {
      state.SkipWithError("open failed");
      break;
    }
    benchmark::DoNotOptimize(len);
    benchmark::ClobberMemory();
  }
  record(state, "open",
         static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// Seals with SAs whose contexts are never cached: range(0) SAs in turn with the per-thread
// context cache capped at half as many slots, so every seal expands its SA's key into a
// context first (the cost of a packet on a cold SA; psp.hpp "context cache"). 64 B payload.
void BM_PspSealColdSa(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<psp::Sa> sas;
  for (std::size_t i = 0; i < n; ++i)
    sas.push_back(make_sa());
  psp::set_context_cache_capacity(n / 2);
  std::vector<std::uint8_t> payload(64, 0x5a), out(64 + 64);
  ie::wire::PspHeader h;
  h.spi = 0x1234;
  std::size_t i = 0;
  const auto misses0 = psp::context_cache_stats().misses;
  for (auto _ : state) {
    ++h.iv;
    benchmark::DoNotOptimize(sas[i].seal(h, payload, out));
    benchmark::ClobberMemory();
    i = i + 1 == n ? 0 : i + 1;
  }
  const auto misses = psp::context_cache_stats().misses - misses0;
  psp::set_context_cache_capacity(psp::kDefaultContextCacheCapacity);
  if (misses != static_cast<std::uint64_t>(state.iterations()))
    state.SkipWithError("a seal hit the context cache");
}

// The baseline: what any AES-256-GCM packet encryption with OpenSSL costs at minimum.
struct RawGcm {
  EVP_CIPHER_CTX* enc = EVP_CIPHER_CTX_new();
  EVP_CIPHER_CTX* dec = EVP_CIPHER_CTX_new();
  RawGcm() {
    std::uint8_t key[32] = {1, 2, 3};
    if (EVP_EncryptInit_ex(enc, EVP_aes_256_gcm(), nullptr, key, nullptr) != 1 ||
        EVP_DecryptInit_ex(dec, EVP_aes_256_gcm(), nullptr, key, nullptr) != 1)
      std::abort();
  }
  ~RawGcm() {
    EVP_CIPHER_CTX_free(enc);
    EVP_CIPHER_CTX_free(dec);
  }
  RawGcm(const RawGcm&) = delete;
  RawGcm& operator=(const RawGcm&) = delete;
  bool seal(const std::uint8_t* iv, const std::uint8_t* aad, std::uint8_t* buf, int n,
            std::uint8_t* tag) {
    int len = 0;
    return EVP_EncryptInit_ex(enc, nullptr, nullptr, nullptr, iv) == 1 &&
           EVP_EncryptUpdate(enc, nullptr, &len, aad, 16) == 1 &&
           EVP_EncryptUpdate(enc, buf, &len, buf, n) == 1 &&
           EVP_EncryptFinal_ex(enc, buf + len, &len) == 1 &&
           EVP_CIPHER_CTX_ctrl(enc, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
  }
  bool open(const std::uint8_t* iv, const std::uint8_t* aad, const std::uint8_t* in,
            std::uint8_t* out, int n, std::uint8_t* tag) {
    int len = 0;
    return EVP_DecryptInit_ex(dec, nullptr, nullptr, nullptr, iv) == 1 &&
           EVP_DecryptUpdate(dec, nullptr, &len, aad, 16) == 1 &&
           EVP_DecryptUpdate(dec, out, &len, in, n) == 1 &&
           EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
           EVP_DecryptFinal_ex(dec, out + len, &len) == 1;
  }
};

void BM_RawGcmSeal(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  RawGcm g;
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(n), 0x5a);
  std::uint8_t iv[12] = {}, aad[16] = {}, tag[16];
  std::uint64_t ctr = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    ++ctr;
    std::memcpy(iv + 4, &ctr, 8);
    if (!g.seal(iv, aad, buf.data(), n, tag)) std::abort();
    benchmark::ClobberMemory();
  }
  record(state, "raw_seal",
         static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_RawGcmOpen(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  RawGcm g;
  std::vector<std::uint8_t> ct(static_cast<std::size_t>(n), 0x5a), out(ct.size());
  std::uint8_t iv[12] = {}, aad[16] = {}, tag[16];
  if (!g.seal(iv, aad, ct.data(), n, tag)) std::abort();
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if (!g.open(iv, aad, ct.data(), out.data(), n, tag)) {
      state.SkipWithError("raw open failed");
      break;
    }
    benchmark::ClobberMemory();
  }
  record(state, "raw_open",
         static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_ReplayInOrder(benchmark::State& state) {
  ie::crypto::ReplayWindow w;
  std::uint64_t seq = 0, accepted = 0;
  for (auto _ : state) {
    ++seq;
    accepted += (w.check(seq) && w.update(seq)) ? 1 : 0;
  }
  benchmark::DoNotOptimize(accepted);
  if (accepted != seq) state.SkipWithError("an in-order number was rejected");
}

void BM_ReplayRandomInWindow(benchmark::State& state) {
  // Every number is fresh but arrives out of order: blocks of 2048 consecutive numbers, each
  // block shuffled (so packets up to 2047 behind the top arrive), blocks in order. The
  // precomputed 64 Ki pattern repeats shifted by 64 Ki, so nothing is ever a replay.
  constexpr std::size_t kPattern = 1 << 16, kChunk = 2048;
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> seqs(kPattern);
  for (std::size_t i = 0; i < kPattern; ++i)
    seqs[i] = i;
  for (std::size_t c = 0; c < kPattern; c += kChunk)
    std::shuffle(seqs.begin() + static_cast<std::ptrdiff_t>(c),
                 seqs.begin() + static_cast<std::ptrdiff_t>(c + kChunk), rng);
  ie::crypto::ReplayWindow w;
  std::uint64_t i = 0, accepted = 0;
  for (auto _ : state) {
    const std::uint64_t s = seqs[i & (kPattern - 1)] + (i & ~std::uint64_t{kPattern - 1});
    ++i;
    accepted += (w.check(s) && w.update(s)) ? 1 : 0;
  }
  benchmark::DoNotOptimize(accepted);
  if (accepted != i) state.SkipWithError("a fresh number was rejected");
}

// Arg: key bits (128: one CMAC block, 256: two).
psp::Version kdf_version(const benchmark::State& state) {
  return state.range(0) == 128 ? psp::Version::aes_gcm_128 : psp::Version::aes_gcm_256;
}

void BM_KdfKeyedPerCall(benchmark::State& state) {
  ie::Key32 m;
  for (std::size_t i = 0; i < m.size(); ++i)
    m.data()[i] = static_cast<std::uint8_t>(i);
  std::uint32_t spi = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    psp::Key k = psp::derive_key(m, m, ++spi & 0x7fffffffu, kdf_version(state));
    benchmark::DoNotOptimize(k.bytes.data());
  }
  record(state, "kdf_per_call",
         std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
}

void BM_KdfKeptMasterKey(benchmark::State& state) {
  ie::Key32 m;
  for (std::size_t i = 0; i < m.size(); ++i)
    m.data()[i] = static_cast<std::uint8_t>(i);
  psp::MasterKey mk(m);
  std::uint32_t spi = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    psp::Key k = mk.derive(++spi & 0x7fffffffu, kdf_version(state));
    benchmark::DoNotOptimize(k.bytes.data());
  }
  record(state, "kdf_kept",
         std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace

BENCHMARK(BM_KdfKeyedPerCall)->Arg(128)->Arg(256);
BENCHMARK(BM_KdfKeptMasterKey)->Arg(128)->Arg(256);
BENCHMARK(BM_PspSeal)->Arg(64)->Arg(512)->Arg(1400);
BENCHMARK(BM_RawGcmSeal)->Arg(64)->Arg(512)->Arg(1400);
BENCHMARK(BM_PspSealColdSa)->Arg(64);
BENCHMARK(BM_PspOpen)->Arg(64)->Arg(512)->Arg(1400);
BENCHMARK(BM_RawGcmOpen)->Arg(64)->Arg(512)->Arg(1400);
BENCHMARK(BM_ReplayInOrder);
BENCHMARK(BM_ReplayRandomInWindow);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // PSP time / bare AES-GCM time per packet, from the last run of each benchmark.
  for (const char* op : {"seal", "open"}) {
    for (std::int64_t size : {64, 512, 1400}) {
      const auto& t = timings();
      const auto p = t.find({op, size});
      const auto r = t.find({std::string("raw_") + op, size});
      if (p != t.end() && r != t.end() && r->second > 0)
        std::printf("psp_overhead %s %lld %.3f\n", op, static_cast<long long>(size),
                    p->second / r->second);
    }
  }
  for (std::int64_t bits : {128, 256}) {
    const auto& t = timings();
    const auto kept = t.find({"kdf_kept", bits});
    const auto per_call = t.find({"kdf_per_call", bits});
    if (kept != t.end() && per_call != t.end() && per_call->second > 0)
      std::printf("psp_kdf %lld %.3f (%.0f ns kept, %.0f ns keyed per call)\n",
                  static_cast<long long>(bits), kept->second / per_call->second, kept->second,
                  per_call->second);
  }
  return 0;
}
