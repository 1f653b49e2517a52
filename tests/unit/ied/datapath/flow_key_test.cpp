// parse_flow: 5-tuples of IPv4/IPv6 TCP/UDP/SCTP/UDP-Lite, ICMP echo ids, IPv4 options, IPv6
// extension-header chains, fragments, and refusal of every kind of truncation; flow_hash is
// keyed; plus random and truncated inputs never read out of bounds (under ASan).
#include "ie/ied/flow_key.hpp"

#include <gtest/gtest.h>

#include <random>

#include "test_packets.hpp"

namespace ie::ied {
namespace {

using test::A;

TEST(FlowKey, Ipv4TransportPorts) {
  for (std::uint8_t proto : {kProtoTcp, kProtoUdp, kProtoSctp, kProtoUdpLite}) {
    const auto p = test::make_v4(proto, A("10.0.0.1"), A("10.0.0.2"), test::ports(1234, 80));
    auto k = parse_flow(p);
    ASSERT_TRUE(k) << int{proto};
    EXPECT_EQ(k->version, 4);
    EXPECT_EQ(k->proto, proto);
    EXPECT_EQ(k->src_addr(), A("10.0.0.1"));
    EXPECT_EQ(k->dst_addr(), A("10.0.0.2"));
    EXPECT_EQ(k->src_port, 1234);
    EXPECT_EQ(k->dst_port, 80);
    EXPECT_EQ(k->fragment, 0);
    // Unused address bytes stay zero so keys compare as bytes.
    for (int i = 4; i < 16; ++i)
      EXPECT_EQ(k->src[i] | k->dst[i], 0);
  }
}

TEST(FlowKey, Ipv4OptionsAreSkipped) {
  const auto p = test::make_v4(kProtoUdp, A("10.0.0.1"), A("10.0.0.2"), test::ports(53, 5353),
                               {.options_len = 40});
  auto k = parse_flow(p);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->src_port, 53);
  EXPECT_EQ(k->dst_port, 5353);
}

TEST(FlowKey, IcmpEchoUsesTheIdentifier) {
  auto req =
      parse_flow(test::make_v4(kProtoIcmp, A("10.0.0.1"), A("10.0.0.2"), test::icmp(8, 0, 0x4242)));
  ASSERT_TRUE(req);
  EXPECT_EQ(req->src_port, 0x4242);
  EXPECT_EQ(req->dst_port, 0);
  auto rep =
      parse_flow(test::make_v4(kProtoIcmp, A("10.0.0.2"), A("10.0.0.1"), test::icmp(0, 0, 0x4242)));
  ASSERT_TRUE(rep);
  EXPECT_EQ(*rep, req->reversed());  // a reply finds its request's flow
  // Not an echo: no id.
  auto err =
      parse_flow(test::make_v4(kProtoIcmp, A("10.0.0.1"), A("10.0.0.2"), test::icmp(3, 1, 0x4242)));
  ASSERT_TRUE(err);
  EXPECT_EQ(err->src_port, 0);
  auto v6 =
      parse_flow(test::make_v6(kProtoIcmpV6, A("fd00::1"), A("fd00::2"), test::icmp(128, 0, 7)));
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->src_port, 7);
  // ICMPv4 type numbers mean nothing in ICMPv6.
  auto v6_8 =
      parse_flow(test::make_v6(kProtoIcmpV6, A("fd00::1"), A("fd00::2"), test::icmp(8, 0, 7)));
  ASSERT_TRUE(v6_8);
  EXPECT_EQ(v6_8->src_port, 0);
}

TEST(FlowKey, Ipv4Fragments) {
  // First fragment (MF, offset 0): ports known.
  auto first = parse_flow(test::make_v4(kProtoUdp, A("10.0.0.1"), A("10.0.0.2"), test::ports(1, 2),
                                        {.df = false, .more_fragments = true}));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->src_port, 1);
  EXPECT_EQ(first->fragment, 0);
  // Later fragment: its payload is not a UDP header.
  auto later = parse_flow(test::make_v4(kProtoUdp, A("10.0.0.1"), A("10.0.0.2"), test::ports(1, 2),
                                        {.df = false, .frag_offset = 185}));
  ASSERT_TRUE(later);
  EXPECT_EQ(later->src_port, 0);
  EXPECT_EQ(later->dst_port, 0);
  EXPECT_EQ(later->fragment, 1);
  EXPECT_EQ(later->proto, kProtoUdp);
  // A later fragment may be shorter than a UDP header.
  EXPECT_TRUE(parse_flow(test::make_v4(kProtoUdp, A("10.0.0.1"), A("10.0.0.2"), Bytes(2, 0),
                                       {.df = false, .frag_offset = 1})));
}

TEST(FlowKey, Ipv4Malformed) {
  const auto good = test::make_v4(kProtoTcp, A("10.0.0.1"), A("10.0.0.2"), test::ports(1, 2));
  ASSERT_TRUE(parse_flow(good));
  auto bad = good;
  bad[0] = 0x44;  // IHL 16 bytes
  EXPECT_FALSE(parse_flow(bad));
  bad = good;
  bad[0] = 0x4f;  // IHL 60 > total length
  EXPECT_FALSE(parse_flow(bad));
  bad = good;
  store_be16(bad.data() + 2, static_cast<std::uint16_t>(good.size() + 1));  // past the buffer
  EXPECT_FALSE(parse_flow(bad));
  bad = good;
  store_be16(bad.data() + 2, 22);  // only 2 bytes of TCP
  EXPECT_FALSE(parse_flow(bad));
  bad = good;
  bad[0] = 0x55;
  EXPECT_FALSE(parse_flow(bad));  // version 5
  EXPECT_FALSE(parse_flow({}));
  // Trailing bytes past the total length are ignored (e.g. Ethernet padding).
  auto padded = good;
  padded.resize(good.size() + 10, 0xee);
  EXPECT_EQ(parse_flow(padded), parse_flow(good));
  // Every truncation of a good packet is refused or parsed, never read past.
  for (std::size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(parse_flow(ConstByteSpan(good.data(), n))) << n;
}

TEST(FlowKey, Ipv6ExtensionHeadersAreWalked) {
  const auto p = test::make_v6(
      kProtoTcp, A("fd00::1"), A("fd00::2"), test::ports(4000, 443),
      {test::ext_opts(0), test::ext_opts(43, 3), test::ext_opts(60, 2), test::ext_frag(0, true)});
  auto k = parse_flow(p);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->version, 6);
  EXPECT_EQ(k->proto, kProtoTcp);
  EXPECT_EQ(k->src_addr(), A("fd00::1"));
  EXPECT_EQ(k->dst_addr(), A("fd00::2"));
  EXPECT_EQ(k->src_port, 4000);
  EXPECT_EQ(k->dst_port, 443);
  EXPECT_EQ(k->fragment, 0);
  auto up = walk_ipv6_headers(p);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->offset, 40u + 8 + 24 + 16 + 8);
}

TEST(FlowKey, Ipv6LaterFragmentHasNoPorts) {
  const auto p = test::make_v6(kProtoUdp, A("fd00::1"), A("fd00::2"), test::ports(1, 2),
                               {test::ext_frag(100, false)});
  auto k = parse_flow(p);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->proto, kProtoUdp);
  EXPECT_EQ(k->src_port, 0);
  EXPECT_EQ(k->fragment, 1);
}

TEST(FlowKey, Ipv6Malformed) {
  const auto good = test::make_v6(kProtoUdp, A("fd00::1"), A("fd00::2"), test::ports(1, 2),
                                  {test::ext_opts(0, 2)});
  ASSERT_TRUE(parse_flow(good));
  for (std::size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(parse_flow(ConstByteSpan(good.data(), n))) << n;
  // Extension header length past the payload length.
  auto bad = good;
  bad[41] = 10;
  EXPECT_FALSE(parse_flow(bad));
  // Payload length past the buffer.
  bad = good;
  store_be16(bad.data() + 4, static_cast<std::uint16_t>(good.size()));
  EXPECT_FALSE(parse_flow(bad));
  // A chain longer than kMaxIpv6ExtHeaders.
  std::vector<test::V6Ext> chain(kMaxIpv6ExtHeaders + 1, test::ext_opts(60));
  EXPECT_FALSE(
      parse_flow(test::make_v6(kProtoUdp, A("fd00::1"), A("fd00::2"), test::ports(1, 2), chain)));
  chain.pop_back();
  EXPECT_TRUE(
      parse_flow(test::make_v6(kProtoUdp, A("fd00::1"), A("fd00::2"), test::ports(1, 2), chain)));
  // No next header: no ports, still a flow.
  auto nonext = parse_flow(test::make_v6(kProtoNoNext, A("fd00::1"), A("fd00::2"), {}));
  ASSERT_TRUE(nonext);
  EXPECT_EQ(nonext->proto, kProtoNoNext);
}

TEST(FlowKey, ReversedSwapsAddressesAndPorts) {
  auto k = *parse_flow(test::make_v6(kProtoTcp, A("fd00::1"), A("fd00::2"), test::ports(10, 20)));
  const FlowKey r = k.reversed();
  EXPECT_EQ(r.src_addr(), A("fd00::2"));
  EXPECT_EQ(r.dst_addr(), A("fd00::1"));
  EXPECT_EQ(r.src_port, 20);
  EXPECT_EQ(r.dst_port, 10);
  EXPECT_EQ(r.reversed(), k);
}

TEST(FlowKey, HashIsKeyed) {
  auto a = *parse_flow(test::make_v4(kProtoTcp, A("10.0.0.1"), A("10.0.0.2"), test::ports(1, 2)));
  auto b = *parse_flow(test::make_v4(kProtoTcp, A("10.0.0.1"), A("10.0.0.2"), test::ports(1, 3)));
  EXPECT_EQ(flow_hash(a, 1), flow_hash(a, 1));
  EXPECT_NE(flow_hash(a, 1), flow_hash(a, 2));
  EXPECT_NE(flow_hash(a, 1), flow_hash(b, 1));
  // Low bits (bucket index) spread: 4096 keys differing in one port fill most of 4096 buckets.
  std::vector<bool> used(4096);
  std::size_t distinct = 0;
  for (std::uint16_t port = 0; port < 4096; ++port) {
    a.src_port = port;
    const auto bucket = flow_hash(a, 99) & 4095;
    if (!used[bucket]) ++distinct;
    used[bucket] = true;
  }
  EXPECT_GT(distinct, 2400u);  // a uniform hash fills ~63%
}

TEST(FlowKey, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  const auto base = test::make_v6(kProtoTcp, A("fd00::1"), A("fd00::2"), test::ports(1, 2, 20),
                                  {test::ext_opts(0), test::ext_frag(0, false)});
  for (int i = 0; i < 20000; ++i) {
    // Half random, half mutations of a valid packet (reach deeper states).
    Bytes p = (i % 2) ? base : Bytes(rng() % 200);
    if (i % 2) {
      for (int m = 0; m < 3; ++m)
        p[rng() % p.size()] = static_cast<std::uint8_t>(rng());
      p.resize(rng() % (p.size() + 1));
    } else {
      for (auto& c : p)
        c = static_cast<std::uint8_t>(rng());
      if (!p.empty()) p[0] = static_cast<std::uint8_t>((rng() % 2 ? 0x40 : 0x60) | (p[0] & 0xf));
    }
    // Copy to an exactly sized heap buffer so ASan catches any over-read.
    std::vector<std::uint8_t> exact(p.begin(), p.end());
    auto k = parse_flow(exact);
    if (k) {
      EXPECT_EQ(k->version, exact[0] >> 4);
      EXPECT_EQ(k->pad, 0);
      if (k->fragment) {
        EXPECT_EQ(k->src_port | k->dst_port, 0);
      }
    }
  }
}

}  // namespace
}  // namespace ie::ied
