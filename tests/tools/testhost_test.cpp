// Unit tests of ie-testhost's parts: test packets, sequence bookkeeping, the pcap reader,
// and two HostLinks associating, registering and exchanging ILP packets over loopback (one
// listening, one treating it as its SN), so the tool the netns tests rely on is itself
// checked without root.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "../unit/common/loopback_link.hpp"
#include "ie/crypto/key_file.hpp"
#include "ie/link/host_link.hpp"
#include "testhost_packet.hpp"
#include "testhost_pcap.hpp"

namespace ie::tools {
namespace {

using namespace ie::link;
using crypto::key_from_base64;
using crypto::key_to_base64;

TEST(TestPacket, RoundTripAndEcho) {
  std::uint8_t buf[256];
  TestPayload p;
  p.kind = PayloadKind::data;
  p.flow = 7;
  p.seq = 0x0102030405060708ull;
  p.sent_ns = 99;
  p.marker = "MARK";
  const std::size_t len = write_test_packet(buf, 0x0a010002, 0x0a020002, p, 64);
  ASSERT_EQ(len, kInnerHeaderLen + 64);
  auto t = parse_test_packet(ConstByteSpan(buf, len));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->src, 0x0a010002u);
  EXPECT_EQ(t->dst, 0x0a020002u);
  EXPECT_EQ(t->payload.kind, PayloadKind::data);
  EXPECT_EQ(t->payload.flow, 7);
  EXPECT_EQ(t->payload.seq, p.seq);
  EXPECT_EQ(t->payload.sent_ns, 99u);
  EXPECT_EQ(t->payload.marker, "MARK");
  // The marker is in the clear in the inner packet (what the no-plaintext test looks for).
  EXPECT_NE(std::string(reinterpret_cast<char*>(buf), len).find("MARK"), std::string::npos);

  make_echo_in_place(ByteSpan(buf, len));
  auto e = parse_test_packet(ConstByteSpan(buf, len));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->src, 0x0a020002u);
  EXPECT_EQ(e->dst, 0x0a010002u);
  EXPECT_EQ(e->payload.kind, PayloadKind::echo);
  EXPECT_EQ(e->payload.seq, p.seq);
}

TEST(TestPacket, RejectsDamageAndBadSizes) {
  std::uint8_t buf[256];
  TestPayload p;
  p.marker = "MARKER";
  EXPECT_EQ(write_test_packet(buf, 1, 2, p, min_payload_len(p.marker) - 1), 0u);
  EXPECT_EQ(write_test_packet(ByteSpan(buf, 40), 1, 2, p, 64), 0u);
  const std::size_t len = write_test_packet(buf, 1, 2, p, 64);
  ASSERT_GT(len, 0u);
  EXPECT_FALSE(parse_test_packet(ConstByteSpan(buf, len - 1)));  // shorter than total length
  buf[8] ^= 1;                                                   // TTL: checksum now wrong
  EXPECT_FALSE(parse_test_packet(ConstByteSpan(buf, len)));
  buf[8] ^= 1;
  buf[kInnerHeaderLen] = 'X';  // magic
  EXPECT_FALSE(parse_test_packet(ConstByteSpan(buf, len)));
}

TEST(TestPacket, Ipv4Text) {
  EXPECT_EQ(parse_ipv4("10.2.0.2"), 0x0a020002u);
  EXPECT_FALSE(parse_ipv4("10.2.0"));
  EXPECT_EQ(ipv4_str(0x0a020002u), "10.2.0.2");
}

TEST(SeqTracker, CountsLossDuplicatesAndOrder) {
  SeqTracker t;
  for (std::uint64_t s : {0, 1, 2, 5, 6, 4, 6, 9})
    t.add(s);
  EXPECT_EQ(t.received(), 8u);
  EXPECT_EQ(t.unique(), 7u);
  EXPECT_EQ(t.duplicates(), 1u);
  EXPECT_EQ(t.out_of_order(), 1u);  // 4 after 6
  EXPECT_EQ(t.end(), 10u);
  const auto l = t.losses(12);  // missing: 3, 7, 8, 10, 11
  EXPECT_EQ(l.missing, 5u);
  EXPECT_EQ(l.runs, 3u);
  EXPECT_EQ(l.longest, 2u);
  EXPECT_EQ(l.first, 3u);
  EXPECT_EQ(t.add(SeqTracker::kMaxSeq), SeqTracker::Seen::out_of_range);
  EXPECT_EQ(t.out_of_range(), 1u);
}

// ---- pcap ----

void put32(Bytes& b, std::uint32_t v, bool be) {
  std::uint8_t x[4];
  be ? store_be32(x, v) : store_le32(x, v);
  b.insert(b.end(), x, x + 4);
}

Bytes udp4_frame(std::size_t link_header, std::uint16_t ethertype_at, ConstByteSpan payload,
                 std::uint8_t proto = 17) {
  Bytes f(link_header, 0);
  if (link_header >= ethertype_at + 2u) store_be16(f.data() + ethertype_at, 0x0800);
  Bytes ip(20 + 8 + payload.size(), 0);
  ip[0] = 0x45;
  store_be16(ip.data() + 2, static_cast<std::uint16_t>(ip.size()));
  ip[9] = proto;
  store_be32(ip.data() + 12, 0xac100102);  // 172.16.1.2
  store_be32(ip.data() + 16, 0xac100101);
  store_be16(ip.data() + 20, 40000);
  store_be16(ip.data() + 22, 1000);
  store_be16(ip.data() + 24, static_cast<std::uint16_t>(8 + payload.size()));
  std::memcpy(ip.data() + 28, payload.data(), payload.size());
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

Bytes pcap_file(std::uint32_t link, const std::vector<Bytes>& frames, bool be,
                std::size_t cut_last = 0) {
  Bytes b;
  put32(b, 0xa1b2c3d4, be);
  b.push_back(0), b.push_back(0), b.push_back(0), b.push_back(0);  // version (unchecked)
  put32(b, 0, be);
  put32(b, 0, be);
  put32(b, 262144, be);
  put32(b, link, be);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const std::size_t orig = frames[i].size();
    const std::size_t incl = i + 1 == frames.size() ? orig - cut_last : orig;
    put32(b, 1, be);
    put32(b, 2, be);
    put32(b, static_cast<std::uint32_t>(incl), be);
    put32(b, static_cast<std::uint32_t>(orig), be);
    b.insert(b.end(), frames[i].begin(), frames[i].begin() + static_cast<std::ptrdiff_t>(incl));
  }
  return b;
}

TEST(Pcap, EthernetBothByteOrders) {
  const std::uint8_t pl1[] = {1, 2, 3}, pl2[] = {9, 0, 0, 0, 5};
  for (bool be : {false, true}) {
    const std::vector<Bytes> frames = {udp4_frame(14, 12, pl1), udp4_frame(14, 12, pl2),
                                       udp4_frame(14, 12, pl1, /*proto=*/6)};
    auto r = parse_pcap(pcap_file(1, frames, be));
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->records, 3u);
    EXPECT_EQ(r->skipped, 1u);  // TCP
    ASSERT_EQ(r->udp.size(), 2u);
    EXPECT_EQ(r->udp[0].payload, Bytes(pl1, pl1 + 3));
    EXPECT_EQ(r->udp[1].payload, Bytes(pl2, pl2 + 5));
    EXPECT_EQ(r->udp[0].src, "172.16.1.2:40000");
    EXPECT_EQ(r->udp[0].dst, "172.16.1.1:1000");
  }
}

TEST(Pcap, LinuxCookedAndSnapLength) {
  const std::uint8_t pl[] = {7, 7, 7, 7};
  auto v1 = parse_pcap(pcap_file(113, {udp4_frame(16, 14, pl)}, false));
  ASSERT_TRUE(v1);
  ASSERT_EQ(v1->udp.size(), 1u);
  auto v2 = parse_pcap(pcap_file(276, {udp4_frame(20, 0, pl)}, false));
  ASSERT_TRUE(v2);
  ASSERT_EQ(v2->udp.size(), 1u);
  EXPECT_EQ(v2->udp[0].payload, Bytes(pl, pl + 4));
  // A record cut by the snap length is not a whole datagram: skipped, not replayed.
  auto cut = parse_pcap(pcap_file(1, {udp4_frame(14, 12, pl)}, false, /*cut_last=*/2));
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->udp.size(), 0u);
  EXPECT_EQ(cut->skipped, 1u);
}

TEST(Pcap, RejectsBadFiles) {
  const std::uint8_t pl[] = {1};
  Bytes f = pcap_file(1, {udp4_frame(14, 12, pl)}, false);
  EXPECT_FALSE(parse_pcap(ConstByteSpan(f.data(), 10)));            // short global header
  EXPECT_FALSE(parse_pcap(ConstByteSpan(f.data(), f.size() - 1)));  // record past the end
  Bytes g = f;
  g[0] = 0x0a;  // pcapng / garbage magic
  EXPECT_FALSE(parse_pcap(g));
  EXPECT_FALSE(parse_pcap(pcap_file(147, {}, false)));  // unknown link type
  EXPECT_FALSE(read_pcap("/nonexistent/file.pcap"));
}

// ---- two links over loopback ----

using ie::testing::endpoint_of;
using ie::testing::fast_link;

TEST(HostLink, AssociatesRegistersAndExchangesPackets) {
  ASSERT_GE(sodium_init(), 0);
  auto lo = fast_link(/*listen=*/true);
  const auto listen_pub = lo.key.pub;
  auto server = HostLink::create(std::move(lo));
  ASSERT_TRUE(server);
  auto client = HostLink::create(fast_link(false));
  ASSERT_TRUE(client);
  ASSERT_TRUE((*client)->add_sn(endpoint_of(**server), listen_pub, {"10.1.0.2"}));

  std::vector<std::uint64_t> seen_by_server;
  PeerId client_peer = 0;
  auto on_server = [&](InPacket& in) {
    auto t = parse_test_packet(in.inner);
    if (t) seen_by_server.push_back(t->payload.seq);
    client_peer = in.peer;
  };
  auto ignore = [](InPacket&) {};
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!(*client)->sn_ready() && Clock::now() < deadline) {
    (*client)->poll_once(std::chrono::milliseconds(5), ignore);
    (*server)->poll_once(std::chrono::milliseconds(5), on_server);
  }
  ASSERT_TRUE((*client)->sn_ready()) << (*client)->last_register_error();
  EXPECT_EQ((*client)->stats().registrations, 1u);

  // Ten packets client -> server, each a test packet with its sequence number.
  std::uint8_t buf[10][256];
  OutPacket out[10];
  for (int i = 0; i < 10; ++i) {
    TestPayload p;
    p.seq = static_cast<std::uint64_t>(i);
    p.marker = "M";
    const std::size_t len = write_test_packet(buf[i], 1, 2, p, 32);
    out[i].header.service_id = 1;
    out[i].header.connection_id = 42;
    out[i].inner = ConstByteSpan(buf[i], len);
  }
  EXPECT_EQ((*client)->send(*(*client)->sn_peer(), out), 10u);
  while (seen_by_server.size() < 10 && Clock::now() < deadline) {
    (*server)->poll_once(std::chrono::milliseconds(5), on_server);
    (*client)->poll_once(std::chrono::milliseconds(1), ignore);
  }
  ASSERT_EQ(seen_by_server.size(), 10u);
  for (std::size_t i = 0; i < 10; ++i)
    EXPECT_EQ(seen_by_server[i], i);

  // And one back, on the peer the packets came from.
  std::size_t client_got = 0;
  auto on_client = [&](InPacket& in) { client_got += parse_test_packet(in.inner) ? 1 : 0; };
  ASSERT_TRUE((*server)->can_send(client_peer));
  EXPECT_EQ((*server)->send(client_peer, std::span<const OutPacket>(out, 1)), 1u);
  while (client_got == 0 && Clock::now() < deadline) {
    (*client)->poll_once(std::chrono::milliseconds(5), on_client);
    (*server)->poll_once(std::chrono::milliseconds(1), ignore);
  }
  EXPECT_EQ(client_got, 1u);
}

TEST(HostLink, ReassociatesAndReregistersAfterThePeerRestarts) {
  ASSERT_GE(sodium_init(), 0);
  auto lo = fast_link(/*listen=*/true);
  lo.close_on_exit = false;
  const auto key = lo.key.clone();
  auto server = HostLink::create(std::move(lo));
  ASSERT_TRUE(server);
  const std::string where = endpoint_of(**server);
  auto client = HostLink::create(fast_link(false));
  ASSERT_TRUE(client);
  ASSERT_TRUE((*client)->add_sn(where, key.pub, {"10.1.0.2"}));
  auto ignore = [](InPacket&) {};
  auto run_until = [&](auto done, std::chrono::seconds limit) {
    const auto end = Clock::now() + limit;
    while (!done() && Clock::now() < end) {
      (*client)->poll_once(std::chrono::milliseconds(5), ignore);
      if (*server) (*server)->poll_once(std::chrono::milliseconds(1), ignore);
    }
    return done();
  };
  ASSERT_TRUE(run_until([&] { return (*client)->sn_ready(); }, std::chrono::seconds(10)));

  // The "SN" goes away without a word (no CLOSE) and comes back on the same endpoint with
  // the same key but no memory of the client.
  server = fail(Errc::closed);
  LinkOptions again = fast_link(true);
  again.key = key.clone();
  again.bind = where;
  const auto silent_until = Clock::now() + std::chrono::milliseconds(300);
  while (Clock::now() < silent_until)
    (*client)->poll_once(std::chrono::milliseconds(5), ignore);
  server = HostLink::create(std::move(again));
  ASSERT_TRUE(server) << server.error().to_string();
  ASSERT_TRUE(
      run_until([&] { return (*client)->stats().reassociations >= 1; }, std::chrono::seconds(10)));
  ASSERT_TRUE(run_until([&] { return (*client)->sn_ready(); }, std::chrono::seconds(10)));
  EXPECT_EQ((*client)->stats().registrations, 2u);
  EXPECT_GE((*client)->stats().dead, 1u);
  EXPECT_GE((*client)->stats().probes, 1u);  // the silence was probed before giving up
}

}  // namespace
}  // namespace ie::tools
