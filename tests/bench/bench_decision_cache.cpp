// Decision-cache cost (ie/sn/decision_cache.hpp), the SN fast path's exact-match table: a
// lookup that hits with 1k, 10k, 100k and 1M entries (keys looked up in random order over
// the whole table, so at 1M the ~100 MB of entries and index defeat every CPU cache while
// 1k stays in L1/L2), a lookup that misses, and an insert into a full table (every insert
// evicts one entry with CLOCK). The probe keys are read sequentially from a pre-shuffled
// array, so the only random memory accesses are the table's own.
//
// At the end the program prints "cache_ratio <op> <N>/1k <ratio>" lines: throughput with N
// entries / throughput with 1k entries (1.0 = size costs nothing), from per-thread CPU time,
// best of the repetitions. The target is on the whole hit path (open + lookup +
// seal), which bench_sn_path measures; this program isolates the table's own share.
//   bench_decision_cache --benchmark_min_time=0.3 --benchmark_repetitions=5
//                        --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ie/sn/decision_cache.hpp"

namespace {

using ie::sn::DecisionCache;
using ie::sn::FlowKey;

// Per-op time (ns) per (op, entries), for the ratio lines.
std::map<std::pair<std::string, std::int64_t>, double>& timings() {
  static std::map<std::pair<std::string, std::int64_t>, double> t;
  return t;
}

// Per-thread CPU time, not wall time: the figures stay honest on a machine shared with other
// work (this benchmark never sleeps or blocks, so the two agree on a quiet machine).
struct Clock {
  using time_point = std::chrono::nanoseconds;
  static time_point now() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  }
};

void record(benchmark::State& state, const std::string& op, Clock::time_point start) {
  const double ns = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
  if (state.iterations() > 0) {
    // The best of the repetitions (--benchmark_repetitions): noise only ever adds time.
    const double per_op = ns / static_cast<double>(state.iterations());
    auto [it, fresh] = timings().emplace(std::make_pair(op, state.range(0)), per_op);
    if (!fresh) it->second = std::min(it->second, per_op);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// n distinct keys that look like real flows: random IPv4 sources, service ip, random
// connection ids.
std::vector<FlowKey> random_keys(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<FlowKey> keys;
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    keys.push_back(FlowKey::ipv4(static_cast<std::uint32_t>(rng()), 1, rng()));
  return keys;
}

// At least kMinProbes lookups' worth of keys drawn from `from` in random order (every key
// of `from` at least once when it is larger), read sequentially by the benchmark loop.
constexpr std::size_t kMinProbes = std::size_t{1} << 18;

std::vector<FlowKey> probe_sequence(const std::vector<FlowKey>& from, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<FlowKey> probes;
  const std::size_t n = std::max(kMinProbes, from.size());
  probes.reserve(n);
  while (probes.size() < n) {
    std::vector<FlowKey> round = from;
    std::shuffle(round.begin(), round.end(), rng);
    for (const auto& k : round) {
      if (probes.size() == n) break;
      probes.push_back(k);
    }
  }
  return probes;
}

const ie::sn::NextHop kHop[] = {7};

DecisionCache filled_cache(const std::vector<FlowKey>& keys) {
  DecisionCache cache(keys.size());
  const auto d = ie::sn::Decision::forward_to(kHop);
  std::uint64_t now = 1;
  for (const auto& k : keys)
    if (!cache.insert(k, d, ++now)) std::abort();
  if (cache.size() != keys.size()) std::abort();
  return cache;
}

void BM_LookupHit(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto keys = random_keys(n, 1);
  DecisionCache cache = filled_cache(keys);
  const auto probes = probe_sequence(keys, 2);
  std::size_t i = 0;
  std::uint64_t now = n + 1, hops = 0;
  const auto start = Clock::now();
  for (auto _ : state) {
    const auto* d = cache.lookup(probes[i], ++now);
    if (d == nullptr) {
      state.SkipWithError("a present key missed");
      break;
    }
    hops += d->hops[0];  // use the entry, as the fast path does
    if (++i == probes.size()) i = 0;
  }
  record(state, "hit", start);
  benchmark::DoNotOptimize(hops);
  if (cache.stats().evictions != 0) state.SkipWithError("lookups evicted entries");
}

void BM_LookupMiss(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto keys = random_keys(n, 1);
  DecisionCache cache = filled_cache(keys);
  const auto probes = probe_sequence(random_keys(kMinProbes, 3), 4);  // absent (2^-96 odds)
  std::size_t i = 0;
  std::uint64_t now = n + 1;
  const auto start = Clock::now();
  for (auto _ : state) {
    if (cache.lookup(probes[i], ++now) != nullptr) {
      state.SkipWithError("an absent key hit");
      break;
    }
    if (++i == probes.size()) i = 0;
  }
  record(state, "miss", start);
}

constexpr std::size_t kInsertIterations = std::size_t{1} << 20;

// A full table; every insert is a new key, so every insert evicts (CLOCK sweep + index
// deletion + insertion): the cost the module path pays when flows outnumber entries.
void BM_InsertEvict(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  DecisionCache cache = filled_cache(random_keys(n, 1));
  const auto fresh = random_keys(kInsertIterations, 5);
  const auto d = ie::sn::Decision::forward_to(kHop);
  std::size_t i = 0;
  std::uint64_t now = n + 1;
  const auto evictions0 = cache.stats().evictions;
  const auto start = Clock::now();
  for (auto _ : state) {
    // After one pass over `fresh` its keys are in the table; re-inserting them then replaces
    // instead of evicting, so the pass is bounded to fresh.size() iterations.
    if (i == fresh.size()) {
      state.SkipWithError("ran out of fresh keys; lower --benchmark_min_time");
      break;
    }
    if (!cache.insert(fresh[i++], d, ++now)) std::abort();
  }
  record(state, "insert_evict", start);
  if (cache.stats().evictions - evictions0 != static_cast<std::uint64_t>(state.iterations()))
    state.SkipWithError("not every insert evicted");
}

void Sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {1000, 10000, 100000, 1000000})
    b->Arg(n);
}

BENCHMARK(BM_LookupHit)->Apply(Sizes);
BENCHMARK(BM_LookupMiss)->Arg(1000)->Arg(1000000);
BENCHMARK(BM_InsertEvict)->Arg(1000)->Arg(1000000)->Iterations(kInsertIterations);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // Throughput ratio against the 1k-entry table: t(1k) / t(N).
  for (const auto& [key, ns] : timings()) {
    const auto& [op, n] = key;
    if (n == 1000) continue;
    const auto base = timings().find({op, 1000});
    if (base == timings().end() || ns <= 0) continue;
    std::printf("cache_ratio %s %lld/1k %.3f (%.1f ns vs %.1f ns)\n", op.c_str(),
                static_cast<long long>(n), base->second / ns, ns, base->second);
  }
  return 0;
}
