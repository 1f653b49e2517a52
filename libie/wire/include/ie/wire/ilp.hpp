// The ILP header: the first encrypted bytes of every ILP data packet (after the PSP header),
// followed by the inner packet. Service id and connection id always come first, so an SN's
// fast path can key its decision cache without understanding the rest.
//
//   0      2                      10      11      12
//   +------+----------------------+-------+-------+------------------ - - -+-----------
//   | svc  | connection id (BE64) | hlen  | flags | TLVs, padded to 4 B    | inner ...
//   +------+----------------------+-------+-------+------------------ - - -+-----------
//   hlen = whole header length in 4-byte words (>= 3); flags: bits 7-6 ILP version (1),
//   bit 0 end-to-end protected payload, other bits reserved (sent 0, ignored).
//
// TLVs: {type u8, len u8, value[len]}; type 0 is a single padding byte (no length). The
// registry (ie/wire/tlv.hpp) gives each type's length bounds and whether it may repeat;
// unknown types below 128 are skipped, unknown types from 128 up must be understood, so the
// header is rejected (bad_tlv).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "ie/util/bytes.hpp"
#include "ie/wire/drop_reason.hpp"

namespace ie::wire {

inline constexpr std::size_t kIlpBaseLen = 12;
inline constexpr std::size_t kIlpMaxHeaderLen = 255 * 4;
inline constexpr std::uint8_t kIlpVersion = 1;
inline constexpr std::uint8_t kIlpFlagE2e = 0x01;  // inner payload protected end to end
// The flag bits this version defines; the rest of bits 5-0 are reserved: encode_ilp sends
// them as 0 and parse_ilp ignores (clears) them.
inline constexpr std::uint8_t kIlpFlagsDefined = kIlpFlagE2e;

// The fixed 12 bytes of the ILP header exactly as on the wire (big-endian byte arrays).
struct IlpWireHeader {
  std::uint8_t service_id_be[2];
  std::uint8_t connection_id_be[8];
  std::uint8_t header_words;   // whole header incl. TLVs, in 4-byte words (>= 3)
  std::uint8_t version_flags;  // version (2 bits) | flags (6 bits)
};
static_assert(sizeof(IlpWireHeader) == kIlpBaseLen);
static_assert(std::is_trivially_copyable_v<IlpWireHeader> &&
              std::is_standard_layout_v<IlpWireHeader>);
static_assert(offsetof(IlpWireHeader, header_words) == 10);
static_assert(kIlpMaxHeaderLen % 4 == 0 && kIlpMaxHeaderLen / 4 == 255, "hlen is one byte");

struct Tlv {
  std::uint8_t type = 0;
  ConstByteSpan value;
};

struct IlpHeader {
  std::uint16_t service_id = 0;
  std::uint64_t connection_id = 0;
  std::uint8_t flags = 0;  // kIlpFlag* bits; the version bits are added on encode
};

struct IlpView {
  IlpHeader header;
  std::size_t header_len = 0;  // bytes, including TLVs and padding
  ConstByteSpan tlvs;          // the TLV area (validated)
  ConstByteSpan inner;         // everything after the header
};

// Walks a validated TLV area, skipping padding.
class TlvIterator {
 public:
  explicit TlvIterator(ConstByteSpan tlvs) : rest_(tlvs) {}
  bool next(Tlv* out);

 private:
  ConstByteSpan rest_;
};

// Parses and fully validates an ILP header (TLV bounds, registry lengths, duplicates).
DropReason parse_ilp(ConstByteSpan data, IlpView* out);

// Validates a TLV area on its own (used by parse_ilp).
DropReason validate_tlvs(ConstByteSpan tlvs);

// The encoded length of a header with these TLVs (padded to 4), or 0 if it cannot be
// encoded (a TLV over 255 bytes, or the header over kIlpMaxHeaderLen).
std::size_t ilp_header_len(std::span<const Tlv> tlvs);

// Writes the header into out; returns its length, or 0 if out is too small or the TLVs
// cannot be encoded. Does not validate TLVs against the registry (the caller builds them).
std::size_t encode_ilp(const IlpHeader& h, std::span<const Tlv> tlvs, ByteSpan out);

// The first TLV of this type, if any.
bool find_tlv(ConstByteSpan tlvs, std::uint8_t type, Tlv* out);

}  // namespace ie::wire
