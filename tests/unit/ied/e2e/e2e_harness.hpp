// Test harness for the end-to-end layer: hosts (one E2e each, with its address and key) and
// an in-memory "SN path" that moves each host's to_net packets into the receive() of the
// host owning the outer destination address, as the SNs route them. The path can drop,
// duplicate, reorder or rewrite packets, and keeps a copy of everything it carried (what an
// SN sees). Time is simulated; the Noise timestamps follow it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ie/ied/e2e.hpp"
#include "ie/ied/ip_header.hpp"
#include "ie/wire/demux.hpp"

namespace ie::ied::test {

using namespace std::chrono_literals;

inline IpAddr addr(const char* text) {
  return *IpAddr::parse(text);
}

// An IPv4 or IPv6 UDP packet from src to dst whose payload is `payload` (checksums: IPv4
// header valid, UDP 0 / not checked by the e2e layer).
inline Bytes ip_udp(const IpAddr& src, const IpAddr& dst, ConstByteSpan payload) {
  const std::size_t hl = ip_header_len(src.is_v6());
  Bytes p(hl + 8 + payload.size());
  std::uint8_t* h = p.data();
  if (src.is_v4()) {
    h[0] = 0x45;
    store_be16(h + 2, static_cast<std::uint16_t>(p.size()));
    h[8] = 64;
    h[9] = 17;
    std::memcpy(h + 12, src.bytes().data(), 4);
    std::memcpy(h + 16, dst.bytes().data(), 4);
    store_be16(h + 10, ipv4_header_checksum(ConstByteSpan(h, 20)));
  } else {
    h[0] = 0x60;
    store_be16(h + 4, static_cast<std::uint16_t>(p.size() - 40));
    h[6] = 17;
    h[7] = 64;
    std::memcpy(h + 8, src.bytes().data(), 16);
    std::memcpy(h + 24, dst.bytes().data(), 16);
  }
  store_be16(h + hl, 40000);
  store_be16(h + hl + 2, 5001);
  store_be16(h + hl + 4, static_cast<std::uint16_t>(8 + payload.size()));
  if (!payload.empty()) std::memcpy(h + hl + 8, payload.data(), payload.size());
  return p;
}

// A numbered packet: payload = "seq NNNNNNNN " and filler, so order and identity are checked.
inline Bytes numbered(const IpAddr& src, const IpAddr& dst, std::uint32_t seq,
                      std::size_t len = 64) {
  Bytes payload(len, 0);
  const std::string tag = "seq " + std::to_string(seq) + " ";
  for (std::size_t i = 0; i < len; ++i)
    payload[i] = static_cast<std::uint8_t>(i < tag.size() ? tag[i] : 'a' + (i + seq) % 26);
  return ip_udp(src, dst, payload);
}

// Rewrites an outer IPv4/IPv6 source address (as a lying SN would) and fixes the checksum.
inline void rewrite_src(Bytes& p, const IpAddr& src) {
  if (src.is_v4()) {
    std::memcpy(p.data() + 12, src.bytes().data(), 4);
    store_be16(p.data() + 10, 0);
    store_be16(p.data() + 10, ipv4_header_checksum(ConstByteSpan(p.data(), 20)));
  } else {
    std::memcpy(p.data() + 8, src.bytes().data(), 16);
  }
}

inline bool is_data(ConstByteSpan outer) {
  IpView v;
  return parse_ip(outer, false, &v) == wire::DropReason::none &&
         wire::classify(v.payload) == wire::DatagramKind::psp;
}

struct Host {
  IpAddr ip;
  crypto::noise::KeyPair key;
  std::unique_ptr<E2e> e2e;
  E2eOutput out;
  std::vector<Bytes> tun;  // what reached this host's TUN, in order
};

class Net {
 public:
  // What to do with one packet on the path: how many copies to deliver (0 = drop). The
  // packet may be rewritten in place.
  using Filter = std::function<int(Bytes& packet, const Host& from)>;

  Net() { now_ = Time(std::chrono::hours(1000)); }

  crypto::assoc::Timers fast_timers() const {
    crypto::assoc::Timers t;
    t.rekey_after_time = 2s;
    t.keepalive = 1s;
    t.dead_after = 4s;
    t.retry_initial = 100ms;
    t.retry_max = 400ms;
    t.sa_overlap = 1s;
    t.master_rotation = 3s;
    return t;
  }

  Host& add(const char* ip, E2eOptions o = {}) {
    auto h = std::make_unique<Host>();
    h->ip = addr(ip);
    h->key = crypto::noise::KeyPair::generate();
    restart(*h, std::move(o));
    Host& ref = *h;
    hosts_.push_back(std::move(h));
    return ref;
  }

  // A fresh E2e for the host (a daemon restart), keeping its key.
  void restart(Host& h, E2eOptions o = {}) {
    o.key = h.key.clone();
    if (!custom_timers_) o.timers = fast_timers();
    if (custom_timers_) o.timers = timers;
    o.wall_clock_ns = [this] {
      return static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now_.time_since_epoch()).count());
    };
    auto e = E2e::create(std::move(o));
    ASSERT_TRUE(e.ok());
    h.e2e = std::move(*e);
    h.out.clear();
  }

  void send(Host& from, const Host& to, Bytes pkt) {
    from.e2e->send(from.ip, to.ip, to.key.pub, pkt, now_, from.out);
  }

  // Moves packets until nothing is in flight (bounded). Returns the packets carried.
  std::size_t pump() {
    std::size_t carried = 0;
    for (int round = 0; round < 64; ++round) {
      std::vector<std::pair<Bytes, Host*>> batch;
      for (auto& h : hosts_) {
        collect_tun(*h);
        for (std::size_t i = 0; i < h->out.to_net.size(); ++i) {
          const auto p = h->out.to_net[i];
          batch.emplace_back(Bytes(p.begin(), p.end()), h.get());
        }
        h->out.to_net.clear();
      }
      if (batch.empty()) return carried;
      if (reorder) std::reverse(batch.begin(), batch.end());
      for (auto& [p, from] : batch) {
        const int copies = filter ? filter(p, *from) : 1;
        seen.push_back(p);
        IpView v;
        if (parse_ip(p, false, &v) != wire::DropReason::none) continue;
        for (auto& h : hosts_) {
          if (accepts ? !accepts(*h, v.dst) : h->ip != v.dst) continue;
          for (int c = 0; c < copies; ++c) {
            h->e2e->receive(p, now_, h->out);
            ++carried;
          }
        }
      }
    }
    ADD_FAILURE() << "the path did not settle";
    return carried;
  }

  // Advances simulated time by d, running every host's timers when due and pumping.
  void advance(Duration d, Duration step = 10ms) {
    const Time end = now_ + d;
    for (int i = 0; i < 1'000'000 && now_ < end; ++i) {
      now_ = std::min(end, now_ + step);
      for (auto& h : hosts_) {
        if (auto dl = h->e2e->next_deadline(); dl && *dl <= now_) h->e2e->on_timer(now_, h->out);
      }
      pump();
    }
  }

  Time now() const { return now_; }
  // From now on hosts (added or restarted) use `timers` instead of fast_timers().
  void use_timers(const crypto::assoc::Timers& t) {
    timers = t;
    custom_timers_ = true;
  }
  crypto::assoc::Timers timers;

  Filter filter;
  bool reorder = false;
  // Which hosts get a packet for dst (default: the host with that address). Several hosts
  // may share an address; a lying SN may deliver one host's packets to another.
  std::function<bool(const Host& h, const IpAddr& dst)> accepts;
  std::vector<Bytes> seen;  // everything the path carried

 private:
  static void collect_tun(Host& h) {
    for (std::size_t i = 0; i < h.out.to_tun.size(); ++i) {
      const auto p = h.out.to_tun[i];
      h.tun.emplace_back(p.begin(), p.end());
    }
    h.out.to_tun.clear();
  }

  std::vector<std::unique_ptr<Host>> hosts_;
  Time now_;
  bool custom_timers_ = false;
};

}  // namespace ie::ied::test
