// PacketList: a batch of packets in one reusable buffer, each with optional headroom and
// tailroom so the next stage can add its headers and trailer in place (the daemon seals each
// end-to-end packet into hop ILP towards its SN: 16 + 12 bytes in front, a 16-byte tag behind).
// clear() keeps the memory, so once the buffers have grown to a batch's size nothing is
// allocated per packet.
//
// Producer: reserve(max) -> write into the returned span -> commit(len) (or drop the
// reservation by not committing: the next reserve reuses it). Consumer: size(), operator[]
// for the packet, with_room(i) for the packet with its headroom and tailroom around it.
// Spans stay valid until the next reserve() or clear().
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ie/util/bytes.hpp"

namespace ie::ied {

class PacketList {
 public:
  explicit PacketList(std::size_t headroom = 0, std::size_t tailroom = 0)
      : headroom_(headroom), tailroom_(tailroom) {}

  std::size_t size() const { return slots_.size(); }
  bool empty() const { return slots_.empty(); }
  ConstByteSpan operator[](std::size_t i) const {
    return ConstByteSpan(buf_.data() + slots_[i].off, slots_[i].len);
  }
  // The packet, writable (e.g. to modify it in place).
  ByteSpan mutable_at(std::size_t i) {
    return ByteSpan(buf_.data() + slots_[i].off, slots_[i].len);
  }
  // headroom bytes, the packet, tailroom bytes.
  ByteSpan with_room(std::size_t i) {
    return ByteSpan(buf_.data() + slots_[i].off - headroom_, headroom_ + slots_[i].len + tailroom_);
  }
  std::size_t headroom() const { return headroom_; }
  std::size_t tailroom() const { return tailroom_; }

  void clear() {
    slots_.clear();
    used_ = 0;
  }

  // Room for one packet of at most max_len bytes (grows the buffer if needed).
  ByteSpan reserve(std::size_t max_len);
  // Appends the reserved packet with its first len bytes (len <= the reserved max_len). tag:
  // the caller's note about the packet (ied: the socket mark of the flow it belongs to).
  void commit(std::size_t len, std::uint32_t tag = 0);
  // Appends a copy of p.
  void push(ConstByteSpan p, std::uint32_t tag = 0);
  std::uint32_t tag(std::size_t i) const { return slots_[i].tag; }

 private:
  struct Slot {
    std::size_t off;
    std::size_t len;
    std::uint32_t tag;
  };
  std::size_t headroom_;
  std::size_t tailroom_;
  std::vector<std::uint8_t> buf_;
  std::vector<Slot> slots_;
  std::size_t used_ = 0;      // bytes of buf_ taken by committed packets (with their room)
  std::size_t reserved_ = 0;  // max_len of the open reservation
};

}  // namespace ie::ied
