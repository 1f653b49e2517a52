// Classic pcap parsing for the replay mode (testhost_pcap.hpp).
#include "testhost_pcap.hpp"

#include <arpa/inet.h>

#include <fstream>
#include <optional>

namespace ie::tools {

namespace {

struct Reader {
  bool swapped = false;
  std::uint32_t u32(const std::uint8_t* p) const { return swapped ? load_be32(p) : load_le32(p); }
};

std::string endpoint(int family, const std::uint8_t* addr, std::uint16_t port) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, addr, buf, sizeof buf);
  return family == AF_INET6 ? "[" + std::string(buf) + "]:" + std::to_string(port)
                            : std::string(buf) + ":" + std::to_string(port);
}

// The UDP datagram in an IPv4/IPv6 packet, or nullopt.
std::optional<PcapUdp> udp_of_ip(ConstByteSpan p) {
  if (p.empty()) return std::nullopt;
  const unsigned version = p[0] >> 4;
  std::size_t l4 = 0;
  std::size_t l4_end = 0;
  int family = 0;
  const std::uint8_t* src = nullptr;
  const std::uint8_t* dst = nullptr;
  if (version == 4) {
    if (p.size() < 20) return std::nullopt;
    const std::size_t ihl = std::size_t{p[0] & 0x0fu} * 4;
    const std::size_t total = load_be16(p.data() + 2);
    if (ihl < 20 || total < ihl || total > p.size()) return std::nullopt;
    if (p[9] != 17) return std::nullopt;
    if ((load_be16(p.data() + 6) & 0x3fff) != 0) return std::nullopt;  // a fragment
    family = AF_INET;
    src = p.data() + 12;
    dst = p.data() + 16;
    l4 = ihl;
    l4_end = total;
  } else if (version == 6) {
    if (p.size() < 40) return std::nullopt;
    const std::size_t plen = load_be16(p.data() + 4);
    if (p[6] != 17 || 40 + plen > p.size()) return std::nullopt;
    family = AF_INET6;
    src = p.data() + 8;
    dst = p.data() + 24;
    l4 = 40;
    l4_end = 40 + plen;
  } else {
    return std::nullopt;
  }
  if (l4_end - l4 < 8) return std::nullopt;
  const std::uint8_t* udp = p.data() + l4;
  const std::size_t ulen = load_be16(udp + 4);
  if (ulen < 8 || ulen > l4_end - l4) return std::nullopt;
  PcapUdp d;
  d.src = endpoint(family, src, load_be16(udp));
  d.dst = endpoint(family, dst, load_be16(udp + 2));
  d.payload.assign(udp + 8, udp + ulen);
  return d;
}

// The network-layer packet inside one link-layer frame, or an empty span.
ConstByteSpan network_of(std::uint32_t link, ConstByteSpan f) {
  switch (link) {
    case 1: {  // Ethernet
      std::size_t off = 12;
      for (int tags = 0; tags < 2 && f.size() >= off + 2; ++tags) {
        const std::uint16_t type = load_be16(f.data() + off);
        if (type != 0x8100 && type != 0x88a8) break;
        off += 4;
      }
      if (f.size() < off + 2) return {};
      const std::uint16_t type = load_be16(f.data() + off);
      if (type != 0x0800 && type != 0x86dd) return {};
      return f.subspan(off + 2);
    }
    case 113: {  // Linux cooked v1: protocol at 14, header 16 bytes
      if (f.size() < 16) return {};
      const std::uint16_t type = load_be16(f.data() + 14);
      if (type != 0x0800 && type != 0x86dd) return {};
      return f.subspan(16);
    }
    case 276: {  // Linux cooked v2: protocol at 0, header 20 bytes
      if (f.size() < 20) return {};
      const std::uint16_t type = load_be16(f.data());
      if (type != 0x0800 && type != 0x86dd) return {};
      return f.subspan(20);
    }
    case 0: {  // BSD loopback: 4-byte family in host order
      if (f.size() < 4) return {};
      return f.subspan(4);
    }
    case 12:
    case 101:
    case 228:
    case 229:
      return f;
    default:
      return {};
  }
}

bool known_link(std::uint32_t link) {
  for (std::uint32_t l : {0u, 1u, 12u, 101u, 113u, 228u, 229u, 276u})
    if (l == link) return true;
  return false;
}

}  // namespace

Result<PcapContents> parse_pcap(ConstByteSpan file) {
  if (file.size() < 24) return fail(Errc::parse, "pcap: shorter than its global header");
  Reader r;
  const std::uint32_t magic = load_le32(file.data());
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
    r.swapped = false;
  } else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
    r.swapped = true;
  } else {
    return fail(Errc::parse, "pcap: not a classic pcap file (pcapng? write with tcpdump -w)");
  }
  PcapContents out;
  out.link_type = r.u32(file.data() + 20) & 0x0fffffff;  // upper bits: FCS info
  if (!known_link(out.link_type))
    return fail(Errc::parse, "pcap: unsupported link type " + std::to_string(out.link_type));
  std::size_t off = 24;
  while (off < file.size()) {
    if (file.size() - off < 16)
      return fail(Errc::parse, "pcap: truncated record header at byte " + std::to_string(off));
    const std::uint32_t incl = r.u32(file.data() + off + 8);
    const std::uint32_t orig = r.u32(file.data() + off + 12);
    off += 16;
    if (incl > kMaxPcapRecord || incl > file.size() - off)
      return fail(Errc::parse, "pcap: record of " + std::to_string(incl) +
                                   " bytes runs past the end at byte " + std::to_string(off));
    ++out.records;
    const ConstByteSpan frame = file.subspan(off, incl);
    off += incl;
    if (incl < orig) {  // cut by the snap length: not the whole datagram
      ++out.skipped;
      continue;
    }
    auto udp = udp_of_ip(network_of(out.link_type, frame));
    if (!udp) {
      ++out.skipped;
      continue;
    }
    out.udp.push_back(std::move(*udp));
  }
  return out;
}

Result<PcapContents> read_pcap(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return fail(Errc::io, "cannot open " + path);
  Bytes data;
  char chunk[65536];
  while (f) {
    f.read(chunk, sizeof chunk);
    data.insert(data.end(), chunk, chunk + f.gcount());
    if (data.size() > kMaxPcapBytes)
      return fail(Errc::too_large, path + ": larger than " + std::to_string(kMaxPcapBytes));
  }
  if (f.bad()) return fail(Errc::io, "read " + path);
  auto r = parse_pcap(data);
  if (!r) return fail(r.error().code, path + ": " + r.error().context);
  return r;
}

}  // namespace ie::tools
