// End-to-end sessions between two InterEdge hosts for the IP-like service (docs/e2e.md), so
// that no SN on the path can read or alter the packets the hosts exchange, while every SN
// still sees the two hosts' addresses it routes and checks by.
//
// The machinery is libie's association protocol (ie/crypto/association.hpp: Noise IK,
// cookies, SPI + PSP key hand-out, rekey with overlap, keepalives, dead-peer detection) and
// its PSP SAs, exactly as on a host-SN link, with another transport: every datagram the Node
// or an SA produces travels as the payload of an IP packet with protocol kE2eProto (253) from
// our address to the peer's. The Node's transport address for a peer is the peer's IP address.
//
//   e2e data packet:    IP header (proto 253, src = our address, dst = the peer's)
//                       | PSP header | ILP header (service ip) | original IP packet | tag
//   e2e control packet: IP header (same) | handshake / cookie / control datagram
//
// Packet path (all buffers are the caller's E2eOutput or the caller's input; nothing is
// allocated per packet once the output buffers have grown, except while a packet waits in a
// peer's queue for its first session):
//   send:    TUN packet -> check src/dst against local/peer -> peer by address -> TxSa seals
//            it behind a proto-253 header in out.to_net (or queue + handshake)
//   receive: proto-253 packet -> parse IP header -> first payload byte: control -> Node;
//            PSP -> copy into out.to_tun's reservation -> RxSaTable opens in place ->
//            session bound to the outer source? inner src/dst == outer src/dst? -> commit
//
// Sessions are bound to addresses: a session is used for, and accepts data from, the one
// peer address it was established with; the inner packet must carry the outer addresses.
// The responder accepts IK from any static key (any InterEdge host may talk to us), for an
// address no other session holds (and that accept_peer allows, if set).
//
// Single-threaded (the daemon's datapath thread owns it); sans-IO (time is passed in).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "ie/crypto/association.hpp"
#include "ie/crypto/noise.hpp"
#include "ie/crypto/psp_keyring.hpp"
#include "ie/crypto/sa_table.hpp"
#include "ie/ied/ip_addr.hpp"
#include "ie/ied/ip_header.hpp"
#include "ie/ied/packet_list.hpp"
#include "ie/util/bytes.hpp"
#include "ie/util/counter.hpp"
#include "ie/util/result.hpp"
#include "ie/wire/drop_reason.hpp"
#include "ie/wire/ilp.hpp"
#include "ie/wire/psp.hpp"

namespace ie::ied {

using Time = crypto::Time;
using Duration = crypto::assoc::Duration;

struct E2eOptions {
  crypto::noise::KeyPair key;  // this host's static key (the one its peers know)
  crypto::assoc::Timers timers;
  // Packets kept per peer while its session comes up; past this the oldest is dropped.
  std::size_t max_queued_per_peer = 64;
  // A peer with no data in either direction for this long is closed and forgotten, so
  // sessions (and their keepalives through the SNs) do not outlive the traffic. 0: never.
  Duration idle_after = std::chrono::minutes(5);
  // At most this many peers learned from incoming handshakes (assoc::Config).
  std::size_t max_learned_peers = 10000;
  // Decides whether a host that opened a session to us (IK from a key we did not ask for)
  // may use the address it came from, e.g. by the key in the address's DNS peer record
  // (docs/discovery.md). Empty: any key may use an address no other session holds.
  std::function<bool(const IpAddr& addr, const crypto::noise::PublicKey& key)> accept_peer;
  // Handshake timestamps' wall clock (tests inject one); empty: the system clock.
  std::function<std::uint64_t()> wall_clock_ns;
};

// What one call produced, for the caller to hand onward. to_net: proto-253 IP packets for
// the SN path (the daemon wraps each in ILP service ip towards its first-hop SN; headroom
// and tailroom let it do so in place). to_tun: decrypted original IP packets for the TUN.
// The caller clears both after handling them; the buffers are reused.
struct E2eOutput {
  explicit E2eOutput(std::size_t net_headroom = 0, std::size_t net_tailroom = 0,
                     std::size_t tun_headroom = 0)
      : to_net(net_headroom, net_tailroom), to_tun(tun_headroom, 0) {}
  PacketList to_net;
  PacketList to_tun;
  void clear() {
    to_net.clear();
    to_tun.clear();
  }
};

class E2e {
 public:
  static Result<std::unique_ptr<E2e>> create(E2eOptions o);
  ~E2e();
  E2e(const E2e&) = delete;
  E2e& operator=(const E2e&) = delete;

  // An IP packet read from the TUN for a peer host: local is our address in it (its source),
  // peer the destination host's address, peer_key that host's static key (configuration or
  // DNS). Sealed into out.to_net if a session is up; else queued (bounded, oldest dropped
  // and counted) and a handshake started; queued packets go out, in order, as soon as the
  // session is up. A packet whose source/destination are not local/peer is dropped
  // (spoofed_source / bad_inner_packet). A different key for a known peer address closes
  // the old session and starts a new one. tag goes with the sealed packet into out.to_net
  // (PacketList::tag), also when it waited in the queue; handshakes are tagged 0.
  void send(const IpAddr& local, const IpAddr& peer, const crypto::noise::PublicKey& peer_key,
            ConstByteSpan ip_packet, Time now, E2eOutput& out, std::uint32_t tag = 0);

  // A protocol-253 IP packet that arrived from the SN path (the inner packet of an ILP
  // service-ip packet). Never trusts it: every rejection is counted by reason. Returns true
  // only if the packet proved to come from the peer host at its source address: a data
  // packet accepted, a message the Node answered (an IK initiation whose sender proved its
  // key, with a fresh timestamp; a control message such as a PROBE), or one that moved a
  // session bound to that address (an event). A packet answered only with a cookie reply, a
  // stale or refused one: false. (ied learns the peer's current SN only from such packets.)
  bool receive(ConstByteSpan ip_packet, Time now, E2eOutput& out);

  // Tests: the Node answers initiations with cookie replies (as under a handshake flood).
  void set_under_load_for_test(bool on) { node_->set_under_load(on); }

  // Sends CLOSE to every peer with a session and forgets all peers (clean shutdown).
  void close_all(Time now, E2eOutput& out);

  // Retransmissions, keepalives, rekeys, dead peers, SA retirement, idle peers.
  void on_timer(Time now, E2eOutput& out);
  std::optional<Time> next_deadline() const;

  // Bytes an end-to-end data packet adds to the inner packet: IP header + PSP header + ILP
  // header + PSP tag (64 for IPv4, 84 for IPv6).
  static constexpr std::size_t overhead(bool ipv6) {
    return ip_header_len(ipv6) + wire::kPspHeaderLen + wire::kIlpBaseLen + wire::kPspTagLen;
  }

  struct PeerInfo {
    IpAddr addr;
    IpAddr local;
    crypto::noise::PublicKey key{};
    bool established = false;  // a send SA is installed
    bool initiated = false;    // we opened it (send()), not learned from its handshake
    std::size_t queued = 0;
    std::uint64_t tx_packets = 0;
    std::uint64_t rx_packets = 0;
    std::uint64_t queue_dropped = 0;
  };
  std::vector<PeerInfo> peers() const;
  std::optional<PeerInfo> peer(const IpAddr& addr) const;

  // Sends a measuring PROBE to the peer host over its end-to-end session (out.to_net: through
  // the SNs, like every end-to-end control message), so its answer is the round trip of the
  // whole SN path, the peer's ied included. False if there is no session with it.
  bool probe(const IpAddr& peer, Time now, E2eOutput& out);
  // The round trip of the peer's last answered PROBE (nullopt before any, or no peer), and how
  // many answers there were (each a new rtt()).
  std::optional<Duration> rtt(const IpAddr& peer) const;
  std::uint64_t rtt_samples(const IpAddr& peer) const;

  // Drops by reason, summed over this layer, the receive SAs and the association Node.
  std::uint64_t drops(wire::DropReason r) const;
  std::uint64_t drops_total() const;

  struct Stats {
    std::uint64_t sessions = 0;       // established events that followed no session
    std::uint64_t rekeys = 0;         // established events on a live session
    std::uint64_t dead = 0;           // dead and closed events
    std::uint64_t key_changes = 0;    // sessions closed because send() named another key
    std::uint64_t idle_closed = 0;    // peers forgotten for idleness
    std::uint64_t queue_dropped = 0;  // packets dropped from full queues (all peers)
  };
  const Stats& stats() const { return stats_; }

  // Tests: send() without its source/destination checks, to play a peer that lies about
  // the inner packet's addresses (the receiver must catch it).
  void send_unchecked_for_test(const IpAddr& local, const IpAddr& peer,
                               const crypto::noise::PublicKey& peer_key, ConstByteSpan ip_packet,
                               Time now, E2eOutput& out);
  // Tests: the association Node (e.g. to simulate load or inspect its counters).
  crypto::assoc::Node& node_for_test() { return *node_; }

 private:
  struct Peer {
    crypto::assoc::PeerId id = 0;
    IpAddr addr;   // the address the session is bound to
    IpAddr local;  // our address towards it
    crypto::noise::PublicKey key{};
    bool initiated = false;
    bool session = false;
    std::optional<crypto::TxSa> tx;
    struct Queued {
      Bytes packet;
      std::uint32_t tag = 0;
    };
    std::deque<Queued> queue;  // TUN packets waiting for the first send SA
    Time last_data{};
    std::uint64_t tx_packets = 0;
    std::uint64_t rx_packets = 0;
    std::uint64_t queue_dropped = 0;
  };

  explicit E2e(E2eOptions o);
  void send_impl(const IpAddr& local, const IpAddr& peer, const crypto::noise::PublicKey& peer_key,
                 ConstByteSpan ip_packet, bool check_addrs, Time now, E2eOutput& out,
                 std::uint32_t tag);
  Peer* find(crypto::assoc::PeerId id);
  Peer* find(const IpAddr& addr);
  // Forgets a peer: CLOSE to it if it has a session, its SAs retired, its state erased.
  void forget(Peer& p, Time now, E2eOutput& out);
  // Binds peer id to addr, forgetting any other peer bound to that address.
  Peer& bind(crypto::assoc::PeerId id, const IpAddr& addr, const IpAddr& local, Time now,
             E2eOutput& out);
  void on_event(const crypto::assoc::Event& e, Time now, E2eOutput& out);
  // The peer an event from the Node is about; a peer learned from a handshake is bound here
  // to the address of the packet being received. nullptr if there is none.
  Peer* event_peer(const crypto::assoc::Event& e, Time now, E2eOutput& out);
  void seal(Peer& p, ConstByteSpan ip_packet, Time now, E2eOutput& out, std::uint32_t tag);
  bool receive_data(const IpView& outer, Time now, E2eOutput& out);
  // Moves what the Node produced into out.to_net and applies its events; ctx_from/ctx_local
  // (when set) are the addresses of the packet being received.
  void flush(Time now, E2eOutput& out);
  void emit_datagram(const crypto::assoc::Datagram& d, E2eOutput& out);
  void drain_queue(Peer& p, Time now, E2eOutput& out);
  PeerInfo info(const Peer& p) const;
  void retire_rx(crypto::assoc::PeerId id);  // every receive SA of a peer
  void drop(wire::DropReason r) { drops_.add(r); }
  bool dropped(wire::DropReason r) {  // drop(r); false
    drops_.add(r);
    return false;
  }

  E2eOptions opts_;
  crypto::psp::RxKeyring ring_;
  std::unique_ptr<crypto::assoc::Node> node_;
  crypto::RxSaTable rx_;
  std::map<crypto::assoc::PeerId, Peer> peers_;
  std::map<IpAddr, crypto::assoc::PeerId> by_addr_;
  // Receive SPI -> peer (as installed in rx_), to check a packet's addresses before opening.
  std::unordered_map<std::uint32_t, crypto::assoc::PeerId> spi_owner_;
  std::optional<IpAddr> ctx_from_;   // the packet being received: its source ...
  std::optional<IpAddr> ctx_local_;  // ... and destination
  bool ctx_authentic_ = false;       // ... moved a session bound to ctx_from_ (flush)
  crypto::assoc::DropCounters drops_;
  Stats stats_;
};

}  // namespace ie::ied
