// One pipe-terminus worker of iesn (docs/sn.md "Threads and sockets"): its own reactor thread,
// UDP socket (SO_REUSEPORT, one per worker), receive SAs (the SPIs with spi % N == index),
// copies of every pipe's send SA, its decision-cache shard, its route-table copy, its module
// instances and its counters. Nothing on the packet path is shared with another worker except
// the send SAs' IV counters (one atomic fetch_add per sealed packet).
//
// Threading: a Worker is built on any thread, then used only from its own thread (the one
// that calls start_modules() and run()); other threads talk to it through post(). Its drop
// and cache counters are single-writer atomics any thread may read; everything else (pipes,
// per-pipe counters) is read through snapshot() on the worker's thread.
//
// Also here: the reuseport steering program that makes the kernel pick the worker socket.
#pragma once

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "ie/crypto/psp.hpp"
#include "ie/crypto/sa_table.hpp"
#include "ie/io/datagram.hpp"
#include "ie/io/reactor.hpp"
#include "ie/io/udp.hpp"
#include "ie/sn/decision_cache.hpp"
#include "ie/sn/endpoint.hpp"
#include "ie/sn/env.hpp"
#include "ie/sn/modules.hpp"
#include "ie/sn/routing.hpp"
#include "ie/util/counter.hpp"
#include "ie/util/result.hpp"
#include "ie/wire/drop_reason.hpp"

namespace ie::sn {

// ---- steering ------------------------------------------------------------------------------

// Attaches the SO_ATTACH_REUSEPORT_CBPF program to a socket of the reuseport group (any one;
// the program belongs to the group). For each datagram, with the data starting at the UDP
// payload:   ldb [1]; jeq #0 -> ret #0; ld [4]; mod #workers; ret a
// i.e. control-plane datagrams (byte 1 == 0) go to socket 0, PSP packets to socket SPI % N,
// and datagrams too short to load from go to socket 0 (which drops them). Sockets are
// numbered in the order they joined the group, so worker i must bind i-th. Needs no
// privilege.
Result<void> attach_reuseport_steering(int fd, unsigned workers);
// The socket index the program picks for a UDP payload (the same rule in C++).
unsigned steering_index(ConstByteSpan payload, unsigned workers);

// ---- the worker ----------------------------------------------------------------------------

inline constexpr std::size_t kWorkerBufSize = 4096;  // per datagram; longer ones fail to open

struct WorkerOptions {
  unsigned index = 0;
  unsigned workers = 1;
  std::size_t cache_capacity = 1024;  // this worker's shard
  RouteConfig routes;
  // Service ids of the modules imposed on every packet from and to this SN's hosts
  // ([services] imposed), in order.
  std::vector<std::uint16_t> imposed;
  // A pass-through SN ([services] upstream): its hosts' packets go to this SN once the
  // imposed modules let them through; packets from SNs go to the host they are for.
  std::string upstream;
};

struct PipeTraffic {
  std::uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
};

// Traffic on a pipe since the last report (for the association's keepalives, dead-peer
// detection and message-count rekey).
struct PipeActivity {
  PipeId pipe = 0;
  std::uint64_t rx_packets = 0;
  std::uint64_t tx_packets = 0;
};

struct PipeSnapshot {
  PipeId id = 0;
  ie_sn_pipe_kind kind = IE_SN_PIPE_HOST;
  std::string sn_name;
  std::string address;       // "ip:port"
  std::uint32_t tx_spi = 0;  // 0: no send SA yet
  PipeTraffic traffic;
  std::vector<Addr16> registered;
};

struct WorkerSnapshot {
  unsigned index = 0;
  std::array<std::uint64_t, wire::kDropReasonCount> drops{};  // SA drops + the SN's own
  CacheStats cache;
  std::size_t cache_size = 0, cache_capacity = 0;
  std::size_t rx_sas = 0;
  std::uint64_t rx_datagrams = 0, tx_datagrams = 0, batches = 0;
  std::vector<PipeSnapshot> pipes;
};

class Worker final : public WorkerServices {
 public:
  // What the control worker (worker 0) plugs in; all called on this worker's thread.
  struct Hooks {
    // A control-plane datagram (handshake, cookie reply, control channel) arrived.
    std::function<void(ConstByteSpan datagram, const sockaddr_storage& from, socklen_t len)>
        control_datagram;
    // WorkerServices::control_reply.
    std::function<bool(PipeId peer, std::uint32_t id, ConstByteSpan data)> control_reply;
    // Every 250 ms: the pipes that carried traffic since the last report (may be posted to
    // the control worker).
    std::function<void(std::vector<PipeActivity>)> activity;
    // A module's route to an SN went through another SN (a gateway) because we have no pipe
    // to it, deciding packets of which at least one came from a host here (this SN is the
    // first hop; transit SNs do not ask): the control plane may open one (docs/sn.md
    // "On-demand direct pipes"). At most once a second per SN name and worker.
    std::function<void(const std::string& sn_name)> sn_demand;
  };

  // port: the worker's socket (io::UdpSocket) or a fake. Fails only if the reactor cannot be
  // created.
  static Result<std::unique_ptr<Worker>> create(WorkerOptions options,
                                                std::unique_ptr<io::DatagramPort> port);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // On the worker's thread, before run()/process_batch(): creates the module instances.
  Result<void> start_modules(ModuleRuntime& runtime);
  // On the worker's thread, after run() returned: destroys the module instances.
  void release_modules() { modules_.reset(); }
  void set_hooks(Hooks hooks) { hooks_ = std::move(hooks); }
  // Whether routes through another SN are noted for hooks.sn_demand at all ([edomain]
  // direct_pipes; off: the packet path does no extra lookups).
  void set_sn_demand(bool on) { sn_demand_on_ = on; }

  // Runs the reactor (socket readable -> batches; posted work; timers) until stop().
  Result<void> run();
  void stop() { reactor_->stop(); }                                       // any thread
  void post(std::function<void()> fn) { reactor_->post(std::move(fn)); }  // any thread
  io::Reactor& reactor() { return *reactor_; }
  io::DatagramPort& port() { return *port_; }

  // ---- state changes (this worker's thread; the control worker posts them) ----
  // A pipe is up (or its peer's address changed): idempotent, keeps counters and send SA.
  void pipe_up(PipeId pipe, ie_sn_pipe_kind kind, const std::string& sn_name, const Endpoint& addr);
  void pipe_up(PipeId pipe, ie_sn_pipe_kind kind, const std::string& sn_name,
               const sockaddr_storage& addr, socklen_t addr_len) {
    pipe_up(pipe, kind, sn_name, Endpoint::from(addr, addr_len));
  }
  // Sends on the pipe with this SA from now on (a rekey replaces the previous one).
  Result<void> install_tx(PipeId pipe, std::uint32_t spi, const crypto::psp::Key& key,
                          crypto::SharedIvCounter iv);
  Result<void> install_rx(std::uint32_t spi, const crypto::psp::Key& key, PipeId pipe);
  void retire_rx(std::uint32_t spi);
  // The pipe is gone: its SAs, its route-table entries, module state about it.
  void pipe_down(PipeId pipe);
  // A host registration change the control worker already validated on its master copy.
  void apply_route(const RouteOp& op);
  // A host's role changed (active <-> standby): the cached decisions naming its pipe were
  // made for the other role (the ip module delivers to an active host, bypasses a standby
  // one). O(1): the pipe's role epoch moves, and each such decision is made again at its
  // next hit (docs/sn.md "Standby hosts"). The control worker calls it for its own master
  // table; apply_route does for the others.
  void role_changed(PipeId pipe);
  // What the pipes' role epochs sum to now (Decision::stamp; a missing pipe counts 0).
  std::uint32_t hop_stamp(std::span<const NextHop> hops) const;
  void set_route_config(RouteConfig cfg) { routes_.set_config(std::move(cfg)); }
  // This worker's route table (the control worker's is the master).
  RouteTable& routes() { return routes_; }
  WorkerModules* modules() { return modules_.get(); }

  // ---- the packet path ----
  // Processes one batch of received datagrams (each buffer's first len bytes; modified in
  // place) and sends what it produces with one send_batch on the port. Public so fuzzers and
  // benchmarks can drive the path without sockets.
  void process_batch(std::span<io::Datagram> batch);

  // ---- counters ----
  // Drops of this worker (SA table's and the SN's own), readable from any thread.
  std::uint64_t drops(wire::DropReason r) const { return rx_.drops().get(r) + sn_drops_.get(r); }
  const CacheStats& cache_stats() const { return cache_.stats(); }  // this thread only
  WorkerSnapshot snapshot() const;                                  // this thread only
  std::optional<PipeTraffic> pipe_traffic(PipeId pipe) const;       // this thread only

  // ---- WorkerServices (for module instances; this thread only) ----
  unsigned worker_index() const override { return opts_.index; }
  DecisionCache& cache() override { return cache_; }
  std::uint64_t now_ns() override;
  std::optional<PipeId> route(const ie_sn_addr& dst) override;
  std::optional<PipeId> sn_route(std::string_view sn_name) override;
  std::optional<ie_sn_pipe_info> pipe_info(PipeId pipe) override;
  bool send(PipeId pipe, const ie_sn_out_packet& p) override;
  bool control_reply(PipeId peer, std::uint32_t id, ConstByteSpan data) override;
  std::uint64_t add_timer(std::chrono::milliseconds delay, std::function<void()> fn) override;
  bool cancel_timer(std::uint64_t id) override;
  bool cache_insert(const FlowKey& key, Decision d) override;

 private:
  struct Pipe;
  struct Pending;
  Worker(WorkerOptions options, std::unique_ptr<io::DatagramPort> port,
         std::unique_ptr<io::Reactor> reactor);

  void on_readable();
  void report_activity();
  void mark_active(Pipe& p);  // lists a pipe for the next report_activity
  Pipe* sendable(PipeId id);
  // Imposed modules and out-of-band invocations (docs/sn.md "Stages"); false if one of them
  // dropped, consumed or forwarded the packet.
  bool run_stages(Pending& p);
  void relay(Pending& p);  // pass-through SNs
  void decide(std::span<Pending*> pending, bool second_round);
  void act(Pending& p, const ie_sn_decision& d);
  void forward(Pending& p, std::span<Pipe* const> hops);
  ByteSpan take_buffer();
  void queue(Pipe& to, ByteSpan buf, std::size_t len);
  void flush();
  void drop(wire::DropReason r) { sn_drops_.add(r); }
  // A route to sn_name went through another SN: noted while a module decides packets.
  void note_relayed(std::string_view sn_name);
  // Tells hooks_.sn_demand the names noted while deciding `group`, if a packet of it came
  // from a host pipe (rate-limited per name).
  void tell_relayed(std::span<Pending* const> group);

  WorkerOptions opts_;
  std::unique_ptr<io::DatagramPort> port_;
  io::UdpSocket* udp_ = nullptr;  // port_ if it is a real socket (its refusal counter)
  std::unique_ptr<io::Reactor> reactor_;
  Hooks hooks_;
  DecisionCache cache_;
  RouteTable routes_;
  crypto::RxSaTable rx_;
  CounterArray<wire::DropReason, wire::kDropReasonCount> sn_drops_;
  Counter rx_datagrams_, tx_datagrams_, batches_;
  std::unordered_map<PipeId, std::unique_ptr<Pipe>> pipes_;
  std::vector<PipeId> active_;    // pipes with traffic since the last report, each once
  std::uint32_t role_clock_ = 0;  // the last role epoch handed out (Pipe::role_epoch)
  std::unique_ptr<WorkerModules> modules_;
  std::unordered_map<std::uint64_t, io::Reactor::TimerId> timers_;
  std::uint64_t next_timer_id_ = 1;
  std::map<std::string, std::uint64_t, std::less<>> demand_told_;  // SN name -> now_ns() told
  std::vector<std::string> relayed_;  // noted during the current module call (a few)
  bool noting_ = false;               // a module call of decide() is running (and demand on)
  bool sn_demand_on_ = false;         // set_sn_demand

  // Preallocated batch state (no allocation per packet once warm).
  std::vector<std::uint8_t> ring_mem_;  // the receive ring: kBatch buffers
  std::vector<io::Datagram> ring_;
  std::vector<io::Datagram> txq_;
  std::vector<std::unique_ptr<std::uint8_t[]>> pool_;  // copies: multicast, module sends
  std::size_t pool_used_ = 0;
  std::vector<Pipe*> txq_pipes_;
  std::unique_ptr<Pending[]> pending_;
  bool in_batch_ = false;
};

}  // namespace ie::sn
