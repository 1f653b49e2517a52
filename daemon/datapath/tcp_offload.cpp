// TCP segmentation / receive offload for an offloading TUN (ie/ied/tcp_offload.hpp).
#include "ie/ied/tcp_offload.hpp"

#include <algorithm>
#include <cstring>

#include "ie/ied/checksum.hpp"

namespace ie::ied {

namespace {

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kTcpFin = 0x01;
constexpr std::uint8_t kTcpPsh = 0x08;
constexpr std::uint8_t kTcpAck = 0x10;
constexpr std::uint8_t kTcpCwr = 0x80;
constexpr std::size_t kTcpCsumOffset = 16;
constexpr std::size_t kFrame = io::kVnetHdrLen + kMaxSuperPacket;

// The TCP pseudo-header sum of an IPv4/IPv6 packet for an L4 length: the `initial` of the
// segment's checksum_add. Its summed piece (the addresses, 8 or 32 bytes) is even-length and
// the segment, of any length, comes last, as checksum_add's chaining requires.
std::uint32_t pseudo_sum(ConstByteSpan ip, bool v6, std::size_t l4_len) {
  std::uint32_t s = checksum_add(v6 ? ip.subspan(8, 32) : ip.subspan(12, 8));
  if (v6) s += static_cast<std::uint32_t>(l4_len >> 16);
  return s + static_cast<std::uint32_t>(l4_len & 0xffff) + kProtoTcp;
}

void set_ipv4_csum(std::uint8_t* ip, std::size_t hlen) {
  ip[10] = ip[11] = 0;
  store_be16(ip + 10, checksum_finish(checksum_add(ConstByteSpan(ip, hlen))));
}

// The TCP segment of an IPv4 (no fragment) or IPv6 (TCP right after the fixed header)
// packet, with lengths checked. ip_len: the IP length from the header (<= p.size()).
struct TcpView {
  bool v6 = false;
  std::size_t ip_hlen = 0;
  std::size_t tcp_hlen = 0;
  std::size_t ip_len = 0;
  std::size_t payload = 0;
  std::uint32_t seq = 0;
  std::uint8_t flags = 0;
};

std::optional<TcpView> tcp_view(ConstByteSpan p) {
  TcpView t;
  if (p.size() < 20) return std::nullopt;
  const unsigned version = p[0] >> 4;
  if (version == 4) {
    t.ip_hlen = std::size_t{p[0] & 0x0fu} * 4;
    t.ip_len = load_be16(p.data() + 2);
    if (t.ip_hlen < 20 || t.ip_len < t.ip_hlen || t.ip_len > p.size()) return std::nullopt;
    if (p[9] != kProtoTcp || (load_be16(p.data() + 6) & 0x3fff) != 0) return std::nullopt;
  } else if (version == 6) {
    if (p.size() < 40 || p[6] != kProtoTcp) return std::nullopt;
    t.v6 = true;
    t.ip_hlen = 40;
    t.ip_len = 40 + std::size_t{load_be16(p.data() + 4)};
    if (t.ip_len > p.size()) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (t.ip_len - t.ip_hlen < 20) return std::nullopt;
  const std::uint8_t* th = p.data() + t.ip_hlen;
  t.tcp_hlen = static_cast<std::size_t>(th[12] >> 4) * 4;
  if (t.tcp_hlen < 20 || t.tcp_hlen > t.ip_len - t.ip_hlen) return std::nullopt;
  t.payload = t.ip_len - t.ip_hlen - t.tcp_hlen;
  t.seq = load_be32(th + 4);
  t.flags = th[13];
  return t;
}

// Same addresses and ports (the versions are known equal).
bool same_flow(ConstByteSpan a, ConstByteSpan b, const TcpView& ta, const TcpView& tb) {
  if (ta.v6 != tb.v6) return false;
  const std::size_t off = ta.v6 ? 8 : 12, n = ta.v6 ? 32 : 8;
  return std::memcmp(a.data() + off, b.data() + off, n) == 0 &&
         std::memcmp(a.data() + ta.ip_hlen, b.data() + tb.ip_hlen, 4) == 0;
}

// TCP options a super packet may carry: none, or NOP NOP timestamp (what Linux sends).
bool plain_options(ConstByteSpan p, const TcpView& t) {
  if (t.tcp_hlen == 20) return true;
  const std::uint8_t* o = p.data() + t.ip_hlen + 20;
  return t.tcp_hlen == 32 && o[0] == 1 && o[1] == 1 && o[2] == 8 && o[3] == 10;
}

// Everything but length, id, checksums, sequence number and PSH equal to the first packet.
bool headers_match(ConstByteSpan first, ConstByteSpan p, const TcpView& t) {
  if (t.v6) {
    if (std::memcmp(first.data(), p.data(), 4) != 0 || first[7] != p[7]) return false;
  } else {
    if (first[1] != p[1] || first[8] != p[8] ||
        load_be16(first.data() + 6) != load_be16(p.data() + 6))
      return false;
  }
  const std::uint8_t* a = first.data() + t.ip_hlen;
  const std::uint8_t* b = p.data() + t.ip_hlen;
  // ack number; data offset; window; options (timestamps byte for byte).
  return std::memcmp(a + 8, b + 8, 5) == 0 && std::memcmp(a + 14, b + 14, 2) == 0 &&
         std::memcmp(a + 20, b + 20, t.tcp_hlen - 20) == 0;
}

// Both checksums of a packet verify (a super packet's are trusted by the receiving kernel).
bool checksums_ok(ConstByteSpan p, const TcpView& t) {
  if (!t.v6 && checksum_fold(checksum_add(p.first(t.ip_hlen))) != 0xffff) return false;
  const std::size_t l4 = t.ip_len - t.ip_hlen;
  const std::uint32_t s = checksum_add(p.subspan(t.ip_hlen, l4), pseudo_sum(p, t.v6, l4));
  return checksum_fold(s) == 0xffff;
}

}  // namespace

VnetHdr VnetHdr::read(const std::uint8_t* p) {
  auto le16 = [](const std::uint8_t* q) {
    return static_cast<std::uint16_t>(q[0] | (std::uint16_t{q[1]} << 8));
  };
  VnetHdr h;
  h.flags = p[0];
  h.gso_type = p[1];
  h.hdr_len = le16(p + 2);
  h.gso_size = le16(p + 4);
  h.csum_start = le16(p + 6);
  h.csum_offset = le16(p + 8);
  return h;
}

void VnetHdr::write(std::uint8_t* p) const {
  auto le16 = [](std::uint8_t* q, std::uint16_t v) {
    q[0] = static_cast<std::uint8_t>(v);
    q[1] = static_cast<std::uint8_t>(v >> 8);
  };
  p[0] = flags;
  p[1] = gso_type;
  le16(p + 2, hdr_len);
  le16(p + 4, gso_size);
  le16(p + 6, csum_start);
  le16(p + 8, csum_offset);
}

std::optional<TunFrame> open_tun_frame(ByteSpan frame) {
  if (frame.size() < io::kVnetHdrLen) return std::nullopt;
  TunFrame f;
  f.hdr = VnetHdr::read(frame.data());
  f.packet = frame.subspan(io::kVnetHdrLen);
  const std::uint8_t gso = f.hdr.gso_type & static_cast<std::uint8_t>(~kGsoEcn);
  if (gso == kGsoNone) {
    if ((f.hdr.flags & kVnetFlagNeedsCsum) != 0) {
      // The kernel summed the pseudo-header into the checksum field; the rest is ours (its
      // skb_checksum_help, including 0 sent as 0xffff).
      const std::size_t start = f.hdr.csum_start;
      const std::size_t field = start + f.hdr.csum_offset;
      // An odd offset would put the field across two of the summed words (no protocol the
      // kernel offloads has one).
      if (start >= f.packet.size() || field + 2 > f.packet.size() || f.hdr.csum_offset % 2 != 0)
        return std::nullopt;
      const std::uint16_t c = checksum_finish(checksum_add(f.packet.subspan(start)));
      store_be16(f.packet.data() + field, c == 0 ? 0xffff : c);
    }
    return f;
  }
  if (gso != kGsoTcpV4 && gso != kGsoTcpV6) return std::nullopt;
  const auto t = tcp_view(f.packet);
  if (!t || t->v6 != (gso == kGsoTcpV6) || t->ip_len != f.packet.size()) return std::nullopt;
  if (f.hdr.csum_start != t->ip_hlen || f.hdr.csum_offset != kTcpCsumOffset) return std::nullopt;
  if (f.hdr.gso_size == 0 || t->ip_len > kMaxSuperPacket + (t->v6 ? 40 : 0)) return std::nullopt;
  f.gso = true;
  f.v6 = t->v6;
  f.ip_hlen = t->ip_hlen;
  f.tcp_hlen = t->tcp_hlen;
  f.payload = t->payload;
  f.segments = std::max<std::size_t>(1, (t->payload + f.hdr.gso_size - 1) / f.hdr.gso_size);
  return f;
}

std::size_t write_segment(const TunFrame& f, std::size_t i, ByteSpan out) {
  if (!f.gso || i >= f.segments) return 0;
  const std::size_t hl = f.ip_hlen + f.tcp_hlen;
  const std::size_t off = i * f.hdr.gso_size;
  const std::size_t n = std::min<std::size_t>(f.hdr.gso_size, f.payload - off);
  const std::size_t len = hl + n;
  if (out.size() < len) return 0;
  std::uint8_t* p = out.data();
  std::memcpy(p, f.packet.data(), hl);
  if (n > 0) std::memcpy(p + hl, f.packet.data() + hl + off, n);
  if (f.v6) {
    store_be16(p + 4, static_cast<std::uint16_t>(len - 40));
  } else {
    store_be16(p + 2, static_cast<std::uint16_t>(len));
    store_be16(p + 4, static_cast<std::uint16_t>(load_be16(p + 4) + i));
    set_ipv4_csum(p, f.ip_hlen);
  }
  std::uint8_t* th = p + f.ip_hlen;
  store_be32(th + 4, static_cast<std::uint32_t>(load_be32(th + 4) + off));
  if (i + 1 < f.segments) th[13] &= static_cast<std::uint8_t>(~(kTcpFin | kTcpPsh));
  if (i > 0) th[13] &= static_cast<std::uint8_t>(~kTcpCwr);
  th[16] = th[17] = 0;
  const std::size_t l4 = len - f.ip_hlen;
  const std::uint32_t s =
      checksum_add(ConstByteSpan(th, l4), pseudo_sum(ConstByteSpan(p, len), f.v6, l4));
  store_be16(th + 16, checksum_finish(s));
  return len;
}

TcpCoalescer::TcpCoalescer(std::size_t max_supers, std::size_t max_open)
    : max_supers_(max_supers),
      max_open_(std::max<std::size_t>(1, max_open)),
      arena_(max_supers * kFrame) {
  items_.reserve(256);
  flows_.reserve(max_open_);
  supers_.reserve(max_supers_);
}

void TcpCoalescer::clear() {
  items_.clear();
  flows_.clear();
  supers_.clear();
  added_ = 0;
}

ByteSpan TcpCoalescer::frame(std::size_t super) {
  return ByteSpan(arena_.data() + super * kFrame, kFrame);
}

void TcpCoalescer::close(std::size_t open_pos) {
  flows_.erase(flows_.begin() + static_cast<std::ptrdiff_t>(open_pos));
}

// Copies the flow's first packet into a free arena frame (after checking its checksums).
bool TcpCoalescer::start_super(Flow& fl) {
  if (supers_.size() >= max_supers_) return false;
  const auto t = tcp_view(fl.first);
  if (!t || !checksums_ok(fl.first, *t)) return false;
  Super s;
  s.item = fl.item;
  s.len = t->ip_len;
  s.v6 = fl.v6;
  s.ip_hlen = fl.ip_hlen;
  s.tcp_hlen = fl.tcp_hlen;
  s.gso_size = fl.gso_size;
  std::memcpy(frame(supers_.size()).data() + io::kVnetHdrLen, fl.first.data(), t->ip_len);
  fl.super = static_cast<int>(supers_.size());
  supers_.push_back(s);
  return true;
}

void TcpCoalescer::add(ConstByteSpan p) {
  const std::size_t index = added_++;
  const auto t = tcp_view(p);
  if (!t) {
    items_.push_back(Item{index, 1, {}});
    return;
  }
  // The flow's open super packet, if any (newest last).
  std::size_t pos = flows_.size();
  for (std::size_t k = flows_.size(); k-- > 0;) {
    const Flow& fl = flows_[k];
    const auto ft = TcpView{fl.v6, fl.ip_hlen, fl.tcp_hlen, 0, 0, 0, 0};
    if (same_flow(fl.first, p, ft, *t)) {
      pos = k;
      break;
    }
  }
  const bool plain = (t->v6 || t->ip_hlen == 20) && t->payload > 0 && plain_options(p, *t);
  if (pos < flows_.size()) {
    Flow& fl = flows_[pos];
    const bool joins = plain && (t->flags == kTcpAck || t->flags == (kTcpAck | kTcpPsh)) &&
                       t->seq == fl.next_seq && t->tcp_hlen == fl.tcp_hlen &&
                       t->payload <= fl.gso_size && headers_match(fl.first, p, *t);
    if (joins && (fl.super >= 0 || start_super(fl))) {
      Super& s = supers_[static_cast<std::size_t>(fl.super)];
      if (s.len + t->payload <= kMaxSuperPacket && checksums_ok(p, *t)) {
        std::memcpy(frame(static_cast<std::size_t>(fl.super)).data() + io::kVnetHdrLen + s.len,
                    p.data() + t->ip_hlen + t->tcp_hlen, t->payload);
        s.len += t->payload;
        ++items_[fl.item].count;
        fl.next_seq += static_cast<std::uint32_t>(t->payload);
        if ((t->flags & kTcpPsh) != 0) s.psh = true;
        // A PSH or a shorter segment ends it.
        if (s.psh || t->payload < fl.gso_size) close(pos);
        return;
      }
    }
    close(pos);  // nothing of this flow may overtake p
  }
  items_.push_back(Item{index, 1, {}});
  if (!plain || t->flags != kTcpAck || t->payload > 0xffff) return;
  if (flows_.size() >= max_open_) close(0);
  Flow fl;
  fl.item = items_.size() - 1;
  fl.first = p;
  fl.v6 = t->v6;
  fl.ip_hlen = static_cast<std::uint8_t>(t->ip_hlen);
  fl.tcp_hlen = static_cast<std::uint8_t>(t->tcp_hlen);
  fl.gso_size = static_cast<std::uint16_t>(t->payload);
  fl.next_seq = t->seq + static_cast<std::uint32_t>(t->payload);
  flows_.push_back(fl);
}

std::span<const TcpCoalescer::Item> TcpCoalescer::finish() {
  flows_.clear();
  for (std::size_t k = 0; k < supers_.size(); ++k) {
    const Super& s = supers_[k];
    Item& it = items_[s.item];
    if (it.count < 2) continue;  // its first packet was copied, nothing joined: as is
    const ByteSpan f = frame(k);
    std::uint8_t* ip = f.data() + io::kVnetHdrLen;
    if (s.v6) {
      store_be16(ip + 4, static_cast<std::uint16_t>(s.len - 40));
    } else {
      store_be16(ip + 2, static_cast<std::uint16_t>(s.len));
      set_ipv4_csum(ip, s.ip_hlen);
    }
    std::uint8_t* th = ip + s.ip_hlen;
    if (s.psh) th[13] |= kTcpPsh;
    // CHECKSUM_PARTIAL as the kernel's own TCP leaves it: the field holds the folded
    // pseudo-header sum (not complemented); the receiver's stack trusts the segments.
    const std::size_t l4 = s.len - s.ip_hlen;
    store_be16(th + 16, checksum_fold(pseudo_sum(ConstByteSpan(ip, s.len), s.v6, l4)));
    VnetHdr h;
    h.flags = kVnetFlagNeedsCsum;
    h.gso_type = s.v6 ? kGsoTcpV6 : kGsoTcpV4;
    h.hdr_len = static_cast<std::uint16_t>(s.ip_hlen + s.tcp_hlen);
    h.gso_size = s.gso_size;
    h.csum_start = s.ip_hlen;
    h.csum_offset = kTcpCsumOffset;
    h.write(f.data());
    it.frame = f.first(io::kVnetHdrLen + s.len);
  }
  return items_;
}

}  // namespace ie::ied
