// Control-plane datagram codecs (ie/wire/handshake_msg.hpp): round trips of every message
// type, exact header bytes, truncation and fixed-byte checks, and the inner control items
// (validation, iteration, unknown types skipped, writer bounds).
#include "ie/wire/handshake_msg.hpp"

#include <gtest/gtest.h>

#include <random>

#include "ie/wire/demux.hpp"

namespace ie::wire {
namespace {

Bytes filled(std::size_t n, std::uint8_t start) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i)
    b[i] = static_cast<std::uint8_t>(start + i);
  return b;
}

TEST(HandshakeMsg, InitiationRoundTripAndLayout) {
  const Bytes noise = filled(96, 0x40);  // IK message 1: e 32 | s 32+16 | payload 12+4
  Bytes d(kMaxControlPlaneDatagram);
  const std::size_t n = encode_initiation(HandshakePattern::xx, 0xa1b2c3d4, noise, d);
  ASSERT_EQ(n, 8 + noise.size() + 32);
  d.resize(n);
  EXPECT_EQ(to_hex(ConstByteSpan(d).first(8)), "01000100a1b2c3d4");
  EXPECT_EQ(classify(d), DatagramKind::handshake_init);
  InitiationView v;
  ASSERT_EQ(parse_initiation(d, &v), DropReason::none);
  EXPECT_EQ(v.pattern, HandshakePattern::xx);
  EXPECT_EQ(v.sender, 0xa1b2c3d4u);
  EXPECT_TRUE(std::equal(v.noise.begin(), v.noise.end(), noise.begin(), noise.end()));
  EXPECT_EQ(v.mac1.data(), d.data() + n - 32);
  EXPECT_EQ(v.mac2.data(), d.data() + n - 16);
  EXPECT_EQ(v.before_mac1.size(), n - 32);
  EXPECT_EQ(v.before_mac2.size(), n - 16);

  Bytes bad = d;
  bad[2] = 2;  // unknown pattern
  EXPECT_EQ(parse_initiation(bad, &v), DropReason::bad_control_message);
  bad = d;
  bad[3] = 1;
  EXPECT_EQ(parse_initiation(bad, &v), DropReason::bad_control_message);
  EXPECT_EQ(parse_initiation(ConstByteSpan(d).first(8 + 32 + 31), &v), DropReason::truncated);
}

TEST(HandshakeMsg, ResponseFinalCookieControlRoundTrips) {
  const Bytes noise = filled(48, 7);
  Bytes d(kMaxControlPlaneDatagram);
  std::size_t n = encode_response(1, 2, noise, d);
  ASSERT_EQ(n, 12 + 48 + 32);
  EXPECT_EQ(to_hex(ConstByteSpan(d).first(12)), "020000000000000100000002");
  ResponseView r;
  ASSERT_EQ(parse_response(ConstByteSpan(d).first(n), &r), DropReason::none);
  EXPECT_EQ(r.sender, 1u);
  EXPECT_EQ(r.receiver, 2u);
  EXPECT_EQ(r.noise.size(), 48u);
  EXPECT_EQ(parse_response(ConstByteSpan(d).first(12 + 32 + 31), &r), DropReason::truncated);

  n = encode_final(0x55, noise, d);
  ASSERT_EQ(n, 8 + 48);
  FinalView f;
  ASSERT_EQ(parse_final(ConstByteSpan(d).first(n), &f), DropReason::none);
  EXPECT_EQ(f.receiver, 0x55u);
  EXPECT_EQ(f.noise[0], 7);
  d[0] = 2;
  EXPECT_EQ(parse_final(ConstByteSpan(d).first(n), &f), DropReason::bad_control_message);

  const Bytes nonce = filled(24, 1), enc = filled(32, 100);
  n = encode_cookie_reply(9, nonce, enc, d);
  ASSERT_EQ(n, 64u);
  CookieReplyView c;
  ASSERT_EQ(parse_cookie_reply(ConstByteSpan(d).first(n), &c), DropReason::none);
  EXPECT_EQ(c.receiver, 9u);
  EXPECT_EQ(c.nonce[0], 1);
  EXPECT_EQ(c.encrypted_cookie[31], 131);
  EXPECT_EQ(parse_cookie_reply(ConstByteSpan(d).first(63), &c), DropReason::truncated);
  EXPECT_EQ(parse_cookie_reply(ConstByteSpan(d).first(65), &c), DropReason::too_large);
  EXPECT_EQ(encode_cookie_reply(9, ConstByteSpan(nonce).first(23), enc, d), 0u);

  encode_control_header(0x01020304, 0x1122334455667788ull, d.data());
  EXPECT_EQ(to_hex(ConstByteSpan(d).first(16)), "04000000010203041122334455667788");
  ControlView cv;
  ASSERT_EQ(parse_control(ConstByteSpan(d).first(32), &cv), DropReason::none);
  EXPECT_EQ(cv.receiver, 0x01020304u);
  EXPECT_EQ(cv.counter, 0x1122334455667788ull);
  EXPECT_EQ(cv.header.size(), 16u);
  EXPECT_EQ(cv.ciphertext.size(), 16u);
  EXPECT_EQ(parse_control(ConstByteSpan(d).first(31), &cv), DropReason::truncated);
}

TEST(HandshakeMsg, EncodersRefuseOversizeAndSmallBuffers) {
  const Bytes big(kMaxControlPlaneDatagram, 0);
  Bytes d(2 * kMaxControlPlaneDatagram);
  EXPECT_EQ(encode_initiation(HandshakePattern::ik, 1, big, d), 0u);
  Bytes small(40);
  EXPECT_EQ(encode_response(1, 2, filled(10, 0), small), 0u);
  Bytes huge(kMaxControlPlaneDatagram + 1, 0);
  huge[0] = 4;
  ControlView cv;
  EXPECT_EQ(parse_control(huge, &cv), DropReason::too_large);
}

TEST(HandshakeMsg, EchoAndReplyRoundTripAndLayout) {
  const Bytes nonce = filled(kEchoNonceLen, 0x30);
  Bytes d(64, 0xee);
  ASSERT_EQ(encode_echo(nonce, d), kEchoLen);
  d.resize(kEchoLen);
  EXPECT_EQ(d[0], 6);
  EXPECT_EQ(d[1], 0);
  EXPECT_EQ(classify(d), DatagramKind::echo);
  EchoView v;
  ASSERT_EQ(parse_echo(d, &v), DropReason::none);
  EXPECT_TRUE(std::equal(v.nonce.begin(), v.nonce.end(), nonce.begin(), nonce.end()));
  EXPECT_EQ(v.mac1.data(), d.data() + 20);
  EXPECT_EQ(v.before_mac1.size(), 20u);
  EXPECT_EQ(std::count(v.mac1.begin(), v.mac1.end(), 0), 16);  // left for the caller
  Bytes r(kEchoReplyLen);
  ASSERT_EQ(encode_echo_reply(nonce, r), kEchoReplyLen);
  EXPECT_EQ(classify(r), DatagramKind::echo_reply);
  ASSERT_EQ(parse_echo_reply(r, &v), DropReason::none);
  EXPECT_TRUE(std::equal(v.nonce.begin(), v.nonce.end(), nonce.begin(), nonce.end()));
  EXPECT_LT(kEchoReplyLen, kEchoLen);
  // Each parser takes its own type and length only.
  EXPECT_EQ(parse_echo(r, &v), DropReason::truncated);
  EXPECT_EQ(parse_echo_reply(d, &v), DropReason::too_large);
  Bytes wrong = d;
  wrong[0] = 7;
  EXPECT_EQ(parse_echo(wrong, &v), DropReason::bad_control_message);
  wrong = d;
  wrong[3] = 1;
  EXPECT_EQ(parse_echo(wrong, &v), DropReason::bad_control_message);
  EXPECT_EQ(encode_echo(filled(15, 1), d), 0u);  // the nonce must be 16 bytes
  Bytes small(kEchoLen - 1);
  EXPECT_EQ(encode_echo(nonce, small), 0u);
}

TEST(ControlItems, RoundTripEveryType) {
  const Bytes key = filled(32, 0x20), body = filled(5, 9);
  std::uint8_t buf[256];
  ControlItemWriter w(ByteSpan(buf, sizeof buf));
  ControlItem offer{ControlItemType::key_offer, 0x80000001, 1, 0, key};
  ASSERT_TRUE(w.add(offer));
  ASSERT_TRUE(w.add({ControlItemType::key_ack, 42, 0, 0, {}}));
  ASSERT_TRUE(w.add({ControlItemType::keepalive, 0, 0, 0, {}}));
  ASSERT_TRUE(w.add({ControlItemType::close, 0, 0, 3, {}}));
  ASSERT_TRUE(w.add({ControlItemType::service_request, 7, 0, 0, body}));
  ASSERT_TRUE(w.add({ControlItemType::service_response, 8, 0, 0, {}}));
  ASSERT_TRUE(w.add({ControlItemType::probe, 0x01020304, 0, 0, {}}));
  ASSERT_TRUE(w.add({ControlItemType::probe_ack, 0xa0b0c0d0, 0, 0, {}}));
  const ConstByteSpan plain(buf, w.size());
  EXPECT_EQ(w.size(), (3 + 37) + (3 + 4) + 3 + (3 + 1) + (3 + 9) + (3 + 4) + (3 + 4) + (3 + 4));
  EXPECT_EQ(to_hex(plain.last(14)),
            "07000401020304"
            "080004a0b0c0d0");
  EXPECT_EQ(to_hex(plain.first(8)),
            "01002580000001"
            "01");
  ASSERT_EQ(validate_control_items(plain), DropReason::none);

  ControlItemIterator it(plain);
  ControlItem item;
  ASSERT_TRUE(it.next(&item));
  EXPECT_EQ(item.type, ControlItemType::key_offer);
  EXPECT_EQ(item.spi_or_id, 0x80000001u);
  EXPECT_EQ(item.version, 1);
  EXPECT_TRUE(std::equal(item.data.begin(), item.data.end(), key.begin(), key.end()));
  ASSERT_TRUE(it.next(&item));
  EXPECT_EQ(item.type, ControlItemType::key_ack);
  EXPECT_EQ(item.spi_or_id, 42u);
  ASSERT_TRUE(it.next(&item));
  EXPECT_EQ(item.type, ControlItemType::keepalive);
  ASSERT_TRUE(it.next(&item));
  EXPECT_EQ(item.type, ControlItemType::close);
  EXPECT_EQ(item.reason, 3);
  ASSERT_TRUE(it.next(&item));
  EXPECT_EQ(item.type, ControlItemType::service_request);
  EXPECT_EQ(item.spi_or_id, 7u);
  EXPECT_EQ(Bytes(item.data.begin(), item.data.end()), body);
  ASSERT_TRUE(it.next(&item));
  EXPECT_EQ(item.type, ControlItemType::service_response);
  EXPECT_TRUE(item.data.empty());
  ASSERT_TRUE(it.next(&item));
  EXPECT_EQ(item.type, ControlItemType::probe);
  EXPECT_EQ(item.spi_or_id, 0x01020304u);
  ASSERT_TRUE(it.next(&item));
  EXPECT_EQ(item.type, ControlItemType::probe_ack);
  EXPECT_EQ(item.spi_or_id, 0xa0b0c0d0u);
  EXPECT_FALSE(it.next(&item));
}

TEST(ControlItems, PadIsWrittenAsZerosOfAnyLengthAndReadBack) {
  std::uint8_t buf[2048];
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1400}}) {
    SCOPED_TRACE(n);
    std::memset(buf, 0xee, sizeof buf);
    ControlItemWriter w(ByteSpan(buf, sizeof buf));
    ASSERT_TRUE(w.add({ControlItemType::probe, 0x80000005, 0, 0, {}}));
    ControlItem pad;
    pad.type = ControlItemType::pad;
    pad.pad = n;
    ASSERT_TRUE(w.add(pad));
    ASSERT_EQ(w.size(), 7 + 3 + n);
    EXPECT_EQ(buf[7], 9);
    EXPECT_EQ(load_be16(buf + 8), n);
    EXPECT_TRUE(std::all_of(buf + 10, buf + 10 + n, [](std::uint8_t b) { return b == 0; }));
    const ConstByteSpan plain(buf, w.size());
    ASSERT_EQ(validate_control_items(plain), DropReason::none);
    ControlItemIterator it(plain);
    ControlItem item;
    ASSERT_TRUE(it.next(&item));
    EXPECT_EQ(item.type, ControlItemType::probe);
    ASSERT_TRUE(it.next(&item));
    EXPECT_EQ(item.type, ControlItemType::pad);
    EXPECT_EQ(item.data.size(), n);
    EXPECT_EQ(item.pad, n);
    EXPECT_FALSE(it.next(&item));
  }
  // Whatever a PAD holds is accepted (only we write zeros); one longer than the message is not.
  EXPECT_EQ(validate_control_items(from_hex("090003ffffff").value()), DropReason::none);
  EXPECT_EQ(validate_control_items(from_hex("090004ffffff").value()),
            DropReason::bad_control_message);
  // Too little room: refused, nothing written.
  ControlItemWriter small(ByteSpan(buf, 10));
  ControlItem pad;
  pad.type = ControlItemType::pad;
  pad.pad = 8;
  EXPECT_FALSE(small.add(pad));
  EXPECT_EQ(small.size(), 0u);
}

TEST(ControlItems, ValidationRejectsMalformed) {
  auto check = [](const char* hex) {
    const Bytes b = from_hex(hex).value();
    return validate_control_items(b);
  };
  EXPECT_EQ(check(""), DropReason::none);
  EXPECT_EQ(check("030000"), DropReason::none);                       // keepalive
  EXPECT_EQ(check("0900020102030000"), DropReason::none);             // unknown type skipped
  EXPECT_EQ(check("0300"), DropReason::bad_control_message);          // short item header
  EXPECT_EQ(check("03000100"), DropReason::bad_control_message);      // keepalive with a value
  EXPECT_EQ(check("07000400000001"), DropReason::none);               // probe id 1
  EXPECT_EQ(check("070000"), DropReason::bad_control_message);        // probe without its id
  EXPECT_EQ(check("0800040000002a"), DropReason::none);               // probe ack id 42
  EXPECT_EQ(check("080003000000"), DropReason::bad_control_message);  // short probe ack
  EXPECT_EQ(check("020003010203"), DropReason::bad_control_message);  // short KEY_ACK
  EXPECT_EQ(check("0500050102"), DropReason::bad_control_message);    // overruns the buffer
  // KEY_OFFER: version 0 needs 16 key bytes, version 1 needs 32, other versions are invalid.
  const std::string spi = "00000001";
  const std::string k16(32, 'a'), k32(64, 'b');
  EXPECT_EQ(check(("010015" + spi + "00" + k16).c_str()), DropReason::none);
  EXPECT_EQ(check(("010025" + spi + "01" + k32).c_str()), DropReason::none);
  EXPECT_EQ(check(("010015" + spi + "01" + k16).c_str()), DropReason::bad_control_message);
  EXPECT_EQ(check(("010025" + spi + "00" + k32).c_str()), DropReason::bad_control_message);
  EXPECT_EQ(check(("010025" + spi + "02" + k32).c_str()), DropReason::bad_control_message);

  // The iterator skips the unknown item and yields the known one after it.
  const Bytes b = from_hex("ff000201020200040000002a").value();
  ControlItemIterator it(b);
  ControlItem item;
  ASSERT_TRUE(it.next(&item));
  EXPECT_EQ(item.type, ControlItemType::key_ack);
  EXPECT_EQ(item.spi_or_id, 42u);
  EXPECT_FALSE(it.next(&item));
}

TEST(ControlItems, WriterStopsAtTheEnd) {
  std::uint8_t buf[10];
  ControlItemWriter w(ByteSpan(buf, sizeof buf));
  EXPECT_TRUE(w.add({ControlItemType::key_ack, 1, 0, 0, {}}));    // 7 bytes
  EXPECT_TRUE(w.add({ControlItemType::keepalive, 0, 0, 0, {}}));  // 3 bytes
  EXPECT_FALSE(w.add({ControlItemType::keepalive, 0, 0, 0, {}}));
  EXPECT_EQ(w.size(), 10u);
}

// Differential: random item sequences encoded by the writer always validate and iterate
// back to what was written.
TEST(ControlItems, RandomSequencesRoundTrip) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 500; ++round) {
    std::vector<ControlItem> items;
    std::vector<Bytes> storage;
    storage.reserve(8);
    std::uint8_t buf[1200];
    ControlItemWriter w(ByteSpan(buf, sizeof buf));
    const int count = static_cast<int>(rng() % 8);
    for (int i = 0; i < count; ++i) {
      ControlItem it;
      it.type = static_cast<ControlItemType>(1 + rng() % kMaxControlItemType);
      it.spi_or_id = rng();
      if (it.type == ControlItemType::key_offer) {
        it.version = static_cast<std::uint8_t>(rng() % 2);
        storage.push_back(filled(it.version == 0 ? 16 : 32, static_cast<std::uint8_t>(rng())));
        it.data = storage.back();
      } else if (it.type == ControlItemType::service_request ||
                 it.type == ControlItemType::service_response) {
        storage.push_back(filled(rng() % 50, static_cast<std::uint8_t>(rng())));
        it.data = storage.back();
      } else if (it.type == ControlItemType::close) {
        it.reason = static_cast<std::uint8_t>(rng());
      } else if (it.type == ControlItemType::pad) {
        it.pad = rng() % 60;
        storage.push_back(Bytes(it.pad, 0));  // read back as that many zeros
        it.data = storage.back();
      }
      if (it.type == ControlItemType::keepalive || it.type == ControlItemType::close ||
          it.type == ControlItemType::pad)
        it.spi_or_id = 0;
      ASSERT_TRUE(w.add(it));
      items.push_back(it);
    }
    const ConstByteSpan plain(buf, w.size());
    ASSERT_EQ(validate_control_items(plain), DropReason::none);
    ControlItemIterator iter(plain);
    ControlItem got;
    for (const auto& want : items) {
      ASSERT_TRUE(iter.next(&got));
      EXPECT_EQ(got.type, want.type);
      if (want.type != ControlItemType::keepalive && want.type != ControlItemType::close &&
          want.type != ControlItemType::pad) {
        EXPECT_EQ(got.spi_or_id, want.spi_or_id);
      }
      EXPECT_EQ(got.reason, want.type == ControlItemType::close ? want.reason : 0);
      EXPECT_TRUE(std::equal(got.data.begin(), got.data.end(), want.data.begin(), want.data.end()));
    }
    EXPECT_FALSE(iter.next(&got));
  }
}

}  // namespace
}  // namespace ie::wire
