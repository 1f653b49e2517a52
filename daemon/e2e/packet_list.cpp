// PacketList (packet_list.hpp): reservations in one growing buffer.
#include "ie/ied/packet_list.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace ie::ied {

ByteSpan PacketList::reserve(std::size_t max_len) {
  const std::size_t need = used_ + headroom_ + max_len + tailroom_;
  // Grows geometrically so a batch settles after a few packets; offsets (not pointers) are
  // kept, so growing does not invalidate committed packets.
  if (buf_.size() < need) buf_.resize(std::max(need, buf_.size() * 2));
  reserved_ = max_len;
  return ByteSpan(buf_.data() + used_ + headroom_, max_len);
}

void PacketList::commit(std::size_t len, std::uint32_t tag) {
  assert(len <= reserved_);
  slots_.push_back(Slot{used_ + headroom_, len, tag});
  used_ += headroom_ + len + tailroom_;
  reserved_ = 0;
}

void PacketList::push(ConstByteSpan p, std::uint32_t tag) {
  const ByteSpan room = reserve(p.size());
  if (!p.empty()) std::memcpy(room.data(), p.data(), p.size());
  commit(p.size(), tag);
}

}  // namespace ie::ied
