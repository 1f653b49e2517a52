// What the module runtime's files share (not installed): the registered-module record, the
// runtime's and a worker's private state, the per-instance ie_sn_env, and the validation
// rules the host table and the runtime both apply.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ie/sn/modules.hpp"
#include "ie/store/sqlite.hpp"
#include "ie/util/counter.hpp"
#include "ie/util/log.hpp"

namespace ie::sn::detail {

inline constexpr std::size_t kMaxCounters = IE_SN_MAX_COUNTERS;
// The runtime's own counters of every module, declared first (ids 1 and 2).
inline constexpr std::uint32_t kCounterPackets = 1;
inline constexpr std::uint32_t kCounterInvalidDecisions = 2;
inline constexpr std::string_view kReservedCounters[] = {"packets", "invalid_decisions"};

// One module instance's counter values. Written only by its worker (single-writer Counters),
// read by ModuleRuntime::counters(); owned by the module record so the values outlive the
// instance (counters never go backwards).
struct alignas(64) CounterBlock {
  std::array<ie::Counter, kMaxCounters> c{};
};

// A registered module (built-in or loaded), shared by all workers.
struct ModuleEntry {
  const ie_sn_module_descriptor* desc = nullptr;
  std::string name;
  std::uint16_t service_id = 0;
  std::string description;
  std::string origin;         // "builtin" or the .so path
  void* dl_handle = nullptr;  // dlclose()d by the runtime's destructor

  // Counters: names (id = index + 1) and every instance's storage, guarded by counter_mu.
  // counter_count is the number of names, readable without the lock (counter_add checks
  // ids against it).
  std::mutex counter_mu;
  std::vector<std::string> counter_names;
  std::vector<std::unique_ptr<CounterBlock>> counter_blocks;
  std::atomic<std::uint32_t> counter_count{0};

  // Bumped (under the runtime's config_mu) whenever this module's configuration changes;
  // each instance compares it with the generation it last saw (poll_config).
  std::atomic<std::uint64_t> config_gen{0};

  ie::log::RateLimiter log_limit{std::chrono::seconds(1), 50};
};

// Name rules (sn_module.h).
bool valid_module_name(const char* s);
bool valid_counter_name(std::string_view s);
bool valid_config_key(std::string_view s);
// A NUL-terminated string of at most max bytes (no NUL within max + 1 bytes: too long).
std::optional<std::string_view> bounded_cstr(const char* s, std::size_t max);

// The checkpoint store: table module_state in the state database. Thread-safe (one
// connection behind a mutex; sqlite itself handles other processes, WAL mode).
class StateStore {
 public:
  static Result<std::unique_ptr<StateStore>> open(const std::string& path);
  Result<void> save(std::string_view module, std::string_view name, ConstByteSpan data);
  // nullopt: never saved.
  Result<std::optional<Bytes>> load(std::string_view module, std::string_view name);

 private:
  explicit StateStore(store::Database db) : db_(std::move(db)) {}
  std::mutex mu_;
  store::Database db_;  // guarded by mu_
};

// The static host table handed to every module.
const ie_sn_host* host_table();

}  // namespace ie::sn::detail

namespace ie::sn {

struct ModuleRuntime::Impl {
  // Registered modules, in registration order (the order of create()); guarded by
  // modules_mu. Entries never move or go away before the runtime.
  mutable std::mutex modules_mu;
  std::vector<std::unique_ptr<detail::ModuleEntry>> modules;
  bool sealed = false;  // a worker instantiated the modules: no more may be added

  // The running configuration of every module: module -> key -> value. Guarded by config_mu.
  mutable std::mutex config_mu;
  std::map<std::string, std::map<std::string, std::string>> config;

  std::unique_ptr<detail::StateStore> state;

  detail::ModuleEntry* find(std::string_view name);
};

struct WorkerModules::Impl {
  ModuleRuntime::Impl* rt = nullptr;
  WorkerServices* worker = nullptr;
  // This worker's instances in creation order, and the same by service id for dispatch (a
  // handful of modules: a linear scan beats a map).
  std::vector<std::shared_ptr<ie_sn_env>> envs;
  std::vector<std::pair<std::uint16_t, ie_sn_env*>> by_service;

  ie_sn_env* find(std::uint16_t service_id) const {
    for (const auto& [id, env] : by_service)
      if (id == service_id) return env;
    return nullptr;
  }
};

}  // namespace ie::sn

// One module instance on one worker (sn_module.h's opaque ie_sn_env). Owned by the worker's
// WorkerModules; used only on that worker's thread. Timer callbacks hold a weak reference,
// so a timer that fires after the instance is gone does nothing.
struct ie_sn_env : std::enable_shared_from_this<ie_sn_env> {
  ie::sn::ModuleRuntime::Impl* rt = nullptr;
  ie::sn::detail::ModuleEntry* mod = nullptr;
  ie::sn::WorkerServices* worker = nullptr;
  ie::sn::detail::CounterBlock* counters = nullptr;
  void* instance = nullptr;  // set when create() returns; cleared before destroy()
  bool destroying = false;
  std::uint64_t seen_config_gen = 0;
  // Pending timers: the id the module sees -> the worker's timer id.
  std::uint64_t next_timer_id = 1;
  std::unordered_map<std::uint64_t, std::uint64_t> timers;
};
