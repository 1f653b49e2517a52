// Private to libie/crypto: the per-peer and per-session state of assoc::Node, shared by
// association.cpp (handshakes, peers) and control_channel.cpp (control channel, key
// hand-out, timers). Not installed; include only from those two files.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "ie/crypto/association.hpp"
#include "ie/crypto/replay_window.hpp"

namespace ie::crypto::assoc {

inline constexpr std::size_t kTimestampLen = 12;
inline constexpr std::size_t kMaxXxPending = 1024;
inline constexpr auto kXxPendingLifetime = std::chrono::seconds(10);
inline constexpr std::size_t kMaxControlPlain = 1200;

using Timestamp = std::array<std::uint8_t, kTimestampLen>;

struct Node::Session {
  std::uint32_t local_index = 0;
  std::uint32_t remote_index = 0;
  noise::CipherState send, recv;
  std::uint64_t send_counter = 0;
  ControlReplayWindow window;  // 48 bytes: one per session, 100,000+ on an SN
  Time born{};
  Duration rekey_after{};  // re-key when the session is this old (Timers; drawn per session)
  bool we_initiated = false;
  bool confirmed = false;  // an authentic control message arrived on it
  std::uint64_t last_offer_counter = 0;
  bool have_offer = false;
  Bytes final_msg;  // XX initiator: message 3, resent until confirmed
};

struct Node::Pending {
  std::uint32_t local_index = 0;
  noise::HandshakeState hs;
  bool xx = false;
};

// A responder's XX handshake waiting for message 3 (the peer is not known yet).
struct Node::XxPending {
  noise::HandshakeState hs;
  std::uint32_t remote_index;
  Addr from;
  std::multimap<Time, std::uint32_t>::iterator expiry;  // its entry in xx_expiry_
};

struct Node::Peer {
  PeerId id = 0;
  Addr addr;
  std::optional<noise::PublicKey> remote_static;
  bool keep_connected = false;
  bool first_contact = false;  // we initiated with XX and have not learned the key yet
  bool learned = false;        // created by an incoming handshake, not by add_peer()
  // Made when we first initiate to the peer (an SN never initiates to most of its hosts: 120
  // bytes and two hashes saved per host); reset when its static key changes.
  std::unique_ptr<cookie::Maker> maker;
  // DH(our static, its static), kept after the first IK handshake that computed it, so later
  // ones (a re-key every few minutes) skip that X25519 (noise::HandshakeConfig::
  // precomputed_ss; WireGuard's precomputed static-static). Wiped with the peer; reset when
  // its static key changes.
  std::optional<Key32> static_dh;

  std::optional<Pending> pending;
  bool want_handshake = false;  // a (re)connect is due at next_retry
  Time next_retry{};
  Duration retry_interval{};

  std::unique_ptr<Session> current, previous;
  Time previous_expires{};
  // A responder's new session waits here until the initiator confirms it (its first control
  // message arrives on it); until then the current session keeps carrying the control channel,
  // so a stale or abandoned initiation can never replace a working session.
  std::unique_ptr<Session> next;
  Time next_expires{};

  Timestamp last_timestamp{};
  bool have_timestamp = false;

  std::optional<std::uint32_t> rx_offered;  // the newest offer, not acked yet
  std::vector<std::uint32_t> rx_active;     // installed, not retiring (incl. rx_offered)
  std::vector<std::pair<std::uint32_t, Time>> rx_retiring;
  Time next_offer_retx{};
  std::optional<std::uint32_t> tx_spi;
  std::uint64_t tx_since_session = 0;

  Time last_rx{}, last_tx{};
  // Liveness of a peer this Node does not keep alive (Timers::idle_keepalive):
  bool peer_probes = false;       // it sends PROBEs, so it keeps itself alive: silence is death
  std::optional<Time> owe_since;  // it sent data or a message wanting an answer; none sent yet
  // Every peer: we sent something wanting an answer; nothing received since (a peer not kept
  // alive: dead after dead_after; a kept-alive one: PROBEd after keepalive).
  std::optional<Time> awaiting;
  // The last PROBE sent (its id, 0 once answered or before any), the last answered one's
  // round trip, and how many PROBEs were answered.
  std::uint32_t probe_id = 0;
  Time probe_sent{};
  std::optional<Duration> rtt;
  std::uint64_t rtt_samples = 0;
  // Padded PROBEs sent (Node::probe_padded), oldest first: id, answered. At most
  // Node::kMaxPaddedProbes; they never touch probe_id, rtt or liveness.
  std::vector<std::pair<std::uint32_t, bool>> padded;

  // Its entry in Node::sched_ (valid while scheduled and sched_gen matches the entry's).
  Time sched_at{};
  std::uint32_t sched_gen = 0;
  bool scheduled = false;
};

}  // namespace ie::crypto::assoc
