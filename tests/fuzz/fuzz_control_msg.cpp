// Fuzz target: the inner control items (the plaintext of a type-4 datagram). If
// validate_control_items accepts, the iterator must yield items whose views lie inside the
// input, KEY_OFFER keys must match their version's length, and re-writing every yielded item
// must succeed; the iterator must terminate on any input, valid or not.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ie/wire/handshake_msg.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > ie::wire::kMaxControlPlaneDatagram) return 0;
  const ie::ConstByteSpan plain(data, size);
  const bool valid = ie::wire::validate_control_items(plain) == ie::wire::DropReason::none;
  static std::uint8_t out[ie::wire::kMaxControlPlaneDatagram];
  ie::wire::ControlItemWriter w(ie::ByteSpan(out, sizeof out));
  ie::wire::ControlItemIterator it(plain);
  ie::wire::ControlItem item;
  std::size_t steps = 0;
  while (it.next(&item)) {
    if (++steps > size / 3 + 1) std::abort();  // each item is at least 3 bytes
    if (!item.data.empty() &&
        (item.data.data() < data || item.data.data() + item.data.size() > data + size)) {
      std::abort();
    }
    if (valid && item.type == ie::wire::ControlItemType::key_offer &&
        item.data.size() != (item.version == 0 ? 16u : 32u)) {
      std::abort();
    }
    if (valid && !w.add(item)) std::abort();  // never longer than the input
  }
  if (valid && w.size() > size) std::abort();
  return 0;
}
