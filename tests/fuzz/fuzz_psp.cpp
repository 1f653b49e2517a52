// Fuzz target: PSP header parsing and opening with a fixed key. The first input byte picks
// the key version (bit 0) and whether to open in place (bit 1); the rest is the datagram.
// Whatever the bytes, parse/open must return a verdict without crashing, reading out of
// bounds or allocating per input (the output buffer is a fixed array). Inputs that open are
// sealed again and must reproduce the same packet.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ie/crypto/psp.hpp"
#include "ie/wire/psp.hpp"

namespace {

namespace psp = ie::crypto::psp;

constexpr std::size_t kMaxPacket = 4096;

psp::Sa& sa_for(psp::Version v) {
  static auto make = [](psp::Version ver) {
    ie::Key32 m0, m1;
    for (std::size_t i = 0; i < 32; ++i) {
      m0.data()[i] = static_cast<std::uint8_t>(i);
      m1.data()[i] = static_cast<std::uint8_t>(0x20 + i);
    }
    auto sa = psp::Sa::create(psp::derive_key(m0, m1, 0x101, ver));
    if (!sa.ok()) std::abort();
    return std::move(*sa);
  };
  static psp::Sa v0 = make(psp::Version::aes_gcm_128);
  static psp::Sa v1 = make(psp::Version::aes_gcm_256);
  return v == psp::Version::aes_gcm_128 ? v0 : v1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size - 1 > kMaxPacket) return 0;
  const auto version = (data[0] & 1) != 0 ? psp::Version::aes_gcm_256 : psp::Version::aes_gcm_128;
  const bool in_place = (data[0] & 2) != 0;
  static std::uint8_t packet[kMaxPacket];
  static std::uint8_t out[kMaxPacket];
  static std::uint8_t resealed[kMaxPacket + 64];
  const std::size_t n = size - 1;
  std::memcpy(packet, data + 1, n);
  // The same bytes, parsed alone: the header view must agree with what open() sees.
  ie::wire::PspHeader h;
  const auto parsed = ie::wire::parse_psp_header(ie::ConstByteSpan(packet, n), &h);
  psp::Sa& sa = sa_for(version);
  psp::Opened o;
  ie::wire::DropReason verdict;
  if (in_place && parsed == ie::wire::DropReason::none) {
    std::size_t len = 0;
    verdict =
        sa.open(h, ie::ConstByteSpan(packet, n),
                ie::ByteSpan(packet + ie::wire::kPspHeaderLen, n - ie::wire::kPspHeaderLen), &len);
    o.header = h;
    o.payload_len = len;
    if (verdict == ie::wire::DropReason::none) std::memcpy(out, packet + 16, len);
  } else {
    verdict = sa.open(ie::ConstByteSpan(packet, n), ie::ByteSpan(out, sizeof out), &o);
    if (parsed != ie::wire::DropReason::none && verdict != parsed) std::abort();
  }
  if (verdict == ie::wire::DropReason::none) {
    // Only a forged tag could get here from random bytes; if it ever does, sealing the
    // plaintext again must give the same packet (the S/D bits are not reproduced).
    if (o.header.sample || o.header.drop) return 0;
    const std::size_t m =
        sa.seal(o.header, ie::ConstByteSpan(out, o.payload_len), ie::ByteSpan(resealed));
    std::memcpy(packet, data + 1, n);
    if (m != n || std::memcmp(resealed, packet, n) != 0) std::abort();
  }
  return 0;
}
