// Fuzz target: arbitrary datagrams into a Node (the association protocol's responder and
// index routing), with the clock advancing. Input: records [flags u8][len u8][bytes]. Flag
// bit 0 fixes up mac1 with the node's real key (so initiations/responses reach the Noise
// layer), bit 1 toggles "under load", bit 2 advances time 1 s and runs the timers, bit 3
// uses the all-zero first-contact mac1 key, bit 5 fixes up a trailing mac1 (an echo's: the
// last 16 bytes) with the node's real key. The node answers echoes; the peer has one out. A second,
// honest peer is connected first, so control messages and responses also hit live sessions. Nothing
// may crash, and the node's state stays bounded.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ie/crypto/association.hpp"
#include "ie/crypto/cookie.hpp"
#include "ie/wire/handshake_msg.hpp"

namespace {

using namespace ie::crypto;
using namespace std::chrono_literals;

ie::Key32 fixed_key(std::uint8_t b) {
  ie::Key32 k;
  std::memset(k.data(), b, k.size());
  return k;
}

noise::KeyPair fixed_pair(std::uint8_t b) {
  std::uint8_t priv[32];
  std::memset(priv, b, sizeof priv);
  return noise::KeyPair::from_private(std::span<const std::uint8_t, 32>(priv, 32));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  psp::RxKeyring ring_a(fixed_key(1), fixed_key(2)), ring_b(fixed_key(3), fixed_key(4));
  assoc::Config ca, cb;
  ca.static_key = fixed_pair(5);
  cb.static_key = fixed_pair(6);
  ca.accept_first_contact = ca.accept_unknown_ik = true;
  ca.answer_echoes = true;
  ca.wall_clock_ns = [] { return std::uint64_t{1'700'000'000'000'000'000}; };
  cb.wall_clock_ns = ca.wall_clock_ns;
  const noise::PublicKey pub_a = ca.static_key.pub, pub_b = cb.static_key.pub;
  assoc::Node a(std::move(ca), ring_a), b(std::move(cb), ring_b);
  const std::uint8_t addr_a_bytes[6] = {10, 0, 0, 1, 3, 232},
                     addr_b_bytes[6] = {10, 0, 0, 2, 3, 232};
  const auto addr_a = assoc::Addr::from(addr_a_bytes), addr_b = assoc::Addr::from(addr_b_bytes);
  Time now = Time{} + 1h;
  a.add_peer(pub_b, addr_b, false, now);
  b.add_peer(pub_a, addr_a, true, now);
  for (int round = 0; round < 4; ++round) {  // establish the honest session
    for (auto& d : b.take_datagrams())
      a.on_datagram(d.bytes, addr_b, now);
    for (auto& d : a.take_datagrams())
      b.on_datagram(d.bytes, addr_a, now);
  }
  b.send_echo(pub_a, addr_a, now);  // its answer is matched; others are not
  const auto mac1_key = cookie::mac1_key(pub_a);
  const auto mac1_zero = cookie::mac1_key(noise::PublicKey{});

  std::uint8_t buf[256];
  std::size_t i = 0;
  bool load = false;
  for (int rec = 0; rec < 64 && i + 2 <= size; ++rec) {
    const std::uint8_t flags = data[i];
    const std::size_t len = std::min<std::size_t>(data[i + 1], size - i - 2);
    std::memcpy(buf, data + i + 2, len);
    i += 2 + len;
    if ((flags & 1) && len >= 36) {
      const auto m =
          cookie::mac((flags & 8) ? mac1_zero : mac1_key, ie::ConstByteSpan(buf, len - 32));
      std::memcpy(buf + len - 32, m.data(), m.size());
    }
    if ((flags & 32) && len >= 20) {
      const auto m = cookie::mac(mac1_key, ie::ConstByteSpan(buf, len - 16));
      std::memcpy(buf + len - 16, m.data(), m.size());
    }
    if (flags & 2) a.set_under_load(load = !load);
    if (flags & 4) {
      now += 1s;
      a.on_timer(now);
      b.on_timer(now);
    }
    a.on_datagram(ie::ConstByteSpan(buf, len), (flags & 16) ? addr_b : addr_a, now);
    for (auto& d : a.take_datagrams()) {
      if (d.bytes.size() > ie::wire::kMaxControlPlaneDatagram) std::abort();
      b.on_datagram(d.bytes, addr_a, now);
    }
    (void)b.take_datagrams();
    (void)a.take_events();
    (void)b.take_events();
  }
  return 0;
}
