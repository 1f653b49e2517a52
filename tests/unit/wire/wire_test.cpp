// wire codecs: PSP header, ILP header + TLVs, registries, demux, drop reasons.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <string>

#include "ie/wire/demux.hpp"
#include "ie/wire/drop_reason.hpp"
#include "ie/wire/ilp.hpp"
#include "ie/wire/psp.hpp"
#include "ie/wire/service_id.hpp"
#include "ie/wire/tlv.hpp"

namespace ie::wire {
namespace {

ConstByteSpan str(const std::string& s) {
  return ConstByteSpan(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

TEST(DropReason, NamesAreUniqueAndNoneIsZero) {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kDropReasonCount; ++i) {
    const auto n = drop_reason_name(static_cast<DropReason>(i));
    EXPECT_NE(n, "invalid");
    EXPECT_FALSE(drop_reason_text(static_cast<DropReason>(i)).empty());
    names.insert(n);
  }
  EXPECT_EQ(names.size(), kDropReasonCount);
  EXPECT_EQ(static_cast<int>(DropReason::none), 0);
  EXPECT_EQ(drop_reason_name(DropReason::auth_failed), "auth_failed");
}

TEST(PspHeader, RoundTrip) {
  PspHeader h;
  h.next_header = kIlpNextHeader;
  h.crypt_offset = 5;
  h.version = 1;
  h.spi = 0x80001234;
  h.iv = 0x0102030405060708;
  std::uint8_t buf[16 + 20 + 16] = {};
  write_psp_header(h, buf);
  EXPECT_EQ(buf[1], 1);
  EXPECT_EQ(buf[3], (1 << 2) | 1);
  PspHeader got;
  ASSERT_EQ(parse_psp_header(buf, &got), DropReason::none);
  EXPECT_EQ(got.next_header, kIlpNextHeader);
  EXPECT_EQ(got.crypt_offset, 5);
  EXPECT_EQ(got.version, 1);
  EXPECT_EQ(got.spi, 0x80001234u);
  EXPECT_EQ(got.iv, 0x0102030405060708u);
}

TEST(PspHeader, RejectsEveryTruncationAndBadField) {
  PspHeader h;
  h.crypt_offset = 1;
  std::uint8_t buf[16 + 4 + 16] = {};
  write_psp_header(h, buf);
  PspHeader got;
  ASSERT_EQ(parse_psp_header(buf, &got), DropReason::none);
  for (std::size_t n = 0; n < sizeof buf; ++n) {
    EXPECT_EQ(parse_psp_header(ConstByteSpan(buf, n), &got), DropReason::truncated) << n;
  }
  auto with = [&](std::size_t i, std::uint8_t v) {
    std::uint8_t b[sizeof buf];
    std::memcpy(b, buf, sizeof b);
    b[i] = v;
    return parse_psp_header(b, &got);
  };
  EXPECT_EQ(with(1, 0), DropReason::bad_psp_header);
  EXPECT_EQ(with(1, 2), DropReason::bad_psp_header);
  EXPECT_EQ(with(2, 0x41), DropReason::bad_psp_header);          // reserved bits
  EXPECT_EQ(with(3, (1 << 2)), DropReason::bad_psp_header);      // fixed 1 bit clear
  EXPECT_EQ(with(3, (1 << 2) | 3), DropReason::bad_psp_header);  // V bit
  EXPECT_EQ(with(3, (2 << 2) | 1), DropReason::unsupported_psp_version);
}

TEST(Ilp, RoundTripWithTlvs) {
  const std::string opts = "cache=off";
  const std::uint8_t cls = 3;
  const Tlv tlvs[] = {{static_cast<std::uint8_t>(TlvType::app_options), str(opts)},
                      {static_cast<std::uint8_t>(TlvType::qos_class), ConstByteSpan(&cls, 1)}};
  IlpHeader h{static_cast<std::uint16_t>(ServiceId::ip), 0x1122334455667788ull, kIlpFlagE2e};
  std::uint8_t buf[128];
  const std::size_t n = encode_ilp(h, tlvs, buf);
  ASSERT_EQ(n, 28u);  // 12 + (2+9) + (2+1) = 26 -> padded to 28
  EXPECT_EQ(n, ilp_header_len(tlvs));
  std::memcpy(buf + n, "inner", 5);
  IlpView v;
  ASSERT_EQ(parse_ilp(ConstByteSpan(buf, n + 5), &v), DropReason::none);
  EXPECT_EQ(v.header.service_id, 1);
  EXPECT_EQ(v.header.connection_id, 0x1122334455667788ull);
  EXPECT_EQ(v.header.flags, kIlpFlagE2e);
  EXPECT_EQ(v.header_len, 28u);
  ASSERT_EQ(v.inner.size(), 5u);
  EXPECT_EQ(std::memcmp(v.inner.data(), "inner", 5), 0);
  Tlv t;
  ASSERT_TRUE(find_tlv(v.tlvs, static_cast<std::uint8_t>(TlvType::app_options), &t));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.value.data()), t.value.size()), opts);
  ASSERT_TRUE(find_tlv(v.tlvs, static_cast<std::uint8_t>(TlvType::qos_class), &t));
  EXPECT_EQ(t.value[0], 3);
  EXPECT_FALSE(find_tlv(v.tlvs, static_cast<std::uint8_t>(TlvType::topic), &t));
}

TEST(Ilp, MinimalHeaderAndEveryTruncation) {
  IlpHeader h{0, 7, 0};
  std::uint8_t buf[kIlpBaseLen];
  ASSERT_EQ(encode_ilp(h, {}, buf), kIlpBaseLen);
  IlpView v;
  ASSERT_EQ(parse_ilp(buf, &v), DropReason::none);
  EXPECT_TRUE(v.inner.empty());
  for (std::size_t n = 0; n < kIlpBaseLen; ++n) {
    EXPECT_EQ(parse_ilp(ConstByteSpan(buf, n), &v), DropReason::truncated);
  }
}

TEST(Ilp, RejectsBadLengthVersionAndTlvs) {
  std::uint8_t buf[64] = {};
  IlpHeader h{1, 1, 0};
  ASSERT_EQ(encode_ilp(h, {}, buf), 12u);
  IlpView v;
  buf[10] = 2;  // header shorter than the base
  EXPECT_EQ(parse_ilp(ConstByteSpan(buf, 12), &v), DropReason::bad_ilp_header);
  buf[10] = 4;  // claims 16 bytes, only 12 present
  EXPECT_EQ(parse_ilp(ConstByteSpan(buf, 12), &v), DropReason::truncated);
  buf[10] = 3;
  buf[11] = 2 << 6;  // version 2
  EXPECT_EQ(parse_ilp(ConstByteSpan(buf, 12), &v), DropReason::bad_ilp_header);
  buf[11] = 1 << 6;

  auto tlv_area = [&](std::initializer_list<std::uint8_t> bytes) {
    std::uint8_t b[64] = {};
    encode_ilp(h, {}, b);
    std::size_t pos = 12;
    for (auto x : bytes)
      b[pos++] = x;
    const std::size_t total = (pos + 3) & ~std::size_t{3};
    b[10] = static_cast<std::uint8_t>(total / 4);
    return parse_ilp(ConstByteSpan(b, total), &v);
  };
  EXPECT_EQ(tlv_area({6, 1, 9}), DropReason::none);              // hop_count
  EXPECT_EQ(tlv_area({6, 2, 9, 9}), DropReason::bad_tlv);        // hop_count too long
  EXPECT_EQ(tlv_area({6, 1, 9, 6, 1, 9}), DropReason::bad_tlv);  // duplicate
  EXPECT_EQ(tlv_area({8, 6, 1, 2, 3, 4, 0, 80, 8, 6, 1, 2, 3, 4, 0, 81}),
            DropReason::none);                            // repeatable
  EXPECT_EQ(tlv_area({6, 9, 1}), DropReason::bad_tlv);    // overruns the header
  EXPECT_EQ(tlv_area({6}), DropReason::bad_tlv);          // no length byte
  EXPECT_EQ(tlv_area({100, 1, 1}), DropReason::none);     // unknown, skippable
  EXPECT_EQ(tlv_area({200, 1, 1}), DropReason::bad_tlv);  // unknown, must understand
  EXPECT_EQ(tlv_area({0, 0, 0}), DropReason::none);       // padding only
}

TEST(Ilp, HeaderWithTlvsRejectsEveryTruncation) {
  const std::string topic = "sensors/kitchen";
  const std::uint8_t hops = 2;
  const Tlv tlvs[] = {{static_cast<std::uint8_t>(TlvType::topic), str(topic)},
                      {static_cast<std::uint8_t>(TlvType::hop_count), ConstByteSpan(&hops, 1)}};
  std::uint8_t buf[64];
  const std::size_t n = encode_ilp(IlpHeader{2, 9, 0}, tlvs, buf);
  ASSERT_EQ(n, 32u);  // 12 + (2 + 15) + (2 + 1), already a multiple of 4
  IlpView v;
  ASSERT_EQ(parse_ilp(ConstByteSpan(buf, n), &v), DropReason::none);
  for (std::size_t len = 0; len < n; ++len) {
    EXPECT_EQ(parse_ilp(ConstByteSpan(buf, len), &v), DropReason::truncated) << len;
  }
}

TEST(Ilp, ReservedFlagsAreIgnoredAndNeverSent) {
  std::uint8_t buf[kIlpBaseLen];
  ASSERT_EQ(encode_ilp(IlpHeader{1, 2, 0xff}, {}, buf), kIlpBaseLen);
  EXPECT_EQ(buf[11], 0x40 | kIlpFlagE2e);  // version 1, only defined flags
  buf[11] = 0x40 | 0x3e;                   // every reserved bit, e2e clear
  IlpView v;
  ASSERT_EQ(parse_ilp(buf, &v), DropReason::none);
  EXPECT_EQ(v.header.flags, 0);
}

TEST(Ilp, EveryBitFlipIsRejectedOrParsesConsistently) {
  const std::string topic = "t";
  const Tlv tlvs[] = {{static_cast<std::uint8_t>(TlvType::topic), str(topic)}};
  std::uint8_t orig[32] = {};
  const std::size_t n = encode_ilp(IlpHeader{2, 0xabcdef, 1}, tlvs, orig);
  ASSERT_EQ(n, 16u);
  std::memcpy(orig + n, "payload!", 8);
  for (std::size_t byte = 0; byte < n + 8; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::uint8_t b[32];
      std::memcpy(b, orig, sizeof b);
      b[byte] ^= static_cast<std::uint8_t>(1 << bit);
      IlpView v;
      const DropReason r = parse_ilp(ConstByteSpan(b, n + 8), &v);
      if (byte == 10 || (byte == 11 && bit >= 6)) {
        // Length or version changed: never accepted as the original layout.
        EXPECT_TRUE(r != DropReason::none || v.header_len != n) << byte << ":" << bit;
      } else if (byte >= 12 && byte < 16) {
        // TLV area (type, length, value, pad): if still accepted, spans stay in bounds.
        if (r == DropReason::none) {
          EXPECT_EQ(v.header_len + v.inner.size(), n + 8);
        }
      } else {
        ASSERT_EQ(r, DropReason::none) << byte << ":" << bit;
        EXPECT_EQ(v.header_len, n);
      }
    }
  }
}

TEST(Ilp, EncodeRefusesWhatCannotBeEncoded) {
  std::uint8_t big[300] = {};
  const Tlv too_long[] = {{1, ConstByteSpan(big, 256)}};
  std::uint8_t buf[1100];
  EXPECT_EQ(encode_ilp(IlpHeader{}, too_long, buf), 0u);
  const Tlv pad[] = {{0, {}}};
  EXPECT_EQ(encode_ilp(IlpHeader{}, pad, buf), 0u);
  std::uint8_t small[11];
  EXPECT_EQ(encode_ilp(IlpHeader{}, {}, small), 0u);
  std::vector<Tlv> many(5, Tlv{1, ConstByteSpan(big, 255)});  // 5 * 257 + 12 > 1020
  EXPECT_EQ(encode_ilp(IlpHeader{}, many, buf), 0u);
}

TEST(Ilp, RandomBytesNeverCrashAndRoundTripIsStable) {
  std::mt19937 rng(7);
  std::uint8_t buf[64];
  for (int i = 0; i < 200000; ++i) {
    const std::size_t n = rng() % sizeof buf;
    for (std::size_t j = 0; j < n; ++j)
      buf[j] = static_cast<std::uint8_t>(rng());
    if (n > 11) {
      buf[10] = static_cast<std::uint8_t>(3 + rng() % 4);
      buf[11] = 0x40;
    }
    IlpView v;
    if (parse_ilp(ConstByteSpan(buf, n), &v) == DropReason::none) {
      ASSERT_LE(v.header_len + v.inner.size(), n);
      TlvIterator it(v.tlvs);
      Tlv t;
      std::size_t count = 0;
      while (it.next(&t))
        ASSERT_LT(++count, 64u);
    }
  }
}

TEST(Registry, ServiceNames) {
  EXPECT_EQ(service_name(1).value(), "ip");
  EXPECT_EQ(service_from_name("multicast").value(), 3);
  EXPECT_FALSE(service_name(0x8001).has_value());
  EXPECT_FALSE(service_from_name("nope").has_value());
  for (std::uint16_t id = 0; id < 8; ++id) {
    ASSERT_TRUE(is_registered_service(id));
    EXPECT_EQ(service_from_name(*service_name(id)).value(), id);
  }
}

TEST(Registry, TlvSpecs) {
  EXPECT_EQ(tlv_spec(3)->name, "group_id");
  EXPECT_EQ(tlv_spec(3)->min_len, 32);
  EXPECT_FALSE(tlv_spec(0).has_value());
  EXPECT_FALSE(tlv_spec(99).has_value());
}

TEST(Demux, ClassifiesByFirstTwoBytes) {
  std::uint8_t d[20] = {};
  d[1] = 1;
  EXPECT_EQ(classify(d), DatagramKind::psp);
  d[1] = 0;
  for (std::uint8_t t = 1; t <= 7; ++t) {
    d[0] = t;
    EXPECT_EQ(static_cast<std::uint8_t>(classify(d)), t);
  }
  d[0] = 0;
  EXPECT_EQ(classify(d), DatagramKind::invalid);
  d[0] = 8;
  EXPECT_EQ(classify(d), DatagramKind::invalid);
  EXPECT_EQ(classify(ConstByteSpan(d, 3)), DatagramKind::invalid);
}

}  // namespace
}  // namespace ie::wire
