// Fuzz target: ied's datapath parsers on an arbitrary packet. parse_flow must never read out
// of bounds and its key must agree with the packet (version, zero padding, addresses, no ports
// for later fragments); build_ptb on the same bytes must stay inside its output, within the
// RFC size limits, produce a packet parse_flow classifies as ICMP/ICMPv6 to the offender's
// source, with valid checksums. The first input byte picks the PTB's MTU. check_path_mtu on
// the same bytes (path_mtu.hpp) sends exactly what fits, and a PTB it builds stays inside its
// output and is ICMP/ICMPv6 from the packet's destination to its source. fragment_ipv4
// (ip_fragment.hpp) on the same bytes either appends nothing or fragments that fit the MTU,
// with valid header checksums, 8-byte-aligned consecutive offsets, MF on all but the last,
// whose payloads put together are the packet's.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ie/ied/checksum.hpp"
#include "ie/ied/flow_key.hpp"
#include "ie/ied/icmp_ptb.hpp"
#include "ie/ied/ip_fragment.hpp"
#include "ie/ied/path_mtu.hpp"

namespace {

void check(bool c) {
  if (!c) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ie::ied;
  if (size < 1 || size > 70000) return 0;
  const std::uint32_t mtu = 60u + std::uint32_t{data[0]} * 8u;
  const ie::ConstByteSpan pkt(data + 1, size - 1);

  const auto k = parse_flow(pkt);
  if (k) {
    check(!pkt.empty() && k->version == (pkt[0] >> 4));
    check(k->pad == 0);
    if (k->fragment) check(k->src_port == 0 && k->dst_port == 0);
    if (k->version == 4) {
      check(pkt.size() >= 20);
      check(std::memcmp(k->src.data(), pkt.data() + 12, 4) == 0);
      check(std::memcmp(k->dst.data(), pkt.data() + 16, 4) == 0);
      for (int i = 4; i < 16; ++i)
        check(k->src[i] == 0 && k->dst[i] == 0);
    } else {
      check(pkt.size() >= 40);
      check(std::memcmp(k->src.data(), pkt.data() + 8, 16) == 0);
      check(std::memcmp(k->dst.data(), pkt.data() + 24, 16) == 0);
    }
    check(k->reversed().reversed() == *k);
  }

  {
    TokenBucket bucket(1, 1);
    static std::uint8_t ptb[kPtbMaxV6];
    std::size_t len = 1;
    const auto a = check_path_mtu(pkt, mtu, bucket, TokenBucket::Time{}, ie::ByteSpan(ptb), &len);
    check((a == MtuAction::send) == (pkt.size() <= mtu));
    check((a == MtuAction::ptb) == (len != 0) && len <= sizeof ptb);
    if (a == MtuAction::ptb) {
      const bool v4 = (pkt[0] >> 4) == 4;
      const auto pk = parse_flow(ie::ConstByteSpan(ptb, len));
      check(pk.has_value() && pk->proto == (v4 ? kProtoIcmp : kProtoIcmpV6));
      check(pk->dst_addr() == *IpAddr::from_bytes(pkt.subspan(v4 ? 12 : 8, v4 ? 4 : 16)));
      check(pk->src_addr() == *IpAddr::from_bytes(pkt.subspan(v4 ? 16 : 24, v4 ? 4 : 16)));
    }
  }

  {
    std::vector<ie::Bytes> frags;
    const std::size_t nf = fragment_ipv4(pkt, mtu, frags);
    check(nf == frags.size());
    if (nf > 0) {
      check(nf >= 2);
      const std::size_t hlen = (pkt[0] & 0x0f) * 4u;
      const std::size_t total = ie::load_be16(pkt.data() + 2);
      const std::uint16_t fo0 = ie::load_be16(pkt.data() + 6);
      std::size_t at = (fo0 & 0x1fffu) * 8u;
      ie::Bytes whole;
      for (std::size_t i = 0; i < nf; ++i) {
        const ie::Bytes& f = frags[i];
        check(f.size() <= mtu && f.size() >= 20 && (f[0] >> 4) == 4);
        const std::size_t fh = (f[0] & 0x0f) * 4u;
        check(fh >= 20 && fh <= f.size() && ie::load_be16(f.data() + 2) == f.size());
        check(checksum_finish(checksum_add(ie::ConstByteSpan(f.data(), fh))) == 0);
        const std::uint16_t fo = ie::load_be16(f.data() + 6);
        check((fo & 0x4000) == 0 && (fo & 0x1fffu) * 8u == at);
        check(((fo & 0x2000) != 0) == (i + 1 < nf || (fo0 & 0x2000) != 0));
        check(i + 1 == nf || (f.size() - fh) % 8 == 0);
        whole.insert(whole.end(), f.begin() + static_cast<std::ptrdiff_t>(fh), f.end());
        at += f.size() - fh;
      }
      check(whole.size() == total - hlen &&
            std::memcmp(whole.data(), pkt.data() + hlen, whole.size()) == 0);
    }
  }

  static std::uint8_t out[kPtbMaxV6 + 64];
  const IpAddr from = (!pkt.empty() && (pkt[0] >> 4) == 6) ? *IpAddr::parse("fd00::fe")
                                                           : *IpAddr::parse("10.0.0.254");
  const std::size_t n = build_ptb(pkt, mtu, from, ie::ByteSpan(out, sizeof out));
  if (n == 0) return 0;
  // (A packet answered need not have a flow: an IPv6 chain may leave no room for ports.)
  const bool v4 = (pkt[0] >> 4) == 4;
  const auto offender = *IpAddr::from_bytes(pkt.subspan(v4 ? 12 : 8, v4 ? 4 : 16));
  const auto pk = parse_flow(ie::ConstByteSpan(out, n));
  check(pk.has_value());
  check(pk->dst_addr() == offender && pk->src_addr() == from);
  if (v4) {
    check(n <= kPtbMaxV4 && pk->proto == kProtoIcmp);
    check(checksum_finish(checksum_add(ie::ConstByteSpan(out, 20))) == 0);
    check(checksum_finish(checksum_add(ie::ConstByteSpan(out + 20, n - 20))) == 0);
  } else {
    check(n <= kPtbMaxV6 && pk->proto == kProtoIcmpV6);
    const std::uint32_t ps =
        ipv6_pseudo_sum(ie::ConstByteSpan(out + 8, 16), ie::ConstByteSpan(out + 24, 16),
                        static_cast<std::uint32_t>(n - 40), kProtoIcmpV6);
    check(checksum_finish(checksum_add(ie::ConstByteSpan(out + 40, n - 40), ps)) == 0);
  }
  // The quote is the offending packet's first bytes.
  const std::size_t hdr = v4 ? 28 : 48;
  check(std::memcmp(out + hdr, pkt.data(), n - hdr) == 0);
  return 0;
}
