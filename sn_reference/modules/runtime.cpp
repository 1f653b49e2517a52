// The module runtime (ie/sn/modules.hpp): descriptor checks, built-in registration, loading
// shared objects, the configuration shared by a module's instances, counters summed over
// workers, and creating a worker's instances.
//
// Loading a shared object, in order (nothing of the module runs before step 4 except its
// static initialisers at dlopen and the entry function, which only returns a pointer):
//   1. dlopen(RTLD_NOW | RTLD_LOCAL): every symbol resolved now, none leaked to others;
//   2. dlsym(ie_sn_module_v1);
//   3. call it, check_descriptor() the result, refuse duplicate names and service ids;
//   4. at instantiate(), create() per worker.
#include <dlfcn.h>

#include <cstring>
#include <utility>

#include "runtime_internal.hpp"

namespace ie::sn {
namespace detail {

std::optional<std::string_view> bounded_cstr(const char* s, std::size_t max) {
  if (s == nullptr) return std::nullopt;
  const std::size_t n = ::strnlen(s, max + 1);
  if (n > max) return std::nullopt;
  return std::string_view(s, n);
}

namespace {
bool lower_alnum(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (const char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}
}  // namespace

bool valid_module_name(const char* s) {
  const auto v = bounded_cstr(s, IE_SN_MAX_NAME_LEN);
  return v && lower_alnum(*v, IE_SN_MAX_NAME_LEN);
}

bool valid_counter_name(std::string_view s) {
  return lower_alnum(s, IE_SN_MAX_COUNTER_NAME_LEN);
}

bool valid_config_key(std::string_view s) {
  if (s.empty() || s.size() > IE_SN_MAX_CONFIG_KEY_LEN) return false;
  for (const char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return false;
  return true;
}

}  // namespace detail

namespace {

// A module-supplied string, shortened and made printable for an error message.
std::string printable(const char* s, std::size_t max = 40) {
  if (s == nullptr) return "(null)";
  std::string out;
  for (std::size_t i = 0; i < max && s[i] != '\0'; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (::strnlen(s, max + 1) > max) out += "...";
  return out;
}

Unexpected bad(std::string what) {
  return fail(Errc::invalid_argument, std::move(what));
}

std::string dl_error() {
  const char* e = ::dlerror();
  return e != nullptr ? e : "unknown dl error";
}

}  // namespace

Result<void> check_descriptor(const ie_sn_module_descriptor* d) {
  if (d == nullptr) return bad("module descriptor is NULL");
  if (d->abi_version != IE_SN_MODULE_ABI_VERSION)
    return bad("module ABI version " + std::to_string(d->abi_version) + ", this SN supports " +
               std::to_string(IE_SN_MODULE_ABI_VERSION));
  if (d->struct_size < sizeof(ie_sn_module_descriptor))
    return bad("module descriptor struct_size " + std::to_string(d->struct_size) +
               " is smaller than the version " + std::to_string(IE_SN_MODULE_ABI_VERSION) +
               " descriptor (" + std::to_string(sizeof(ie_sn_module_descriptor)) + " bytes)");
  if (!detail::valid_module_name(d->name))
    return bad("module name '" + printable(d->name) + "' is invalid: 1-" +
               std::to_string(IE_SN_MAX_NAME_LEN) + " characters of [a-z0-9_]");
  const std::string who = "module '" + std::string(d->name) + "': ";
  if (d->create == nullptr) return bad(who + "create() is missing");
  if (d->destroy == nullptr) return bad(who + "destroy() is missing");
  if (d->on_packets == nullptr) return bad(who + "on_packets() is missing");
  return ok();
}

detail::ModuleEntry* ModuleRuntime::Impl::find(std::string_view name) {
  for (auto& m : modules)
    if (m->name == name) return m.get();
  return nullptr;
}

namespace {

// Checks d and registers it. Caller holds modules_mu.
Result<void> register_module(ModuleRuntime::Impl& rt, const ie_sn_module_descriptor* d,
                             std::string origin, void* handle) {
  if (auto c = check_descriptor(d); !c) {
    auto e = c.error();
    e.context = origin + ": " + e.context;
    return fail(std::move(e));
  }
  if (rt.sealed)
    return fail(Errc::busy, origin + ": module '" + d->name +
                                "' added after the workers instantiated the modules");
  for (const auto& m : rt.modules) {
    if (m->name == d->name)
      return fail(Errc::exists, origin + ": a module named '" + m->name + "' is already loaded (" +
                                    m->origin + ")");
    if (m->service_id == d->service_id)
      return fail(Errc::exists, origin + ": module '" + d->name + "' wants service " +
                                    std::to_string(d->service_id) + ", already served by '" +
                                    m->name + "' (" + m->origin + ")");
  }
  auto e = std::make_unique<detail::ModuleEntry>();
  e->desc = d;
  e->name = d->name;
  e->service_id = d->service_id;
  e->description = d->description != nullptr ? printable(d->description, 200) : "";
  e->origin = std::move(origin);
  e->dl_handle = handle;
  for (const auto r : detail::kReservedCounters)
    e->counter_names.emplace_back(r);
  e->counter_count.store(static_cast<std::uint32_t>(e->counter_names.size()));
  rt.modules.push_back(std::move(e));
  return ok();
}

}  // namespace

ModuleRuntime::ModuleRuntime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ModuleRuntime::~ModuleRuntime() {
  // Every WorkerModules is gone (lifecycle contract): no module code can run any more.
  for (auto& m : impl_->modules)
    if (m->dl_handle != nullptr) ::dlclose(m->dl_handle);
}

Result<std::unique_ptr<ModuleRuntime>> ModuleRuntime::create(RuntimeOptions options) {
  auto impl = std::make_unique<Impl>();
  auto st = detail::StateStore::open(options.state_db.empty() ? ":memory:" : options.state_db);
  if (!st) return fail(st.error());
  impl->state = std::move(*st);
  impl->config = std::move(options.module_config);
  return std::unique_ptr<ModuleRuntime>(new ModuleRuntime(std::move(impl)));
}

Result<void> ModuleRuntime::add_builtin(const ie_sn_module_descriptor* d) {
  std::lock_guard lock(impl_->modules_mu);
  return register_module(*impl_, d, "builtin", nullptr);
}

Result<void> ModuleRuntime::load(const std::string& path) {
  std::lock_guard lock(impl_->modules_mu);
  if (impl_->sealed)
    return fail(Errc::busy, path + ": modules cannot be loaded after the workers started");
  ::dlerror();
  void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) return fail(Errc::not_found, "load module " + path + ": " + dl_error());
  ::dlerror();
  void* sym = ::dlsym(h, IE_SN_MODULE_ENTRY_SYMBOL);
  if (sym == nullptr) {
    const std::string why = dl_error();
    ::dlclose(h);
    return fail(Errc::invalid_argument,
                "load module " + path + ": no " + IE_SN_MODULE_ENTRY_SYMBOL + " (" + why + ")");
  }
  ie_sn_module_entry_fn entry = nullptr;
  static_assert(sizeof entry == sizeof sym);
  std::memcpy(&entry, &sym, sizeof entry);  // object pointer -> function pointer (POSIX)
  const ie_sn_module_descriptor* d = entry();
  auto r = register_module(*impl_, d, path, h);
  if (!r) {
    ::dlclose(h);
    return r;
  }
  IE_LOG_INFO("module '{}' (service {}) loaded from {}", d->name, d->service_id, path);
  return ok();
}

std::vector<ModuleRuntime::Info> ModuleRuntime::modules() const {
  std::lock_guard lock(impl_->modules_mu);
  std::vector<Info> out;
  out.reserve(impl_->modules.size());
  for (const auto& m : impl_->modules)
    out.push_back(Info{m->name, m->service_id, m->description, m->origin});
  return out;
}

void ModuleRuntime::set_module_config(
    std::map<std::string, std::map<std::string, std::string>> cfg) {
  std::lock_guard mlock(impl_->modules_mu);
  std::lock_guard clock(impl_->config_mu);
  static const std::map<std::string, std::string> kNone;
  for (auto& m : impl_->modules) {
    const auto o = impl_->config.find(m->name);
    const auto n = cfg.find(m->name);
    const auto& before = o == impl_->config.end() ? kNone : o->second;
    const auto& after = n == cfg.end() ? kNone : n->second;
    if (before != after) m->config_gen.fetch_add(1, std::memory_order_release);
  }
  impl_->config = std::move(cfg);
}

std::map<std::string, std::map<std::string, std::string>> ModuleRuntime::module_config() const {
  std::lock_guard lock(impl_->config_mu);
  return impl_->config;
}

std::map<std::string, std::uint64_t> ModuleRuntime::counters() const {
  std::map<std::string, std::uint64_t> out;
  std::lock_guard mlock(impl_->modules_mu);
  for (const auto& m : impl_->modules) {
    std::lock_guard clock(m->counter_mu);
    for (std::size_t i = 0; i < m->counter_names.size(); ++i) {
      std::uint64_t sum = 0;
      for (const auto& b : m->counter_blocks)
        sum += b->c[i].get();
      out[m->name + "." + m->counter_names[i]] = sum;
    }
  }
  return out;
}

Result<std::unique_ptr<WorkerModules>> ModuleRuntime::instantiate(WorkerServices& worker) {
  std::vector<detail::ModuleEntry*> mods;
  {
    std::lock_guard lock(impl_->modules_mu);
    impl_->sealed = true;
    for (auto& m : impl_->modules)
      mods.push_back(m.get());
  }
  auto wimpl = std::make_unique<WorkerModules::Impl>();
  WorkerModules::Impl* wi = wimpl.get();
  wi->rt = impl_.get();
  wi->worker = &worker;
  // Built before any create() so that a failure part-way destroys what was created (in
  // reverse order) through ~WorkerModules.
  auto wm = std::make_unique<WorkerModules>(std::move(wimpl));
  for (detail::ModuleEntry* m : mods) {
    auto env = std::make_shared<ie_sn_env>();
    env->rt = impl_.get();
    env->mod = m;
    env->worker = &worker;
    {
      std::lock_guard lock(m->counter_mu);
      m->counter_blocks.push_back(std::make_unique<detail::CounterBlock>());
      env->counters = m->counter_blocks.back().get();
    }
    // Instances start from the configuration create() reads: no on_config for it.
    env->seen_config_gen = m->config_gen.load(std::memory_order_acquire);
    void* inst = m->desc->create(detail::host_table(), env.get(), worker.worker_index());
    if (inst == nullptr) {
      // Timers the failed create() may have left must not fire into nothing.
      for (const auto& [id, wid] : env->timers)
        worker.cancel_timer(wid);
      return fail(Errc::internal, "module '" + m->name + "': create() failed on worker " +
                                      std::to_string(worker.worker_index()));
    }
    env->instance = inst;
    wi->by_service.emplace_back(m->service_id, env.get());
    wi->envs.push_back(std::move(env));
  }
  return wm;
}

}  // namespace ie::sn
