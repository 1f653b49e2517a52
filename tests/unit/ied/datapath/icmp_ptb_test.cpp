// build_ptb: ICMPv4 "fragmentation needed" and ICMPv6 "packet too big" built to the RFCs
// (fields, quoted bytes, size limits, IPv4 header and ICMP checksums, the IPv6 pseudo-header
// checksum), and every case where no PTB may be sent. Also the Internet checksum itself
// against RFC 1071's worked example.
#include "ie/ied/icmp_ptb.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "ie/ied/checksum.hpp"
#include "ie/ied/flow_key.hpp"
#include "test_packets.hpp"

namespace ie::ied {
namespace {

using test::A;

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 1.3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded); checksum ~ddf2.
  const std::uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(checksum_finish(checksum_add(d)), static_cast<std::uint16_t>(~0xddf2));
  // Odd length pads with a zero byte; chaining equals one pass.
  const std::uint8_t odd[] = {0x12, 0x34, 0x56};
  EXPECT_EQ(checksum_finish(checksum_add(odd)), static_cast<std::uint16_t>(~(0x1234 + 0x5600)));
  EXPECT_EQ(checksum_add(ConstByteSpan(d + 4, 4), checksum_add(ConstByteSpan(d, 4))),
            checksum_add(d));
}

Bytes big_udp_v4(std::size_t payload, test::V4Opts o = {}) {
  return test::make_v4(kProtoUdp, A("10.9.0.1"), A("10.9.0.2"), test::ports(5000, 6000, payload),
                       o);
}

TEST(IcmpPtb, Ipv4FragmentationNeeded) {
  const auto pkt = big_udp_v4(1400);
  std::uint8_t out[2048];
  const std::size_t n = build_ptb(pkt, 1300, A("10.9.0.254"), out);
  ASSERT_EQ(n, kPtbMaxV4);  // quote fills the 576-byte limit
  // IPv4 header: from the given address to the offender's source, protocol ICMP.
  EXPECT_EQ(out[0], 0x45);
  EXPECT_EQ(load_be16(out + 2), n);
  EXPECT_EQ(out[9], kProtoIcmp);
  EXPECT_GT(out[8], 0);
  EXPECT_EQ(*IpAddr::from_bytes(ConstByteSpan(out + 12, 4)), A("10.9.0.254"));
  EXPECT_EQ(*IpAddr::from_bytes(ConstByteSpan(out + 16, 4)), A("10.9.0.1"));
  EXPECT_EQ(checksum_finish(checksum_add(ConstByteSpan(out, 20))), 0);
  // ICMP: type 3 code 4, next-hop MTU, the offending packet's first bytes quoted.
  const std::uint8_t* icmp = out + 20;
  EXPECT_EQ(icmp[0], 3);
  EXPECT_EQ(icmp[1], 4);
  EXPECT_EQ(load_be16(icmp + 4), 0);  // unused
  EXPECT_EQ(load_be16(icmp + 6), 1300);
  EXPECT_EQ(std::memcmp(icmp + 8, pkt.data(), n - 28), 0);
  EXPECT_EQ(checksum_finish(checksum_add(ConstByteSpan(icmp, n - 20))), 0);
  // The result is itself a packet our parser classifies as ICMP to the sender.
  auto k = parse_flow(ConstByteSpan(out, n));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->proto, kProtoIcmp);
  EXPECT_EQ(k->dst_addr(), A("10.9.0.1"));
}

TEST(IcmpPtb, Ipv4SmallPacketQuotedWholeAndMtuClamped) {
  const auto pkt = big_udp_v4(100);  // 128 bytes
  std::uint8_t out[1024];
  EXPECT_EQ(build_ptb(pkt, 100, A("10.9.0.254"), out), 28 + pkt.size());
  EXPECT_EQ(build_ptb(pkt, 10, A("10.9.0.254"), out), 28 + pkt.size());
  EXPECT_EQ(load_be16(out + 26), kMinMtuV4);  // raised to RFC 791's minimum
  EXPECT_EQ(checksum_finish(checksum_add(ConstByteSpan(out + 20, 8 + pkt.size()))), 0);
}

TEST(IcmpPtb, Ipv4WhenNotToSend) {
  std::uint8_t out[2048];
  const auto from = A("10.9.0.254");
  EXPECT_EQ(build_ptb(big_udp_v4(1400, {.df = false}), 1300, from, out), 0u);  // may fragment
  EXPECT_EQ(build_ptb(big_udp_v4(1400, {.df = true, .frag_offset = 10}), 1300, from, out), 0u);
  EXPECT_EQ(build_ptb(big_udp_v4(1200), 1300, from, out), 0u);          // fits
  EXPECT_EQ(build_ptb(big_udp_v4(1400), 1300, A("fd00::1"), out), 0u);  // family mismatch
  EXPECT_EQ(build_ptb(big_udp_v4(1400), 1300, from, ByteSpan(out, 28 + 20 + 7)), 0u);
  EXPECT_EQ(build_ptb(big_udp_v4(1400), 1300, from, ByteSpan(out, 28 + 20 + 8)), 56u);
  // ICMP errors are never answered; an echo request is.
  for (std::uint8_t type : {3, 4, 5, 11, 12})
    EXPECT_EQ(build_ptb(test::make_v4(kProtoIcmp, A("10.9.0.1"), A("10.9.0.2"),
                                      test::icmp(type, 0, 0, 1400)),
                        1300, from, out),
              0u)
        << int{type};
  EXPECT_GT(
      build_ptb(test::make_v4(kProtoIcmp, A("10.9.0.1"), A("10.9.0.2"), test::icmp(8, 0, 1, 1400)),
                1300, from, out),
      0u);
  // Bad sources and destinations.
  for (const char* s : {"0.0.0.0", "224.0.0.5", "255.255.255.255"})
    EXPECT_EQ(build_ptb(test::make_v4(kProtoUdp, A(s), A("10.9.0.2"), test::ports(1, 2, 1400)),
                        1300, from, out),
              0u)
        << s;
  for (const char* d : {"239.1.1.1", "255.255.255.255"})
    EXPECT_EQ(build_ptb(test::make_v4(kProtoUdp, A("10.9.0.1"), A(d), test::ports(1, 2, 1400)),
                        1300, from, out),
              0u)
        << d;
  // Malformed: total length past the buffer.
  auto bad = big_udp_v4(1400);
  store_be16(bad.data() + 2, static_cast<std::uint16_t>(bad.size() + 1));
  EXPECT_EQ(build_ptb(bad, 1300, from, out), 0u);
}

Bytes big_udp_v6(std::size_t payload, const std::vector<test::V6Ext>& exts = {}) {
  return test::make_v6(kProtoUdp, A("fd09::1"), A("fd09::2"), test::ports(5000, 6000, payload),
                       exts);
}

TEST(IcmpPtb, Ipv6PacketTooBig) {
  const auto pkt = big_udp_v6(1452);  // 1500 bytes
  std::uint8_t out[2048];
  const std::size_t n = build_ptb(pkt, 1400, A("fd09::fe"), out);
  ASSERT_EQ(n, kPtbMaxV6);  // as much as fits in 1280
  EXPECT_EQ(out[0] >> 4, 6);
  EXPECT_EQ(load_be16(out + 4), n - 40);
  EXPECT_EQ(out[6], kProtoIcmpV6);
  EXPECT_GT(out[7], 0);
  EXPECT_EQ(*IpAddr::from_bytes(ConstByteSpan(out + 8, 16)), A("fd09::fe"));
  EXPECT_EQ(*IpAddr::from_bytes(ConstByteSpan(out + 24, 16)), A("fd09::1"));
  const std::uint8_t* icmp = out + 40;
  EXPECT_EQ(icmp[0], 2);
  EXPECT_EQ(icmp[1], 0);
  EXPECT_EQ(load_be32(icmp + 4), 1400u);
  EXPECT_EQ(std::memcmp(icmp + 8, pkt.data(), n - 48), 0);
  const std::uint32_t pseudo = ipv6_pseudo_sum(ConstByteSpan(out + 8, 16),
                                               ConstByteSpan(out + 24, 16), n - 40, kProtoIcmpV6);
  EXPECT_EQ(checksum_finish(checksum_add(ConstByteSpan(icmp, n - 40), pseudo)), 0);
  // A corrupted byte breaks the checksum (the check above can fail).
  out[100] ^= 1;
  EXPECT_NE(checksum_finish(checksum_add(ConstByteSpan(icmp, n - 40), pseudo)), 0);
}

TEST(IcmpPtb, Ipv6WhenNotToSend) {
  std::uint8_t out[2048];
  const auto from = A("fd09::fe");
  EXPECT_EQ(build_ptb(big_udp_v6(1200), 1280, from, out), 0u);  // 1248 fits the minimum MTU
  EXPECT_EQ(build_ptb(big_udp_v6(1452), 1400, A("10.0.0.1"), out), 0u);
  for (std::uint8_t type : {1, 2, 3, 4, 127})
    EXPECT_EQ(build_ptb(test::make_v6(kProtoIcmpV6, A("fd09::1"), A("fd09::2"),
                                      test::icmp(type, 0, 0, 1400)),
                        1300, from, out),
              0u)
        << int{type};
  // Behind extension headers too.
  EXPECT_EQ(build_ptb(test::make_v6(kProtoIcmpV6, A("fd09::1"), A("fd09::2"),
                                    test::icmp(1, 0, 0, 1400), {test::ext_opts(60)}),
                      1300, from, out),
            0u);
  EXPECT_GT(build_ptb(test::make_v6(kProtoIcmpV6, A("fd09::1"), A("fd09::2"),
                                    test::icmp(128, 0, 0, 1400), {test::ext_opts(60)}),
                      1300, from, out),
            0u);
  for (const char* s : {"::", "ff02::1"})
    EXPECT_EQ(build_ptb(test::make_v6(kProtoUdp, A(s), A("fd09::2"), test::ports(1, 2, 1400)), 1300,
                        from, out),
              0u)
        << s;
  // MTU below 1280 is raised to it.
  ASSERT_GT(build_ptb(big_udp_v6(1452), 600, from, out), 0u);
  EXPECT_EQ(load_be32(out + 44), kMinMtuV6);
  // Later fragments still get a PTB (they are too big too); out too small does not.
  EXPECT_GT(build_ptb(big_udp_v6(1452, {test::ext_frag(10, true)}), 1300, from, out), 0u);
  EXPECT_EQ(build_ptb(big_udp_v6(1452), 1300, from, ByteSpan(out, 48 + 47)), 0u);
}

TEST(IcmpPtb, RandomInputsStayInBounds) {
  std::mt19937 rng(11);
  const auto v4 = big_udp_v4(700);
  const auto v6 = big_udp_v6(1400, {test::ext_opts(0)});
  for (int i = 0; i < 5000; ++i) {
    Bytes p = (i % 2) ? v4 : v6;
    for (int m = 0; m < 4; ++m)
      p[rng() % p.size()] = static_cast<std::uint8_t>(rng());
    p.resize(rng() % (p.size() + 1));
    std::vector<std::uint8_t> out(rng() % 1400);
    const auto from = (p.empty() || (p[0] >> 4) == 4) ? A("10.0.0.9") : A("fd00::9");
    const std::size_t n = build_ptb(p, 500 + rng() % 1000, from, out);
    ASSERT_LE(n, out.size());
    if (n) {
      const bool is4 = (out[0] >> 4) == 4;
      ASSERT_LE(n, is4 ? kPtbMaxV4 : kPtbMaxV6);
      auto k = parse_flow(ConstByteSpan(out.data(), n));
      ASSERT_TRUE(k);
      EXPECT_EQ(k->proto, is4 ? kProtoIcmp : kProtoIcmpV6);
    }
  }
}

}  // namespace
}  // namespace ie::ied
