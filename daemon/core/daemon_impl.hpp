// Daemon::Impl: the state every part of ied's core shares (daemon.cpp builds it; sn_set.cpp
// chooses SNs; ip_path.cpp moves packets; out_of_band.cpp keeps the out-of-band invocations;
// control_methods.cpp answers iectl). Private to daemon/core.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ie/ctl/protocol.hpp"
#include "ie/ctl/server.hpp"
#include "ie/ied/anycast_probe.hpp"
#include "ie/ied/config.hpp"
#include "ie/ied/daemon.hpp"
#include "ie/ied/dns_resolver.hpp"
#include "ie/ied/e2e.hpp"
#include "ie/ied/flow_table.hpp"
#include "ie/ied/iesp_policy.hpp"
#include "ie/ied/ip_addr.hpp"
#include "ie/ied/netlink.hpp"
#include "ie/ied/out_of_band.hpp"
#include "ie/ied/path_mtu.hpp"
#include "ie/ied/peer_records.hpp"
#include "ie/ied/sn_rank.hpp"
#include "ie/ied/state.hpp"
#include "ie/ied/tcp_offload.hpp"
#include "ie/io/reactor.hpp"
#include "ie/io/tun.hpp"
#include "ie/link/host_link.hpp"
#include "ie/util/counter.hpp"
#include "ie/wire/drop_reason.hpp"
#include "steering.hpp"

namespace ie::ied {

using Clock = std::chrono::steady_clock;

// Datapath counters shown by `iectl status`.
#define IED_COUNTERS(X)                                                     \
  X(tun_rx_packets, "packets read from the TUN")                            \
  X(tun_rx_bytes, "bytes read from the TUN")                                \
  X(tun_tx_packets, "packets written to the TUN")                           \
  X(tun_tx_bytes, "bytes written to the TUN")                               \
  X(sn_tx_packets, "ILP packets sent to the first-hop SN")                  \
  X(sn_rx_packets, "ILP packets received from SNs")                         \
  X(ptb_sent, "ICMP packet-too-big messages written to the TUN")            \
  X(ptb_rate_limited, "too big for the path, PTB rate reached: sent on")    \
  X(pmtu_outer_fragments, "too big for the path, no PTB allowed: sent on")  \
  X(pmtu_probes, "padded PROBEs sent to test a next hop's path MTU")        \
  X(pmtu_black_holes, "path MTU black holes found (limits set by probing)") \
  X(pmtu_inner_fragmented, "no DF, over a black hole's limit: cut by ied")  \
  X(pmtu_over_black_hole, "over a black hole's limit, cannot be cut: sent") \
  X(peer_lookups, "peer records looked up in DNS")                          \
  X(failovers, "switches of the active SN")                                 \
  X(rtt_surveys, "SN candidates' RTT surveys started")                      \
  X(rtt_survey_failures, "RTT surveys that got no answer")                  \
  X(rtt_survey_fallbacks, "RTT surveys by association (echo not answered)") \
  X(direct_tx_packets, "packets sent to peer hosts directly (no SN)")       \
  X(direct_rx_packets, "packets received from peer hosts directly")         \
  X(tun_rx_super, "TCP super packets read from the TUN (segmented)")        \
  X(tun_tx_super, "TCP super packets written to the TUN (coalesced)")       \
  X(iesp_no_sn, "packets dropped: their flow's IESP has no usable SN")

enum class Ctr : std::size_t {
#define IE_X(name, text) name,
  IED_COUNTERS(IE_X)
#undef IE_X
      count
};

// One SN we know of (static configuration, DNS or an anycast probe), associated or not.
// Associations per IESP: its active SN and a warm standby (sn_set.cpp, rtt_survey.cpp).
constexpr std::size_t kAssociatedPerIesp = 2;

struct SnEntry {
  // A candidate named `name` at `endpoint` with `key`; rtt_id is derived from the three.
  static SnEntry make(std::string name, std::string endpoint, const crypto::noise::PublicKey& key);
  std::string name;
  std::string endpoint;
  crypto::noise::PublicKey key{};
  // What its RTT figures are filed under (rtt_survey.cpp): name, endpoint and key, so a
  // changed key or address starts afresh. Set by make(); computed once, not per lookup.
  std::string rtt_id;
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  DiscoverySource source = DiscoverySource::static_config;
  std::size_t order = 0;  // position among candidates (source order, then RFC 2782)
  std::optional<Clock::time_point> expires;
  std::optional<link::PeerId> peer;  // set while associated (active or standby)
  std::string error;                 // why it is not usable (key mismatch, ...)
  std::string anycast;               // source anycast: the anycast address it answered at
  std::string iesp = kDefaultIesp;   // its IESP: [[sn]] iesp, or discovery.iesp
  // Discovery replaced (anycast) or dropped (DNS) it while it was its IESP's active SN: it
  // keeps carrying traffic, is no longer a candidate, and goes once another SN of its IESP
  // is ready (make before break; sn_set.cpp prune_retiring).
  bool retiring = false;
};

// The place of source s in discovery.order (order.size() if it is not there; sn_set.cpp).
std::size_t source_rank(const IedConfig& cfg, DiscoverySource s);

// Per IESP (sn_set.cpp): the active SN among its candidates (its warm standby is the other
// associated one), and the SN `iectl sn use` pinned for it.
struct IespState {
  std::optional<std::size_t> active;  // index into Impl::sns
  std::string forced;
};

struct Daemon::Impl {
  DaemonOptions opts;
  IedConfig& cfg = opts.config;
  Clock::time_point started = Clock::now();

  std::optional<State> state;
  crypto::noise::KeyPair identity;
  std::unique_ptr<io::Reactor> reactor;
  std::unique_ptr<link::HostLink> link;
  std::unique_ptr<DnsResolver> dns;
  std::unique_ptr<E2e> e2e;
  std::optional<Netlink> nl;
  std::optional<io::TunDevice> tun;
  int tun_ifindex = 0;
  unsigned tun_mtu = 0;
  std::unique_ptr<ctl::Server> server;
  std::unique_ptr<FlowTable> flows;
  std::unique_ptr<SocketSteering> steering;  // null with [steering] enabled = false
  std::vector<IpAddr> addresses;
  std::vector<IpPrefix> prefixes;
  std::vector<std::pair<IpPrefix, PeerRoute>> static_peers;  // longest prefix first
  PeerRecords dns_peers;  // peer_dns records, dropped when their TTL runs out
  std::map<IpAddr, Clock::time_point> peer_lookups;  // in flight or failed recently
  std::set<IpAddr> peer_lookups_pending;             // in flight (start_peer_lookup)
  std::map<IpAddr, std::uint64_t> connection_ids;
  std::map<IpAddr, std::string> learned_sn;  // peer host -> the SN it named (source_sn)
  // Direct paths (ip_path.cpp): peer host -> its direct association (opened by us, or
  // learned when it sent to us directly); endpoints we found not on-link; keys bound to
  // addresses by direct traffic.
  std::map<IpAddr, link::PeerId> direct;
  // What a peer's endpoint allows: on_link (route without a gateway), far (used while closer
  // than the SN: direct_far), none (routed through ie0 itself, or the association failed).
  enum class DirectCheck : std::uint8_t { on_link, far, none };
  std::map<std::string, DirectCheck> direct_checked;  // endpoint ->
  std::map<IpAddr, crypto::noise::PublicKey> direct_keys;
  // Entries of `direct` made by the peer's own direct packets (we have no endpoint for it):
  // they follow its choice, so its data arriving through the SNs again removes them.
  std::set<IpAddr> direct_learned;
  // The endpoint each association direct_path() made was made for: when the peer's route
  // names another (a DNS record's ep= changed, a reload), it is replaced.
  std::map<IpAddr, std::string> direct_endpoint;
  void route_changed(const IpAddr& addr, const PeerRoute* route);  // ip_path.cpp
  std::map<IpAddr, bool>
      direct_was_up;  // for logging changes (tick)  // per peer host (ip_path.cpp)

  std::vector<SnEntry> sns;
  // Every IESP of the configuration (config_iesps) and any a candidate names; each runs its
  // own active + standby choice. `active` is the default IESP's active SN (what status,
  // out-of-band invocations and the TUN's MTU refer to), kept equal to
  // iesps[policy.default_iesp()].active by reconcile_sns().
  std::map<std::string, IespState> iesps;
  std::optional<std::size_t> active;  // index into sns
  IespPolicy policy;                  // [[policy]]: flow -> IESP
  // DNS discovery, one per IESP that has a domain (dns_discoveries(cfg); sn_set.cpp): its
  // lookup in flight, its next one (TTL expiry / retry), its last error.
  struct DnsDiscovery {
    std::string iesp;
    std::string domain;
    bool in_flight = false;
    std::optional<Clock::time_point> next;
    std::string error;
  };
  std::vector<DnsDiscovery> dns_discovery;
  // Every anycast address to probe, with its IESP (anycast_targets(cfg), fixed at start).
  std::vector<AnycastTarget> anycast_list;
  // Anycast discovery (sn_set.cpp): the prober (null without discovery.anycast), probes in
  // flight, when the last round started, the next periodic round, each address's last error.
  std::unique_ptr<AnycastProber> anycast;
  std::size_t anycast_in_flight = 0;
  std::optional<Clock::time_point> anycast_started;
  std::optional<Clock::time_point> anycast_next;
  std::map<std::string, std::string> anycast_errors;  // address -> error ("" answered)
  // RTT of candidates (rtt_survey.cpp), by rtt_id (name, endpoint and key, so a changed
  // endpoint or key is measured afresh): round trips from the association's PROBEs while
  // associated, else from surveys; the surveys in flight.
  struct RttRecord {
    // The smallest round trip of the current and the previous window (a queue or a busy CPU
    // only ever adds to a round trip, so the minimum is the distance; the windows let a path
    // that got longer show within two of them).
    std::optional<double> min_cur, min_prev;
    Clock::time_point window_start{};
    Clock::time_point at{};    // the last sample, or the survey that got none
    bool unreachable = false;  // the last survey got no answer
    std::optional<double> rtt_ms() const;
    void add(double ms, Clock::time_point now);
  };
  struct RttSurvey {
    std::string id;
    Clock::time_point started{};
    // Echoes (docs/ilp.md "Echo": no handshake, no state on the SN), one after the other.
    std::optional<std::uint64_t> echo;  // the one out
    Clock::time_point echo_sent{};
    unsigned echoes_sent = 0;
    // An SN that answered none of the first echoes (one older than echoes) is surveyed the
    // old way: a short association of its own, PROBEs through it.
    bool by_association = false;
    link::PeerId peer{};
    bool probing = false;        // a PROBE is out
    std::uint64_t answered = 0;  // the association's rtt_samples when it went
    unsigned samples = 0;
    std::optional<double> best;  // the smallest round trip so far
  };
  std::map<std::string, RttRecord> rtts;
  // link->events() when on_link_readable last reconciled (ip_path.cpp).
  std::uint64_t link_events_seen = ~std::uint64_t{0};
  std::vector<RttSurvey> surveys;
  // Direct associations with peers whose endpoint is not on one of our links (ip_path.cpp
  // direct_tick): PROBEd every kDirectProbeEvery; used only while measurably closer than
  // the peer's first-hop SN on our side (direct_is_closer).
  struct DirectFar {
    IpAddr addr;  // the peer host
    RttRecord rtt;
    std::uint64_t samples = 0;  // link->rtt_samples when last read
    // The SN path end to end: PROBEs over the end-to-end session with the peer (through
    // the SNs); kept after that session idles out (the figure of the last one).
    RttRecord sn_path;
    std::uint64_t e2e_samples = 0;  // e2e->rtt_samples when last read
    Clock::time_point next_probe{};
    bool closer = false;
  };
  std::map<link::PeerId, DirectFar> direct_far;

  // Out-of-band invocations (out_of_band.cpp): the set (as stored and handed to the link),
  // what the link's current generation added (an enable: undone if the active SN refuses
  // it), the generation whose refusal was handled, and the last refusal for service.list.
  struct OobRefusal {
    std::uint64_t generation = 0;
    std::string sn;
    std::vector<link::Invocation> removed;
    std::string error;
  };
  InvocationSet oob;
  std::vector<link::Invocation> oob_added;
  std::uint64_t oob_refusal_seen = 0;
  std::optional<OobRefusal> oob_last_refusal;

  CounterArray<Ctr, static_cast<std::size_t>(Ctr::count)> counters;
  CounterArray<wire::DropReason, wire::kDropReasonCount> drops;
  std::mt19937_64 rng{std::random_device{}()};
  // to_tun keeps room for the TUN's virtio-net header in front of every packet.
  E2eOutput eout{128, 32, io::kVnetHdrLen};
  // ip_path.cpp: the per-packet slots the datapath handles (plain reads go straight there;
  // frames of an offloading TUN are read into tun_frames first and segmented or copied into
  // them), and what one flush writes to the TUN.
  std::vector<std::uint8_t> tun_bufs;
  std::vector<std::uint8_t> tun_frames;
  TcpCoalescer tun_coalescer;
  // Path MTU per next hop (SN or direct peer endpoint) from the kernel's routes, and the
  // bucket that limits the PTBs ip_path.cpp writes into the TUN (path_mtu.hpp).
  std::optional<PathMtuCache> path_mtus;
  // Inner fragments made by check_hop_mtu during one send_tun_packets batch (cleared at its
  // start; the direct path's batch points into them until it is sent), and where the last
  // packet's begin.
  std::vector<Bytes> frags;
  std::size_t frag_begin = 0;
  TokenBucket ptb_bucket{kPtbPerSecond, kPtbBurst};
  std::vector<io::Packet> tun_writes;
  bool stopping = false;

  // daemon.cpp
  Result<void> setup();
  Result<void> add_prefix_route(const IpPrefix& p);
  void teardown();
  void tick();
  // sn_set.cpp
  void add_static_sns();
  // Starts every configured dynamic source (DNS, anycast; the lookup service's seam).
  void start_discovery();
  void discovery_tick(Clock::time_point now);  // re-discovery when due (tick)
  void start_dns_discovery(std::size_t i);     // dns_discovery[i]
  void on_dns_sns(std::size_t i, Result<std::vector<SnCandidate>> r);
  void start_anycast_discovery();
  void on_anycast(const AnycastTarget& target, Result<AnycastAnswer> r);
  // rtt_survey.cpp: finishes surveys, records the associated SNs' RTT, starts the surveys
  // that are due (each tick, before reconcile_sns).
  void rtt_tick(Clock::time_point now);
  void end_survey(std::size_t k);
  bool send_echo(RttSurvey& s, const SnEntry& e, Clock::time_point now);  // false: not sent
  void end_survey_of(const SnEntry& e);  // before associating with it for real
  std::vector<std::size_t> usable_of(const std::string& iesp) const;  // its candidates
  std::vector<std::size_t> rank_iesp(const std::string& iesp) const;  // usable, best first
  std::vector<RankInput> rank_inputs(const std::vector<std::size_t>& members) const;
  const RttRecord* rtt_of(const SnEntry& e) const;
  // Per IESP: associate with its best two usable SNs, choose its active one.
  void reconcile_sns();
  void reconcile_iesp(const std::string& iesp, IespState& st);
  // Tells each associated SN the host's role there: active for its IESP, else warm standby
  // (HostLink::set_standby; the SN then prefers a packet's dest_sn for this host).
  void set_roles();
  std::optional<link::PeerId> active_peer() const;
  // The active SN of an IESP (index into sns), if it has one.
  std::optional<std::size_t> iesp_active(const std::string& iesp) const;
  // The IESP of a flow to dst whose socket mark is mark (0: none), by the [[policy]] table.
  const std::string& flow_iesp(const IpAddr& dst, std::uint32_t mark) const;
  // The associations of each IESP's active SN, and finding them again after sns was rebuilt
  // (indices move).
  std::map<std::string, link::PeerId> save_actives() const;
  void restore_actives(const std::map<std::string, link::PeerId>& saved);
  // A candidate discovery is replacing or dropping: kept as retiring (into kept) while it is
  // an active SN in saved, else its association goes (make before break).
  void retire_or_remove(SnEntry&& o, const std::map<std::string, link::PeerId>& saved,
                        std::vector<SnEntry>& kept);
  // Removes the retiring candidates that are no longer an IESP's active SN.
  void prune_retiring();
  // Applies the configuration's IESPs and [[policy]] (start and reload).
  void set_iesps();
  Result<std::string> use_sn(const std::string& name);
  // Pins the key NAME was refused under (DNS or anycast) and applies the pin to every
  // candidate of that name. Nothing refused: nothing changes.
  Result<void> repin_sn(const std::string& name);
  // ip_path.cpp
  void on_tun_readable();
  void send_tun_packets(std::span<const ConstByteSpan> packets);  // steps 2-4 of a batch
  void write_tun();                                               // eout.to_tun to the TUN
  void on_link_readable();
  void flush_e2e_output();
  const PeerRoute* peer_route(const IpAddr& addr);
  // Starts the DNS lookup of addr's peer record unless one is in flight or failed within
  // the retry period. True while an answer is coming (ask again), false when none will.
  bool start_peer_lookup(const IpAddr& addr);
  // An authentic packet through the SNs from a peer host (delivered: it carried data): its
  // current SN (source_sn), and a learned direct path it no longer uses.
  void learn_from_sn_path(const link::InPacket& in, bool delivered);
  std::optional<link::PeerId> direct_path(const IpAddr& dst, const PeerRoute* route);
  void on_direct_packet(link::InPacket& in);
  bool direct_up(const IpAddr& addr) const;
  bool direct_usable(link::PeerId peer) const;  // can send; if far, measurably closer
  void direct_tick(Clock::time_point now);
  // The RTT the SN path to dst starts with: its IESP's active SN's (nullopt: unmeasured).
  // The SN path's round trip to a far direct peer: the end-to-end figure, never less than
  // the first-hop SN's (ip_path.cpp). *end_to_end: whether the end-to-end figure is it.
  std::optional<double> sn_path_rtt(const DirectFar& far, bool* end_to_end = nullptr) const;
  // The path MTU check of p towards the next hop at endpoint hop (the link's peer `peer`)
  // once overhead bytes are added (ILP datagram and, on the SN path, e2e). MtuAction::ptb: p
  // would not fit, a PTB went into eout.to_tun; drop p. MtuAction::fragmented: send
  // frags[frag_begin..] instead of p (an IPv4 packet without DF over a black hole's limit:
  // the kernel would send it whole with DF, so ied cuts it itself). Anything else: send p.
  // The hop's path MTU is the kernel's, or the black-hole limit pmtu_tick found if smaller.
  MtuAction check_hop_mtu(ConstByteSpan p, const std::string& hop, link::PeerId peer,
                          std::size_t ilp_header_len, std::size_t inner_overhead,
                          Clock::time_point now);
  // Black-hole detection on every next hop that carried big datagrams lately (plpmtud.hpp):
  // sends its padded PROBEs, takes their answers; counts and logs the limits found.
  void pmtu_tick(Clock::time_point now);
  // reload.cpp
  Result<ctl::Json> reload();
  void set_static_peers(const std::vector<StaticPeer>& peers);
  // out_of_band.cpp
  Result<void> load_invocations();  // from the state database into the link, at start
  Result<void> push_invocations(InvocationSet next, std::vector<link::Invocation> added);
  Result<ctl::Json> service_enable(const ctl::Json& params);
  Result<ctl::Json> service_disable(const ctl::Json& params);
  ctl::Json service_list_json() const;
  void check_oob_refusal();  // each tick
  // resolve.cpp
  Result<ctl::Json> peer_resolve(const ctl::Json& params);
  // control_methods.cpp
  ctl::Dispatcher dispatcher();
  ctl::Json status_json() const;
  ctl::Json sns_json() const;
  ctl::Json discovery_json() const;
};

}  // namespace ie::ied
