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
