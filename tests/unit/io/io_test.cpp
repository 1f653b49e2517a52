// Reactor, batched UDP over loopback (IPv4 and IPv6, GSO and GRO), and the in-memory fakes.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <algorithm>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "ie/io/fake.hpp"
#include "ie/io/reactor.hpp"
#include "ie/io/udp.hpp"

namespace ie::io {
namespace {

using namespace std::chrono_literals;

TEST(Reactor, FdReadinessTimersPostAndStop) {
  auto r = Reactor::create();
  ASSERT_TRUE(r.ok());
  Reactor& re = **r;
  const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int readable = 0;
  ASSERT_TRUE(re.add_fd(efd, Reactor::kReadable, [&](std::uint32_t ev) {
                  EXPECT_TRUE(ev & Reactor::kReadable);
                  std::uint64_t v;
                  ASSERT_EQ(::read(efd, &v, sizeof v), 8);
                  ++readable;
                }).ok());
  std::vector<int> order;
  re.add_timer(30ms, [&] { order.push_back(30); });
  re.add_timer(10ms, [&] { order.push_back(10); });
  auto cancelled = re.add_timer(20ms, [&] { order.push_back(20); });
  EXPECT_TRUE(re.cancel_timer(cancelled));
  const auto start = Reactor::Clock::now();
  re.add_timer(60ms, [&] {
    EXPECT_GE(Reactor::Clock::now() - start, 60ms);  // never early
    re.stop();
  });
  std::thread poster([&] {
    std::this_thread::sleep_for(5ms);
    const std::uint64_t one = 1;
    ASSERT_EQ(::write(efd, &one, sizeof one), 8);
    re.post([&] { order.push_back(-1); });
  });
  ASSERT_TRUE(re.run().ok());
  poster.join();
  EXPECT_EQ(readable, 1);
  // The post ran once; when, relative to the timers, depends on how soon the poster thread
  // got a CPU (under load it may be after 10 ms), so only the timers' order is fixed.
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(std::count(order.begin(), order.end(), -1), 1);
  std::erase(order, -1);
  EXPECT_EQ(order, (std::vector<int>{10, 30}));
  re.remove_fd(efd);
  ::close(efd);
}

class UdpLoopback : public ::testing::TestWithParam<const char*> {};

TEST_P(UdpLoopback, ThousandDatagramsInBatches) {
  const std::string host = GetParam();
  auto a = UdpSocket::bind(host + ":0");
  auto b = UdpSocket::bind(host + ":0");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  ASSERT_TRUE(b.ok());
  socklen_t blen = 0;
  const auto baddr = b->local_address(&blen).value();
  constexpr int kCount = 1000;
  std::vector<std::array<std::uint8_t, 100>> bufs(kCount);
  std::vector<Datagram> out(kCount);
  for (int i = 0; i < kCount; ++i) {
    std::memset(bufs[i].data(), i & 0xff, bufs[i].size());
    std::memcpy(bufs[i].data(), &i, sizeof i);
    out[i].buf = ByteSpan(bufs[i]);
    out[i].len = 20 + i % 80;
    out[i].peer = baddr;
    out[i].peer_len = blen;
  }
  std::vector<bool> seen(kCount, false);
  int got = 0, sent = 0;
  std::vector<std::array<std::uint8_t, 2048>> rbufs(64);
  std::vector<Datagram> in(64);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (got < kCount && std::chrono::steady_clock::now() < deadline) {
    if (sent < kCount) {
      // At most 200 in flight so the receive buffer never overflows.
      const int n = std::min(kCount - sent, std::max(0, 200 - (sent - got)));
      auto s = a->send_batch(
          std::span(out).subspan(static_cast<std::size_t>(sent), static_cast<std::size_t>(n)));
      ASSERT_TRUE(s.ok()) << s.error().to_string();
      sent += static_cast<int>(*s);
    }
    for (std::size_t i = 0; i < in.size(); ++i)
      in[i].buf = ByteSpan(rbufs[i]);
    pollfd p{b->fd(), POLLIN, 0};
    ::poll(&p, 1, 100);
    auto r = b->recv_batch(in);
    ASSERT_TRUE(r.ok());
    for (std::size_t i = 0; i < *r; ++i) {
      int idx;
      std::memcpy(&idx, in[i].buf.data(), sizeof idx);
      ASSERT_GE(idx, 0);
      ASSERT_LT(idx, kCount);
      EXPECT_EQ(in[i].len, static_cast<std::size_t>(20 + idx % 80));
      EXPECT_EQ(in[i].buf[in[i].len - 1], idx & 0xff);
      EXPECT_FALSE(seen[static_cast<std::size_t>(idx)]);
      seen[static_cast<std::size_t>(idx)] = true;
      ++got;
    }
  }
  EXPECT_EQ(got, kCount);
}

INSTANTIATE_TEST_SUITE_P(Families, UdpLoopback, ::testing::Values("127.0.0.1", "[::1]"));

TEST(Udp, BadEndpointsAreParseErrors) {
  EXPECT_EQ(UdpSocket::bind("localhost").error().code, Errc::parse);
  EXPECT_EQ(UdpSocket::bind("1.2.3.4:99999").error().code, Errc::parse);
  EXPECT_EQ(UdpSocket::bind("[::1:5").error().code, Errc::parse);
  auto a = UdpSocket::bind("127.0.0.1:0");
  socklen_t len = 0;
  const std::string taken = endpoint_str(a->local_address(&len).value());
  EXPECT_EQ(UdpSocket::bind(taken).error().code, Errc::exists);
}

TEST(Fake, TwoPortsExchangeAndKnobsWork) {
  FakeNetwork net(9);
  auto* a = net.add_port("10.0.0.1:1000").value();
  auto* b = net.add_port("10.0.0.2:1000").value();
  EXPECT_FALSE(net.add_port("10.0.0.2:1000").ok());
  std::uint8_t msg[3] = {1, 2, 3};
  Datagram d;
  d.buf = ByteSpan(msg);
  d.len = 3;
  d.peer = b->address();
  d.peer_len = b->address_len();
  ASSERT_EQ(a->send_batch(std::span(&d, 1)).value(), 1u);
  std::uint8_t rb[16];
  Datagram in;
  in.buf = ByteSpan(rb);
  ASSERT_EQ(b->recv_batch(std::span(&in, 1)).value(), 1u);
  EXPECT_EQ(in.len, 3u);
  EXPECT_EQ(endpoint_str(in.peer), "10.0.0.1:1000");
  // GSO through the fake splits like the kernel.
  std::uint8_t big[10];
  d.buf = ByteSpan(big);
  d.len = 10;
  d.segment_size = 4;
  ASSERT_TRUE(a->send_batch(std::span(&d, 1)).ok());
  EXPECT_EQ(b->pending(), 3u);
  // Loss and duplication.
  net.drop = 0.5;
  net.duplicate = 0.5;
  d.segment_size = 0;
  for (int i = 0; i < 1000; ++i)
    (void)a->send_batch(std::span(&d, 1));
  EXPECT_GT(net.dropped, 300u);
  EXPECT_LT(net.dropped, 700u);
  EXPECT_GT(b->pending(), 600u);
  d.peer = a->address();
  reinterpret_cast<sockaddr_in*>(&d.peer)->sin_port = htons(9);
  net.drop = 0;
  ASSERT_TRUE(a->send_batch(std::span(&d, 1)).ok());
  EXPECT_EQ(net.unroutable, 1u);
}

TEST(Fake, PacketDevice) {
  FakePacketDevice dev;
  dev.inject({1, 2, 3});
  dev.inject({4});
  std::uint8_t b1[8], b2[8];
  Packet ps[2] = {{ByteSpan(b1), 0}, {ByteSpan(b2), 0}};
  ASSERT_EQ(dev.read_batch(ps).value(), 2u);
  EXPECT_EQ(ps[0].len, 3u);
  EXPECT_EQ(ps[1].len, 1u);
  EXPECT_EQ(dev.read_batch(ps).value(), 0u);
  ASSERT_EQ(dev.write_batch(std::span(ps, 1)).value(), 1u);
  auto w = dev.take_written();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], (Bytes{1, 2, 3}));
}

TEST(Fake, PacketDeviceStandsInForAnOffloadingTun) {
  // Frames pass as given; the device only reports the header the datapath must expect.
  EXPECT_EQ(FakePacketDevice().frame_header_len(), 0u);
  FakePacketDevice dev(kVnetHdrLen);
  EXPECT_EQ(dev.frame_header_len(), kVnetHdrLen);
  Bytes frame(kVnetHdrLen, 0);
  frame.push_back(0x45);
  dev.inject(frame);
  std::uint8_t b[32];
  Packet p{ByteSpan(b), 0};
  ASSERT_EQ(dev.read_batch(std::span(&p, 1)).value(), 1u);
  EXPECT_EQ(Bytes(b, b + p.len), frame);
}

}  // namespace
}  // namespace ie::io
