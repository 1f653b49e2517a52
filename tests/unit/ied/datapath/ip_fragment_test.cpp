// IPv4 fragmentation (ip_fragment.hpp): fragments fit, carry 8-byte-aligned offsets, MF on
// all but the last, valid header checksums and the header's other fields, and put back
// together give the original payload; a fragment is cut again keeping its offset and MF;
// options without the copied flag stay in the first fragment only; DF, fitting, malformed
// and hopeless cases are refused with nothing appended. The kernel's reassembly of what it
// produces is checked end to end by netns_ied_pmtu (a non-DF ping across a black hole).
#include "ie/ied/ip_fragment.hpp"

#include <gtest/gtest.h>

#include <map>

#include "ie/ied/checksum.hpp"
#include "ie/ied/flow_key.hpp"
#include "test_packets.hpp"

namespace ie::ied {
namespace {

using test::A;

Bytes udp_v4(std::size_t total, test::V4Opts o) {
  Bytes l4(total - 20 - o.options_len);
  for (std::size_t i = 0; i < l4.size(); ++i)
    l4[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return test::make_v4(kProtoUdp, A("10.1.0.2"), A("10.2.0.2"), l4, o);
}

struct Piece {
  std::size_t offset;  // bytes
  bool mf;
  Bytes payload;
};

// Checks one fragment's header against the original's and returns its payload and place.
Piece check_fragment(const Bytes& f, const Bytes& orig, std::size_t max_len) {
  EXPECT_LE(f.size(), max_len);
  EXPECT_EQ(f[0] >> 4, 4);
  const std::size_t hlen = (f[0] & 0x0f) * 4u;
  EXPECT_EQ(load_be16(f.data() + 2), f.size());
  EXPECT_EQ(checksum_fold(checksum_add(ConstByteSpan(f.data(), hlen))), 0xffff) << "header sum";
  EXPECT_EQ(load_be16(f.data() + 4), load_be16(orig.data() + 4)) << "identification";
  EXPECT_EQ(f[8], orig[8]) << "ttl";
  EXPECT_EQ(f[9], orig[9]) << "protocol";
  EXPECT_EQ(0, std::memcmp(f.data() + 12, orig.data() + 12, 8)) << "addresses";
  const std::uint16_t fo = load_be16(f.data() + 6);
  EXPECT_EQ(fo & 0x4000, 0) << "no DF";
  return {(fo & 0x1fffu) * 8u, (fo & 0x2000) != 0, Bytes(f.begin() + hlen, f.end())};
}

TEST(IpFragment, FragmentsFitAndReassembleToTheOriginal) {
  for (const std::size_t max_len : {1000u, 576u, 1119u, 28u}) {
    SCOPED_TRACE(max_len);
    const Bytes p = udp_v4(3000, {.df = false});
    std::vector<Bytes> out;
    out.push_back(Bytes{1, 2, 3});  // appended after what is there
    const std::size_t n = fragment_ipv4(p, max_len, out);
    ASSERT_EQ(n, out.size() - 1);
    ASSERT_EQ(n, (2980 + (max_len - 20) / 8 * 8 - 1) / ((max_len - 20) / 8 * 8));
    Bytes whole;
    for (std::size_t i = 1; i < out.size(); ++i) {
      const Piece pc = check_fragment(out[i], p, max_len);
      EXPECT_EQ(pc.offset, whole.size());
      EXPECT_EQ(pc.offset % 8, 0u);
      EXPECT_EQ(pc.mf, i + 1 < out.size());
      whole.insert(whole.end(), pc.payload.begin(), pc.payload.end());
    }
    EXPECT_EQ(whole, Bytes(p.begin() + 20, p.end()));
  }
}

TEST(IpFragment, AFragmentIsCutAgainKeepingItsPlace) {
  // The middle fragment of something larger: offset 100 units, MF set.
  const Bytes p = udp_v4(1500, {.df = false, .more_fragments = true, .frag_offset = 100});
  std::vector<Bytes> out;
  ASSERT_EQ(fragment_ipv4(p, 700, out), 3u);
  std::size_t at = 800;
  for (const auto& f : out) {
    const Piece pc = check_fragment(f, p, 700);
    EXPECT_EQ(pc.offset, at);
    EXPECT_TRUE(pc.mf) << "the original's MF stays on the last piece";
    at += pc.payload.size();
  }
  EXPECT_EQ(at, 800u + 1480u);
  // ... and a last fragment's last piece has MF clear.
  const Bytes last = udp_v4(1500, {.df = false, .frag_offset = 100});
  out.clear();
  ASSERT_EQ(fragment_ipv4(last, 700, out), 3u);
  EXPECT_EQ(load_be16(out.back().data() + 6) & 0x2000, 0);
}

TEST(IpFragment, OnlyCopiedOptionsFollowTheFirstFragment) {
  Bytes p = udp_v4(1200, {.df = false, .options_len = 12});
  // Options: a copied one (type 0x94, router alert, 4 bytes), a not-copied one (type 0x07,
  // record route, 7 bytes: pointer 4, one empty slot), one NOP.
  const std::uint8_t opts[12] = {0x94, 4, 0, 0, 0x07, 7, 4, 0, 0, 0, 0, 1};
  std::memcpy(p.data() + 20, opts, sizeof opts);
  store_be16(p.data() + 10, 0);
  store_be16(p.data() + 10, checksum_finish(checksum_add(ConstByteSpan(p.data(), 32))));
  std::vector<Bytes> out;
  ASSERT_EQ(fragment_ipv4(p, 600, out), 3u);
  EXPECT_EQ(out[0][0] & 0x0f, 8) << "the first fragment keeps all 12 option bytes";
  EXPECT_EQ(0, std::memcmp(out[0].data() + 20, opts, sizeof opts));
  for (std::size_t i = 1; i < out.size(); ++i) {
    EXPECT_EQ(out[i][0] & 0x0f, 6) << "router alert only";
    EXPECT_EQ(0, std::memcmp(out[i].data() + 20, opts, 4));
  }
  Bytes whole;
  for (const auto& f : out) {
    const Piece pc = check_fragment(f, p, 600);
    EXPECT_EQ(pc.offset, whole.size());
    whole.insert(whole.end(), pc.payload.begin(), pc.payload.end());
  }
  EXPECT_EQ(whole, Bytes(p.begin() + 32, p.end()));
}

TEST(IpFragment, RefusesWhatMustNotOrCannotBeCut) {
  std::vector<Bytes> out;
  EXPECT_EQ(fragment_ipv4(udp_v4(1500, {.df = true}), 1000, out), 0u);   // DF
  EXPECT_EQ(fragment_ipv4(udp_v4(1000, {.df = false}), 1000, out), 0u);  // fits
  EXPECT_EQ(fragment_ipv4(udp_v4(1500, {.df = false}), 27, out), 0u);    // no room for 8 bytes
  Bytes bad = udp_v4(1500, {.df = false});
  store_be16(bad.data() + 2, 1600);  // total length beyond the buffer
  EXPECT_EQ(fragment_ipv4(bad, 1000, out), 0u);
  bad = udp_v4(1500, {.df = false});
  bad[0] = 0x44;  // header length 16
  EXPECT_EQ(fragment_ipv4(bad, 1000, out), 0u);
  const Bytes v6 = test::make_v6(kProtoUdp, A("fd00::1"), A("fd00::2"), Bytes(1500));
  EXPECT_EQ(fragment_ipv4(v6, 1000, out), 0u);
  // Offsets past 65535 bytes cannot be written.
  const Bytes far = udp_v4(1500, {.df = false, .frag_offset = 8100});
  EXPECT_EQ(fragment_ipv4(far, 1000, out), 0u);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace ie::ied
