// The association side of ie-testhost: one UDP socket, an association Node with the host's
// static key, the receive SAs (RxSaTable) and send SAs (TxSa) its events install, and host
// registration with the SN's `control` service (docs/sn.md: SERVICE_REQUEST data = service
// id 7 as u16 big-endian || {"op":"register","addrs":[...]}).
//
// Two roles, possibly both at once:
//   - towards an SN (add_sn): Noise IK to the SN's published key, kept up by the Node
//     (add_peer(..., connect=true): after dead_after of silence the session is torn down and
//     re-initiated); after every new association the addresses are registered again. When
//     nothing has come from the SN for a keepalive period the link asks the control service
//     for `info`: the answer proves the SN alive (the SN's own keepalives are far apart), so
//     dead_after can be short and a restarted SN is noticed quickly.
//   - listening (LinkOptions::listen): accepts IK from any static key and answers register
//     requests itself, so two test hosts can associate directly with no SN between them.
//
// Packet path (buffers are the caller's or the link's scratch, never allocated per packet):
//   receive: poll() -> recv_batch -> classify: control -> Node; PSP -> RxSaTable::open_ilp
//            in place -> note_data_rx -> the caller's handler
//   send:    the caller's inner packets -> TxSa::seal_ilp into the link's batch buffers ->
//            send_batch -> note_data_tx
// Single-threaded.
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
#include <vector>

#include "ie/crypto/association.hpp"
#include "ie/crypto/noise.hpp"
#include "ie/crypto/psp_keyring.hpp"
#include "ie/crypto/sa_table.hpp"
#include "ie/io/udp.hpp"
#include "ie/util/bytes.hpp"
#include "ie/util/result.hpp"
#include "ie/wire/ilp.hpp"

namespace ie::tools {

using Clock = std::chrono::steady_clock;
using crypto::assoc::PeerId;

struct LinkOptions {
  std::string bind = "0.0.0.0:0";
  crypto::noise::KeyPair key;
  crypto::assoc::Timers timers;
  bool listen = false;        // accept IK from unknown keys, answer register requests
  bool close_on_exit = true;  // the destructor sends CLOSE (tests of silent deaths: false)
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
  static constexpr std::uint16_t kControlService = 7;  // wire::ServiceId::control

  static Result<std::unique_ptr<HostLink>> create(LinkOptions options);
  ~HostLink();  // closes every session (CLOSE to the peers) unless !close_on_exit
  HostLink(const HostLink&) = delete;
  HostLink& operator=(const HostLink&) = delete;

  // Associates with the SN at endpoint and keeps the association up; addrs (may be empty)
  // are registered after every new association. At most one SN.
  Result<PeerId> add_sn(const std::string& endpoint, const crypto::noise::PublicKey& key,
                        std::vector<std::string> addrs);

  // Waits up to timeout for datagrams, handles at most one batch: control to the Node, data
  // opened and passed to on_data. Then services timers (see service()).
  using DataHandler = std::function<void(InPacket&)>;
  void poll_once(std::chrono::milliseconds timeout, const DataHandler& on_data);
  // Timers (keepalives, rekeys, dead peers, retransmissions), registration and liveness
  // probes, and sending what the Node queued.
  void service();

  // Seals and sends up to kBatch packets to peer. Returns how many the socket took (the rest
  // may be retried), 0 if the peer has no send SA.
  std::size_t send(PeerId peer, std::span<const OutPacket> packets);

  // The SN peer is associated, holds a send SA and (if there are addresses) is registered.
  bool sn_ready() const;
  std::optional<PeerId> sn_peer() const { return sn_peer_; }
  bool can_send(PeerId peer) const;

  struct Stats {
    std::uint64_t associations = 0;    // established events that followed no session
    std::uint64_t reassociations = 0;  // ... of which after a dead or closed session
    std::uint64_t rekeys = 0;          // established events on a live session
    std::uint64_t dead = 0;            // dead and closed events
    std::uint64_t registrations = 0;   // register answers with "ok":true
    std::uint64_t register_refusals = 0;
    std::uint64_t probes = 0;         // info requests sent as liveness probes
    std::uint64_t send_failures = 0;  // sealed packets the kernel refused
  };
  const Stats& stats() const { return stats_; }
  const std::string& last_register_error() const { return register_error_; }
  const crypto::SaDropCounters& data_drops() const { return rx_.drops(); }
  const crypto::assoc::DropCounters& control_drops() const { return node_->drops(); }
  io::UdpSocket& socket() { return *socket_; }

 private:
  struct PeerState {
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    bool session = false;
    bool ever = false;  // had a session before
    std::optional<crypto::TxSa> tx;
    Clock::time_point last_rx{};
  };

  explicit HostLink(LinkOptions options, io::UdpSocket socket);
  void flush(const sockaddr_storage* from, socklen_t from_len);
  void on_service_message(const crypto::assoc::Event& e, Clock::time_point now);
  void send_register(Clock::time_point now);
  void send_probe(Clock::time_point now);

  LinkOptions opts_;
  std::unique_ptr<io::UdpSocket> socket_;
  crypto::psp::RxKeyring ring_;
  std::unique_ptr<crypto::assoc::Node> node_;
  crypto::RxSaTable rx_;
  std::map<PeerId, PeerState> peers_;

  std::optional<PeerId> sn_peer_;
  std::vector<std::string> addrs_;
  bool registered_ = false;
  std::uint32_t register_id_ = 0;
  Clock::time_point register_sent_{};
  std::uint32_t probe_id_ = 0;
  Clock::time_point probe_sent_{};
  std::uint32_t next_id_ = 1;
  std::string register_error_;
  Stats stats_;

  std::vector<std::uint8_t> rx_bufs_;  // kBatch * kBufSize
  std::vector<std::uint8_t> tx_bufs_;
};

// Key files: one line with the base64 of the 32-byte X25519 private key (the format of
// `iesn genkey`). write_key_file creates the file with mode 0600 and refuses to replace one;
// read_key_file refuses a file that group or others may access.
Result<crypto::noise::KeyPair> read_key_file(const std::string& path);
Result<void> write_key_file(const std::string& path, const crypto::noise::KeyPair& kp);
std::string key_to_base64(const crypto::noise::PublicKey& k);
std::optional<crypto::noise::PublicKey> key_from_base64(const std::string& text);

}  // namespace ie::tools
