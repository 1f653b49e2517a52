// The reference SN as one object (docs/sn.md): the composition root of iesn. Built from a
// validated configuration and the SN's private key, it creates in order the module runtime
// (built-ins null and ip, then the configured shared objects), one SO_REUSEPORT UDP socket
// per worker with the steering program, the workers, and the control plane on worker 0; it
// runs every worker on its own thread and serves the status socket on worker 0. Destroyed
// in reverse order. The `iesn run` program is a thin caller (run_iesn), and unit tests build
// an Sn in-process on 127.0.0.1:0.
//
// Threads: create(), start(), stop(), wait(), reload()/apply_config() and the status calls
// may be used from any thread other than the workers'. The Sn must outlive its threads
// (the destructor stops and joins them).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ie/crypto/association.hpp"
#include "ie/ctl/server.hpp"
#include "ie/sn/config.hpp"
#include "ie/sn/modules.hpp"
#include "ie/sn/status.hpp"
#include "ie/sn/worker.hpp"
#include "ie/util/result.hpp"

namespace ie::sn {

class ControlPlane;

// Overrides of the configuration, for tests and tools. Empty: from the configuration.
struct SnOptions {
  std::optional<std::string> listen;  // e.g. "127.0.0.1:0" (an ephemeral port)
  std::optional<unsigned> workers;
  // Association timers; default: libie's, with rekey_after_time = rekey_seconds.
  std::optional<crypto::assoc::Timers> timers;
  std::size_t max_learned_peers = 100000;  // hosts (and unknown SNs) associated at once
  bool serve_control_socket = true;        // the config's control_socket, if not ""
  std::string config_path;                 // what reload() re-reads ("" : reload refused)
  int socket_buffer_bytes = 4 << 20;       // SO_RCVBUF/SO_SNDBUF per worker socket
  // Responder handshakes (DH) per second, 0: no limit (assoc::Config): over it, initiations
  // are dropped before any DH and hosts retry. Set (`iesn run --max-handshakes`): overrides
  // the configuration's [sn] max_handshakes_per_second, also across reloads.
  std::optional<std::uint32_t> max_handshakes_per_second;
};

class Sn {
 public:
  static Result<std::unique_ptr<Sn>> create(SnConfig config, noise::KeyPair key,
                                            SnOptions options = {});
  ~Sn();
  Sn(const Sn&) = delete;
  Sn& operator=(const Sn&) = delete;

  // Starts the worker threads; returns once every worker runs (or one failed to start).
  Result<void> start();
  // Asks everything to stop: worker 0 closes its sessions politely (CLOSE), then every
  // worker's loop ends. Idempotent; returns at once (wait() joins).
  void stop();
  void wait();

  // SIGHUP: re-reads options.config_path; an invalid file is refused (the error returned,
  // the old configuration kept). apply_config() does the same with a parsed configuration.
  // Applied at run time: module configuration, static routes and host prefixes, peers added
  // or removed, the handshake budget (unless SnOptions overrides it), the PSP contexts per
  // worker (each worker resizes its cache on its own thread); anything else (name, listen,
  // workers, keys, decision-cache size, sockets) is logged as needing a restart.
  Result<void> reload();
  Result<void> apply_config(SnConfig config);

  // The bound UDP endpoint (with the real port when listening on port 0).
  std::uint16_t port() const { return port_; }
  std::string endpoint() const { return endpoint_; }
  const noise::PublicKey& public_key() const { return public_key_; }
  unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }
  const std::string& name() const { return name_; }
  // The responder handshake budget the association Node applies now (0: no limit), read on
  // worker 0 (nullopt if it does not answer within 2 s).
  std::optional<std::uint32_t> handshake_budget();

  // What `iesn status` shows, collected on the workers' threads (each answers within
  // timeout or the call fails with Errc::timeout).
  Result<SnStatus> status(const StatusQuery& query = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(2));
  // One worker's state, read on its thread.
  Result<WorkerSnapshot> worker_snapshot(
      unsigned index, std::chrono::milliseconds timeout = std::chrono::seconds(2));
  // Runs fn on worker `index`'s thread and waits for it (tests; false on timeout).
  bool run_on_worker(unsigned index, std::function<void(Worker&)> fn,
                     std::chrono::milliseconds timeout = std::chrono::seconds(2));

 private:
  Sn() = default;
  void worker_main(unsigned index);
  Result<SnStatus> build_status(const StatusQuery& q, std::chrono::milliseconds timeout);
  bool on_worker_thread(unsigned index) const;
  Result<void> apply_on_control(SnConfig config);

  SnConfig config_;  // the running configuration; written by apply_config under reload_mu_
  std::string name_, edomain_;  // never change
  std::string control_socket_;  // as started
  // sn.psp_contexts_per_worker as started: each worker thread sizes its PSP context cache
  // with it first thing (a reload posts a changed value to the workers).
  std::size_t psp_contexts_ = crypto::psp::kDefaultContextCacheCapacity;
  SnOptions options_;
  noise::PublicKey public_key_{};
  std::uint16_t port_ = 0;
  std::string endpoint_;
  std::chrono::steady_clock::time_point started_at_{};
  std::unique_ptr<ModuleRuntime> runtime_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<ControlPlane> control_;
  std::unique_ptr<ctl::Server> control_server_;  // worker 0's thread only

  std::vector<std::thread> threads_;
  std::vector<std::thread::id> thread_ids_;  // written before start() returns
  std::mutex start_mu_;                      // guards the two below during start()
  std::condition_variable start_cv_;
  unsigned started_ = 0;
  std::optional<Error> start_error_;
  std::atomic<bool> stopping_{false};
  std::mutex reload_mu_;  // one reload at a time; guards config_ writes
};

// `iesn run --config FILE`: loads the configuration and key, runs the SN in the foreground
// until SIGTERM/SIGINT (clean exit within 2 s), reloads on SIGHUP, logs to stderr. Returns
// the process exit code (0 clean stop, 1 failure).
// max_handshakes_per_second: SnOptions' (nullopt: the configuration's).
int run_iesn(const std::string& config_path,
             std::optional<std::uint32_t> max_handshakes_per_second = std::nullopt);

}  // namespace ie::sn
