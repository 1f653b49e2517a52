// HostLink: a host's side of its associations, over one UDP socket: an association Node with
// the host's static key, the receive SAs (RxSaTable) and send SAs (TxSa) its events install,
// and host registration with each SN's `control` service (docs/sn.md: SERVICE_REQUEST data =
// service id 7 as u16 big-endian || {"op":"register","addrs":[...]}) and the host's
// out-of-band invocations with each SN (the same channel, {"op":"service.set",...}). Used by
// ied (its SN links), ie-testhost and the load tools.
//
// Two roles, possibly both at once:
//   - towards SNs (add_sn; several at once, e.g. an active one and a warm standby): Noise IK
//     to the SN's published key, kept up by the Node (add_peer(..., connect=true): after
//     dead_after of silence the session is torn down and re-initiated); after every new
//     association the addresses are registered again. Liveness is the Node's (Timers::
//     idle_keepalive `always`): it PROBEs an SN when it sent nothing for a keepalive period
//     or what it sent went unanswered that long, and the SN answers a PROBE at once, so
//     dead_after can be short and a restarted SN is noticed quickly; the round trip of the
//     answered PROBEs is the SN's RTT (SnState::rtt_ms).
//     Out-of-band invocations (set_invocations): one desired set for every SN, numbered by a
//     generation; each SN gets it as service.set once registered, and again after every new
//     association (an SN forgets a pipe's invocations with the pipe). Like registration it
//     is retried every second until answered; a refusal is kept (SnState::oob_error) and
//     not retried until the set changes or the SN re-associates.
//     First contact (add_first_contact): Noise XX to whatever node answers at an endpoint
//     (an SN at an anycast address, key not known in advance); once the handshake proves the
//     responder's static key, its control service is asked for `info` at once (retried every
//     second) and the answer kept (SnState::info). Used by ied's anycast discovery, on a
//     link of its own with a throwaway key.
//   - listening (LinkOptions::listen): accepts IK from any static key and answers register
//     requests itself, so two hosts can associate directly with no SN between them; it
//     refuses service.set (a host serves no out-of-band services).
//
// Packet path (buffers are the caller's or the link's scratch, never allocated per packet):
//   receive: readable fd -> recv_batch (with GRO, a run of datagrams split again) ->
//            classify: control -> Node; PSP -> RxSaTable::open_ilp in place -> note_data_rx
//            -> the caller's handler
//   send:    the caller's inner packets -> TxSa::seal_ilp back to back into the link's batch
//            buffer -> runs of equal-sized packets as UDP GSO datagrams (where the socket
//            can) -> send_batch -> note_data_tx
// Single-threaded. Two ways to drive it: poll_once() (its own poll(), for tools), or an event
// loop watching fd() that calls receive() when readable and service() at next_deadline().
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ie/crypto/association.hpp"
#include "ie/crypto/noise.hpp"
#include "ie/crypto/psp_keyring.hpp"
#include "ie/crypto/sa_table.hpp"
#include "ie/io/udp.hpp"
#include "ie/link/invocation.hpp"
#include "ie/util/bytes.hpp"
#include "ie/util/result.hpp"
#include "ie/wire/ilp.hpp"

namespace ie::link {

using Clock = std::chrono::steady_clock;
using crypto::assoc::PeerId;

struct LinkOptions {
  std::string bind = "0.0.0.0:0";
  crypto::noise::KeyPair key;
  crypto::assoc::Timers timers;
  bool listen = false;                // accept IK from unknown keys, answer register requests
  bool accept_first_contact = false;  // also answer XX first contact (tests posing as an SN)
  bool close_on_exit = true;          // the destructor sends CLOSE (tests of silent deaths: false)
  int socket_buffer = 0;              // SO_RCVBUF and SO_SNDBUF bytes; 0 keeps the default
  // UDP GRO on receive (ied's link): the kernel may hand over a GSO sender's run of datagrams
  // as one, which receive() splits again; each of the kBatch receive slots is then 64 KiB
  // (4 MiB of address space, touched only as far as datagrams fill it) instead of 2 KiB.
  bool gro = false;
};

// One outgoing ILP packet: header, TLVs and inner packet (the caller's memory).
struct OutPacket {
  wire::IlpHeader header;
  std::span<const wire::Tlv> tlvs;
  ConstByteSpan inner;
};

// A received, authenticated ILP packet (pointing into the link's receive buffer, valid
// during the handler call only; inner may be modified in place).
struct InPacket {
  PeerId peer = 0;
  wire::IlpHeader header;
  ConstByteSpan tlvs;
  ByteSpan inner;
};

class HostLink {
 public:
  static constexpr std::size_t kBatch = io::UdpSocket::kMaxBatch;
  static constexpr std::size_t kBufSize = 2048;
  // The most bytes send() puts in one GSO datagram (a UDP payload's limit over IPv6 and
  // IPv4 alike is 65,507; rounded down).
  static constexpr std::size_t kMaxGsoBytes = 65000;
  // The first packet of a send() call longer than this (a UDP payload) goes alone, with DF:
  // no IPv4 path MTU is smaller than 552 bytes in Linux (net.ipv4.route.min_pmtu), so a
  // payload of at most 552 - 20 (IPv4) - 8 (UDP) bytes never needs a path MTU probe.
  static constexpr std::size_t kPmtuProbeAbove = 552 - 20 - 8;
  static constexpr std::uint16_t kControlService = 7;  // wire::ServiceId::control

  static Result<std::unique_ptr<HostLink>> create(LinkOptions options);
  ~HostLink();  // closes every session (CLOSE to the peers) unless !close_on_exit
  HostLink(const HostLink&) = delete;
  HostLink& operator=(const HostLink&) = delete;

  // Associates with the SN at endpoint and keeps the association up; addrs (may be empty)
  // are registered after every new association. Several SNs may be added; the same key
  // twice is Errc::exists.
  Result<PeerId> add_sn(const std::string& endpoint, const crypto::noise::PublicKey& key,
                        std::vector<std::string> addrs);
  // Associates with the SN at endpoint only to measure its round trip (ied's RTT survey of
  // candidates): no registration, no out-of-band invocations. Once sn_state()->established,
  // probe() it; sn_state()->rtt_ms is the answer; then remove_sn().
  Result<PeerId> add_sn_for_rtt(const std::string& endpoint, const crypto::noise::PublicKey& key);
  // Measures the round trip to the SN at endpoint without associating (ied's RTT survey of
  // candidates): an echo carrying a mac1 for key (docs/ilp.md "Echo"), sent at once. An SN
  // answers it from its control plane with no handshake and no state. Returns an id for
  // echo_rtt_ms(); forget_echo() when done (at most crypto::assoc::Node::kMaxEchoes are
  // remembered).
  Result<std::uint64_t> echo(const std::string& endpoint, const crypto::noise::PublicKey& key);
  std::optional<double> echo_rtt_ms(std::uint64_t id) const;  // nullopt: no answer (yet)
  void forget_echo(std::uint64_t id);
  // First contact (Noise XX) with the node answering at endpoint, kept up like an SN; no
  // registration. Its proven key: peer_key(); its info answer: sn_state()->info.
  Result<PeerId> add_first_contact(const std::string& endpoint);
  // Closes the session with an SN (CLOSE) and forgets it; its SAs are retired.
  void remove_sn(PeerId sn);
  // The host's role at an SN it registers with (add_sn with addresses): false (the default)
  // for the SN it sends through, true for a warm standby. The registration says so
  // ("standby":true); such an SN reaches the host through the SN a packet's dest_sn names
  // when that is another SN it can reach (docs/sn.md "The ip module"). A change is
  // registered again at once if the SN is registered, retried like registration.
  void set_standby(PeerId sn, bool standby);
  // Associates with another host at endpoint (a direct path) and keeps the association up;
  // no registration, no probes. The same key twice is Errc::exists.
  Result<PeerId> add_host(const std::string& endpoint, const crypto::noise::PublicKey& key);
  // Closes a direct association with a host (CLOSE) and forgets it; its SAs are retired. It
  // can be added again (add_host), e.g. at another endpoint.
  void remove_host(PeerId host);
  // The static key a peer proved in its handshake (nullopt before the first session).
  std::optional<crypto::noise::PublicKey> peer_key(PeerId peer) const;
  bool is_sn(PeerId peer) const;

  // Waits up to timeout for datagrams, handles at most one batch (receive()), then
  // service().
  using DataHandler = std::function<void(InPacket&)>;
  void poll_once(std::chrono::milliseconds timeout, const DataHandler& on_data);
  // Handles at most one batch of waiting datagrams without blocking: control to the Node,
  // data opened and passed to on_data. Returns how many datagrams were read.
  std::size_t receive(const DataHandler& on_data);
  // Timers (keepalives and PROBEs, rekeys, dead peers, retransmissions), registration and
  // info retries, and sending what the Node queued.
  void service();
  // When service() must run next (the Node's deadline, a registration or info retry).
  Clock::time_point next_deadline() const;
  int fd() const { return socket_->fd(); }

  // Seals and sends up to kBatch packets to peer. Returns how many the socket took (the rest
  // may be retried), 0 if the peer has no send SA.
  std::size_t send(PeerId peer, std::span<const OutPacket> packets);

  // The first SN added (the tools' only SN).
  std::optional<PeerId> sn_peer() const {
    return sns_.empty() ? std::nullopt : std::optional(sns_.front());
  }
  // The first SN is associated, holds a send SA and (if there are addresses) is registered.
  bool sn_ready() const { return sn_peer() && sn_ready(*sn_peer()); }
  bool sn_ready(PeerId sn) const;
  bool can_send(PeerId peer) const;
  // Sends a measuring PROBE to a peer (an SN, or a host on a direct path) now: its answer
  // updates the RTT (an operator's ping; ied's direct-path distance).
  void probe(PeerId peer);
  // Sends a PROBE padded to a UDP payload of datagram_len bytes now, with DF wherever the
  // kernel sets it (docs/ilp.md "Padded PROBEs"; ied's path MTU probing). Returns its id for
  // probe_size_answered(), 0 if not sent (no session; a length outside
  // [crypto::assoc::Node::kMinPaddedProbe, kBufSize]).
  std::uint32_t probe_size(PeerId peer, std::size_t datagram_len);
  bool probe_size_answered(PeerId peer, std::uint32_t id) const;
  // The round trip of the peer's last answered PROBE in ms (nullopt before any).
  std::optional<double> rtt_ms(PeerId peer) const;
  std::uint64_t rtt_samples(PeerId peer) const;  // answered PROBEs (each a new rtt_ms)

  // The out-of-band invocations wanted from every SN (at most 32 by the contract; the SN
  // refuses more). Bumps the generation and sends {"op":"service.set",...} at once to each
  // SN that is associated and registered (or has no addresses); SNs that are not get it
  // when they are. Until set_invocations is first called nothing is sent (generation 0).
  void set_invocations(std::vector<Invocation> invocations);
  const std::vector<Invocation>& invocations() const { return invocations_; }
  std::uint64_t invocation_generation() const { return generation_; }

  struct SnState {
    bool established = false;
    bool registered = false;
    std::optional<double> rtt_ms;              // of the last answered PROBE
    std::uint64_t rtt_samples = 0;             // PROBEs answered (each a new rtt_ms)
    std::optional<Clock::time_point> last_rx;  // the last authentic message from the SN
    std::string register_error;                // the SN's last refusal ("" if none)
    bool standby = false;  // the role the SN confirmed (meaningful once registered)
    std::uint64_t associations = 0;
    // Out-of-band invocations. oob_acked: the generation this SN last applied during the
    // current association (0: none); oob_applied: what it said applies then (canonical);
    // oob_refused: the generation it last refused (0: none), with its reason in oob_error.
    // The current generation is applied when oob_acked == invocation_generation(), refused
    // when oob_refused == invocation_generation(), else pending.
    std::uint64_t oob_acked = 0;
    std::uint64_t oob_refused = 0;
    std::vector<Invocation> oob_applied;
    std::string oob_error;
    // The last answer to an info request with "ok":true (JSON text; "" before any).
    std::string info;
  };
  std::optional<SnState> sn_state(PeerId sn) const;
  // Association events handled so far (sessions up or down, SAs, answers of SNs): what
  // sn_ready/can_send/sn_state say changes only with it or with add_sn/remove_sn/
  // set_standby, so a caller acting on SN state may skip its work while this stays the same.
  std::uint64_t events() const { return events_; }

  struct Stats {
    std::uint64_t associations = 0;    // established events that followed no session
    std::uint64_t reassociations = 0;  // ... of which after a dead or closed session
    std::uint64_t rekeys = 0;          // established events on a live session
    std::uint64_t dead = 0;            // dead and closed events
    std::uint64_t registrations = 0;   // register answers with "ok":true
    std::uint64_t register_refusals = 0;
    std::uint64_t probes = 0;         // PROBEs sent (liveness and pings, to SNs and hosts)
    std::uint64_t oob_requests = 0;   // service.set requests sent (retries included)
    std::uint64_t oob_applied = 0;    // service.set answers with "ok":true
    std::uint64_t oob_refusals = 0;   // ... with "ok":false
    std::uint64_t send_failures = 0;  // sealed packets the kernel refused
    std::uint64_t gso_packets = 0;    // packets sent as segments of UDP GSO datagrams
    std::uint64_t gro_packets = 0;    // datagrams received in coalesced reads (GRO)
  };
  Stats stats() const {
    Stats s = stats_;
    s.probes = node_->probes_sent();
    return s;
  }
  // The first SN's last refusal.
  std::string last_register_error() const;
  const crypto::SaDropCounters& data_drops() const { return rx_.drops(); }
  const crypto::assoc::DropCounters& control_drops() const { return node_->drops(); }
  io::UdpSocket& socket() { return *socket_; }

  // Tests: lets the listening role act as an SN. Called with each control-service request's
  // JSON body; an answer replaces the built-in one, nullopt keeps it.
  using RequestHandler = std::function<std::optional<std::string>(PeerId, std::string_view)>;
  void set_request_handler_for_test(RequestHandler h) { request_handler_ = std::move(h); }

 private:
  struct PeerState {
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    bool learned_addr = false;  // addr is where its handshakes came from (it initiated)
    bool session = false;
    bool ever = false;  // had a session before
    std::optional<crypto::TxSa> tx;
    std::optional<crypto::noise::PublicKey> remote_static;
    // SN peers only
    bool is_sn = false;
    bool first_contact = false;  // add_first_contact: ask for info as soon as established
    bool rtt_only = false;       // add_sn_for_rtt: no out-of-band invocations
    std::string info;            // SnState::info
    std::vector<std::string> addrs;
    bool registered = false;
    bool standby = false;             // the role wanted (set_standby)
    bool standby_registered = false;  // the role the SN confirmed
    bool standby_sent = false;        // the role in the registration in flight
    std::uint32_t register_id = 0;
    Clock::time_point register_sent{};
    std::uint32_t info_id = 0;  // the info request in flight (first contact)
    Clock::time_point info_sent{};
    std::string register_error;
    std::uint64_t associations = 0;
    // out-of-band invocations (SnState)
    std::uint32_t oob_id = 0;  // the service.set in flight
    std::uint64_t oob_sent_generation = 0;
    Clock::time_point oob_sent{};
    std::uint64_t oob_acked = 0;
    std::uint64_t oob_refused = 0;
    std::vector<Invocation> oob_applied;
    std::string oob_error;
  };

  explicit HostLink(LinkOptions options, io::UdpSocket socket);
  void flush(const sockaddr_storage* from, socklen_t from_len);
  void forget(PeerId peer);  // CLOSE, SAs retired, state erased (remove_sn, remove_host)
  void on_service_message(const crypto::assoc::Event& e, Clock::time_point now);
  void send_register(PeerId sn, PeerState& p, Clock::time_point now);
  void send_info_request(PeerId sn, PeerState& p, Clock::time_point now);
  // The SN is ready for service.set and lacks the current generation (none in flight, or
  // the last one sent more than a retry period ago counts as lost).
  bool oob_due(const PeerState& p, Clock::time_point now) const;
  bool oob_wanted(const PeerState& p) const;
  // The addresses are to be registered: not yet during this association, or in another role.
  static bool register_wanted(const PeerState& p) {
    return !p.addrs.empty() && (!p.registered || p.standby_registered != p.standby);
  }
  bool tracked(const crypto::noise::PublicKey& key) const;  // a peer of ours has that key
  void send_invocations(PeerId sn, PeerState& p, Clock::time_point now);
  void on_oob_answer(PeerState& p, const Bytes& data);

  LinkOptions opts_;
  std::uint64_t events_ = 0;
  std::unique_ptr<io::UdpSocket> socket_;
  crypto::psp::RxKeyring ring_;
  std::unique_ptr<crypto::assoc::Node> node_;
  crypto::RxSaTable rx_;
  std::map<PeerId, PeerState> peers_;
  std::vector<PeerId> sns_;  // in the order added

  std::uint32_t next_id_ = 1;
  Stats stats_;
  std::vector<Invocation> invocations_;
  std::uint64_t generation_ = 0;
  RequestHandler request_handler_;

  void receive_one(ByteSpan d, const sockaddr_storage& from, socklen_t from_len,
                   Clock::time_point now, const DataHandler& on_data);

  std::size_t rx_slot_ = kBufSize;           // per receive slot: 64 KiB with GRO
  std::unique_ptr<std::uint8_t[]> rx_bufs_;  // kBatch * rx_slot_, not zeroed
  std::vector<std::uint8_t> tx_bufs_;
};

}  // namespace ie::link
