// FakeNetwork knobs io_test.cpp does not pin down: reordering loses nothing and does reorder,
// a seed reproduces the exact delivery sequence, and a datagram larger than the receive
// buffer is truncated like UDP.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "ie/io/fake.hpp"
#include "ie/io/udp.hpp"

namespace ie::io {
namespace {

// Sends 1..count as 4-byte datagrams from a to b and returns what b receives, in order.
std::vector<std::uint32_t> run(std::uint64_t seed, double drop, double dup, double reorder,
                               std::uint32_t count) {
  FakeNetwork net(seed);
  net.drop = drop;
  net.duplicate = dup;
  net.reorder = reorder;
  auto* a = net.add_port("10.0.0.1:1").value();
  auto* b = net.add_port("[fd00::2]:2").value();
  for (std::uint32_t i = 1; i <= count; ++i) {
    std::uint8_t m[4];
    std::memcpy(m, &i, 4);
    Datagram d;
    d.buf = ByteSpan(m);
    d.len = 4;
    d.peer = b->address();
    d.peer_len = b->address_len();
    EXPECT_EQ(a->send_batch(std::span(&d, 1)).value(), 1u);
  }
  std::vector<std::uint32_t> got;
  std::uint8_t bufs[16][4];
  Datagram in[16];
  for (int guard = 0; guard < 10000; ++guard) {
    for (int i = 0; i < 16; ++i)
      in[i].buf = ByteSpan(bufs[i]);
    const std::size_t n = b->recv_batch(in).value();
    if (n == 0) break;
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_EQ(in[i].len, 4u);
      EXPECT_EQ(endpoint_str(in[i].peer), "10.0.0.1:1");
      std::uint32_t v;
      std::memcpy(&v, bufs[i], 4);
      got.push_back(v);
    }
  }
  return got;
}

TEST(FakeNetwork, ReorderKeepsEverythingButChangesOrder) {
  const auto got = run(5, 0, 0, 0.3, 500);
  ASSERT_EQ(got.size(), 500u);
  std::vector<std::uint32_t> sorted = got;
  std::sort(sorted.begin(), sorted.end());
  for (std::uint32_t i = 0; i < 500; ++i)
    ASSERT_EQ(sorted[i], i + 1);            // each exactly once
  EXPECT_NE(got, sorted);                   // but not in send order
  EXPECT_EQ(run(5, 0, 0, 0, 500), sorted);  // no knobs: in order
}

TEST(FakeNetwork, SameSeedSameSequence) {
  const auto x = run(77, 0.2, 0.2, 0.2, 300);
  const auto y = run(77, 0.2, 0.2, 0.2, 300);
  const auto z = run(78, 0.2, 0.2, 0.2, 300);
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
}

TEST(FakeNetwork, LongDatagramIsTruncatedToTheBuffer) {
  FakeNetwork net;
  auto* a = net.add_port("10.0.0.1:1").value();
  auto* b = net.add_port("10.0.0.2:1").value();
  std::uint8_t m[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  Datagram d;
  d.buf = ByteSpan(m);
  d.len = 10;
  d.peer = b->address();
  d.peer_len = b->address_len();
  ASSERT_EQ(a->send_batch(std::span(&d, 1)).value(), 1u);
  std::uint8_t small[4] = {};
  Datagram in;
  in.buf = ByteSpan(small);
  ASSERT_EQ(b->recv_batch(std::span(&in, 1)).value(), 1u);
  EXPECT_EQ(in.len, 4u);
  EXPECT_EQ(small[3], 4);
}

}  // namespace
}  // namespace ie::io
