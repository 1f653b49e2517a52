// SN discovery and peer records over DNS (docs/discovery.md), resolved asynchronously with
// c-ares on the daemon's io::Reactor.
//
//   discover_sns("example.net"):  SRV _interedge._udp.example.net -> targets, then per target
//     its TXT ("v=ie1 name=.. key=..") and its A/AAAA (from the SRV answer's additional
//     section when present, else queried) -> candidates in RFC 2782 order, each expiring at
//     the smallest TTL of the records it came from.
//   lookup_peer("10.2.0.2"):  TXT at 2.0.2.10.in-addr.arpa ("v=ie1 sn=.. key=..").
//
// Threading: single-threaded, on the reactor's thread (create, calls, destruction).
// Callbacks: always run from the reactor loop (posted), never inside discover_sns/lookup_peer,
// so a callback may start new lookups or destroy the resolver. Exactly one call per request
// while the resolver lives. Destroying the resolver with requests in flight cancels them: their
// callbacks are NEVER called (they are destroyed, releasing what they captured: at once for
// requests still waiting on DNS, at the reactor's next iteration for answers already posted),
// and every socket and timer the resolver registered with the reactor is removed.
// There is no cache: every call asks the DNS servers (c-ares 1.18 has no cache either); the
// caller keeps results until `expires`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ie/ied/rfc2782.hpp"
#include "ie/ied/sn_candidate.hpp"
#include "ie/io/reactor.hpp"
#include "ie/util/result.hpp"

namespace ie::ied {

struct ResolverOptions {
  // "ip:port" or "[ipv6]:port" (or a bare address, port 53); empty = /etc/resolv.conf.
  std::vector<std::string> servers;
  // Per try; c-ares 1.18 doubles it on each further round over the servers, so with one
  // server the worst case is timeout * (2^tries - 1).
  std::chrono::milliseconds timeout{2000};
  int tries = 2;
  // SRV targets followed per discovery (each costs up to three more queries).
  std::size_t max_targets = 16;
  // Ordering randomness; default system_rand_below. Tests inject a deterministic one.
  RandBelow rand_below;
};

// The SRV owner name under which a domain publishes its SNs.
std::string sn_srv_name(std::string_view domain);

class AresChannel;

class DnsResolver {
 public:
  using DiscoverDone = std::function<void(Result<std::vector<SnCandidate>>)>;
  using PeerDone = std::function<void(Result<PeerRecord>)>;

  static Result<std::unique_ptr<DnsResolver>> create(io::Reactor& reactor, ResolverOptions opts);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // Candidates in RFC 2782 order (per SRV record, its A addresses then its AAAA addresses).
  // Targets whose TXT or addresses are missing or invalid are left out (logged at warn);
  // when none is usable the error names the domain and every target's reason. Errors:
  // not_found (NXDOMAIN, no SRV, no usable SN), timeout, io (refused, server failure),
  // invalid_argument (bad domain), unsupported (SRV target "." = service not offered).
  void discover_sns(const std::string& domain, DiscoverDone done);

  // The peer record of an IPv4 or IPv6 address. Errors: invalid_argument (not an address),
  // not_found (no record, or no valid InterEdge record: the reasons are in the context),
  // protocol (more than one valid record), timeout, io.
  void lookup_peer(const std::string& address, PeerDone done);

  // Requests started and not yet answered.
  std::size_t in_flight() const { return discover_ops_.size() + peer_ops_.size(); }

 private:
  struct DiscoverOp;
  struct PeerOp;
  struct Target;

  DnsResolver(io::Reactor& reactor, ResolverOptions opts);
  void on_srv(std::uint64_t id, int status, ConstByteSpan answer);
  void on_target_txt(std::uint64_t id, std::size_t t, int status, ConstByteSpan answer);
  void on_target_addr(std::uint64_t id, std::size_t t, std::uint16_t type, int status,
                      ConstByteSpan answer);
  void on_peer_txt(std::uint64_t id, int status, ConstByteSpan answer);
  void maybe_finish_discover(std::uint64_t id);
  template <typename T, typename Done>
  void deliver(Done done, Result<T> result);

  io::Reactor& reactor_;
  ResolverOptions opts_;
  std::uint64_t next_id_ = 1;
  // Requests in flight by id; c-ares callbacks carry the id, never a pointer, so a request
  // that finished (or a resolver that is going away) is simply not found.
  std::unordered_map<std::uint64_t, std::unique_ptr<DiscoverOp>> discover_ops_;
  std::unordered_map<std::uint64_t, std::unique_ptr<PeerOp>> peer_ops_;
  // Posted deliveries check this, so none runs after the resolver is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // Declared last: destroyed first, so c-ares is gone before the requests it refers to.
  std::unique_ptr<AresChannel> channel_;
};

}  // namespace ie::ied
