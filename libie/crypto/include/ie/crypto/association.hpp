// The association protocol: how two InterEdge nodes (host-SN, SN-SN, host-host) set up and
// keep hop keys. A Noise handshake (IK when the initiator knows the responder's static key,
// XX for first contact) with WireGuard-style MAC1/cookie protection gives both sides
// transport keys; those protect a control channel (datagram type 4) over which each side,
// as the RECEIVER of PSP traffic, hands the other an SPI and its key (KEY_OFFER / KEY_ACK).
// Sessions re-handshake on time and packet count; new SPIs are offered on the new session and
// old receive SPIs stay valid for an overlap period after the sender switched, so nothing in
// flight is lost. Keepalives detect dead peers.
//
// Sans-IO: a Node never touches sockets or clocks. The caller feeds it datagrams and the time
// and drains datagrams to send and events for the datapath. One Node per local static key,
// single-threaded (the node's control-plane thread). Full description: docs/ilp.md.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "ie/crypto/cookie.hpp"
#include "ie/crypto/noise.hpp"
#include "ie/crypto/psp.hpp"
#include "ie/crypto/psp_keyring.hpp"
#include "ie/util/bytes.hpp"
#include "ie/util/counter.hpp"
#include "ie/wire/drop_reason.hpp"

namespace ie::crypto::assoc {

using Duration = std::chrono::steady_clock::duration;
using PeerId = std::uint32_t;

// An opaque transport address (e.g. the bytes of a sockaddr). Cookies bind to it; outgoing
// datagrams are addressed with it.
struct Addr {
  std::array<std::uint8_t, 32> bytes{};
  std::uint8_t len = 0;

  static Addr from(ConstByteSpan b);
  ConstByteSpan span() const { return ConstByteSpan(bytes.data(), len); }
  bool operator==(const Addr& o) const { return len == o.len && bytes == o.bytes; }
};

// Which peers a Node keeps alive while nothing else is sent (docs/ilp.md "Timers").
//   always:     every peer: a PROBE when nothing was sent for `keepalive`, or when something
//               sent that wants an answer (data, ...) got nothing back for `keepalive`; dead
//               when nothing was received for `dead_after` (hosts that want to notice a dead
//               SN at once; SN-SN peering; end-to-end sessions).
//   kept_peers: only the peers added with keep_connected (an SN: its SN peers). The others
//               (an SN's hosts) are answered, not kept alive: see `never`.
//   never:      no peer (a host that finds out whether its SN is alive when it has something
//               to send, as WireGuard does; an idle pipe then costs nothing between re-keys).
// A peer not kept alive answers a PROBE at once (PROBE_ACK, echoing its id: the prober's
// RTT, Node::rtt); sends a KEEPALIVE `keepalive` after it
// received data or a message that wants an answer (KEY_OFFER, SERVICE_REQUEST, PROBE) if it
// sent nothing since (WireGuard's passive keepalive); and is dead when something it sent that
// wants an answer (data, a handshake, those items) got nothing back for `dead_after`, or,
// if the peer itself sends PROBEs, when it was silent for `dead_after`.
enum class IdleKeepalive : std::uint8_t { always, kept_peers, never };

struct Timers {
  // The session's initiator re-keys at a random point (drawn per session) in
  // [rekey_after_time - rekey_jitter, rekey_after_time], so pipes that came up together (an SN
  // restart, a benchmark's bring-up) spread their re-keys out instead of re-keying together
  // forever. nullopt: rekey_after_time / 6. The responder re-keys only if the initiator has
  // not: after rekey_after_time + 3 * retry_max if it keeps the peer connected (SN-SN),
  // otherwise (an SN's hosts) after rekey_after_time + max(3 * retry_max, rekey_after_time),
  // so it never competes with a host's own re-key retries.
  Duration rekey_after_time = std::chrono::seconds(120);  // SN-SN peering uses 180 s
  std::optional<Duration> rekey_jitter;
  std::uint64_t rekey_after_messages = std::uint64_t{1} << 48;
  Duration keepalive = std::chrono::seconds(10);   // send one if nothing sent for this long
  Duration dead_after = std::chrono::seconds(35);  // nothing received for this long: dead
  IdleKeepalive idle_keepalive = IdleKeepalive::always;
  Duration retry_initial = std::chrono::seconds(1);  // handshake / KEY_OFFER retransmission
  // The first retransmission of a re-key handshake (WireGuard's REKEY_TIMEOUT): the current
  // session still works, and retrying sooner than a busy responder's queue drains only makes
  // it answer initiations already abandoned (in an SN's re-key wave, none completed).
  Duration rekey_retry = std::chrono::seconds(5);
  Duration retry_max = std::chrono::seconds(8);
  Duration sa_overlap = std::chrono::seconds(10);        // old receive SPI kept after the switch
  Duration master_rotation = std::chrono::seconds(240);  // RxKeyring master key rotation
};

struct Config {
  noise::KeyPair static_key;
  psp::Version psp_version = psp::Version::aes_gcm_256;
  Timers timers;
  // Accept XX first-contact handshakes from unknown peers (SNs: yes; hosts: no).
  bool accept_first_contact = false;
  // Accept IK handshakes from static keys that were never add_peer()ed (SNs serving hosts).
  bool accept_unknown_ik = false;
  // At most this many peers learned from incoming handshakes (accept_unknown_ik or first
  // contact). At the cap, a learned peer without any session is forgotten to make room;
  // if every one is active, the new handshake is dropped (rate_limited).
  std::size_t max_learned_peers = 100000;
  // Responder handshakes (the DH work of an incoming initiation) per second; 0: no limit.
  // Initiations over the budget are dropped before any DH (rate_limited) and the initiator
  // retries with backoff, so a re-key wave cannot take the CPU that keepalives and KEY_ACKs
  // need (an SN would then lose them and declare healthy pipes dead). Bursts of a quarter
  // second's budget pass at once.
  std::uint32_t max_handshakes_per_second = 0;
  // Answer echoes (docs/ilp.md "Echo": a round trip measured without a session, which an
  // SN's would-be hosts use to rank it before associating) from anyone whose echo carries a
  // valid mac1 for our static key. SNs: yes; hosts and end-to-end sessions: no.
  bool answer_echoes = false;
  // Wall clock in nanoseconds since the epoch, for handshake timestamps (must survive
  // restarts, so not the steady clock). Tests inject one.
  std::function<std::uint64_t()> wall_clock_ns;
};

enum class EventType {
  established,      // a session is up (peer, remote_static, first_contact)
  tx_sa_install,    // send to this peer with (spi, key) from now on
  rx_sa_install,    // accept PSP packets on spi (with key) from this peer
  rx_sa_retire,     // stop accepting spi
  service_message,  // a SERVICE_REQUEST/RESPONSE arrived (id, data)
  dead,             // nothing heard for dead_after; the session was torn down
  closed,           // the peer sent CLOSE
};

struct Event {
  EventType type{};
  PeerId peer = 0;
  std::uint32_t spi = 0;             // *_sa_* events
  std::optional<psp::Key> key;       // tx_sa_install, rx_sa_install
  noise::PublicKey remote_static{};  // established
  bool first_contact = false;        // established via XX: pin remote_static
  bool request = false;              // service_message: request (true) or response
  std::uint32_t id = 0;              // service_message
  Bytes data;                        // service_message
};

struct Datagram {
  Addr to;
  Bytes bytes;
};

using DropCounters = CounterArray<wire::DropReason, wire::kDropReasonCount>;

class Node {
 public:
  Node(Config cfg, psp::RxKeyring& ring);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // A peer we know by static key (IK). If connect is set we initiate and keep the session up.
  PeerId add_peer(const noise::PublicKey& remote_static, const Addr& addr, bool connect, Time now);
  // First contact with a peer whose key we do not know yet (XX); we initiate.
  PeerId add_first_contact(const Addr& addr, Time now);

  void on_datagram(ConstByteSpan d, const Addr& from, Time now);
  // Runs what is due: only the peers whose scheduled time has come are visited (an SN holds
  // 100,000 peers), in PeerId order.
  void on_timer(Time now);
  // The earliest time on_timer must be called (or nullopt if nothing is pending); O(1). It
  // may be earlier than anything is actually due (on_timer then does nothing), never later.
  std::optional<Time> next_deadline() const;

  // Responder under load: demand cookies before any DH.
  void set_under_load(bool on) { under_load_ = on; }

  // The datapath reports traffic so keepalives, dead-peer detection and message-count rekey
  // work. rx: an authentic packet from the peer arrived; tx: n packets were sent to it.
  void note_data_rx(PeerId peer, Time now);
  void note_data_tx(PeerId peer, std::uint64_t n, Time now);

  // Sends an out-of-band service request/response over the control channel. False if the
  // peer has no session.
  bool send_service_message(PeerId peer, bool request, std::uint32_t id, ConstByteSpan data,
                            Time now);
  // Tells the peer we are going away and forgets the session.
  void close(PeerId peer, Time now);

  std::vector<Datagram> take_datagrams();
  std::vector<Event> take_events();

  bool is_established(PeerId peer) const;
  std::optional<PeerId> peer_by_static(const noise::PublicKey& pub) const;
  const DropCounters& drops() const { return drops_; }
  // Number of responder handshake states created (each costs DH operations); tests use it
  // to prove that cookies stop work before any DH.
  std::uint64_t responder_handshakes_started() const { return responder_handshakes_; }
  // Handshakes (either role) that took the static-static DH kept from an earlier one with the
  // same peer instead of computing it (Peer::static_dh).
  std::uint64_t static_dh_reused() const { return static_dh_reused_; }
  // PROBEs answered by a peer this Node does not keep alive (Timers::idle_keepalive).
  std::uint64_t probes_answered() const { return probes_answered_; }
  // Simultaneous initiation: authenticated initiations from a peer set aside because ours to
  // it was in flight and our static key is the lower one (we keep the initiator role; the
  // peer answers ours). Not a drop: counted here so that it is not silent.
  std::uint64_t crossed_initiations_kept() const { return crossed_initiations_kept_; }
  // PROBEs this Node sent (its timers' and probe()'s).
  std::uint64_t probes_sent() const { return probes_sent_; }
  // Sends a measuring PROBE to the peer now (an operator's ping, an RTT survey, a direct
  // path's distance); its answer updates rtt(). Every peer answers it, also one that keeps
  // us alive itself (whose keepalive PROBEs we do not answer, nor it ours); a peer built
  // before that rule answers only if it does not keep us alive. False if no session.
  bool probe(PeerId peer, Time now);
  // Sends a measuring PROBE padded (a PAD item) so that its datagram is exactly
  // datagram_len bytes (docs/ilp.md "Padded PROBEs"): whether the peer answers tells whether
  // a datagram that size gets there (path MTU probing, RFC 8899). The answer is small and
  // does not update rtt(); neither the PROBE nor its loss counts for liveness. Returns its id
  // for probe_answered(), 0 if there is no session or datagram_len is outside
  // [kMinPaddedProbe, wire::kMaxControlPlaneDatagram]. The peer's last kMaxPaddedProbes
  // are remembered.
  std::uint32_t probe_padded(PeerId peer, std::size_t datagram_len, Time now);
  bool probe_answered(PeerId peer, std::uint32_t id) const;
  static constexpr std::size_t kMinPaddedProbe = wire::kControlHeaderLen + 7 + 3 + 16;
  static constexpr std::size_t kMaxPaddedProbes = 16;
  std::uint64_t padded_probes_sent() const { return padded_probes_sent_; }
  // The round trip of the peer's last answered PROBE (nullopt before any).
  std::optional<Duration> rtt(PeerId peer) const;
  // How many of the peer's answers updated rtt() (a new one: a new round trip).
  std::uint64_t rtt_samples(PeerId peer) const;
  // When the last authentic message (control or data) from the peer arrived (nullopt before
  // any session).
  std::optional<Time> last_received(PeerId peer) const;
  // Measures the round trip to a node without a session with it (ied's RTT survey of SN
  // candidates): an echo to `to`, carrying a mac1 for `responder`'s static key, is queued
  // (take_datagrams); a node that answers echoes sends its 16-byte nonce back. Returns the
  // echo's id (never 0) for echo_rtt(). At most kMaxEchoes are remembered: a new one beyond
  // that forgets the oldest.
  static constexpr std::size_t kMaxEchoes = 64;
  std::uint64_t send_echo(const noise::PublicKey& responder, const Addr& to, Time now);
  // The round trip of an answered echo; nullopt if unanswered so far, or forgotten.
  std::optional<Duration> echo_rtt(std::uint64_t id) const;
  void forget_echo(std::uint64_t id);
  // Echoes this Node answered (Config::answer_echoes).
  std::uint64_t echoes_answered() const { return echoes_answered_; }
  // The responder handshake budget (Config::max_handshakes_per_second), changeable while
  // running (an SN's configuration reload); a new budget starts with a full bucket.
  std::uint32_t max_handshakes_per_second() const { return cfg_.max_handshakes_per_second; }
  void set_max_handshakes_per_second(std::uint32_t rate) {
    cfg_.max_handshakes_per_second = rate;
    hs_bucket_started_ = false;
  }
  std::size_t peer_count() const { return peers_.size(); }
  // Peers on_timer has visited so far (tests: it must not visit peers that are not due).
  std::uint64_t timer_visits_for_test() const { return timer_visits_; }

 private:
  struct Session;
  struct Pending;
  struct Peer;
  struct XxPending;

  Peer* find_peer(PeerId id);
  const Peer* find_peer(PeerId id) const;
  Peer& new_peer(const Addr& addr);
  // A peer for a static key first seen in an incoming handshake; nullptr at the cap.
  Peer* new_learned_peer(const Addr& addr, const noise::PublicKey& remote_static);
  std::uint32_t new_index();
  // Sets a peer's static key and keeps by_static_ in step.
  void set_remote_static(Peer& p, const noise::PublicKey& pub);

  void start_handshake(Peer& p, Time now);
  void on_initiation(ConstByteSpan d, const Addr& from, Time now);
  void on_response(ConstByteSpan d, const Addr& from, Time now);
  void on_cookie_reply(ConstByteSpan d, Time now);
  void on_final(ConstByteSpan d, const Addr& from, Time now);
  void on_echo(ConstByteSpan d, const Addr& from);
  void on_echo_reply(ConstByteSpan d, const Addr& from, Time now);
  void on_control(ConstByteSpan d, const Addr& from, Time now);

  void session_up(Peer& p, std::unique_ptr<Session> s, Time now);
  void promote(Peer& p, std::unique_ptr<Session> s, Time now);
  void offer_rx_sa(Peer& p, Time now);
  // wants_answer: the items include one the peer answers (KEY_OFFER, SERVICE_REQUEST, PROBE).
  // sent: counts as something sent to the peer (its keepalive timers); a padded PROBE does not
  // (it may be lost in a black hole while the peer is alive).
  void send_control(Peer& p, Session& s, ConstByteSpan items, Time now, bool wants_answer,
                    bool counts_as_sent = true);
  // keepalive: a PROBE that a peer keeping us alive itself does not answer; measure: one
  // every peer answers (Node::probe).
  enum class Probe : std::uint8_t { none, keepalive, measure };
  // The next PROBE id (never 0); answer_always sets kProbeAnswerAlways (a measuring PROBE).
  std::uint32_t new_probe_id(bool answer_always);
  void send_pending_control(Peer& p, Time now, Probe probe = Probe::none);
  // Liveness bookkeeping of every datagram sent to / authenticated from a peer.
  bool keeps_alive(const Peer& p) const;
  void sent(Peer& p, Time now, bool wants_answer);
  void received(Peer& p, Time now, bool wants_answer);
  void peer_dead(Peer& p, Time now);
  // The timer schedule. A peer's entry may be earlier than its true deadline (on_timer then
  // recomputes and re-queues it), never later: every change that can make a deadline earlier
  // calls schedule(). Changes that only make it later (traffic) need not.
  std::optional<Time> peer_deadline(const Peer& p) const;
  void schedule(Peer& p);
  void schedule_at(Peer& p, Time at);
  void peer_timers(Peer& p, Time now);  // the per-peer part of on_timer
  void emit(Event e) { events_.push_back(std::move(e)); }
  void drop(wire::DropReason r) { drops_.add(r); }

  Config cfg_;
  psp::RxKeyring& ring_;
  cookie::Checker checker_;
  // Hashed, not ordered: every control message looks up its receiver index and then its peer,
  // and a tree walk of 100,000+ random keys per message was most of an SN's keepalive cost.
  std::unordered_map<PeerId, std::unique_ptr<Peer>> peers_;
  // Remote static key -> peer. Hashed (a tree of 100,000 keys cost an SN 4 % of its CPU in
  // memcmp on every initiation) with SipHash under a key of this Node's own: an initiation
  // names any static key it likes, and an unkeyed hash would let it pick colliding ones.
  struct StaticKeyHash {
    StaticKeyHash();
    std::size_t operator()(const noise::PublicKey& k) const noexcept;
    std::array<std::uint8_t, 16> key;
  };
  std::unordered_map<noise::PublicKey, PeerId, StaticKeyHash> by_static_;
  std::unordered_map<std::uint32_t, PeerId> index_to_peer_;  // local session/handshake indices
  std::map<std::uint32_t, std::unique_ptr<XxPending>> xx_pending_;  // XX responder, awaiting msg 3
  std::multimap<Time, std::uint32_t> xx_expiry_;                    // xx_pending_ by expiry time
  // A min-heap (std::push_heap with greater) of (time, peer, generation); an entry whose
  // generation is not its peer's current one (or whose peer is gone) is stale and skipped.
  struct SchedEntry {
    Time at;
    PeerId peer;
    std::uint32_t gen;
    bool operator>(const SchedEntry& o) const { return at > o.at; }
  };
  std::vector<SchedEntry> sched_;
  std::vector<PeerId> due_;  // on_timer's scratch
  std::uint64_t timer_visits_ = 0;
  PeerId next_peer_id_ = 1;
  bool under_load_ = false;
  Time next_rotation_{};
  bool rotation_scheduled_ = false;
  std::uint64_t responder_handshakes_ = 0;
  std::uint64_t static_dh_reused_ = 0;
  std::uint64_t probes_answered_ = 0;
  std::uint64_t echoes_answered_ = 0;
  // Echoes sent (send_echo), oldest first.
  struct EchoOut {
    std::uint64_t id = 0;
    std::array<std::uint8_t, 16> nonce{};
    Addr to;
    Time sent{};
    std::optional<Duration> rtt;
  };
  std::vector<EchoOut> echoes_;
  std::uint64_t next_echo_id_ = 1;
  std::uint64_t crossed_initiations_kept_ = 0;
  std::uint64_t probes_sent_ = 0;
  std::uint64_t padded_probes_sent_ = 0;
  std::uint32_t next_probe_id_ = 1;
  std::size_t learned_peers_ = 0;
  // The responder handshake budget (Config::max_handshakes_per_second): a token bucket.
  bool handshake_budget(Time now);
  double hs_tokens_ = 0;
  Time hs_refilled_{};
  bool hs_bucket_started_ = false;
  std::vector<Datagram> out_;
  std::vector<Event> events_;
  DropCounters drops_;
};

}  // namespace ie::crypto::assoc
