// The reuseport steering program on real sockets (no root needed): four SO_REUSEPORT
// sockets on 127.0.0.1 with the program attached; PSP-shaped datagrams land on socket
// SPI % 4, control-plane ones (byte 1 == 0) and runts on socket 0, from any source port.
#include <poll.h>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <vector>

#include "ie/io/udp.hpp"
#include "ie/sn/worker.hpp"

namespace ie::sn {
namespace {

constexpr unsigned kWorkers = 4;

struct Group {
  std::vector<io::UdpSocket> socks;
  std::string endpoint;

  Group() {
    io::UdpOptions o;
    o.reuse_port = true;
    auto first = io::UdpSocket::bind("127.0.0.1:0", o);
    EXPECT_TRUE(first.ok());
    if (!first) return;
    socklen_t len = 0;
    endpoint = io::endpoint_str(*first->local_address(&len));
    socks.push_back(std::move(*first));
    for (unsigned i = 1; i < kWorkers; ++i) {
      auto s = io::UdpSocket::bind(endpoint, o);
      EXPECT_TRUE(s.ok()) << s.error().to_string();
      if (s) socks.push_back(std::move(*s));
    }
  }

  // Waits (bounded) until `expected` datagrams arrived in all; returns payload -> socket.
  std::vector<std::pair<Bytes, unsigned>> receive(std::size_t expected) {
    std::vector<std::pair<Bytes, unsigned>> got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::vector<std::uint8_t> mem(64 * 256);
    while (got.size() < expected && std::chrono::steady_clock::now() < deadline) {
      std::vector<pollfd> pfds;
      for (auto& s : socks)
        pfds.push_back(pollfd{s.fd(), POLLIN, 0});
      ::poll(pfds.data(), pfds.size(), 100);
      for (unsigned i = 0; i < socks.size(); ++i) {
        std::vector<io::Datagram> d(64);
        for (std::size_t k = 0; k < d.size(); ++k)
          d[k].buf = ByteSpan(mem.data() + k * 256, 256);
        auto n = socks[i].recv_batch(d);
        if (!n) continue;
        for (std::size_t k = 0; k < *n; ++k)
          got.emplace_back(Bytes(d[k].buf.begin(), d[k].buf.begin() + d[k].len), i);
      }
    }
    return got;
  }
};

Bytes psp_like(std::uint32_t spi, std::uint8_t tag) {
  Bytes b(48, 0);
  b[0] = 253;  // next header: ILP
  b[1] = 1;    // header extension length: never 0 for PSP
  store_be32(b.data() + 4, spi);
  b[47] = tag;
  return b;
}

Bytes control_like(std::uint8_t type, std::uint8_t tag) {
  Bytes b(40, 0);
  b[0] = type;
  b[1] = 0;
  b[39] = tag;
  return b;
}

TEST(Steering, ProgramMatchesTheCppRule) {
  EXPECT_EQ(steering_index(psp_like(7, 0), 4), 3u);
  EXPECT_EQ(steering_index(psp_like(0x80000005u, 0), 4), 1u);
  EXPECT_EQ(steering_index(control_like(1, 0), 4), 0u);
  EXPECT_EQ(steering_index(Bytes{1}, 4), 0u);
  EXPECT_EQ(steering_index(psp_like(9, 0), 1), 0u);
  EXPECT_FALSE(attach_reuseport_steering(-1, 4).ok());
  EXPECT_FALSE(attach_reuseport_steering(0, 0).ok());
}

TEST(Steering, DatagramsReachTheSocketOfTheirSpi) {
  Group g;
  ASSERT_EQ(g.socks.size(), kWorkers);
  ASSERT_TRUE(attach_reuseport_steering(g.socks[0].fd(), kWorkers).ok());

  // Several senders, so the kernel's own hash (which depends on the source port) would
  // spread them differently from the program.
  std::vector<io::UdpSocket> senders;
  for (int i = 0; i < 6; ++i) {
    auto s = io::UdpSocket::bind("127.0.0.1:0");
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s->connect(g.endpoint).ok());
    senders.push_back(std::move(*s));
  }
  // tag -> expected socket
  std::map<std::uint8_t, unsigned> expect;
  std::vector<std::pair<Bytes, std::size_t>> to_send;  // payload, sender
  std::uint8_t tag = 0;
  const std::uint32_t spis[] = {
      1,           2,           3,           4,           5,       6,       7,       8,
      0x80000001u, 0x80000002u, 0x80000003u, 0x80000004u, 1000001, 1000002, 1000003, 0xffffffffu};
  for (std::uint32_t spi : spis) {
    for (std::size_t s = 0; s < senders.size(); s += 2) {
      to_send.emplace_back(psp_like(spi, ++tag), s);
      expect[tag] = spi % kWorkers;
    }
  }
  for (std::uint8_t type : {1, 2, 3, 4, 5}) {
    for (std::size_t s = 0; s < senders.size(); ++s) {
      to_send.emplace_back(control_like(type, ++tag), s);
      expect[tag] = 0;
    }
  }
  for (auto& [payload, s] : to_send) {
    io::Datagram d;
    d.buf = ByteSpan(payload);
    d.len = payload.size();
    auto r = senders[s].send_batch(std::span<const io::Datagram>(&d, 1));
    ASSERT_TRUE(r.ok() && *r == 1);
  }
  // Runts: too short to load byte 1 or the SPI -> socket 0.
  for (std::size_t s = 0; s < senders.size(); ++s) {
    Bytes runt{0xab};
    io::Datagram d;
    d.buf = ByteSpan(runt);
    d.len = 1;
    ASSERT_TRUE(senders[s].send_batch(std::span<const io::Datagram>(&d, 1)).ok());
    Bytes short_psp{253, 1, 0, 0, 0};  // byte 1 != 0, but no SPI to load
    d.buf = ByteSpan(short_psp);
    d.len = short_psp.size();
    ASSERT_TRUE(senders[s].send_batch(std::span<const io::Datagram>(&d, 1)).ok());
  }

  const std::size_t total = to_send.size() + 2 * senders.size();
  const auto got = g.receive(total);
  ASSERT_EQ(got.size(), total);
  std::array<unsigned, kWorkers> per_socket{};
  std::size_t runts = 0;
  for (const auto& [payload, sock] : got) {
    ++per_socket[sock];
    if (payload.size() < 8) {
      EXPECT_EQ(sock, 0u) << "runt of " << payload.size() << " bytes";
      ++runts;
      continue;
    }
    const std::uint8_t t = payload.back();
    ASSERT_TRUE(expect.count(t)) << int(t);
    EXPECT_EQ(sock, expect[t]) << "tag " << int(t);
    EXPECT_EQ(steering_index(payload, kWorkers), sock);
  }
  EXPECT_EQ(runts, 2 * senders.size());
  for (unsigned i = 0; i < kWorkers; ++i)
    EXPECT_GT(per_socket[i], 0u) << "socket " << i << " got nothing";
}

}  // namespace
}  // namespace ie::sn
