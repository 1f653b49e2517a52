// The SN's execution environment for service modules: loads and checks module descriptors
// (built-ins registered statically, shared objects named in the configuration), owns what
// modules share across workers (configuration values, the checkpoint store, counters, the
// log), and creates one instance of every module per worker.
//
// Lifecycle: ModuleRuntime::create() once per SN (control thread) -> add_builtin()/load()
// -> instantiate() once per worker, called on that worker's thread -> WorkerModules is used
// only by that worker -> destroyed before the runtime (shared objects stay loaded until the
// runtime goes). Modules cannot be added once a worker has instantiated them.
//
// Threads: modules(), counters(), module_config() and set_module_config() may be called from
// any thread at any time. Shared state and its guards (runtime.cpp): the module list
// (modules_mu), every module's configuration (config_mu), the checkpoint database (state_mu),
// each module's counter names and storage list (its counter_mu). Counter values are
// single-writer ie::Counters per (module, worker): the packet path takes no lock.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "ie/sn/env.hpp"
#include "ie/util/result.hpp"
#include "interedge/sn_module.h"

namespace ie::sn {

struct RuntimeOptions {
  // sqlite file for module checkpoints (state_save/state_load); ":memory:" for tests.
  std::string state_db = ":memory:";
  // [modules.<name>] sections of the SN configuration: key -> value strings.
  std::map<std::string, std::map<std::string, std::string>> module_config;
};

// Checks a descriptor the way the SN does before running any module code: ABI version,
// struct size, name syntax, required callbacks. Errc::invalid_argument with a message naming the
// problem.
Result<void> check_descriptor(const ie_sn_module_descriptor* d);

class WorkerModules;

class ModuleRuntime {
 public:
  static Result<std::unique_ptr<ModuleRuntime>> create(RuntimeOptions options);
  ~ModuleRuntime();

  // Registers a module compiled into the SN (checked like a loaded one).
  Result<void> add_builtin(const ie_sn_module_descriptor* d);
  // dlopen()s a module, finds ie_sn_module_v1, checks the descriptor. Refuses a second
  // module for a service id or name already taken.
  Result<void> load(const std::string& path);

  // Names and service ids of the registered modules.
  struct Info {
    std::string name;
    std::uint16_t service_id;
    std::string description;
    std::string origin;  // "builtin" or the .so path
  };
  std::vector<Info> modules() const;

  // Creates every module's instance for one worker (on that worker's thread).
  Result<std::unique_ptr<WorkerModules>> instantiate(WorkerServices& worker);

  // Replaces the configuration of every module (SIGHUP reload); instances of the modules
  // whose values changed get on_config the next time their worker calls
  // WorkerModules::poll_config().
  void set_module_config(std::map<std::string, std::map<std::string, std::string>> cfg);
  // The running configuration (after config_set calls by modules): module -> key -> value.
  std::map<std::string, std::map<std::string, std::string>> module_config() const;

  // Module counters summed over workers: "<module>.<counter>" -> value. Every module has
  // two of its own: packets (handed to it by on_packets) and invalid_decisions (decisions
  // that broke the ABI's rules and were taken as DROP). Declared counters show from 0.
  std::map<std::string, std::uint64_t> counters() const;

  struct Impl;

 private:
  explicit ModuleRuntime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class WorkerModules {
 public:
  ~WorkerModules();
  bool has(std::uint16_t service_id) const;
  // Hands n cache-missed packets of one service to its module; false if no module serves
  // it (the caller drops them as unknown_service). out.size() >= packets.size(); every
  // out[i] is valid afterwards (an invalid decision has become IE_SN_DROP, hop_count 0).
  bool on_packets(std::uint16_t service_id, std::span<const ie_sn_packet> packets,
                  std::span<ie_sn_decision> out);
  // An out-of-band request for a service; false if no module takes control messages for it.
  bool on_control(std::uint16_t service_id, PipeId peer, std::uint32_t id, ConstByteSpan data);
  void on_pipe_down(PipeId pipe);
  // Delivers pending configuration changes (on_config) to this worker's instances.
  void poll_config();

  struct Impl;
  explicit WorkerModules(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// The built-in null module (service 0): every packet goes back to the pipe-terminus to be
// forwarded by its inner destination (IE_SN_DEFAULT); never installs cache entries, so every
// packet of the null service crosses the module boundary.
const ie_sn_module_descriptor* null_module();

}  // namespace ie::sn
