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
//   service_message -> service 7: the control service (host registration; sn.locate and
//                      sn.hello between SNs); others: the module's on_control on worker 0;
//                      responses: to the request we sent (direct_pipes.cpp)
// On-demand direct pipes (docs/sn.md; direct_pipes.cpp): when a worker's route to an SN went
// through another SN, the control plane asks along that route where the SN is (sn.locate),
// associates with it, says who it is (sn.hello, which the other side verifies the same way),
// and only then makes it an SN pipe on every worker; unused for direct_idle_seconds, closed.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
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
  // A worker routed traffic for this SN through another SN: open a direct pipe to it if
  // [edomain] direct_pipes is on and none is being opened or failed lately.
  void want_direct(const std::string& sn_name);

  struct DirectStats {
    std::uint64_t opened = 0;       // direct pipes that came up (ours and the peers')
    std::uint64_t failed = 0;       // attempts given up (locate, handshake, hello)
    std::uint64_t idle_closed = 0;  // closed after direct_idle_seconds unused
    std::uint64_t locates_relayed = 0;
    std::uint64_t hellos_refused = 0;  // a peer's claim we could not verify
  };
  const DirectStats& direct_stats() const { return direct_stats_; }
  std::size_t direct_pipe_count() const;

  struct PipeMeta {
    ie_sn_pipe_kind kind = IE_SN_PIPE_HOST;
    std::string sn_name;
    Endpoint addr;  // empty until known
    bool established = false;
    std::optional<crypto::Time> last_rx;
    noise::PublicKey key{};  // the peer's static key
    bool on_demand = false;  // a verified direct pipe (docs/sn.md "On-demand direct pipes")
  };
  const std::unordered_map<PipeId, PipeMeta>& pipes() const { return pipes_; }
  std::uint64_t peer_count() const { return node_->peer_count(); }
  std::uint64_t handshakes() const { return node_->responder_handshakes_started(); }
  std::uint64_t static_dh_reused() const { return node_->static_dh_reused(); }
  std::uint64_t probes_answered() const { return node_->probes_answered(); }
  std::uint64_t echoes_answered() const { return node_->echoes_answered(); }
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

  // An on-demand direct pipe to one SN, by its name.
  struct Direct {
    enum class Stage : std::uint8_t { locating, connecting, hello, up, failed };
    Stage stage = Stage::locating;
    SnRef contact;             // from the locate answer (or the peer's verified hello)
    assoc::PeerId peer = 0;    // connecting, hello, up
    bool we_connect = false;   // we added the peer and keep it connected
    crypto::Time deadline{};   // locating/connecting/hello: give up; failed: retry after
    crypto::Time last_used{};  // up: the last traffic either way
  };
  // A request we sent (sn.locate, sn.hello) and the handler of its answer (nullopt: none in
  // time, or the peer went away).
  using AnswerFn = std::function<void(std::optional<std::string> answer, crypto::Time now)>;
  struct Pending {
    assoc::PeerId peer = 0;
    crypto::Time deadline{};
    AnswerFn done;
  };

  std::vector<SnPeer> configured_sns(const SnConfig& cfg) const;
  void set_direct_config(const SnConfig& cfg);
  // Sends a control-service request to peer; done runs with its answer.
  bool send_request(assoc::PeerId peer, const std::string& body, AnswerFn done, crypto::Time now);
  void on_answer(const assoc::Event& e, crypto::Time now);
  // Runs the handlers of the requests `which` picks with no answer (timed out, peer gone).
  void give_up_requests(const std::function<bool(const Pending&)>& which, crypto::Time now);
  // Asks the next SN on the route towards `name` where it is.
  void locate(const std::string& name, std::function<void(Result<SnRef>, crypto::Time)> done,
              crypto::Time now);
  void relay_locate(const assoc::Event& e, const ControlResult& r, crypto::Time now);
  void verify_hello(const assoc::Event& e, const std::string& name, crypto::Time now);
  void direct_established(assoc::PeerId peer, crypto::Time now);
  void direct_fail(const std::string& name, const std::string& why, crypto::Time now);
  // Takes pipe `peer` as an SN pipe with no name on every worker (acked before our next
  // datagram): what arrives on it is accepted, nothing is routed to it.
  void accept_as_sn(assoc::PeerId peer);
  // Whether we are saying hello on pipe `peer` to the SN with this key (a direct pipe of ours
  // not yet up, whose key the gateways gave us).
  bool saying_hello(assoc::PeerId peer, const noise::PublicKey& key) const;
  // Makes pipe `peer` the SN pipe of `name` on every worker (acked before our next datagram).
  void make_sn_pipe(assoc::PeerId peer, const std::string& name);
  void direct_gone(assoc::PeerId peer, crypto::Time now);
  // Closes an up direct pipe without losing what is in flight: nothing routes to it any more
  // (on every worker, before the CLOSE leaves), what still arrives on it is taken for
  // kCloseGrace, then it goes.
  void close_direct(assoc::PeerId peer, crypto::Time now);
  void direct_tick(crypto::Time now);
  std::optional<std::string> verified_name(const noise::PublicKey& key) const;
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
  std::vector<SnPeer> sns_;  // configured SN peers (edomain SNs, peer gateways)
  // Established pipes. Hashed: every datagram's events look their pipe up, and a tree walk of
  // 100,000 pipes was 1.5 % of an SN's CPU at 550 re-keys/s. Unordered: status sorts its page.
  std::unordered_map<PipeId, PipeMeta> pipes_;
  // The datagram being handled: events it causes come from this (authenticated) address.
  const sockaddr_storage* current_from_ = nullptr;
  socklen_t current_from_len_ = 0;
  std::optional<io::Reactor::TimerId> timer_;
  bool stopped_ = false;        // close_all() ran: no more timers
  unsigned pending_acks_ = 0;   // changes posted to other workers, not applied yet
  bool send_deferred_ = false;  // datagrams wait for those

  bool direct_on_ = false;
  std::chrono::seconds direct_idle_{120};
  std::map<std::string, Direct, std::less<>> direct_;
  std::map<std::uint32_t, Pending> requests_;
  std::map<assoc::PeerId, crypto::Time> closing_;  // closed direct pipes -> pipe_gone then
  std::uint32_t next_request_id_ = 1;
  noise::PublicKey self_key_{};
  DirectStats direct_stats_;
};

}  // namespace ie::sn
