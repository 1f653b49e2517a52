// TCP segmentation and coalescing for an offloading TUN (tcp_offload.hpp) on hand-built IPv4
// and IPv6 packets: super packets cut into segments (lengths, ids, sequence numbers, flags,
// checksums checked by a naive RFC 1071 sum written here, payload slices), partial checksums
// completed, malformed frames refused; runs of segments coalesced back into the very bytes
// of the super packet they came from, flows kept apart and in order, and every case that
// must not coalesce.
#include "ie/ied/tcp_offload.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "test_packets.hpp"

namespace ie::ied {
namespace {

using test::A;

constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10, kCwr = 0x80;

// Independent of the code under test: 16-bit big-endian words, one at a time.
std::uint32_t naive_sum(const std::uint8_t* p, std::size_t n, std::uint32_t s = 0) {
  for (std::size_t i = 0; i < n; i += 2)
    s += (std::uint32_t{p[i]} << 8) | (i + 1 < n ? p[i + 1] : 0);
  return s;
}
std::uint16_t naive_fold(std::uint32_t s) {
  while (s >> 16)
    s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint16_t>(s);
}
// The pseudo-header sum of an IP packet for its L4 length (IPv4 IHL from the header; IPv6
// without extension headers).
std::uint32_t naive_pseudo(const Bytes& ip, std::size_t l4_len, std::uint8_t proto) {
  const bool v6 = (ip[0] >> 4) == 6;
  std::uint32_t s = v6 ? naive_sum(ip.data() + 8, 32) : naive_sum(ip.data() + 12, 8);
  return s + static_cast<std::uint32_t>(l4_len >> 16) + (l4_len & 0xffff) + proto;
}
std::size_t iphl(const Bytes& ip) {
  return (ip[0] >> 4) == 6 ? 40 : std::size_t{ip[0] & 0x0fu} * 4;
}
bool tcp_csum_ok(const Bytes& ip, std::uint8_t proto = 6) {
  const std::size_t h = iphl(ip);
  return naive_fold(naive_sum(ip.data() + h, ip.size() - h,
                              naive_pseudo(ip, ip.size() - h, proto))) == 0xffff;
}
bool ipv4_csum_ok(const Bytes& ip) {
  return naive_fold(naive_sum(ip.data(), iphl(ip))) == 0xffff;
}
void set_tcp_csum(Bytes& ip) {
  const std::size_t h = iphl(ip);
  ip[h + 16] = ip[h + 17] = 0;
  const std::uint16_t c = static_cast<std::uint16_t>(
      ~naive_fold(naive_sum(ip.data() + h, ip.size() - h, naive_pseudo(ip, ip.size() - h, 6))));
  store_be16(ip.data() + h + 16, c);
}

struct Seg {
  std::uint32_t seq = 1000;
  std::uint32_t ack = 77;
  std::uint8_t flags = kAck;
  std::uint16_t window = 500;
  bool ts = false;
  std::uint32_t tsval = 1;
  std::size_t payload = 100;
  std::uint8_t fill = 0;  // payload byte i is fill + (seq + i) & 0xff (tells slices apart)
  bool v6 = false;
  std::uint8_t tos = 0;
  std::uint16_t id = 0x1234;
  test::V4Opts v4;
  std::uint16_t sport = 40000;
};

// A TCP packet with a valid checksum.
Bytes tcp(const Seg& s) {
  const std::size_t th = s.ts ? 32 : 20;
  Bytes l4(th + s.payload, 0);
  store_be16(l4.data(), s.sport);
  store_be16(l4.data() + 2, 5201);
  store_be32(l4.data() + 4, s.seq);
  store_be32(l4.data() + 8, s.ack);
  l4[12] = static_cast<std::uint8_t>((th / 4) << 4);
  l4[13] = s.flags;
  store_be16(l4.data() + 14, s.window);
  if (s.ts) {
    l4[20] = 1;
    l4[21] = 1;
    l4[22] = 8;
    l4[23] = 10;
    store_be32(l4.data() + 24, s.tsval);
    store_be32(l4.data() + 28, 99);
  }
  for (std::size_t i = 0; i < s.payload; ++i)
    l4[th + i] = static_cast<std::uint8_t>(s.fill + ((s.seq + i) & 0xff));
  Bytes ip = s.v6 ? test::make_v6(6, A("fd00::1"), A("fd00::2"), l4)
                  : test::make_v4(6, A("10.9.0.1"), A("10.9.0.2"), l4, s.v4);
  if (s.v6) {
    ip[0] = static_cast<std::uint8_t>(0x60 | (s.tos >> 4));
    ip[1] = static_cast<std::uint8_t>(s.tos << 4);
  } else {
    ip[1] = s.tos;
    store_be16(ip.data() + 4, s.id);
    ip[10] = ip[11] = 0;
    store_be16(ip.data() + 10,
               static_cast<std::uint16_t>(~naive_fold(naive_sum(ip.data(), iphl(ip)))));
  }
  set_tcp_csum(ip);
  return ip;
}

// What the kernel hands an offloading TUN for a TSO packet: header + the super packet with
// the pseudo-header sum (folded, not complemented) in the TCP checksum field.
Bytes gso_frame(Bytes ip, std::uint16_t mss) {
  const bool v6 = (ip[0] >> 4) == 6;
  const std::size_t h = iphl(ip);
  const std::size_t th = static_cast<std::size_t>(ip[h + 12] >> 4) * 4;
  store_be16(ip.data() + h + 16, naive_fold(naive_pseudo(ip, ip.size() - h, 6)));
  VnetHdr v;
  v.flags = kVnetFlagNeedsCsum;
  v.gso_type = v6 ? kGsoTcpV6 : kGsoTcpV4;
  v.hdr_len = static_cast<std::uint16_t>(h + th);
  v.gso_size = mss;
  v.csum_start = static_cast<std::uint16_t>(h);
  v.csum_offset = 16;
  Bytes f(io::kVnetHdrLen);
  v.write(f.data());
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

std::vector<Bytes> segment_all(Bytes& frame) {
  std::vector<Bytes> out;
  const auto f = open_tun_frame(frame);
  if (!f || !f->gso) return out;
  for (std::size_t i = 0; i < f->segments; ++i) {
    Bytes b(2048);
    const std::size_t n = write_segment(*f, i, b);
    EXPECT_GT(n, 0u);
    b.resize(n);
    out.push_back(std::move(b));
  }
  return out;
}

void check_segments(bool v6) {
  SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
  Seg s;
  s.v6 = v6;
  s.seq = 0xfffff000;  // wraps within the super packet
  s.payload = 5000;
  s.ts = true;
  s.flags = kAck | kPsh | kFin | kCwr;
  const Bytes super = tcp(s);
  Bytes frame = gso_frame(super, 1400);
  const auto f = open_tun_frame(frame);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->gso);
  EXPECT_EQ(f->segments, 4u);
  EXPECT_EQ(f->max_segment(), (v6 ? 40u : 20u) + 32u + 1400u);
  const auto segs = segment_all(frame);
  ASSERT_EQ(segs.size(), 4u);
  const std::size_t h = v6 ? 40 : 20, hl = h + 32;
  for (std::size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    const Bytes& p = segs[i];
    const std::size_t n = i < 3 ? 1400 : 800;
    ASSERT_EQ(p.size(), hl + n);
    if (v6) {
      EXPECT_EQ(load_be16(p.data() + 4), 32 + n);
    } else {
      EXPECT_EQ(load_be16(p.data() + 2), hl + n);
      EXPECT_EQ(load_be16(p.data() + 4), 0x1234 + i);
      EXPECT_TRUE(ipv4_csum_ok(p));
    }
    EXPECT_EQ(load_be32(p.data() + h + 4), static_cast<std::uint32_t>(s.seq + i * 1400));
    EXPECT_EQ(load_be32(p.data() + h + 8), 77u);
    const std::uint8_t want =
        static_cast<std::uint8_t>(kAck | (i == 0 ? kCwr : 0) | (i == 3 ? kPsh | kFin : 0));
    EXPECT_EQ(p[h + 13], want);
    EXPECT_TRUE(tcp_csum_ok(p));
    EXPECT_EQ(std::memcmp(p.data() + h + 20, super.data() + h + 20, 12), 0);  // options
    EXPECT_EQ(std::memcmp(p.data() + hl, super.data() + hl + i * 1400, n), 0);
  }
  Bytes small(hl + 1399);
  EXPECT_EQ(write_segment(*f, 0, small), 0u);
  Bytes big(2048);
  EXPECT_EQ(write_segment(*f, 4, big), 0u);
}

TEST(TcpSegment, Ipv4) {
  check_segments(false);
}
TEST(TcpSegment, Ipv6) {
  check_segments(true);
}

TEST(TcpSegment, PayloadFitsOneSegment) {
  Seg s;
  s.payload = 300;
  Bytes frame = gso_frame(tcp(s), 1400);
  const auto segs = segment_all(frame);
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0], tcp(s));
}

TEST(TcpSegment, CompletesPartialChecksums) {
  // TCP and UDP packets with only the pseudo-header sum in the checksum field.
  for (bool v6 : {false, true}) {
    Seg s;
    s.v6 = v6;
    s.payload = 333;  // odd
    const Bytes good = tcp(s);
    Bytes partial = good;
    const std::size_t h = iphl(partial);
    store_be16(partial.data() + h + 16, naive_fold(naive_pseudo(partial, partial.size() - h, 6)));
    VnetHdr v;
    v.flags = kVnetFlagNeedsCsum;
    v.csum_start = static_cast<std::uint16_t>(h);
    v.csum_offset = 16;
    Bytes frame(io::kVnetHdrLen);
    v.write(frame.data());
    frame.insert(frame.end(), partial.begin(), partial.end());
    const auto f = open_tun_frame(frame);
    ASSERT_TRUE(f);
    EXPECT_FALSE(f->gso);
    EXPECT_EQ(Bytes(f->packet.begin(), f->packet.end()), good);

    Bytes udp = v6 ? test::make_v6(17, A("fd00::1"), A("fd00::2"), test::ports(1, 2, 41))
                   : test::make_v4(17, A("10.9.0.1"), A("10.9.0.2"), test::ports(1, 2, 41));
    store_be16(udp.data() + h + 4, 41);
    udp[h + 6] = udp[h + 7] = 0;
    store_be16(udp.data() + h + 6, naive_fold(naive_pseudo(udp, udp.size() - h, 17)));
    v.csum_offset = 6;
    Bytes uf(io::kVnetHdrLen);
    v.write(uf.data());
    uf.insert(uf.end(), udp.begin(), udp.end());
    const auto g = open_tun_frame(uf);
    ASSERT_TRUE(g);
    EXPECT_TRUE(tcp_csum_ok(Bytes(g->packet.begin(), g->packet.end()), 17));
  }
  // No NEEDS_CSUM: left alone.
  Seg s;
  Bytes p = tcp(s);
  p[30] ^= 0xff;  // any change would be noticed
  Bytes frame(io::kVnetHdrLen, 0);
  frame.insert(frame.end(), p.begin(), p.end());
  const auto f = open_tun_frame(frame);
  ASSERT_TRUE(f);
  EXPECT_EQ(Bytes(f->packet.begin(), f->packet.end()), p);
}

TEST(TcpSegment, RefusesMalformedFrames) {
  Seg s;
  s.payload = 3000;
  const Bytes good = gso_frame(tcp(s), 1000);
  {
    Bytes f = good;
    ASSERT_TRUE(open_tun_frame(f));
  }
  auto refused = [&](auto mutate) {
    Bytes f = good;
    mutate(f);
    return !open_tun_frame(f).has_value();
  };
  const std::size_t H = io::kVnetHdrLen;
  EXPECT_TRUE(refused([](Bytes& f) { f.resize(5); }));
  EXPECT_TRUE(refused([](Bytes& f) { f[1] = 3; }));                // GSO UDP (UFO)
  EXPECT_TRUE(refused([](Bytes& f) { f[1] = 5; }));                // GSO UDP L4
  EXPECT_TRUE(refused([](Bytes& f) { f[1] = kGsoTcpV6; }));        // type vs version
  EXPECT_TRUE(refused([](Bytes& f) { f[4] = f[5] = 0; }));         // gso_size 0
  EXPECT_TRUE(refused([](Bytes& f) { f[6] = 24; }));               // csum_start
  EXPECT_TRUE(refused([](Bytes& f) { f[8] = 6; }));                // csum_offset
  EXPECT_TRUE(refused([](Bytes& f) { f.pop_back(); }));            // total length
  EXPECT_TRUE(refused([](Bytes& f) { f.push_back(0); }));          // trailing bytes
  EXPECT_TRUE(refused([&](Bytes& f) { f[H + 6] |= 0x20; }));       // more fragments
  EXPECT_TRUE(refused([&](Bytes& f) { f[H + 9] = 17; }));          // not TCP
  EXPECT_TRUE(refused([&](Bytes& f) { f[H + 20 + 12] = 0x10; }));  // data offset 4
  EXPECT_TRUE(refused([&](Bytes& f) { f[H] = 0x46; }));            // IHL vs csum_start
  // An IPv6 super packet with an extension header.
  Seg s6;
  s6.v6 = true;
  s6.payload = 3000;
  Bytes l4 = tcp(s6);
  Bytes with_ext = test::make_v6(6, A("fd00::1"), A("fd00::2"), Bytes(l4.begin() + 40, l4.end()),
                                 {test::ext_opts(60)});
  Bytes f6 = gso_frame(with_ext, 1000);
  EXPECT_FALSE(open_tun_frame(f6));
  // NEEDS_CSUM with the field outside the packet.
  Bytes p = tcp(Seg{});
  VnetHdr v;
  v.flags = kVnetFlagNeedsCsum;
  v.csum_start = static_cast<std::uint16_t>(p.size());
  Bytes nf(H);
  v.write(nf.data());
  nf.insert(nf.end(), p.begin(), p.end());
  EXPECT_FALSE(open_tun_frame(nf));
  v.csum_start = 20;
  v.csum_offset = static_cast<std::uint16_t>(p.size() - 21);
  v.write(nf.data());
  EXPECT_FALSE(open_tun_frame(nf));
  // ... or at an odd offset (found by fuzz_tun_frame).
  v.csum_offset = 15;
  v.write(nf.data());
  EXPECT_FALSE(open_tun_frame(nf));
  v.csum_offset = 16;
  v.write(nf.data());
  EXPECT_TRUE(open_tun_frame(nf));
}

// Coalesces the packets; returns the items (spans stay valid while c lives).
std::vector<TcpCoalescer::Item> coalesce(TcpCoalescer& c, const std::vector<Bytes>& pkts) {
  c.clear();
  for (const auto& p : pkts)
    c.add(p);
  const auto items = c.finish();
  return std::vector<TcpCoalescer::Item>(items.begin(), items.end());
}

void check_round_trip(bool v6, bool ts) {
  SCOPED_TRACE(std::string(v6 ? "IPv6" : "IPv4") + (ts ? " timestamps" : ""));
  Seg s;
  s.v6 = v6;
  s.ts = ts;
  s.payload = 9000;
  s.flags = kAck | kPsh;
  const Bytes frame = gso_frame(tcp(s), 1200);
  Bytes copy = frame;
  const auto segs = segment_all(copy);
  ASSERT_EQ(segs.size(), 8u);
  TcpCoalescer c;
  const auto items = coalesce(c, segs);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].index, 0u);
  EXPECT_EQ(items[0].count, 8u);
  EXPECT_EQ(Bytes(items[0].frame.begin(), items[0].frame.end()), frame);
  // And once more through segmentation: the same segments.
  Bytes again(items[0].frame.begin(), items[0].frame.end());
  EXPECT_EQ(segment_all(again), segs);
}

TEST(TcpCoalesce, RoundTripGivesBackTheSuperPacket) {
  for (bool v6 : {false, true})
    for (bool ts : {false, true})
      check_round_trip(v6, ts);
}

TEST(TcpCoalesce, FlowsStayApartAndInOrder) {
  Seg a, b;
  b.sport = 40001;
  b.seq = 5;
  std::vector<Bytes> pkts;
  for (int i = 0; i < 3; ++i) {
    pkts.push_back(tcp(a));
    a.seq += 100;
    if (i < 2) {
      pkts.push_back(tcp(b));
      b.seq += 100;
    }
  }
  pkts.push_back(test::make_v4(17, A("10.9.0.1"), A("10.9.0.2"), test::ports(1, 2)));  // UDP
  TcpCoalescer c;
  const auto items = coalesce(c, pkts);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].index, 0u);
  EXPECT_EQ(items[0].count, 3u);
  EXPECT_EQ(items[1].index, 1u);
  EXPECT_EQ(items[1].count, 2u);
  EXPECT_EQ(items[2].index, 5u);
  EXPECT_TRUE(items[2].frame.empty());
  // A's payload in order: bytes fill + seq.
  const ByteSpan f = items[0].frame;
  ASSERT_EQ(f.size(), io::kVnetHdrLen + 20 + 20 + 300);
  for (std::size_t i = 0; i < 300; ++i)
    ASSERT_EQ(f[io::kVnetHdrLen + 40 + i], static_cast<std::uint8_t>((1000 + i) & 0xff)) << i;
  const VnetHdr h = VnetHdr::read(f.data());
  EXPECT_EQ(h.gso_type, kGsoTcpV4);
  EXPECT_EQ(h.gso_size, 100);
  EXPECT_EQ(h.flags, kVnetFlagNeedsCsum);
  EXPECT_EQ(h.csum_start, 20);
  EXPECT_EQ(h.csum_offset, 16);
  EXPECT_EQ(h.hdr_len, 40);
  // The coalesced packet's checksums once the partial one is completed.
  Bytes ip(f.begin() + io::kVnetHdrLen, f.end());
  EXPECT_TRUE(ipv4_csum_ok(ip));
  ip[36] = ip[37] = 0;
  set_tcp_csum(ip);
  Seg whole;
  whole.payload = 300;
  EXPECT_EQ(ip, tcp(whole));
}

TEST(TcpCoalesce, WhatMustNotCoalesce) {
  // Each case: a first segment, then a second built by `change`; both must go out alone.
  struct Case {
    const char* what;
    void (*change)(Seg&);
    bool corrupt = false;
  };
  const Case cases[] = {
      {"gap in sequence", [](Seg& s) { s.seq += 1; }},
      {"retransmission", [](Seg& s) { s.seq -= 100; }},
      {"other ack", [](Seg& s) { s.ack += 1; }},
      {"other window", [](Seg& s) { s.window += 1; }},
      {"FIN", [](Seg& s) { s.flags |= kFin; }},
      {"SYN", [](Seg& s) { s.flags = kSyn | kAck; }},
      {"RST", [](Seg& s) { s.flags = kRst | kAck; }},
      {"CWR", [](Seg& s) { s.flags |= kCwr; }},
      {"ECN CE", [](Seg& s) { s.tos = 3; }},
      {"other TOS", [](Seg& s) { s.tos = 0x10; }},
      {"larger payload", [](Seg& s) { s.payload = 101; }},
      {"no payload", [](Seg& s) { s.payload = 0; }},
      {"other timestamp", [](Seg& s) { s.ts = true, s.tsval = 2; }},
      {"IPv4 options", [](Seg& s) { s.v4.options_len = 4; }},
      {"no DF", [](Seg& s) { s.v4.df = false; }},
      {"bad TCP checksum", [](Seg&) {}, true},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.what);
    Seg s;
    if (std::string(k.what) == "other timestamp") s.ts = true;
    const Bytes first = tcp(s);
    Seg t = s;
    t.seq += 100;
    k.change(t);
    Bytes second = tcp(t);
    if (k.corrupt) second.back() ^= 1;
    TcpCoalescer c;
    const auto items = coalesce(c, {first, second});
    ASSERT_EQ(items.size(), 2u);
    EXPECT_TRUE(items[0].frame.empty());
    EXPECT_TRUE(items[1].frame.empty());
  }
  // A first packet that starts nothing: PSH, options other than a timestamp, bad checksum.
  {
    Seg s;
    s.flags = kAck | kPsh;
    Seg t = s;
    t.seq += 100;
    TcpCoalescer c;
    EXPECT_EQ(coalesce(c, {tcp(s), tcp(t)}).size(), 2u);
    Bytes bad = tcp(Seg{});
    bad.back() ^= 1;
    Seg u;
    u.seq += 100;
    EXPECT_EQ(coalesce(c, {bad, tcp(u)}).size(), 2u);
  }
}

TEST(TcpCoalesce, PshAndShortSegmentsEndASuperPacket) {
  Seg s;
  std::vector<Bytes> pkts;
  pkts.push_back(tcp(s));
  s.seq += 100;
  s.payload = 60;  // shorter: joins and closes
  pkts.push_back(tcp(s));
  s.seq += 60;
  s.payload = 60;
  pkts.push_back(tcp(s));  // starts a new one
  s.seq += 60;
  s.flags = kAck | kPsh;  // joins that and closes it
  pkts.push_back(tcp(s));
  s.seq += 60;
  s.flags = kAck;
  pkts.push_back(tcp(s));
  TcpCoalescer c;
  const auto items = coalesce(c, pkts);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].count, 2u);
  EXPECT_EQ(items[1].count, 2u);
  EXPECT_EQ(items[1].index, 2u);
  EXPECT_EQ(items[1].frame[io::kVnetHdrLen + 20 + 13], kAck | kPsh);
  EXPECT_EQ(items[2].count, 1u);
  EXPECT_EQ(items[2].index, 4u);
}

TEST(TcpCoalesce, AnotherPacketOfTheFlowIsNotOvertaken) {
  Seg s;
  std::vector<Bytes> pkts;
  for (int i = 0; i < 2; ++i, s.seq += 100)
    pkts.push_back(tcp(s));
  Seg ack = s;
  ack.payload = 0;  // a pure ACK of the same flow
  pkts.push_back(tcp(ack));
  for (int i = 0; i < 2; ++i, s.seq += 100)
    pkts.push_back(tcp(s));
  TcpCoalescer c;
  const auto items = coalesce(c, pkts);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].count, 2u);
  EXPECT_EQ(items[1].index, 2u);
  EXPECT_EQ(items[2].index, 3u);
  EXPECT_EQ(items[2].count, 2u);
}

TEST(TcpCoalesce, BoundedBySizeAndBuffers) {
  // 64 KiB: 60 segments of 1100 bytes fill one super packet to 66040 > 65535; the rest
  // start another.
  Seg s;
  s.payload = 1100;
  std::vector<Bytes> pkts;
  for (int i = 0; i < 60; ++i, s.seq += 1100)
    pkts.push_back(tcp(s));
  TcpCoalescer c;
  auto items = coalesce(c, pkts);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].count, (65535 - 40) / 1100);
  EXPECT_LE(items[0].frame.size(), io::kVnetHdrLen + kMaxSuperPacket);
  EXPECT_EQ(items[0].count + items[1].count, 60u);
  // One buffer: the second flow is written as it came.
  TcpCoalescer one(1);
  Seg a, b;
  b.sport = 1;
  pkts = {tcp(a), tcp(b)};
  a.seq += 100;
  b.seq += 100;
  pkts.push_back(tcp(a));
  pkts.push_back(tcp(b));
  items = coalesce(one, pkts);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].count, 2u);
  EXPECT_EQ(items[1].count, 1u);
  EXPECT_EQ(items[2].count, 1u);
  EXPECT_EQ(items[2].index, 3u);
}

TEST(TcpCoalesce, RandomBatchesKeepEveryByteInOrder) {
  // Random interleavings of 3 flows with random sizes, gaps and pure ACKs: for each flow the
  // payload bytes of what is written (super packets segmented again) equal those given, in
  // order, and every packet is written exactly once.
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    Seg flow[3];
    for (int k = 0; k < 3; ++k) {
      flow[k].sport = static_cast<std::uint16_t>(100 + k);
      flow[k].v6 = k == 2;
      flow[k].seq = rng();
    }
    std::vector<Bytes> pkts;
    std::vector<int> of;
    const int n = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      const int k = static_cast<int>(rng() % 3);
      Seg& s = flow[k];
      s.payload = rng() % 4 == 0 ? rng() % 300 : 200;
      s.flags = rng() % 8 == 0 ? (kAck | kPsh) : kAck;
      if (rng() % 10 == 0) s.seq += 7;
      pkts.push_back(tcp(s));
      of.push_back(k);
      s.seq += static_cast<std::uint32_t>(s.payload);
    }
    TcpCoalescer c(4, 2);
    const auto items = coalesce(c, pkts);
    std::size_t total = 0;
    std::vector<Bytes> want(3), got(3);
    for (std::size_t i = 0; i < pkts.size(); ++i) {
      const std::size_t h = iphl(pkts[i]) + 20;
      want[static_cast<std::size_t>(of[i])].insert(want[static_cast<std::size_t>(of[i])].end(),
                                                   pkts[i].begin() + static_cast<long>(h),
                                                   pkts[i].end());
    }
    for (const auto& it : items) {
      total += it.count;
      const int k = of[it.index];
      std::vector<Bytes> parts;
      if (it.frame.empty()) {
        parts.push_back(pkts[it.index]);
      } else {
        Bytes f(it.frame.begin(), it.frame.end());
        parts = segment_all(f);
        ASSERT_EQ(parts.size(), it.count);
      }
      for (const auto& p : parts) {
        ASSERT_TRUE(it.frame.empty() || tcp_csum_ok(p));
        const std::size_t h = iphl(p) + 20;
        got[static_cast<std::size_t>(k)].insert(got[static_cast<std::size_t>(k)].end(),
                                                p.begin() + static_cast<long>(h), p.end());
      }
    }
    EXPECT_EQ(total, pkts.size());
    for (int k = 0; k < 3; ++k)
      ASSERT_EQ(got[static_cast<std::size_t>(k)], want[static_cast<std::size_t>(k)])
          << "round " << round << " flow " << k;
  }
}

}  // namespace
}  // namespace ie::ied
