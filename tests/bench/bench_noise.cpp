// Noise engine cost: complete Noise_IK and Noise_XX handshakes (25519/ChaChaPoly/BLAKE2b)
// per iteration, both sides in one thread (create both states, every write and read, split
// on both sides), reported as handshakes/s (items_per_second); the IK responder's share
// alone (a server's cost per handshake), also with the static-static DH kept from an earlier
// handshake (an SN's hosts re-keying); and transport encryption /
// decryption with an explicit nonce at 64 and 1400 bytes (bytes_per_second). Statics are
// generated once; ephemerals are fresh per handshake, as in real use.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "ie/crypto/noise.hpp"

namespace {

namespace noise = ie::crypto::noise;

struct Statics {
  noise::KeyPair init = noise::KeyPair::generate();
  noise::KeyPair resp = noise::KeyPair::generate();
};

const Statics& statics() {
  static const Statics s;
  return s;
}

// One full handshake of `pattern` with both sides; aborts on failure (a benchmark measuring
// failed handshakes would report nonsense).
void handshake(const char* name, bool responder_static_known) {
  const Statics& keys = statics();
  noise::HandshakeConfig ic, rc;
  ic.protocol_name = rc.protocol_name = name;
  ic.initiator = true;
  ic.s = keys.init.clone();
  rc.s = keys.resp.clone();
  if (responder_static_known) ic.rs = keys.resp.pub;
  auto i = noise::HandshakeState::create(std::move(ic));
  auto r = noise::HandshakeState::create(std::move(rc));
  if (!i || !r) std::abort();
  std::uint8_t msg[256], payload[256];
  for (int n = 0; n < 3 && !(i->is_complete() && r->is_complete()); ++n) {
    noise::HandshakeState& tx = i->my_turn_to_write() ? *i : *r;
    noise::HandshakeState& rx = i->my_turn_to_write() ? *r : *i;
    auto w = tx.write_message({}, msg);
    if (!w) std::abort();
    if (!rx.read_message(ie::ConstByteSpan(msg, *w), payload)) std::abort();
  }
  auto a = i->split();
  auto b = r->split();
  if (!a || !b) std::abort();
  benchmark::DoNotOptimize(a->first.nonce() + b->first.nonce());
}

// ns per operation of the last run of each benchmark, for the ratio printed at the end.
std::map<std::string, double>& per_op_ns() {
  static std::map<std::string, double> m;
  return m;
}

template <typename Fn>
void timed(benchmark::State& state, const char* key, Fn fn) {
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state)
    fn();
  const auto ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  if (state.iterations() > 0) per_op_ns()[key] = ns / static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_NoiseIKHandshake(benchmark::State& state) {
  timed(state, "ik", [] { handshake("Noise_IK_25519_ChaChaPoly_BLAKE2b", true); });
}

// The baseline: one X25519 operation (libsodium), the cost floor of every handshake. A full
// IK handshake needs 10 of them (2 key generations, 8 DH).
void BM_X25519(benchmark::State& state) {
  const Statics& keys = statics();
  ie::Key32 out;
  timed(state, "x25519", [&] {
    if (!noise::dh(keys.init.priv, keys.resp.pub, &out)) std::abort();
    benchmark::DoNotOptimize(out.data());
  });
}

void BM_NoiseXXHandshake(benchmark::State& state) {
  for (auto _ : state)
    handshake("Noise_XX_25519_ChaChaPoly_BLAKE2b", false);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// The responder's share of an IK handshake (what a server pays per accepted peer): read the
// initiator's first message, write the reply, split. The first message is made once and
// replayed to a fresh responder state each iteration; the work is the same as for a new one.
void ik_responder(benchmark::State& state, const char* key, const ie::Key32* kept_ss) {
  const Statics& keys = statics();
  noise::HandshakeConfig ic;
  ic.protocol_name = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
  ic.initiator = true;
  ic.s = keys.init.clone();
  ic.rs = keys.resp.pub;
  auto i = noise::HandshakeState::create(std::move(ic));
  std::uint8_t first[256], reply[256], payload[256];
  if (!i) std::abort();
  auto first_len = i->write_message({}, first);
  if (!first_len) std::abort();
  timed(state, key, [&] {
    noise::HandshakeConfig rc;
    rc.protocol_name = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
    rc.s = keys.resp.clone();
    if (kept_ss != nullptr)
      rc.precomputed_ss = [kept_ss](const noise::PublicKey&) { return kept_ss; };
    auto r = noise::HandshakeState::create(std::move(rc));
    if (!r || !r->read_message(ie::ConstByteSpan(first, *first_len), payload)) std::abort();
    auto w = r->write_message({}, reply);
    auto cs = r->split();
    if (!w || !cs) std::abort();
    benchmark::DoNotOptimize(cs->first.nonce());
  });
}

void BM_NoiseIKResponder(benchmark::State& state) {
  ik_responder(state, "ik_responder", nullptr);
}

// The same with the static-static DH kept from an earlier handshake with this initiator
// (what an SN's association Node does for a host's re-keys; Peer::static_dh): one X25519
// fewer.
void BM_NoiseIKResponderKeptSs(benchmark::State& state) {
  static const ie::Key32 kept = [] {
    ie::Key32 k;
    if (!noise::dh(statics().resp.priv, statics().init.pub, &k)) std::abort();
    return k;
  }();
  ik_responder(state, "ik_responder_kept_ss", &kept);
}

void BM_NoiseEncryptWithNonce(benchmark::State& state) {
  const noise::CipherState cs(ie::Key32{});
  const ie::Bytes plain(static_cast<std::size_t>(state.range(0)), 0x5a);
  ie::Bytes out(plain.size() + noise::kTagLen);
  std::uint64_t n = 0;
  for (auto _ : state) {
    auto w = cs.encrypt_with_nonce(n++, {}, plain, out);
    benchmark::DoNotOptimize(w);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_NoiseDecryptWithNonce(benchmark::State& state) {
  const noise::CipherState cs(ie::Key32{});
  const ie::Bytes plain(static_cast<std::size_t>(state.range(0)), 0x5a);
  ie::Bytes sealed(plain.size() + noise::kTagLen), out(plain.size());
  if (!cs.encrypt_with_nonce(7, {}, plain, sealed)) std::abort();
  for (auto _ : state) {
    auto r = cs.decrypt_with_nonce(7, {}, sealed, out);
    if (!r) std::abort();
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

BENCHMARK(BM_X25519);
BENCHMARK(BM_NoiseIKHandshake);
BENCHMARK(BM_NoiseXXHandshake);
BENCHMARK(BM_NoiseIKResponder);
BENCHMARK(BM_NoiseIKResponderKeptSs);
BENCHMARK(BM_NoiseEncryptWithNonce)->Arg(64)->Arg(1400);
BENCHMARK(BM_NoiseDecryptWithNonce)->Arg(64)->Arg(1400);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  const auto& m = per_op_ns();
  if (m.count("ik") != 0 && m.count("x25519") != 0) {
    const double floor_ns = 10 * m.at("x25519");
    std::printf("ik_handshakes_per_s %.0f\n", 1e9 / m.at("ik"));
    std::printf("ik_x25519_floor_per_s %.0f (10 X25519 operations)\n", 1e9 / floor_ns);
    std::printf("ik_engine_overhead %.3f (IK time / 10 x X25519 time)\n", m.at("ik") / floor_ns);
  }
  if (m.count("ik_responder") != 0 && m.count("ik_responder_kept_ss") != 0) {
    std::printf("ik_responder_per_s %.0f, with the static-static DH kept %.0f (%.2fx)\n",
                1e9 / m.at("ik_responder"), 1e9 / m.at("ik_responder_kept_ss"),
                m.at("ik_responder") / m.at("ik_responder_kept_ss"));
  }
  return 0;
}
