// Test packets and sequence bookkeeping (testhost_packet.hpp).
#include "testhost_packet.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace ie::tools {

namespace {

constexpr std::uint8_t kMagic[4] = {'I', 'E', 'T', 'H'};

}  // namespace

std::uint16_t ipv4_header_checksum(const std::uint8_t* h) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < kIpv4HeaderLen; i += 2) {
    if (i == 10) continue;  // the checksum field itself
    sum += load_be16(h + i);
  }
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

std::size_t write_test_packet(ByteSpan out, std::uint32_t src, std::uint32_t dst,
                              const TestPayload& p, std::size_t payload_len) {
  if (p.marker.size() > kMaxMarkerLen || payload_len < min_payload_len(p.marker) ||
      payload_len > kMaxPayloadLen)
    return 0;
  const std::size_t total = kInnerHeaderLen + payload_len;
  if (out.size() < total) return 0;
  std::uint8_t* ip = out.data();
  std::memset(ip, 0, total);
  ip[0] = 0x45;  // version 4, 5 words
  store_be16(ip + 2, static_cast<std::uint16_t>(total));
  store_be16(ip + 6, 0x4000);  // don't fragment
  ip[8] = 64;                  // TTL
  ip[9] = 17;                  // UDP
  store_be32(ip + 12, src);
  store_be32(ip + 16, dst);
  store_be16(ip + 10, ipv4_header_checksum(ip));
  std::uint8_t* udp = ip + kIpv4HeaderLen;
  store_be16(udp, kTestUdpPort);
  store_be16(udp + 2, kTestUdpPort);
  store_be16(udp + 4, static_cast<std::uint16_t>(kUdpHeaderLen + payload_len));
  // UDP checksum 0: none (allowed over IPv4).
  std::uint8_t* pl = udp + kUdpHeaderLen;
  std::memcpy(pl, kMagic, 4);
  pl[4] = static_cast<std::uint8_t>(p.kind);
  pl[5] = static_cast<std::uint8_t>(p.marker.size());
  store_be16(pl + 6, p.flow);
  store_be64(pl + 8, p.seq);
  store_be64(pl + 16, p.sent_ns);
  std::memcpy(pl + kPayloadFixedLen, p.marker.data(), p.marker.size());
  return total;
}

std::optional<TestPacket> parse_test_packet(ConstByteSpan in) {
  if (in.size() < kInnerHeaderLen + kPayloadFixedLen) return std::nullopt;
  const std::uint8_t* ip = in.data();
  if (ip[0] != 0x45 || ip[9] != 17) return std::nullopt;
  const std::size_t total = load_be16(ip + 2);
  if (total > in.size() || total < kInnerHeaderLen + kPayloadFixedLen) return std::nullopt;
  if (load_be16(ip + 10) != ipv4_header_checksum(ip)) return std::nullopt;
  const std::uint8_t* udp = ip + kIpv4HeaderLen;
  const std::size_t udp_len = load_be16(udp + 4);
  if (udp_len != total - kIpv4HeaderLen) return std::nullopt;
  const std::uint8_t* pl = udp + kUdpHeaderLen;
  const std::size_t pl_len = udp_len - kUdpHeaderLen;
  if (std::memcmp(pl, kMagic, 4) != 0) return std::nullopt;
  if (pl[4] != static_cast<std::uint8_t>(PayloadKind::data) &&
      pl[4] != static_cast<std::uint8_t>(PayloadKind::echo))
    return std::nullopt;
  const std::size_t marker_len = pl[5];
  if (marker_len > kMaxMarkerLen || kPayloadFixedLen + marker_len > pl_len) return std::nullopt;
  TestPacket t;
  t.src = load_be32(ip + 12);
  t.dst = load_be32(ip + 16);
  t.payload.kind = static_cast<PayloadKind>(pl[4]);
  t.payload.flow = load_be16(pl + 6);
  t.payload.seq = load_be64(pl + 8);
  t.payload.sent_ns = load_be64(pl + 16);
  t.payload.marker =
      std::string_view(reinterpret_cast<const char*>(pl + kPayloadFixedLen), marker_len);
  return t;
}

void make_echo_in_place(ByteSpan inner) {
  std::uint8_t* ip = inner.data();
  std::uint8_t a[4];
  std::memcpy(a, ip + 12, 4);
  std::memmove(ip + 12, ip + 16, 4);
  std::memcpy(ip + 16, a, 4);
  ip[8] = 64;
  store_be16(ip + 10, ipv4_header_checksum(ip));
  ip[kInnerHeaderLen + 4] = static_cast<std::uint8_t>(PayloadKind::echo);
}

std::optional<std::uint32_t> parse_ipv4(const std::string& text) {
  in_addr a{};
  if (::inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string ipv4_str(std::uint32_t addr) {
  in_addr a{};
  a.s_addr = htonl(addr);
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

SeqTracker::Seen SeqTracker::add(std::uint64_t seq) {
  if (seq >= kMaxSeq) {
    ++out_of_range_;
    return Seen::out_of_range;
  }
  if (test(seq)) {
    ++duplicates_;
    return Seen::duplicate;
  }
  if (seq / 64 >= bits_.size())  // grow geometrically, never past kMaxSeq bits
    bits_.resize(std::min<std::size_t>(kMaxSeq / 64, seq / 64 + 1 + bits_.size() / 2), 0);
  bits_[seq / 64] |= std::uint64_t{1} << (seq % 64);
  ++unique_;
  if (seq + 1 < end_) ++out_of_order_;
  if (seq + 1 > end_) end_ = seq + 1;
  return Seen::fresh;
}

SeqTracker::Losses SeqTracker::losses(std::uint64_t expected) const {
  Losses l;
  if (expected > kMaxSeq) expected = kMaxSeq;
  std::uint64_t run = 0;
  for (std::uint64_t s = 0; s < expected; ++s) {
    if (test(s)) {
      run = 0;
      continue;
    }
    if (l.missing == 0) l.first = s;
    ++l.missing;
    if (run++ == 0) ++l.runs;
    if (run > l.longest) l.longest = run;
  }
  return l;
}

}  // namespace ie::tools
