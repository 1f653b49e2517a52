// Fuzzes ied's end-to-end receive path (daemon/e2e): host B's E2e::receive() fed arbitrary
// protocol-253 packets, with host A (a session to B already up, built per input at a fixed
// simulated time) as a genuine peer whose packets the input may also produce and mangle, so
// the fuzzer reaches everything after authentication (binding checks, inner packet parsing)
// and the association Node's handshake and control paths.
//
// Input: up to 64 records {mode u8, len u16 BE, bytes[len]}. mode & 7 picks what B gets:
//   0  the bytes as they are (any junk)
//   1  the bytes behind a valid proto-253 IPv4 header from A to B (reaches the demux)
//   2  A's genuine data packet carrying a UDP payload of the bytes
//   3  the bytes as the inner IP packet, sealed by A without its address checks
//   4  like 2, then bytes[0] of it flipped at offset bytes[1..2] (tampering)
//   5  the previous packet again (a replay)
//   6  time moves on by len * 10 ms: both hosts' timers run and their packets cross
//   7  A's genuine packet like 2, cut to len - 1 bytes of itself (truncation)
// Oracle: whatever B delivers to its TUN is an IP packet from A's address to B's.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "ie/ied/e2e.hpp"
#include "ie/ied/ip_header.hpp"

namespace {

using namespace ie;
using namespace ie::ied;

const IpAddr kA = *IpAddr::parse("10.1.0.1");
const IpAddr kB = *IpAddr::parse("10.2.0.2");

crypto::noise::KeyPair fixed_key(std::uint8_t seed) {
  std::uint8_t priv[32];
  for (std::size_t i = 0; i < sizeof priv; ++i)
    priv[i] = static_cast<std::uint8_t>(seed + i);
  return crypto::noise::KeyPair::from_private(std::span<const std::uint8_t, 32>(priv, 32));
}

struct World {
  Time now = Time(std::chrono::hours(1000));
  std::unique_ptr<E2e> a, b;
  crypto::noise::PublicKey b_pub{};
  E2eOutput a_out, b_out;
  Bytes last;  // the last packet fed to B

  World() {
    auto make = [this](std::uint8_t seed) {
      E2eOptions o;
      o.key = fixed_key(seed);
      o.timers.rekey_after_time = std::chrono::seconds(2);
      o.timers.keepalive = std::chrono::seconds(1);
      o.timers.dead_after = std::chrono::seconds(4);
      o.timers.retry_initial = std::chrono::milliseconds(100);
      o.timers.retry_max = std::chrono::milliseconds(400);
      o.timers.sa_overlap = std::chrono::seconds(1);
      o.wall_clock_ns = [this] {
        return static_cast<std::uint64_t>(now.time_since_epoch().count());
      };
      auto e = E2e::create(std::move(o));
      if (!e.ok()) std::abort();
      return std::move(*e);
    };
    a = make(1);
    b = make(2);
    b_pub = fixed_key(2).pub;
    const std::uint8_t hello[] = {'h', 'i'};
    send_a(hello);
    cross();
  }

  static Bytes udp(ConstByteSpan payload) {
    Bytes p(28 + payload.size());
    p[0] = 0x45;
    store_be16(p.data() + 2, static_cast<std::uint16_t>(p.size()));
    p[8] = 64;
    p[9] = 17;
    std::memcpy(p.data() + 12, kA.bytes().data(), 4);
    std::memcpy(p.data() + 16, kB.bytes().data(), 4);
    store_be16(p.data() + 10, ipv4_header_checksum(ConstByteSpan(p.data(), 20)));
    store_be16(p.data() + 24, static_cast<std::uint16_t>(8 + payload.size()));
    if (!payload.empty()) std::memcpy(p.data() + 28, payload.data(), payload.size());
    return p;
  }

  void send_a(ConstByteSpan payload) { a->send(kA, kB, b_pub, udp(payload), now, a_out); }

  void check_tun() {
    for (std::size_t i = 0; i < b_out.to_tun.size(); ++i) {
      IpView v;
      if (parse_ip(b_out.to_tun[i], false, &v) != wire::DropReason::none || v.src != kA ||
          v.dst != kB)
        __builtin_trap();
    }
    b_out.to_tun.clear();
    a_out.to_tun.clear();
  }

  void feed_b(ConstByteSpan p) {
    last.assign(p.begin(), p.end());
    b->receive(p, now, b_out);
    check_tun();
  }

  // Moves both hosts' packets across until quiet (bounded).
  void cross() {
    for (int round = 0; round < 16; ++round) {
      if (a_out.to_net.empty() && b_out.to_net.empty()) return;
      for (std::size_t i = 0; i < a_out.to_net.size(); ++i)
        b->receive(a_out.to_net[i], now, b_out);
      a_out.to_net.clear();
      check_tun();
      for (std::size_t i = 0; i < b_out.to_net.size(); ++i)
        a->receive(b_out.to_net[i], now, a_out);
      b_out.to_net.clear();
      a_out.to_tun.clear();
    }
  }

  // A's packets (after a send) with the caller's change applied, fed to B one by one.
  template <typename F>
  void feed_a_packets(F&& change) {
    for (std::size_t i = 0; i < a_out.to_net.size(); ++i) {
      Bytes p(a_out.to_net[i].begin(), a_out.to_net[i].end());
      change(p);
      feed_b(p);
    }
    a_out.to_net.clear();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  World w;
  std::size_t off = 0;
  for (int rec = 0; rec < 64 && off + 3 <= size; ++rec) {
    const std::uint8_t mode = data[off];
    const std::size_t len = std::min<std::size_t>(load_be16(data + off + 1), size - off - 3);
    const ConstByteSpan bytes(data + off + 3, len);
    off += 3 + len;
    switch (mode & 7) {
      case 0:
        w.feed_b(bytes);
        break;
      case 1: {
        Bytes p(20 + len);
        if (write_e2e_header(kA, kB, len, p) == 0) break;
        if (len != 0) std::memcpy(p.data() + 20, bytes.data(), len);
        w.feed_b(p);
        break;
      }
      case 2:
        w.send_a(bytes);
        w.feed_a_packets([](Bytes&) {});
        break;
      case 3:
        w.a->send_unchecked_for_test(kA, kB, w.b_pub, bytes, w.now, w.a_out);
        w.feed_a_packets([](Bytes&) {});
        break;
      case 4: {
        w.send_a(bytes);
        const std::uint8_t x = len > 0 ? bytes[0] : 1;
        const std::size_t at = len > 2 ? load_be16(bytes.data() + 1) : 0;
        w.feed_a_packets([&](Bytes& p) { p[at % p.size()] ^= (x == 0 ? 1 : x); });
        break;
      }
      case 5: {
        const Bytes again = w.last;
        w.feed_b(again);
        break;
      }
      case 6:
        w.now += std::chrono::milliseconds(10) * static_cast<int>(len % 1000);
        w.a->on_timer(w.now, w.a_out);
        w.b->on_timer(w.now, w.b_out);
        w.cross();
        break;
      case 7:
        w.send_a(bytes);
        w.feed_a_packets([&](Bytes& p) { p.resize(std::min(p.size(), len == 0 ? 0 : len - 1)); });
        break;
    }
  }
  return 0;
}
