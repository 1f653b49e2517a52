// DNS-learned peer records (discovery.peer_dns, docs/discovery.md): peer host -> its
// first-hop SN and static key, as its reverse TXT record said, kept until the record's TTL
// runs out. An expired record is no longer routed by nor shown, and is dropped at the
// daemon's next tick; the next packet to that host looks it up again
// (Daemon::Impl::start_peer_lookup), as SN discovery re-resolves when a TTL runs out. Times
// are passed in, so tests run a fake clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "ie/crypto/noise.hpp"
#include "ie/ied/ip_addr.hpp"

namespace ie::ied {

// Where a peer host is served: its first-hop SN and its static key.
struct PeerRoute {
  using Clock = std::chrono::steady_clock;
  std::string sn;
  std::optional<crypto::noise::PublicKey> key;  // none: answer only (see StaticPeer)
  std::optional<Clock::time_point> expires;     // DNS records; nullopt: configuration
  std::uint64_t connection_id = 0;              // ours towards it (random, see ip_path.cpp)
  std::string endpoint;                         // its ied's UDP endpoint (direct path), or ""
};

class PeerRecords {
 public:
  using Clock = std::chrono::steady_clock;
  // At most this many records; a new one past it replaces the one expiring soonest.
  static constexpr std::size_t kMaxRecords = 4096;

  // The record for addr while it lives (now < its expiry), else nullptr. Does not erase:
  // callers hold pointers into records (the SN name a queued packet's dest_sn TLV points
  // at) until their batch is sent, so only expire() (the daemon's tick) and put() drop them.
  const PeerRoute* find(const IpAddr& addr, Clock::time_point now) const;
  // Stores a looked-up record (route.expires set, else it would never expire). Keeps the
  // connection id of the record it replaces. Not while pointers from find() are held.
  void put(const IpAddr& addr, PeerRoute route, Clock::time_point now);
  // Drops every expired record (the daemon's tick); returns how many.
  std::size_t expire(Clock::time_point now);
  std::size_t size() const { return records_.size(); }

 private:
  static bool expired(const PeerRoute& r, Clock::time_point now) {
    return r.expires && *r.expires <= now;
  }
  std::map<IpAddr, PeerRoute> records_;
};

}  // namespace ie::ied
