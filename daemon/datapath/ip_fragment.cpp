// fragment_ipv4 (ie/ied/ip_fragment.hpp).
#include "ie/ied/ip_fragment.hpp"

#include <algorithm>
#include <cstring>

#include "ie/ied/checksum.hpp"

namespace ie::ied {

namespace {
// The options of a non-first fragment: those whose type has the copied flag (RFC 791 3.1),
// padded with zeros (end of option list) to a multiple of 4 bytes. Malformed options end the
// copy (the first fragment carries them as they were).
std::size_t copied_options(ConstByteSpan opts, std::uint8_t* out) {
  std::size_t i = 0, n = 0;
  while (i < opts.size()) {
    const std::uint8_t type = opts[i];
    if (type == 0) break;  // end of option list
    if (type == 1) {       // no operation: one byte, not copied
      ++i;
      continue;
    }
    if (i + 1 >= opts.size() || opts[i + 1] < 2 || i + opts[i + 1] > opts.size()) break;
    const std::size_t len = opts[i + 1];
    if ((type & 0x80) != 0) {
      std::memcpy(out + n, opts.data() + i, len);
      n += len;
    }
    i += len;
  }
  while (n % 4 != 0)
    out[n++] = 0;
  return n;
}
}  // namespace

std::size_t fragment_ipv4(ConstByteSpan pkt, std::size_t max_len, std::vector<Bytes>& out) {
  if (pkt.size() < 20 || (pkt[0] >> 4) != 4) return 0;
  const std::size_t hlen = (pkt[0] & 0x0f) * 4u;
  const std::size_t total = load_be16(pkt.data() + 2);
  if (hlen < 20 || total < hlen || total > pkt.size()) return 0;
  const std::uint16_t flags_off = load_be16(pkt.data() + 6);
  if ((flags_off & 0x4000) != 0 || total <= max_len) return 0;  // DF, or it fits
  const bool last_mf = (flags_off & 0x2000) != 0;
  const std::size_t base_off = (flags_off & 0x1fff) * 8u;
  std::uint8_t later_opts[40];
  const std::size_t later_hlen = 20 + copied_options(pkt.subspan(20, hlen - 20), later_opts);
  // Payload bytes per fragment: a multiple of 8 that fits behind the (larger, first) header.
  if (max_len < hlen + 8) return 0;
  const ConstByteSpan payload = pkt.subspan(hlen, total - hlen);
  const std::size_t first_chunk = (max_len - hlen) / 8 * 8;
  const std::size_t later_chunk = (max_len - later_hlen) / 8 * 8;
  if (base_off + payload.size() > 0xffff) return 0;  // the offsets could not be expressed
  const std::size_t before = out.size();
  std::size_t done = 0;
  while (done < payload.size()) {
    const bool first = done == 0;
    const std::size_t h = first ? hlen : later_hlen;
    const std::size_t chunk = std::min(first ? first_chunk : later_chunk, payload.size() - done);
    const bool last = done + chunk == payload.size();
    Bytes f(h + chunk);
    std::memcpy(f.data(), pkt.data(), 20);
    if (first)
      std::memcpy(f.data() + 20, pkt.data() + 20, hlen - 20);
    else
      std::memcpy(f.data() + 20, later_opts, later_hlen - 20);
    f[0] = static_cast<std::uint8_t>(0x40 | (h / 4));
    store_be16(f.data() + 2, static_cast<std::uint16_t>(f.size()));
    const std::size_t off = (base_off + done) / 8;
    store_be16(f.data() + 6, static_cast<std::uint16_t>(((last ? last_mf : true) ? 0x2000 : 0) |
                                                        (flags_off & 0x8000) | off));
    store_be16(f.data() + 10, 0);
    store_be16(f.data() + 10, checksum_finish(checksum_add(ConstByteSpan(f.data(), h))));
    std::memcpy(f.data() + h, payload.data() + done, chunk);
    out.push_back(std::move(f));
    done += chunk;
  }
  return out.size() - before;
}

}  // namespace ie::ied
