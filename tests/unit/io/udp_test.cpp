// UdpSocket paths io_test.cpp does not reach: the GSO fallback (one message per segment when
// the kernel cannot segment), a GSO Datagram with too many segments, batches larger than one
// system call, connected sockets, refused datagrams counted and skipped, endpoint round trips,
// and GRO receiving a GSO send coalesced.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>

#include <array>
#include <chrono>
#include <cstring>
#include <vector>

#include "ie/io/udp.hpp"

namespace ie::io {
namespace {

using namespace std::chrono_literals;

struct Pair {
  UdpSocket a, b;
  sockaddr_storage baddr{};
  socklen_t blen = 0;
};

Pair make_pair(const std::string& host) {
  auto a = UdpSocket::bind(host + ":0");
  auto b = UdpSocket::bind(host + ":0");
  EXPECT_TRUE(a.ok() && b.ok());
  Pair p{std::move(*a), std::move(*b)};
  p.baddr = p.b.local_address(&p.blen).value();
  return p;
}

// Receives into 64 buffers until `want` datagrams arrived or 5 s passed; returns them.
std::vector<std::vector<std::uint8_t>> drain(UdpSocket& s, std::size_t want) {
  std::vector<std::vector<std::uint8_t>> got;
  std::vector<std::array<std::uint8_t, 2048>> bufs(64);
  std::vector<Datagram> in(64);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    for (std::size_t i = 0; i < in.size(); ++i)
      in[i].buf = ByteSpan(bufs[i]);
    pollfd p{s.fd(), POLLIN, 0};
    ::poll(&p, 1, 50);
    auto r = s.recv_batch(in);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) break;
    for (std::size_t i = 0; i < *r; ++i)
      got.emplace_back(in[i].buf.begin(), in[i].buf.begin() + static_cast<long>(in[i].len));
  }
  return got;
}

// Two Datagrams to p.b: `big` as GSO segments of `seg` bytes, then `small` on its own.
std::array<Datagram, 2> gso_then_plain(const Pair& p, std::span<std::uint8_t> big,
                                       std::uint16_t seg, std::span<std::uint8_t> small) {
  std::array<Datagram, 2> d;
  d[0].buf = ByteSpan(big);
  d[0].len = big.size();
  d[0].segment_size = seg;
  d[1].buf = ByteSpan(small);
  d[1].len = small.size();
  for (auto& x : d) {
    x.peer = p.baddr;
    x.peer_len = p.blen;
  }
  return d;
}

TEST(UdpSocket, GsoFallbackSendsOneMessagePerSegment) {
  Pair p = make_pair("127.0.0.1");
  p.a.disable_gso_for_test();
  std::vector<std::uint8_t> big(1000);
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<std::uint8_t>(i / 300);
  Datagram d;
  d.buf = ByteSpan(big);
  d.len = big.size();
  d.peer = p.baddr;
  d.peer_len = p.blen;
  d.segment_size = 300;  // 300, 300, 300, 100
  ASSERT_EQ(p.a.send_batch(std::span(&d, 1)).value(), 1u);
  const auto got = drain(p.b, 4);
  ASSERT_EQ(got.size(), 4u);
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(got[k].size(), k < 3 ? 300u : 100u);
    EXPECT_EQ(got[k].front(), k);
    EXPECT_EQ(got[k].back(), k);
  }
  EXPECT_EQ(p.a.send_dropped(), 0u);
}

TEST(UdpSocket, TooManyGsoSegmentsIsDroppedAndTheRestStillGoes) {
  Pair p = make_pair("127.0.0.1");
  std::vector<std::uint8_t> big(UdpSocket::kMaxSegments * 10 + 10, 7);
  std::uint8_t small[5] = {1, 2, 3, 4, 5};
  auto d = gso_then_plain(p, big, 10, small);  // kMaxSegments + 1 segments
  ASSERT_EQ(p.a.send_batch(d).value(), 2u);
  EXPECT_EQ(p.a.send_dropped(), 1u);
  const auto got = drain(p.b, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], (std::vector<std::uint8_t>{1, 2, 3, 4, 5}));
}

// The kernel refuses a GSO message for reasons that concern that message (EINVAL: a segment
// longer than the route's MTU, or, as here, a socket with UDP checksums off, SO_NO_CHECK):
// its segments go out one by one instead of the Datagram being dropped, and GSO stays on
// for the next ones.
TEST(UdpSocket, RefusedGsoMessageIsSentSegmentBySegment) {
  Pair p = make_pair("127.0.0.1");
  if (!p.a.gso_supported()) GTEST_SKIP() << "no UDP GSO in this kernel";
  const int one = 1;
  ASSERT_EQ(::setsockopt(p.a.fd(), SOL_SOCKET, SO_NO_CHECK, &one, sizeof one), 0);
  std::vector<std::uint8_t> big(1000);
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<std::uint8_t>(i / 300);
  std::uint8_t small[3] = {9, 9, 9};
  auto d = gso_then_plain(p, big, 300, small);  // 300, 300, 300, 100; then 3 bytes
  ASSERT_EQ(p.a.send_batch(d).value(), 2u);
  EXPECT_EQ(p.a.send_dropped(), 0u);
  EXPECT_TRUE(p.a.gso_supported());
  const auto got = drain(p.b, 5);
  ASSERT_EQ(got.size(), 5u);
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(got[k].size(), k < 3 ? 300u : 100u);
    EXPECT_EQ(got[k].front(), k);
  }
  EXPECT_EQ(got[4], (std::vector<std::uint8_t>{9, 9, 9}));
}

TEST(UdpSocket, BatchLargerThanOneSyscallOnIpv6) {
  Pair p = make_pair("[::1]");
  constexpr std::size_t kCount = UdpSocket::kMaxBatch * 2 + 7;  // three sendmmsg chunks
  std::vector<std::array<std::uint8_t, 8>> bufs(kCount);
  std::vector<Datagram> out(kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    bufs[i].fill(static_cast<std::uint8_t>(i));
    out[i].buf = ByteSpan(bufs[i]);
    out[i].len = 8;
    out[i].peer = p.baddr;
    out[i].peer_len = p.blen;
  }
  ASSERT_EQ(p.a.send_batch(out).value(), kCount);
  const auto got = drain(p.b, kCount);
  ASSERT_EQ(got.size(), kCount);
  for (std::size_t i = 0; i < kCount; ++i)  // loopback keeps order
    EXPECT_EQ(got[i][0], static_cast<std::uint8_t>(i));
}

TEST(UdpSocket, ConnectedSocketSendsWithoutPeerAndCountsRefusals) {
  Pair p = make_pair("127.0.0.1");
  ASSERT_TRUE(p.a.connect(endpoint_str(p.baddr)).ok());
  std::uint8_t msg[3] = {9, 8, 7};
  Datagram d;
  d.buf = ByteSpan(msg);
  d.len = 3;  // peer_len 0: the connected peer
  ASSERT_EQ(p.a.send_batch(std::span(&d, 1)).value(), 1u);
  const auto got = drain(p.b, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], (std::vector<std::uint8_t>{9, 8, 7}));

  // Close b: the next datagram draws an ICMP port unreachable, which the connected socket
  // reports later as ECONNREFUSED on send or receive; either way it is counted, not fatal.
  const std::string gone = endpoint_str(p.baddr);
  { UdpSocket dead = std::move(p.b); }
  ASSERT_EQ(p.a.send_batch(std::span(&d, 1)).value(), 1u);
  std::uint8_t rb[16];
  Datagram in;
  in.buf = ByteSpan(rb);
  bool counted = false;
  for (int i = 0; i < 50 && !counted; ++i) {
    pollfd pf{p.a.fd(), POLLIN, 0};
    ::poll(&pf, 1, 20);
    auto r = p.a.recv_batch(std::span(&in, 1));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 0u);
    auto s = p.a.send_batch(std::span(&d, 1));
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(*s, 1u);
    counted = p.a.recv_errors() + p.a.send_dropped() > 0;
  }
  EXPECT_TRUE(counted) << "no refusal seen after sending to closed " << gone;
}

TEST(UdpSocket, EndpointsRoundTrip) {
  for (const char* text : {"127.0.0.1:1", "10.1.2.3:65535", "[::1]:53", "[fe80::1]:4500"}) {
    socklen_t len = 0;
    auto a = parse_endpoint(text, &len);
    ASSERT_TRUE(a.ok()) << text;
    EXPECT_EQ(endpoint_str(*a), text);
    EXPECT_EQ(len, a->ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
  }
  socklen_t len = 0;
  for (const char* bad : {"", ":1", "1.2.3.4:", "1.2.3.4:x", "[::1]", "::1:5", "1.2.3.256:1"})
    EXPECT_FALSE(parse_endpoint(bad, &len).ok()) << bad;
}

// On loopback the kernel hands a GSO super-packet to a GRO socket whole: one Datagram with
// segment_size set, whose segments are the sent ones.
TEST(UdpSocket, GroReceivesAGsoSendCoalesced) {
  UdpOptions gro;
  gro.gro = true;
  auto a = UdpSocket::bind("127.0.0.1:0");
  auto b = UdpSocket::bind("127.0.0.1:0", gro);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(a->gso_supported());
  ASSERT_TRUE(b->gro_enabled());
  socklen_t blen = 0;
  const auto baddr = b->local_address(&blen).value();
  std::vector<std::uint8_t> big(8 * 400 + 50);
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<std::uint8_t>(i / 400);
  Datagram d;
  d.buf = ByteSpan(big);
  d.len = big.size();
  d.peer = baddr;
  d.peer_len = blen;
  d.segment_size = 400;
  ASSERT_EQ(a->send_batch(std::span(&d, 1)).value(), 1u);
  std::vector<std::uint8_t> rbuf(65536);
  Datagram in;
  in.buf = ByteSpan(rbuf);
  std::size_t n = 0;
  for (int i = 0; i < 50 && n == 0; ++i) {
    pollfd p{b->fd(), POLLIN, 0};
    ::poll(&p, 1, 50);
    n = b->recv_batch(std::span(&in, 1)).value();
  }
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(in.len, big.size());
  EXPECT_EQ(in.segment_size, 400u);
  EXPECT_EQ(std::memcmp(rbuf.data(), big.data(), big.size()), 0);
}

}  // namespace
}  // namespace ie::io
