// io layer figures: timer wheel add+cancel and add+fire cost with 100k timers live, and
// loopback UDP throughput in datagrams per second through send_batch/recv_batch (64 per
// call), with and without GSO. Prints figures; not a test.
#include <benchmark/benchmark.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <random>
#include <vector>

#include "ie/io/timer_wheel.hpp"
#include "ie/io/udp.hpp"

namespace {

using ie::io::Datagram;
using ie::io::TimerWheel;
using ie::io::UdpSocket;

// Add and cancel one timer with 100k others live (a cancelled retransmit timer).
void BM_TimerWheelAddCancel(benchmark::State& state) {
  TimerWheel w(0);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; ++i)
    w.add(1 + rng() % 100000, [] {});
  std::uint64_t d = 1;
  for (auto _ : state) {
    auto h = w.add(w.now() + 1 + (d++ % 60000), [] {});
    benchmark::DoNotOptimize(w.cancel(h));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_TimerWheelAddCancel);

// 100k timers with random deadlines within 100 s of 1 ms ticks, all fired by advancing.
void BM_TimerWheelAddFire100k(benchmark::State& state) {
  std::mt19937_64 rng(2);
  std::vector<std::uint64_t> dl(100000);
  for (auto& x : dl)
    x = 1 + rng() % 100000;
  std::size_t fired = 0;
  for (auto _ : state) {
    TimerWheel w(0);
    for (auto x : dl)
      w.add(x, [&fired] { ++fired; });
    w.advance(100001);
  }
  benchmark::DoNotOptimize(fired);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 100000);
}
BENCHMARK(BM_TimerWheelAddFire100k)->Unit(benchmark::kMillisecond);

// Loopback: 64 datagrams of `size` bytes per send_batch (or one GSO Datagram of up to 64
// segments and under 64 KiB),
// then drain the receiver; items = datagrams received.
void udp_loopback(benchmark::State& state, bool gso) {
  const std::size_t size = static_cast<std::size_t>(state.range(0));
  ie::io::UdpOptions big;
  big.recv_buffer = 4 << 20;
  big.send_buffer = 4 << 20;
  auto a = UdpSocket::bind("127.0.0.1:0", big);
  auto b = UdpSocket::bind("127.0.0.1:0", big);
  if (!a.ok() || !b.ok()) {
    state.SkipWithError("bind failed");
    return;
  }
  socklen_t blen = 0;
  const auto baddr = b->local_address(&blen).value();
  // A GSO send is one UDP payload in the kernel's eyes, so it must stay under 64 KiB.
  const std::size_t kBatch = gso ? std::min<std::size_t>(64, 65000 / size) : 64;
  std::vector<std::uint8_t> tx(kBatch * size, 0xab);
  std::vector<Datagram> out(gso ? 1 : kBatch);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].buf = ie::ByteSpan(tx).subspan(i * size, gso ? tx.size() : size);
    out[i].len = gso ? tx.size() : size;
    out[i].peer = baddr;
    out[i].peer_len = blen;
    out[i].segment_size = gso ? static_cast<std::uint16_t>(size) : 0;
  }
  std::vector<std::array<std::uint8_t, 2048>> rbufs(kBatch);
  std::vector<Datagram> in(kBatch);
  std::int64_t received = 0;
  for (auto _ : state) {
    if (!a->send_batch(out).ok()) break;
    std::size_t got = 0;
    for (int spins = 0; spins < 100 && got < kBatch; ++spins) {
      for (std::size_t i = 0; i < kBatch; ++i)
        in[i].buf = ie::ByteSpan(rbufs[i]);
      auto r = b->recv_batch(in);
      if (!r.ok()) break;
      if (*r == 0) {
        pollfd p{b->fd(), POLLIN, 0};
        ::poll(&p, 1, 1);
      }
      got += *r;
    }
    received += static_cast<std::int64_t>(got);
  }
  state.SetItemsProcessed(received);
  state.SetBytesProcessed(received * static_cast<std::int64_t>(size));
}

void BM_UdpLoopbackBatch(benchmark::State& state) {
  udp_loopback(state, false);
}
void BM_UdpLoopbackGso(benchmark::State& state) {
  udp_loopback(state, true);
}
BENCHMARK(BM_UdpLoopbackBatch)->Arg(100)->Arg(1200);
BENCHMARK(BM_UdpLoopbackGso)->Arg(100)->Arg(1200);

}  // namespace

BENCHMARK_MAIN();
