// The control worker's half of iesn (private to sn_reference/iesn/): the association Node
// (handshakes with hosts and SNs, the control channel, PSP key hand-out, rekeys, dead peers)
// and what its events mean for the datapath. It runs on worker 0's thread only, owns the
// master copy of pipes and routes (worker 0's RouteTable), and applies every change to
// worker 0 directly and to the other workers by posting the same operation to their
// reactors. What a peer may act on at once (a receive SA we offer it, a registration we
// confirm) is applied everywhere before the datagram that tells it leaves:
//   established     -> pipe up (kind sn if the peer's static key is a configured SN's)
//   tx_sa_install   -> a send SA on every worker, with one IV counter they share
//   rx_sa_install   -> the receive SA on worker spi % N (where steering sends that SPI)
//   rx_sa_retire    -> removed there
//   dead / closed   -> pipe down everywhere
//   service_message -> service 7: the control service (host registration); others: the
//                      module's on_control on worker 0
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ie/crypto/association.hpp"
#include "ie/crypto/psp_keyring.hpp"
#include "ie/sn/config.hpp"
#include "ie/sn/endpoint.hpp"
#include "ie/sn/routing.hpp"
#include "ie/sn/worker.hpp"

namespace ie::sn {

namespace assoc = ie::crypto::assoc;

class ControlPlane {
 public:
  struct Options {
    const SnConfig* config = nullptr;  // read during construction and reload() only
    noise::KeyPair key;
    assoc::Timers timers;
    std::size_t max_learned_peers = 100000;
    std::vector<std::string> services;  // names for the control service's "info"
    std::map<std::string, std::uint16_t, std::less<>> out_of_band;  // [services] out_of_band
    std::uint32_t max_handshakes_per_second = 0;                    // assoc::Config's; 0: no limit
  };
  // workers[0] is the worker this runs on.
  ControlPlane(Options options, std::vector<Worker*> workers);
  ~ControlPlane();

  // On worker 0's thread, after the workers' modules exist: plugs into worker 0, starts the
  // SN pipes of the configuration and the Node's timer.
  void start();
  // Worker 0's hooks.
  void on_datagram(ConstByteSpan d, const sockaddr_storage& from, socklen_t from_len);
  void on_activity(const std::vector<PipeActivity>& activity);
  bool reply(PipeId peer, std::uint32_t id, ConstByteSpan data);
  // New SN peers, removed ones, changed static routes (the caller validated the config).
  void reload(const SnConfig& cfg);
  // The responder handshake budget per second (0: no limit), changed while running.
  void set_handshake_budget(std::uint32_t per_second) {
    node_->set_max_handshakes_per_second(per_second);
  }
  std::uint32_t handshake_budget() const { return node_->max_handshakes_per_second(); }
  // Tells every associated peer we are going away (CLOSE) and sends it now.
  void close_all();

  struct PipeMeta {
    ie_sn_pipe_kind kind = IE_SN_PIPE_HOST;
    std::string sn_name;
    Endpoint addr;  // empty until known
    bool established = false;
    std::optional<crypto::Time> last_rx;
  };
  const std::map<PipeId, PipeMeta>& pipes() const { return pipes_; }
  std::uint64_t peer_count() const { return node_->peer_count(); }
  std::uint64_t handshakes() const { return node_->responder_handshakes_started(); }
  std::uint64_t static_dh_reused() const { return node_->static_dh_reused(); }
  std::uint64_t probes_answered() const { return node_->probes_answered(); }
  std::uint64_t crossed_initiations_kept() const { return node_->crossed_initiations_kept(); }
  const assoc::DropCounters& node_drops() const { return node_->drops(); }

 private:
  struct SnPeer {
    std::string name;
    noise::PublicKey key{};
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    assoc::PeerId peer = 0;
  };

  std::vector<SnPeer> configured_sns(const SnConfig& cfg) const;
  void connect_sns(std::vector<SnPeer> wanted, crypto::Time now);
  void pump(crypto::Time now);
  void handle(assoc::Event& e, crypto::Time now);
  void on_service_request(const assoc::Event& e, crypto::Time now);
  void pipe_gone(PipeId peer);
  void send_datagrams();
  void on_tick();
  // Applies fn on every worker: worker 0 now, the others through their reactors.
  void broadcast(const std::function<void(Worker&)>& fn);
  void on_worker(unsigned index, std::function<void(Worker&)> fn);
  // The same, and the Node's datagrams wait until that worker has applied fn.
  void on_worker_acked(unsigned index, std::function<void(Worker&)> fn);
  void acked();

  std::vector<Worker*> workers_;
  std::unique_ptr<crypto::psp::RxKeyring> ring_;
  std::unique_ptr<assoc::Node> node_;
  ControlInfo info_;
  std::string self_name_;
  std::vector<SnPeer> sns_;           // configured SN peers (edomain SNs, peer gateways)
  std::map<PipeId, PipeMeta> pipes_;  // established pipes
  // The datagram being handled: events it causes come from this (authenticated) address.
  const sockaddr_storage* current_from_ = nullptr;
  socklen_t current_from_len_ = 0;
  std::optional<io::Reactor::TimerId> timer_;
  bool stopped_ = false;        // close_all() ran: no more timers
  unsigned pending_acks_ = 0;   // changes posted to other workers, not applied yet
  bool send_deferred_ = false;  // datagrams wait for those
};

}  // namespace ie::sn
