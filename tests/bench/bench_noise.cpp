// Noise engine cost: complete Noise_IK and Noise_XX handshakes (25519/ChaChaPoly/BLAKE2b)
// per iteration, both sides in one thread (create both states, every write and read, split
// on both sides), reported as handshakes/s (items_per_second); the IK responder's share
// alone (a server's cost per handshake); and transport encryption /
// decryption with an explicit nonce at 64 and 1400 bytes (bytes_per_second). Statics are
// generated once; ephemerals are fresh per handshake, as in real use.
#include <benchmark/benchmark.h>

#include <cstdlib>

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

void BM_NoiseIKHandshake(benchmark::State& state) {
  for (auto _ : state)
    handshake("Noise_IK_25519_ChaChaPoly_BLAKE2b", true);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_NoiseXXHandshake(benchmark::State& state) {
  for (auto _ : state)
    handshake("Noise_XX_25519_ChaChaPoly_BLAKE2b", false);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// The responder's share of an IK handshake (what a server pays per accepted peer): read the
// initiator's first message, write the reply, split. The first message is made once and
// replayed to a fresh responder state each iteration; the work is the same as for a new one.
void BM_NoiseIKResponder(benchmark::State& state) {
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
  for (auto _ : state) {
    noise::HandshakeConfig rc;
    rc.protocol_name = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
    rc.s = keys.resp.clone();
    auto r = noise::HandshakeState::create(std::move(rc));
    if (!r || !r->read_message(ie::ConstByteSpan(first, *first_len), payload)) std::abort();
    auto w = r->write_message({}, reply);
    auto cs = r->split();
    if (!w || !cs) std::abort();
    benchmark::DoNotOptimize(cs->first.nonce());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
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

BENCHMARK(BM_NoiseIKHandshake);
BENCHMARK(BM_NoiseXXHandshake);
BENCHMARK(BM_NoiseIKResponder);
BENCHMARK(BM_NoiseEncryptWithNonce)->Arg(64)->Arg(1400);
BENCHMARK(BM_NoiseDecryptWithNonce)->Arg(64)->Arg(1400);

}  // namespace

BENCHMARK_MAIN();
