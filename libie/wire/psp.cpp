// PSP header codec: see ie/wire/psp.hpp for the layout.
#include "ie/wire/psp.hpp"

namespace ie::wire {

DropReason parse_psp_header(ConstByteSpan packet, PspHeader* out) {
  if (packet.size() < kPspHeaderLen + kPspTagLen) return DropReason::truncated;
  const std::uint8_t* p = packet.data();
  if (p[1] != 1) return DropReason::bad_psp_header;           // header-extension length: 8 bytes
  if ((p[2] & 0xc0) != 0) return DropReason::bad_psp_header;  // reserved bits
  // Byte 3: S(1) D(1) Version(4) V(1) 1(1). V (virtualization cookie) is not used by ILP.
  if ((p[3] & 0x01) != 0x01 || (p[3] & 0x02) != 0) return DropReason::bad_psp_header;
  PspHeader h;
  h.next_header = p[0];
  h.crypt_offset = p[2] & 0x3f;
  h.sample = (p[3] & 0x80) != 0;
  h.drop = (p[3] & 0x40) != 0;
  h.version = (p[3] >> 2) & 0x0f;
  h.spi = load_be32(p + 4);
  h.iv = load_be64(p + 8);
  if (h.version > kPspMaxVersion) return DropReason::unsupported_psp_version;
  if (packet.size() < kPspHeaderLen + h.clear_len() + kPspTagLen) return DropReason::truncated;
  *out = h;
  return DropReason::none;
}

void write_psp_header(const PspHeader& h, std::uint8_t* out) {
  out[0] = h.next_header;
  out[1] = 1;
  out[2] = h.crypt_offset & 0x3f;
  out[3] = static_cast<std::uint8_t>((h.sample ? 0x80 : 0) | (h.drop ? 0x40 : 0) |
                                     ((h.version & 0x0f) << 2) | 0x01);
  store_be32(out + 4, h.spi);
  store_be64(out + 8, h.iv);
}

}  // namespace ie::wire
