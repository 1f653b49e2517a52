// Fuzz target: a frame read from an offloading TUN (virtio-net header + packet, ie/ied/
// tcp_offload.hpp). open_tun_frame must never read or write out of bounds; a completed
// partial checksum must verify; every segment of a super packet must be a well-formed TCP
// packet (lengths, checksums by ied's RFC 1071 code, payload slices adding up to the super
// packet's), and coalescing the segments again must account for each exactly once and give
// frames that open as super packets of as many segments.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ie/ied/checksum.hpp"
#include "ie/ied/tcp_offload.hpp"

namespace {

void check(bool c) {
  if (!c) std::abort();
}

std::uint32_t pseudo(const std::uint8_t* ip, bool v6, std::size_t l4) {
  if (v6)
    return ie::ied::ipv6_pseudo_sum({ip + 8, 16}, {ip + 24, 16}, static_cast<std::uint32_t>(l4), 6);
  std::uint32_t s = ie::ied::checksum_add({ip + 12, 8});
  return s + static_cast<std::uint32_t>(l4) + 6;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ie::ied;
  if (size > ie::io::kVnetHdrLen + kMaxSuperPacket) return 0;
  std::vector<std::uint8_t> frame(data, data + size);
  const auto f = open_tun_frame(frame);
  if (!f) return 0;
  check(f->packet.data() == frame.data() + ie::io::kVnetHdrLen);
  check(f->packet.size() == size - ie::io::kVnetHdrLen);
  if (!f->gso) {
    if ((f->hdr.flags & kVnetFlagNeedsCsum) != 0) {
      // The field held a seed (the pseudo-header sum); with it the completed span sums to 0.
      const std::size_t at = ie::io::kVnetHdrLen + f->hdr.csum_start + f->hdr.csum_offset;
      const std::uint32_t seed = ie::load_be16(data + at);
      check(checksum_finish(checksum_add(f->packet.subspan(f->hdr.csum_start), seed)) == 0);
    } else {
      check(std::memcmp(frame.data(), data, size) == 0);  // untouched
    }
    return 0;
  }
  check(std::memcmp(frame.data(), data, size) == 0);
  check(f->segments >= 1 && f->hdr.gso_size > 0);
  const std::size_t hl = f->ip_hlen + f->tcp_hlen;
  check(hl + f->payload == f->packet.size());
  if (f->segments > 256) return 0;  // tiny MSS: checked above, too slow to walk
  std::vector<std::vector<std::uint8_t>> segs;
  std::size_t payload = 0;
  for (std::size_t i = 0; i < f->segments; ++i) {
    std::vector<std::uint8_t> out(f->max_segment());
    const std::size_t n = write_segment(*f, i, out);
    check(n >= hl && n <= f->max_segment());
    out.resize(n);
    const std::uint8_t* ip = out.data();
    if (f->v6) {
      check(ie::load_be16(ip + 4) == n - 40);
    } else {
      check(ie::load_be16(ip + 2) == n);
      check(checksum_finish(checksum_add({ip, f->ip_hlen})) == 0);
    }
    check(checksum_finish(checksum_add({ip + f->ip_hlen, n - f->ip_hlen},
                                       pseudo(ip, f->v6, n - f->ip_hlen))) == 0);
    check(std::memcmp(ip + hl, f->packet.data() + hl + payload, n - hl) == 0);
    payload += n - hl;
    segs.push_back(std::move(out));
  }
  check(payload == f->payload);
  std::vector<std::uint8_t> short_buf(f->max_segment() - 1);
  if (f->segments > 1) check(write_segment(*f, 0, short_buf) == 0);
  check(write_segment(*f, f->segments, segs[0]) == 0);

  TcpCoalescer c(2, 2);
  c.clear();
  for (const auto& s : segs)
    c.add(s);
  std::size_t total = 0, next = 0;
  for (const auto& it : c.finish()) {
    check(it.index >= next && it.index < segs.size());
    next = it.index + 1;
    total += it.count;
    if (it.frame.empty()) {
      check(it.count == 1);
      continue;
    }
    std::vector<std::uint8_t> again(it.frame.begin(), it.frame.end());
    const auto g = open_tun_frame(again);
    check(g && g->gso && g->segments == it.count);
  }
  check(total == segs.size());
  return 0;
}
