// The SN's packet path in process, without system calls: packets per second per core, at two
// levels (docs/sn.md, "The packet path"):
//
// 1. BM_Worker*: iesn's own pipe-terminus, ie::sn::Worker::process_batch (H3's worker, the
//    code iesn runs), fed batches of 64 pre-sealed datagrams through a port that swallows
//    what it sends: PSP open, cache lookup, module call on a miss, re-seal, queueing and the
//    send_batch call, everything but the system calls. Cases: the decision-cache hit path
//    (service ip, entries pre-filled) with 1k entries, 1M entries and a hot flow, and 1M
//    entries with traffic spread over all of them; the null service (every packet crosses
//    the module boundary and is forwarded by its inner destination); multicast hits to H
//    next hops.
// 2. BM_Libie*: the same hit path assembled from libie alone (RxSaTable::open_ilp ->
//    DecisionCache::lookup -> TxSa::seal_in_place, one packet at a time), the floor the
//    worker is compared with, and BM_LibieOpenSeal without the lookup (the crypto floor).
//
// Stages per packet of the libie path (one buffer, owned by the benchmark throughout):
//   1. copy a pre-sealed datagram (16 B PSP header, ILP header, inner IPv4/UDP packet with a
//      64-byte payload, 16 B tag) into the receive buffer, as recvmmsg would;
//   2. RxSaTable::open_ilp in place (SA by SPI, replay check, AES-256-GCM open, ILP parse);
//   3. DecisionCache::lookup by (outer source address, service id, connection id);
//   4. re-seal for each next hop: in place for the first (the old PSP header is the new
//      one's headroom), a copy per extra hop (multicast replication).
//
// The outer source address (part of the cache key) comes from recvmmsg, not from the packet,
// so "1M flows" are 1M simulated hosts' addresses in random order. The ring of pre-sealed
// packets is re-keyed (a fresh replay window) each time it wraps: one SA install per 4096
// packets. At the end: "sn_path" summary lines with the ratios, from per-thread CPU time,
// best of the repetitions:
//   bench_sn_path --benchmark_min_time=0.3 --benchmark_repetitions=5
//                 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <netinet/in.h>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ie/crypto/psp.hpp"
#include "ie/crypto/sa_table.hpp"
#include "ie/io/datagram.hpp"
#include "ie/sn/decision_cache.hpp"
#include "ie/sn/modules.hpp"
#include "ie/sn/routing.hpp"
#include "ie/sn/worker.hpp"
#include "ie/wire/ilp.hpp"
#include "ie/wire/psp.hpp"
#include "ie/wire/service_id.hpp"

namespace {

namespace psp = ie::crypto::psp;
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
using ie::sn::DecisionCache;
using ie::sn::FlowKey;

constexpr std::size_t kPayload = 64;
constexpr std::size_t kInner = 20 + 8 + kPayload;  // IPv4 + UDP + payload
constexpr std::size_t kRing = 4096;                // pre-sealed datagrams
constexpr std::size_t kSlot = 256;                 // bytes per datagram buffer
constexpr std::uint32_t kHostSpi = 0x00010001;     // the sending host's SPI at the SN
constexpr std::uint64_t kConn = 7;

// Per-packet time (ns) by case name, for the summary lines: the best of the repetitions
// (--benchmark_repetitions), since on a shared machine noise only ever adds time.
std::map<std::string, double>& timings() {
  static std::map<std::string, double> t;
  return t;
}
void keep_best(const std::string& name, double ns) {
  auto [it, fresh] = timings().emplace(name, ns);
  if (!fresh) it->second = std::min(it->second, ns);
}

void record(benchmark::State& state, const std::string& name, Clock::time_point start) {
  const double ns = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
  if (state.iterations() > 0) keep_best(name, ns / static_cast<double>(state.iterations()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

psp::Key key_for(std::uint32_t spi, std::uint8_t seed) {
  ie::Key32 m0, m1;
  for (std::size_t i = 0; i < 32; ++i) {
    m0.data()[i] = static_cast<std::uint8_t>(seed + i);
    m1.data()[i] = static_cast<std::uint8_t>(0x80 + seed + i);
  }
  return psp::derive_key(m0, m1, spi, psp::Version::aes_gcm_256);
}

// A minimal IPv4/UDP packet 10.1.0.1 -> 10.1.0.2 with a 64-byte payload (checksums 0: no
// one on this path verifies them).
std::vector<std::uint8_t> inner_packet() {
  std::vector<std::uint8_t> p(kInner, 0);
  p[0] = 0x45;
  p[2] = static_cast<std::uint8_t>(kInner >> 8);
  p[3] = static_cast<std::uint8_t>(kInner);
  p[8] = 64;
  p[9] = 17;
  const std::uint8_t src[] = {10, 1, 0, 1}, dst[] = {10, 1, 0, 2};
  std::memcpy(p.data() + 12, src, 4);
  std::memcpy(p.data() + 16, dst, 4);
  p[20] = 0x30;  // ports 12345 -> 12346
  p[21] = 0x39;
  p[22] = 0x30;
  p[23] = 0x3a;
  p[24] = static_cast<std::uint8_t>((8 + kPayload) >> 8);
  p[25] = static_cast<std::uint8_t>(8 + kPayload);
  for (std::size_t i = 28; i < kInner; ++i)
    p[i] = static_cast<std::uint8_t>(i);
  return p;
}

// The host's pre-sealed packets: kRing datagrams with IVs 1..kRing, `service`.
struct SealedRing {
  std::vector<std::uint8_t> mem = std::vector<std::uint8_t>(kRing * kSlot);
  std::size_t len = 0;

  explicit SealedRing(std::uint16_t service) {
    auto host = ie::crypto::TxSa::create(kHostSpi, key_for(kHostSpi, 1));
    if (!host.ok()) std::abort();
    const auto inner = inner_packet();
    const ie::wire::IlpHeader h{service, kConn, 0};
    for (std::size_t i = 0; i < kRing; ++i) {
      len = host->seal_ilp(h, {}, inner, ie::ByteSpan(mem.data() + i * kSlot, kSlot));
      if (len == 0) std::abort();
    }
  }
  const std::uint8_t* at(std::size_t i) const { return mem.data() + i * kSlot; }
};

// What one SN worker holds for the libie-only path: the host's receive SA, send SAs towards
// up to 8 next hops (pipes 1..8), and the pre-sealed input.
struct LibiePath {
  ie::crypto::RxSaTable rx;
  std::vector<ie::crypto::TxSa> tx;  // tx[pipe - 1]
  std::vector<std::uint8_t> ring;    // kRing datagrams of `len` bytes, kSlot apart
  std::size_t len = 0;
  std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(kSlot);
  std::vector<std::vector<std::uint8_t>> copies;  // one buffer per extra hop

  LibiePath() {
    SealedRing sealed(static_cast<std::uint16_t>(ie::wire::ServiceId::ip));
    ring = std::move(sealed.mem);
    len = sealed.len;
    for (std::uint32_t pipe = 1; pipe <= ie::sn::kMaxNextHops; ++pipe) {
      auto t = ie::crypto::TxSa::create(0x00020000 + pipe, key_for(0x00020000 + pipe, 50));
      if (!t.ok()) std::abort();
      tx.push_back(std::move(*t));
      copies.emplace_back(kSlot);
    }
    rekey();
  }

  void rekey() {
    if (!rx.install(kHostSpi, key_for(kHostSpi, 1), 1).ok()) std::abort();
  }

  // Stages 1-2 for ring slot i; the opened ILP header + inner length, or 0 on a drop.
  std::size_t receive(std::size_t i, ie::crypto::OpenedIlp* opened) {
    if (i == 0) rekey();
    std::memcpy(buf.data(), ring.data() + i * kSlot, len);
    if (rx.open_ilp(ie::ByteSpan(buf.data(), len), opened) != ie::wire::DropReason::none) return 0;
    return opened->ilp.header_len + opened->ilp.inner.size();
  }

  // Stage 4: one sealed datagram per hop; returns the bytes queued (for DoNotOptimize).
  std::size_t forward(std::span<const ie::sn::NextHop> hops, std::size_t ilp_and_inner) {
    std::size_t out = 0;
    for (std::size_t k = 1; k < hops.size(); ++k) {
      auto& c = copies[k];
      std::memcpy(c.data() + ie::wire::kPspHeaderLen, buf.data() + ie::wire::kPspHeaderLen,
                  ilp_and_inner);
      out += tx[hops[k] - 1].seal_in_place(ie::ByteSpan(c.data(), c.size()), ilp_and_inner);
    }
    if (!hops.empty())
      out += tx[hops[0] - 1].seal_in_place(ie::ByteSpan(buf.data(), buf.size()), ilp_and_inner);
    return out;
  }
};

// Outer source addresses of `n` simulated hosts, each with one flow (service ip, kConn).
std::vector<FlowKey> flow_keys(std::size_t n) {
  std::mt19937_64 rng(11);
  std::vector<FlowKey> keys;
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    keys.push_back(FlowKey::ipv4(static_cast<std::uint32_t>(rng()),
                                 static_cast<std::uint16_t>(ie::wire::ServiceId::ip), kConn));
  return keys;
}

// The order in which packets arrive from the first `flows` of `keys`: random, every flow at
// least once, at least 2^18 long; read sequentially by the loop.
std::vector<ie::sn::FlowKey> arrival_order(const std::vector<FlowKey>& keys, std::size_t flows) {
  std::mt19937_64 rng(12);
  const std::size_t n = std::max<std::size_t>(std::size_t{1} << 18, flows);
  std::vector<FlowKey> order;
  order.reserve(n);
  std::vector<FlowKey> round(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(flows));
  while (order.size() < n) {
    std::shuffle(round.begin(), round.end(), rng);
    for (const auto& k : round)
      if (order.size() < n) order.push_back(k);
  }
  return order;
}

std::vector<ie::sn::NextHop> first_hops(std::size_t n, ie::sn::NextHop first) {
  std::vector<ie::sn::NextHop> hops;
  for (std::size_t k = 0; k < n; ++k)
    hops.push_back(static_cast<ie::sn::NextHop>(first + k));
  return hops;
}

// ---- 2. libie only -------------------------------------------------------------------------

void run_libie_hit(benchmark::State& state, std::size_t entries, std::size_t flows,
                   std::size_t hop_count, const std::string& name) {
  LibiePath w;
  const auto hops = first_hops(hop_count, 1);
  const auto keys = flow_keys(entries);
  DecisionCache cache(entries);
  const auto decision = ie::sn::Decision::forward_to(hops);
  std::uint64_t now = 1;
  for (const auto& k : keys)
    if (!cache.insert(k, decision, ++now)) std::abort();
  const auto order = arrival_order(keys, flows);
  std::size_t i = 0, j = 0, bytes = 0;
  const auto start = Clock::now();
  for (auto _ : state) {
    ie::crypto::OpenedIlp opened;
    const std::size_t n = w.receive(i, &opened);
    if (n == 0) {
      state.SkipWithError("open failed");
      break;
    }
    FlowKey key = order[j];  // the outer source address comes from recvmmsg, not the packet
    key.service_id = opened.ilp.header.service_id;
    key.connection_id = opened.ilp.header.connection_id;
    const ie::sn::Decision* d = cache.lookup(key, ++now);
    if (d == nullptr || d->action != ie::sn::Action::forward) {
      state.SkipWithError("cache miss on the hit path");
      break;
    }
    bytes += w.forward(d->next_hops(), n);
    if (++i == kRing) i = 0;
    if (++j == order.size()) j = 0;
  }
  record(state, name, start);
  benchmark::DoNotOptimize(bytes);
  if (w.rx.drops().total() != 0) state.SkipWithError("packets were dropped");
}

void BM_LibieHit(benchmark::State& state) {
  const auto entries = static_cast<std::size_t>(state.range(0));
  const auto flows = static_cast<std::size_t>(state.range(1));
  run_libie_hit(state, entries, flows, 1,
                "libie_hit/" + std::to_string(entries) + "/" + std::to_string(flows));
}

void BM_LibieFanout(benchmark::State& state) {
  const auto hops = static_cast<std::size_t>(state.range(0));
  run_libie_hit(state, 1000, 1000, hops, "libie_fanout/" + std::to_string(hops));
}

// The crypto floor: copy, open, re-seal, no lookup.
void BM_LibieOpenSeal(benchmark::State& state) {
  LibiePath w;
  const ie::sn::NextHop hop[] = {1};
  std::size_t i = 0, bytes = 0;
  const auto start = Clock::now();
  for (auto _ : state) {
    ie::crypto::OpenedIlp opened;
    const std::size_t n = w.receive(i, &opened);
    if (n == 0) {
      state.SkipWithError("open failed");
      break;
    }
    bytes += w.forward(hop, n);
    if (++i == kRing) i = 0;
  }
  record(state, "libie_open_seal", start);
  benchmark::DoNotOptimize(bytes);
}

// ---- 1. iesn's worker ------------------------------------------------------------------------

// The worker's port: receives nothing (the benchmark hands batches to process_batch) and
// swallows what it sends, counting it.
class SinkPort final : public ie::io::DatagramPort {
 public:
  ie::Result<std::size_t> recv_batch(std::span<ie::io::Datagram>) override { return 0; }
  ie::Result<std::size_t> send_batch(std::span<const ie::io::Datagram> in) override {
    sent += in.size();
    return in.size();
  }
  int fd() const override { return -1; }
  std::uint64_t sent = 0;
};

sockaddr_storage v4_endpoint(std::uint32_t addr, std::uint16_t port, socklen_t* len) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(addr);
  in.sin_port = htons(port);
  sockaddr_storage s{};
  std::memcpy(&s, &in, sizeof in);
  *len = sizeof in;
  return s;
}

std::uint32_t v4_of(const FlowKey& k) {
  return ie::load_be32(k.src.data() + 12);
}

constexpr ie::sn::PipeId kSender = 1;  // the sending host's pipe; receivers are 2, 3, ...

// One iesn worker (index 0 of 1) with the built-in null and ip modules, the sending host's
// pipe (receive SA, registered inner address 10.1.0.1) and `receivers` host pipes (send SAs,
// 10.1.0.2, 10.1.0.3, ...), fed from a ring of pre-sealed packets of one service.
struct WorkerRig {
  std::unique_ptr<ie::sn::ModuleRuntime> runtime;
  std::unique_ptr<ie::sn::Worker> worker;
  SinkPort* port = nullptr;
  SealedRing ring;
  std::vector<std::uint8_t> mem = std::vector<std::uint8_t>(kBatch * kSlot);
  std::vector<ie::io::Datagram> batch = std::vector<ie::io::Datagram>(kBatch);
  std::size_t next = 0;  // ring position

  static constexpr std::size_t kBatch = 64;

  // imposed: the built-in passthrough module runs as an imposed stage on every packet
  // (allow list "ip 10.1.0.0/16": everything the rig sends passes), as on a pass-through SN
  // without an upstream.
  WorkerRig(std::uint16_t service, std::size_t cache_capacity, std::size_t receivers,
            bool imposed = false)
      : ring(service) {
    ie::sn::RuntimeOptions ro;
    if (imposed) ro.module_config["passthrough"]["allow"] = "ip 10.1.0.0/16";
    auto rt = ie::sn::ModuleRuntime::create(ro);
    if (!rt.ok() || !(*rt)->add_builtin(ie::sn::null_module()).ok() ||
        !(*rt)->add_builtin(ie::sn::ip_module()).ok() ||
        (imposed && !(*rt)->add_builtin(ie::sn::passthrough_module()).ok()))
      std::abort();
    runtime = std::move(*rt);
    ie::sn::WorkerOptions wo;
    wo.index = 0;
    wo.workers = 1;
    if (imposed) wo.imposed.push_back(static_cast<std::uint16_t>(ie::wire::ServiceId::passthrough));
    wo.cache_capacity = cache_capacity;
    wo.routes.self = "bench.sn1";
    wo.routes.gateway = "bench.sn1";
    auto sink = std::make_unique<SinkPort>();
    port = sink.get();
    auto w = ie::sn::Worker::create(std::move(wo), std::move(sink));
    if (!w.ok()) std::abort();
    worker = std::move(*w);
    if (!worker->start_modules(*runtime).ok()) std::abort();
    for (std::size_t r = 0; r <= receivers; ++r) {
      const auto pipe = static_cast<ie::sn::PipeId>(kSender + r);
      socklen_t len = 0;
      const auto addr = v4_endpoint(0x7f000001, static_cast<std::uint16_t>(40000 + r), &len);
      worker->pipe_up(pipe, IE_SN_PIPE_HOST, "", addr, len);
      ie::sn::RouteOp reg;
      reg.kind = ie::sn::RouteOp::Kind::register_host;
      reg.pipe = pipe;
      reg.addrs.push_back(ie::sn::mapped_v4(0x0a010001 + static_cast<std::uint32_t>(r)));
      if (!worker->routes().apply(reg).ok()) std::abort();
      if (r == 0) continue;
      const std::uint32_t spi = 0x00020000 + pipe;
      if (!worker->install_tx(pipe, spi, key_for(spi, 50), ie::crypto::make_shared_iv_counter())
               .ok())
        std::abort();
    }
    rekey();
  }

  void rekey() {
    if (!worker->install_rx(kHostSpi, key_for(kHostSpi, 1), kSender).ok()) std::abort();
  }

  // One batch of kBatch datagrams from the ring, sources from `order` starting at *j.
  void run_batch(const std::vector<FlowKey>& order, std::size_t* j) {
    if (next == 0) rekey();
    for (std::size_t i = 0; i < kBatch; ++i) {
      ie::io::Datagram& d = batch[i];
      std::memcpy(mem.data() + i * kSlot, ring.at(next + i), ring.len);
      d.buf = ie::ByteSpan(mem.data() + i * kSlot, kSlot);
      d.len = ring.len;
      d.peer = v4_endpoint(v4_of(order[*j]), 40000, &d.peer_len);
      if (++*j == order.size()) *j = 0;
    }
    next = (next + kBatch) % kRing;
    worker->process_batch(batch);
  }

  std::uint64_t drops() const {
    std::uint64_t n = 0;
    for (std::size_t r = 1; r < ie::wire::kDropReasonCount; ++r)
      n += worker->drops(static_cast<ie::wire::DropReason>(r));
    return n;
  }
};

void run_worker(benchmark::State& state, std::uint16_t service, std::size_t entries,
                std::size_t flows, std::size_t hop_count, const std::string& name,
                bool imposed = false) {
  WorkerRig rig(service, std::max<std::size_t>(entries, 1024), hop_count, imposed);
  const auto keys = flow_keys(std::max<std::size_t>(entries, flows));
  if (service == static_cast<std::uint16_t>(ie::wire::ServiceId::ip)) {
    const auto decision = ie::sn::Decision::forward_to(first_hops(hop_count, kSender + 1));
    for (std::size_t k = 0; k < entries; ++k)  // stamped with the hops' role epochs
      if (!rig.worker->cache_insert(keys[k], decision)) std::abort();
  }
  const auto order = arrival_order(keys, flows);
  std::size_t j = 0;
  const auto hits0 = rig.worker->cache_stats().hits;
  const auto start = Clock::now();
  for (auto _ : state)
    rig.run_batch(order, &j);
  const double ns = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
  const auto packets = static_cast<std::uint64_t>(state.iterations()) * WorkerRig::kBatch;
  if (packets > 0) keep_best(name, ns / static_cast<double>(packets));
  state.SetItemsProcessed(static_cast<std::int64_t>(packets));
  state.counters["hit_ratio"] = static_cast<double>(rig.worker->cache_stats().hits - hits0) /
                                static_cast<double>(std::max<std::uint64_t>(packets, 1));
  if (rig.drops() != 0) state.SkipWithError("the worker dropped packets");
  if (rig.port->sent != packets * hop_count) state.SkipWithError("not every packet was sent");
  if (imposed) {
    const auto c = rig.runtime->counters();
    const auto it = c.find("passthrough.allowed");
    if (it == c.end() || it->second < packets)
      state.SkipWithError("the imposed stage did not see every packet");
  }
}

void BM_WorkerHit(benchmark::State& state) {
  const auto entries = static_cast<std::size_t>(state.range(0));
  const auto flows = static_cast<std::size_t>(state.range(1));
  run_worker(state, static_cast<std::uint16_t>(ie::wire::ServiceId::ip), entries, flows, 1,
             "worker_hit/" + std::to_string(entries) + "/" + std::to_string(flows));
}

// The hit path behind one imposed stage (docs/sn.md "Stages"): every packet crosses into
// the passthrough module, one packet at a time, before its cache lookup.
void BM_WorkerImposed(benchmark::State& state) {
  run_worker(state, static_cast<std::uint16_t>(ie::wire::ServiceId::ip), 1000, 1000, 1,
             "worker_imposed", true);
}

void BM_WorkerNull(benchmark::State& state) {
  run_worker(state, static_cast<std::uint16_t>(ie::wire::ServiceId::null), 0, 1000, 1,
             "worker_null");
}

void BM_WorkerFanout(benchmark::State& state) {
  const auto hops = static_cast<std::size_t>(state.range(0));
  run_worker(state, static_cast<std::uint16_t>(ie::wire::ServiceId::ip), 1000, 1000, hops,
             "worker_fanout/" + std::to_string(hops));
}

BENCHMARK(BM_WorkerHit)->Args({1000, 1000})->Args({1000000, 1})->Args({1000000, 1000000});
BENCHMARK(BM_WorkerImposed);
BENCHMARK(BM_WorkerNull);
BENCHMARK(BM_WorkerFanout)->Arg(1)->Arg(2)->Arg(4)->Arg(8);
BENCHMARK(BM_LibieOpenSeal);
BENCHMARK(BM_LibieHit)->Args({1000, 1000})->Args({1000000, 1})->Args({1000000, 1000000});
BENCHMARK(BM_LibieFanout)->Arg(1)->Arg(2)->Arg(4)->Arg(8);

void summary(const std::string& layer) {
  const auto& t = timings();
  auto get = [&](const std::string& k) {
    const auto it = t.find(k);
    return it == t.end() ? 0.0 : it->second;
  };
  const double base = get(layer + "_hit/1000/1000");
  if (base <= 0) return;
  std::printf("sn_path %s hit, 1k entries: %.1f ns/packet = %.0f kpps per core\n", layer.c_str(),
              base, 1e6 / base);
  for (const char* k : {"_hit/1000000/1", "_hit/1000000/1000000"})
    if (const double v = get(layer + k); v > 0)
      std::printf("sn_path %s%s vs 1k entries: %.3f (%.1f ns)\n", layer.c_str(), k, base / v, v);
  if (const double v = get(layer + "_null"); v > 0)
    std::printf("sn_path %s null service vs hit: %.3f (%.1f ns = %.0f kpps per core)\n",
                layer.c_str(), base / v, v, 1e6 / v);
  if (const double v = get(layer + "_imposed"); v > 0)
    std::printf("sn_path %s one imposed stage vs hit: %.3f (%.1f ns, +%.1f ns per packet)\n",
                layer.c_str(), base / v, v, v - base);
  if (const double v = get(layer + "_open_seal"); v > 0)
    std::printf("sn_path %s lookup share of the hit path: %.1f ns (%.1f%%)\n", layer.c_str(),
                base - v, 100.0 * (base - v) / base);
  const double f1 = get(layer + "_fanout/1"), f8 = get(layer + "_fanout/8");
  if (f1 > 0 && f8 > 0) {
    for (int h : {2, 4, 8})
      if (const double fh = get(layer + "_fanout/" + std::to_string(h)); fh > 0)
        std::printf(
            "sn_path %s fanout %d hops: %.1f ns/input packet, %.1f ns per extra "
            "destination = %.3fx a 1-hop packet\n",
            layer.c_str(), h, fh, (fh - f1) / (h - 1), (fh - f1) / (h - 1) / f1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  summary("worker");
  summary("libie");
  if (timings().count("worker_hit/1000/1000") && timings().count("libie_hit/1000/1000"))
    std::printf("sn_path worker overhead over the libie-only hit path: %.1f ns/packet\n",
                timings()["worker_hit/1000/1000"] - timings()["libie_hit/1000/1000"]);
  return 0;
}
