// Hand-built IPv4/IPv6 packets for the datapath tests (header only, test-only).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "ie/ied/checksum.hpp"
#include "ie/ied/ip_addr.hpp"
#include "ie/util/bytes.hpp"

namespace ie::ied::test {

struct V4Opts {
  bool df = true;
  bool more_fragments = false;
  std::uint16_t frag_offset = 0;  // in 8-byte units
  std::size_t options_len = 0;    // multiple of 4, <= 40
};

// An IPv4 packet: header (with options of NOPs) + l4, checksummed header.
inline Bytes make_v4(std::uint8_t proto, const IpAddr& src, const IpAddr& dst, const Bytes& l4,
                     V4Opts o = {}) {
  const std::size_t ihl = 20 + o.options_len;
  Bytes p(ihl + l4.size(), 0);
  p[0] = static_cast<std::uint8_t>(0x40 | (ihl / 4));
  store_be16(p.data() + 2, static_cast<std::uint16_t>(p.size()));
  store_be16(p.data() + 4, 0x1234);
  std::uint16_t frag = o.frag_offset & 0x1fff;
  if (o.df) frag |= 0x4000;
  if (o.more_fragments) frag |= 0x2000;
  store_be16(p.data() + 6, frag);
  p[8] = 64;
  p[9] = proto;
  std::memcpy(p.data() + 12, src.bytes().data(), 4);
  std::memcpy(p.data() + 16, dst.bytes().data(), 4);
  for (std::size_t i = 20; i < ihl; ++i)
    p[i] = 1;  // NOP options
  store_be16(p.data() + 10, checksum_finish(checksum_add(ConstByteSpan(p.data(), ihl))));
  if (!l4.empty()) std::memcpy(p.data() + ihl, l4.data(), l4.size());
  return p;
}

// An IPv6 extension header: next header is patched in by make_v6.
struct V6Ext {
  std::uint8_t type;  // 0, 43, 60 or 44
  Bytes body;         // the whole header; byte 0 (next header) is overwritten
};

inline V6Ext ext_opts(std::uint8_t type, std::size_t units8 = 1) {
  V6Ext e{type, Bytes(units8 * 8, 0)};
  e.body[1] = static_cast<std::uint8_t>(units8 - 1);
  e.body[2] = 1;  // PadN option
  e.body[3] = static_cast<std::uint8_t>(units8 * 8 - 4);
  return e;
}

inline V6Ext ext_frag(std::uint16_t offset_units, bool more) {
  V6Ext e{44, Bytes(8, 0)};
  store_be16(e.body.data() + 2, static_cast<std::uint16_t>((offset_units << 3) | (more ? 1 : 0)));
  store_be32(e.body.data() + 4, 0xabcdef01);
  return e;
}

inline Bytes make_v6(std::uint8_t proto, const IpAddr& src, const IpAddr& dst, const Bytes& l4,
                     const std::vector<V6Ext>& exts = {}) {
  Bytes p(40, 0);
  p[0] = 0x60;
  p[7] = 64;
  std::memcpy(p.data() + 8, src.bytes().data(), 16);
  std::memcpy(p.data() + 24, dst.bytes().data(), 16);
  std::size_t prev_next = 6;  // where the previous header's "next header" byte is
  for (const auto& e : exts) {
    p[prev_next] = e.type;
    prev_next = p.size();
    p.insert(p.end(), e.body.begin(), e.body.end());
  }
  p[prev_next] = proto;
  p.insert(p.end(), l4.begin(), l4.end());
  store_be16(p.data() + 4, static_cast<std::uint16_t>(p.size() - 40));
  return p;
}

// 4 bytes of ports followed by filler, as a TCP/UDP header would start.
inline Bytes ports(std::uint16_t s, std::uint16_t d, std::size_t len = 8) {
  Bytes b(len, 0xab);
  store_be16(b.data(), s);
  store_be16(b.data() + 2, d);
  return b;
}

inline Bytes icmp(std::uint8_t type, std::uint8_t code, std::uint16_t id, std::size_t len = 8) {
  Bytes b(len, 0);
  b[0] = type;
  b[1] = code;
  store_be16(b.data() + 4, id);
  return b;
}

inline IpAddr A(const char* s) {
  return *IpAddr::parse(s);
}

}  // namespace ie::ied::test
