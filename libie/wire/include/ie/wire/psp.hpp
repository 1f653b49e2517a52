// The PSP header (PSP Architecture Specification, transport/tunnel framing over UDP) as used
// by ILP: a fixed 16-byte header, then crypt_offset * 4 bytes sent in clear (authenticated),
// then the encrypted payload and a 16-byte tag.
//
//   0       1        2            3                 4..7   8..15
//   next    hdr ext  R R|crypt    S D|version(4)|V 1  SPI    IV (sequence number)
//   header  len = 1  offset(6)
//
// Parsing is bounds-checked and returns a DropReason; nothing here decrypts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "ie/util/bytes.hpp"
#include "ie/wire/drop_reason.hpp"

namespace ie::wire {

inline constexpr std::size_t kPspHeaderLen = 16;
inline constexpr std::size_t kPspTagLen = 16;
inline constexpr std::size_t kPspIvLen = 8;
// PSP next-header value for ILP data packets: 253, the RFC 3692 experimental protocol number
// (ILP is not an IP protocol; the value only tells the receiver an ILP header follows).
inline constexpr std::uint8_t kIlpNextHeader = 253;
inline constexpr std::uint8_t kPspMaxVersion = 1;       // 0 = AES-GCM-128, 1 = AES-GCM-256
inline constexpr std::uint8_t kPspMaxCryptOffset = 63;  // 6 bits, in 4-byte words

// The 16 bytes exactly as on the wire (big-endian fields kept as byte arrays, so the struct
// has no padding and no alignment needs). Parsing copies the bytes into one of these after
// the length check, then decodes; writing fills one and copies it out.
struct PspWireHeader {
  std::uint8_t next_header;
  std::uint8_t hdr_ext_len;    // 1: 8 bytes beyond the first 8
  std::uint8_t crypt_offset;   // R R | 6-bit offset in 4-byte words
  std::uint8_t flags_version;  // S D | version (4) | V | 1
  std::uint8_t spi_be[4];
  std::uint8_t iv_be[kPspIvLen];
};
static_assert(sizeof(PspWireHeader) == kPspHeaderLen);
static_assert(std::is_trivially_copyable_v<PspWireHeader> &&
              std::is_standard_layout_v<PspWireHeader>);
static_assert(offsetof(PspWireHeader, spi_be) == 4 && offsetof(PspWireHeader, iv_be) == 8);

// The decoded header (a value, not a view: parse copies the 16 bytes' fields out).
struct PspHeader {
  std::uint8_t next_header = kIlpNextHeader;
  std::uint8_t crypt_offset = 0;  // in 4-byte words after the 16-byte header
  std::uint8_t version = 1;
  bool sample = false;  // S bit (sampling), sent as 0
  bool drop = false;    // D bit, sent as 0
  std::uint32_t spi = 0;
  std::uint64_t iv = 0;

  std::size_t clear_len() const { return std::size_t{crypt_offset} * 4; }
};

// Parses the 16-byte header at the front of `packet`. Checks: length >= 16 + clear bytes +
// tag, header-extension length == 1, the fixed V/1 bits, version <= 1 (else
// unsupported_psp_version). Does not look at the SPI.
DropReason parse_psp_header(ConstByteSpan packet, PspHeader* out);

// Writes the 16-byte header into out[0..16).
void write_psp_header(const PspHeader& h, std::uint8_t* out);

}  // namespace ie::wire
