// PacketList: headroom/tailroom, growth that keeps committed packets, reuse after clear().
#include "ie/ied/packet_list.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace ie::ied {
namespace {

TEST(PacketList, KeepsPacketsWithRoomAcrossGrowth) {
  PacketList l(28, 16);
  for (std::uint8_t i = 0; i < 200; ++i) {
    const ByteSpan r = l.reserve(1000);
    ASSERT_EQ(r.size(), 1000u);
    std::memset(r.data(), i, 1000);
    l.commit(i + 1);  // only the first i + 1 bytes are the packet
  }
  ASSERT_EQ(l.size(), 200u);
  for (std::size_t i = 0; i < l.size(); ++i) {
    ASSERT_EQ(l[i].size(), i + 1);
    for (auto b : l[i])
      ASSERT_EQ(b, i);
    const ByteSpan w = l.with_room(i);
    EXPECT_EQ(w.size(), 28 + (i + 1) + 16);
    EXPECT_EQ(w.data() + 28, l[i].data());
  }
  // Rooms never overlap another packet: writing every room leaves the packets intact.
  for (std::size_t i = 0; i < l.size(); ++i) {
    const ByteSpan w = l.with_room(i);
    std::memset(w.data(), 0xee, 28);
    std::memset(w.data() + 28 + l[i].size(), 0xee, 16);
  }
  for (std::size_t i = 0; i < l.size(); ++i)
    for (auto b : l[i])
      ASSERT_EQ(b, i);
}

TEST(PacketList, AnUncommittedReservationIsReusedAndClearKeepsMemory) {
  PacketList l;
  const std::uint8_t a[] = {1, 2, 3};
  l.push(a);
  ByteSpan r = l.reserve(10);
  r[0] = 9;  // abandoned
  const std::uint8_t b[] = {4, 5};
  l.push(b);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[1][0], 4);
  const std::uint8_t* before = l[0].data();
  l.clear();
  EXPECT_TRUE(l.empty());
  l.push(a);
  EXPECT_EQ(l[0].data(), before);  // no new allocation
  l.push(ConstByteSpan());
  EXPECT_EQ(l[1].size(), 0u);
}

}  // namespace
}  // namespace ie::ied
