// PSP header codec: see ie/wire/psp.hpp for the layout.
#include "ie/wire/psp.hpp"

#include <cstring>

namespace ie::wire {

DropReason parse_psp_header(ConstByteSpan packet, PspHeader* out) {
  if (packet.size() < kPspHeaderLen + kPspTagLen) return DropReason::truncated;
  PspWireHeader w;
  std::memcpy(&w, packet.data(), sizeof w);
  if (w.hdr_ext_len != 1) return DropReason::bad_psp_header;            // 8 more header bytes
  if ((w.crypt_offset & 0xc0) != 0) return DropReason::bad_psp_header;  // reserved bits
  // S(1) D(1) Version(4) V(1) 1(1). V (virtualization cookie present) is not used by ILP.
  if ((w.flags_version & 0x01) != 0x01 || (w.flags_version & 0x02) != 0)
    return DropReason::bad_psp_header;
  PspHeader h;
  h.next_header = w.next_header;
  h.crypt_offset = w.crypt_offset & 0x3f;
  h.sample = (w.flags_version & 0x80) != 0;
  h.drop = (w.flags_version & 0x40) != 0;
  h.version = (w.flags_version >> 2) & 0x0f;
  h.spi = load_be32(w.spi_be);
  h.iv = load_be64(w.iv_be);
  if (h.version > kPspMaxVersion) return DropReason::unsupported_psp_version;
  if (packet.size() < kPspHeaderLen + h.clear_len() + kPspTagLen) return DropReason::truncated;
  *out = h;
  return DropReason::none;
}

void write_psp_header(const PspHeader& h, std::uint8_t* out) {
  PspWireHeader w;
  w.next_header = h.next_header;
  w.hdr_ext_len = 1;
  w.crypt_offset = h.crypt_offset & 0x3f;
  w.flags_version = static_cast<std::uint8_t>((h.sample ? 0x80 : 0) | (h.drop ? 0x40 : 0) |
                                              ((h.version & 0x0f) << 2) | 0x01);
  store_be32(w.spi_be, h.spi);
  store_be64(w.iv_be, h.iv);
  std::memcpy(out, &w, sizeof w);
}

}  // namespace ie::wire
