// TokenBucket, check_path_mtu and PathMtuCache (ie/ied/path_mtu.hpp).
#include "ie/ied/path_mtu.hpp"

#include <algorithm>

#include "ie/ied/flow_table.hpp"
#include "ie/ied/icmp_ptb.hpp"
#include "ie/io/udp.hpp"
#include "ie/wire/ilp.hpp"
#include "ie/wire/psp.hpp"

namespace ie::ied {

bool TokenBucket::take(Time now) {
  if (last_) {
    const double dt = std::chrono::duration<double>(now - *last_).count();
    if (dt > 0) tokens_ = std::min(burst_, tokens_ + dt * rate_);
  }
  last_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

MtuAction check_path_mtu(ConstByteSpan pkt, std::size_t max_inner, TokenBucket& bucket,
                         TokenBucket::Time now, ByteSpan ptb_out, std::size_t* ptb_len) {
  *ptb_len = 0;
  if (pkt.size() <= max_inner) return MtuAction::send;
  const unsigned version = pkt[0] >> 4;
  // The MTU the PTB names; IPv6's minimum (RFC 8200 5) cannot be asked for below 1280, so a
  // packet of at most 1280 bytes is carried even when the path is smaller.
  const auto mtu = static_cast<std::uint32_t>(std::min<std::size_t>(max_inner, 0xffff));
  if (version == 6 && pkt.size() <= kMinMtuV6) return MtuAction::fragment_outside;
  if (version == 4 && pkt.size() >= 20 && (load_be16(pkt.data() + 6) & 0x4000) == 0)
    return MtuAction::fragment_outside;  // no DF: the sender allows fragmentation
  // build_ptb refuses what must not be answered (malformed, ICMP errors, non-first
  // fragments, ...); the bucket is consulted only for a PTB that would be sent. Its source:
  // the destination the packet was meant for (routed back into the TUN, so reverse-path
  // filtering accepts it).
  const auto dst = version == 6 && pkt.size() >= 40   ? IpAddr::from_bytes(pkt.subspan(24, 16))
                   : version == 4 && pkt.size() >= 20 ? IpAddr::from_bytes(pkt.subspan(16, 4))
                                                      : std::nullopt;
  if (!dst) return MtuAction::fragment_outside;
  const std::size_t len = build_ptb(pkt, mtu, *dst, ptb_out);
  if (len == 0) return MtuAction::fragment_outside;
  if (!bucket.take(now)) return MtuAction::rate_limited;
  *ptb_len = len;
  return MtuAction::ptb;
}

bool count_if_sent(FlowEntry* flow, std::size_t bytes, MtuAction action) {
  if (action == MtuAction::ptb) return false;
  if (flow != nullptr) {
    ++flow->packets_out;
    flow->bytes_out += bytes;
  }
  return true;
}

std::size_t ilp_datagram_overhead(bool outer_v6, std::size_t ilp_header_len) {
  return (outer_v6 ? 40u : 20u) + 8u + wire::kPspHeaderLen + ilp_header_len + wire::kPspTagLen;
}

PathMtuCache::Hop* PathMtuCache::get(const std::string& endpoint, Time now) {
  auto it = hops_.find(endpoint);
  if (it == hops_.end()) {
    socklen_t len = 0;
    const auto ep = io::parse_endpoint(endpoint, &len);
    if (!ep) return nullptr;
    const auto addr = IpAddr::from_sockaddr(reinterpret_cast<const sockaddr*>(&*ep), len);
    if (!addr) return nullptr;
    if (hops_.size() >= max_ && max_ > 0) {
      auto oldest = std::min_element(hops_.begin(), hops_.end(), [](const auto& a, const auto& b) {
        return a.second.checked < b.second.checked;
      });
      hops_.erase(oldest);
    }
    Hop h;
    h.addr = *addr;
    it = hops_.emplace(endpoint, h).first;
  } else if (now - it->second.checked < refresh_) {
    return it->second.mtu != 0 ? &it->second : nullptr;  // failed look-ups retried as late
  }
  Hop& h = it->second;
  h.checked = now;
  if (const auto m = lookup_(h.addr); m && *m > 0) {
    if (h.mtu != 0 && *m < h.mtu) ++h.drops;
    h.mtu = *m;
  }
  return h.mtu != 0 ? &h : nullptr;
}

}  // namespace ie::ied
