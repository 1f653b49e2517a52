// Internet checksum (ie/ied/checksum.hpp).
#include "ie/ied/checksum.hpp"

namespace ie::ied {

std::uint32_t checksum_add(ConstByteSpan data, std::uint32_t initial) {
  std::uint64_t sum = initial;
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2)
    sum += load_be16(data.data() + i);
  if (i < data.size()) sum += std::uint32_t{data[i]} << 8;
  while (sum >> 32)
    sum = (sum & 0xffffffffu) + (sum >> 32);
  return static_cast<std::uint32_t>(sum);
}

std::uint16_t checksum_finish(std::uint32_t sum) {
  while (sum >> 16)
    sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffffu);
}

std::uint32_t ipv6_pseudo_sum(ConstByteSpan src16, ConstByteSpan dst16, std::uint32_t length,
                              std::uint8_t next_header) {
  std::uint32_t sum = checksum_add(src16);
  sum = checksum_add(dst16, sum);
  std::uint8_t tail[8];
  store_be32(tail, length);
  tail[4] = tail[5] = tail[6] = 0;
  tail[7] = next_header;
  return checksum_add(ConstByteSpan(tail, sizeof tail), sum);
}

}  // namespace ie::ied
