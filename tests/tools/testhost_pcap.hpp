// A reader for classic libpcap capture files (what `tcpdump -w` writes), enough to pull the
// UDP datagrams out of a capture for ie-testhost's replay mode. Parsed by hand, with every
// length checked against what was captured:
//
//   global header (24 bytes): magic a1b2c3d4 (microseconds) or a1b23c4d (nanoseconds), in
//     either byte order; version; snaplen; link type
//   per record: ts_sec, ts_frac, incl_len, orig_len (16 bytes), then incl_len bytes
//   link types: 1 Ethernet (802.1Q tags skipped), 113 Linux cooked v1, 276 Linux cooked v2,
//     101/12/228/229 raw IP, 0 BSD loopback
//   network: IPv4 (no fragments) or IPv6 (UDP as the first next header), then UDP
//
// Records that are not complete UDP datagrams (other protocols, fragments, truncated by the
// snap length) are counted and skipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ie/util/bytes.hpp"
#include "ie/util/result.hpp"

namespace ie::tools {

struct PcapUdp {
  std::string src;  // "ip:port" / "[v6]:port"
  std::string dst;
  Bytes payload;
};

struct PcapContents {
  std::uint32_t link_type = 0;
  std::uint64_t records = 0;
  std::uint64_t skipped = 0;  // records that are not complete UDP datagrams
  std::vector<PcapUdp> udp;
};

inline constexpr std::uint64_t kMaxPcapBytes = std::uint64_t{256} << 20;
inline constexpr std::uint32_t kMaxPcapRecord = 256 * 1024;

// Parses a whole capture held in memory. Errc::parse for a bad header, an unknown link type
// or a record running past the end.
Result<PcapContents> parse_pcap(ConstByteSpan file);
// Reads the file (at most kMaxPcapBytes) and parses it; I/O errors name the path.
Result<PcapContents> read_pcap(const std::string& path);

}  // namespace ie::tools
