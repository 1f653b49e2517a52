// A thin, header-only C++20 wrapper over the service-module C ABI (interedge/sn_module.h), so
// a module is written as a class:
//
//   class Echo : public ie::sn::Module {
//    public:
//     explicit Echo(const ie::sn::ModuleContext& ctx) : Module(ctx) {
//       seen_ = declare_counter("seen", "packets decided");
//     }
//     void on_packets(std::span<const ie_sn_packet> in, std::span<ie_sn_decision> out) override {
//       for (std::size_t i = 0; i < in.size(); ++i) {
//         out[i] = forward({in[i].from_pipe});    // back where it came from
//         cache_insert(flow_of(in[i]), out[i]);  // the next packets never reach us
//       }
//       count(seen_, in.size());
//     }
//    private:
//     ie::sn::ModuleCounter seen_;
//   };
//   IE_SN_MODULE(Echo, "echo", 0x8002, "sends every packet back")
//
// IE_SN_MODULE defines the descriptor (built at compile time: no code runs before the SN has
// checked it), the C trampolines and the exported ie_sn_module_v1. A module compiled into the
// SN uses IE_SN_BUILTIN_MODULE(Class, function, ...) instead, which defines
// `const ie_sn_module_descriptor* function()` in the current namespace and exports nothing.
//
// The SN creates one instance per worker (the constructor runs on that worker's thread) and
// calls it only from that thread. To refuse to start, throw from the constructor: the
// trampoline logs the message and create() returns NULL. Exceptions never cross the C ABI:
// one escaping on_packets turns the batch into drops; the others are logged and swallowed.
// on_control / on_pipe_down / on_config are reported to the SN only if the class overrides
// them (declare the overrides public: the macros look at &Class::on_control).
//
// Only the C header and the standard library are used here, so a module built out of tree
// needs nothing but the two installed headers (docs/service-modules.md).
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "interedge/sn_module.h"

namespace ie::sn {

// What the SN gives an instance at creation.
struct ModuleContext {
  const ie_sn_host* host = nullptr;
  ie_sn_env* env = nullptr;
  std::uint32_t worker_index = 0;
};

// A declared counter; an invalid one (id 0: bad name, too many) ignores additions.
struct ModuleCounter {
  std::uint32_t id = 0;
  explicit operator bool() const { return id != 0; }
};

class Module {
 public:
  explicit Module(const ModuleContext& ctx) : ctx_(ctx) {}
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // ---- Callbacks (on the instance's worker thread) -----------------------------------------

  // Packets that missed the decision cache: write one decision per packet into out
  // (out.size() == packets.size()). Pointers in the packets are valid during the call only.
  virtual void on_packets(std::span<const ie_sn_packet> packets, std::span<ie_sn_decision> out) = 0;
  // An out-of-band request for this service (control worker only); answer with control_reply.
  virtual void on_control(ie_sn_pipe peer, std::uint32_t id, std::span<const std::uint8_t> data) {
    (void)peer, (void)id, (void)data;
  }
  virtual void on_pipe_down(ie_sn_pipe pipe) { (void)pipe; }
  // This module's configuration changed (config_set by any instance, or an SN reload).
  virtual void on_config() {}

  // ---- Decisions ---------------------------------------------------------------------------

  static ie_sn_decision drop() { return decision(IE_SN_DROP); }
  static ie_sn_decision consumed() { return decision(IE_SN_CONSUMED); }
  // The pipe-terminus forwards by the inner destination address (as the null service).
  static ie_sn_decision by_destination() { return decision(IE_SN_DEFAULT); }
  // Forward to each pipe (at most IE_SN_MAX_NEXT_HOPS are kept; none: drop).
  static ie_sn_decision forward(std::span<const ie_sn_pipe> hops) {
    if (hops.empty()) return drop();
    ie_sn_decision d = decision(IE_SN_FORWARD);
    d.hop_count =
        static_cast<std::uint32_t>(std::min<std::size_t>(hops.size(), IE_SN_MAX_NEXT_HOPS));
    for (std::uint32_t i = 0; i < d.hop_count; ++i)
      d.hops[i] = hops[i];
    return d;
  }
  static ie_sn_decision forward(std::initializer_list<ie_sn_pipe> hops) {
    return forward(std::span<const ie_sn_pipe>(hops.begin(), hops.size()));
  }
  // The decision-cache key of a packet's flow.
  static ie_sn_flow_key flow_of(const ie_sn_packet& p) {
    ie_sn_flow_key k{};
    k.src = p.src;
    k.service_id = p.service_id;
    k.connection_id = p.connection_id;
    return k;
  }

  // ---- Decision cache (this worker's shard) ------------------------------------------------

  // Only DROP and FORWARD decisions can be cached, and only for this module's service id.
  bool cache_insert(const ie_sn_flow_key& key, const ie_sn_decision& d) {
    return IE_SN_HOST_HAS(ctx_.host, cache_insert) &&
           ctx_.host->cache_insert(ctx_.env, &key, &d) == IE_SN_OK;
  }
  bool cache_remove(const ie_sn_flow_key& key) {
    return IE_SN_HOST_HAS(ctx_.host, cache_remove) &&
           ctx_.host->cache_remove(ctx_.env, &key) == IE_SN_OK;
  }
  std::optional<std::uint64_t> cache_hit_count(const ie_sn_flow_key& key) {
    std::uint64_t hits = 0;
    if (!IE_SN_HOST_HAS(ctx_.host, cache_hit_count) ||
        ctx_.host->cache_hit_count(ctx_.env, &key, &hits) != IE_SN_OK)
      return std::nullopt;
    return hits;
  }
  // Whether the entry was used at or after since_ns (now_ns() clock).
  bool cache_recently_used(const ie_sn_flow_key& key, std::uint64_t since_ns) {
    return IE_SN_HOST_HAS(ctx_.host, cache_recently_used) &&
           ctx_.host->cache_recently_used(ctx_.env, &key, since_ns) == 1;
  }

  // ---- Routing -----------------------------------------------------------------------------

  std::optional<ie_sn_pipe> route(const ie_sn_addr& dst) {
    ie_sn_pipe p = 0;
    if (!IE_SN_HOST_HAS(ctx_.host, route_lookup) ||
        ctx_.host->route_lookup(ctx_.env, &dst, &p) != IE_SN_OK)
      return std::nullopt;
    return p;
  }
  // The pipe towards the SN named DOM.SN; nullopt for this SN itself or an unknown one.
  std::optional<ie_sn_pipe> sn_route(std::string_view sn_name) {
    char name[sizeof(ie_sn_pipe_info{}.sn_name)];
    if (sn_name.empty() || sn_name.size() >= sizeof name ||
        sn_name.find('\0') != std::string_view::npos || !IE_SN_HOST_HAS(ctx_.host, sn_lookup))
      return std::nullopt;
    std::memcpy(name, sn_name.data(), sn_name.size());
    name[sn_name.size()] = '\0';
    ie_sn_pipe p = 0;
    if (ctx_.host->sn_lookup(ctx_.env, name, &p) != IE_SN_OK) return std::nullopt;
    return p;
  }
  // What a pipe is (flags: IE_SN_PIPE_F_*, 0 from an SN that predates them).
  std::optional<ie_sn_pipe_info> pipe_info(ie_sn_pipe pipe) {
    ie_sn_pipe_info info{};
    info.struct_size = sizeof info;
    if (!IE_SN_HOST_HAS(ctx_.host, pipe_info) ||
        ctx_.host->pipe_info(ctx_.env, pipe, &info) != IE_SN_OK)
      return std::nullopt;
    return info;
  }
  // "10.1.0.2" (as ::ffff:10.1.0.2) or "fd00::2"; nullopt if not a numeric address.
  static std::optional<ie_sn_addr> parse_addr(std::string_view text) {
    char buf[INET6_ADDRSTRLEN];
    if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    ie_sn_addr a{};
    if (::inet_pton(AF_INET6, buf, a.bytes) == 1) return a;
    if (::inet_pton(AF_INET, buf, a.bytes + 12) == 1) {
      a.bytes[10] = a.bytes[11] = 0xff;
      return a;
    }
    return std::nullopt;
  }

  // ---- Sending -----------------------------------------------------------------------------

  struct OutPacket {
    std::uint16_t service_id = 0;
    std::uint64_t connection_id = 0;
    std::span<const std::uint8_t> inner;
    std::span<const std::uint8_t> tlvs;  // encoded TLVs, unpadded
    std::uint8_t ilp_flags = 0;
  };
  // A new ILP packet on a pipe: IE_SN_OK, IE_SN_ENOENT (pipe gone), IE_SN_EINVAL, IE_SN_EIO.
  int send(ie_sn_pipe pipe, const OutPacket& p) {
    if (!IE_SN_HOST_HAS(ctx_.host, send) || p.tlvs.size() > UINT32_MAX ||
        p.inner.size() > UINT32_MAX)
      return IE_SN_EINVAL;
    ie_sn_out_packet o{};
    o.struct_size = sizeof o;
    o.service_id = p.service_id;
    o.ilp_flags = p.ilp_flags;
    o.connection_id = p.connection_id;
    o.tlvs = p.tlvs.data();
    o.tlvs_len = static_cast<std::uint32_t>(p.tlvs.size());
    o.inner = p.inner.data();
    o.inner_len = static_cast<std::uint32_t>(p.inner.size());
    return ctx_.host->send(ctx_.env, pipe, &o);
  }
  int control_reply(ie_sn_pipe peer, std::uint32_t id, std::span<const std::uint8_t> data) {
    if (!IE_SN_HOST_HAS(ctx_.host, control_reply)) return IE_SN_EINVAL;
    return ctx_.host->control_reply(ctx_.env, peer, id, data.data(), data.size());
  }
  int control_reply(ie_sn_pipe peer, std::uint32_t id, std::string_view text) {
    return control_reply(peer, id,
                         std::span<const std::uint8_t>(
                             reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
  }

  // ---- Time and timers ---------------------------------------------------------------------

  std::uint64_t now_ns() {
    return IE_SN_HOST_HAS(ctx_.host, now_ns) ? ctx_.host->now_ns(ctx_.env) : 0;
  }
  // A one-shot timer on this worker running fn; returns its id (0: refused). Timers still
  // pending when the instance is destroyed never run.
  std::uint64_t add_timer(std::chrono::milliseconds delay, std::function<void()> fn) {
    if (!fn || delay.count() < 0 || !IE_SN_HOST_HAS(ctx_.host, timer_add)) return 0;
    const std::uint64_t id = ctx_.host->timer_add(
        ctx_.env, static_cast<std::uint64_t>(delay.count()), &Module::timer_trampoline, nullptr);
    if (id != 0) timers_[id] = std::move(fn);
    return id;
  }
  bool cancel_timer(std::uint64_t id) {
    if (timers_.erase(id) == 0) return false;
    if (IE_SN_HOST_HAS(ctx_.host, timer_cancel)) ctx_.host->timer_cancel(ctx_.env, id);
    return true;
  }
  std::size_t pending_timers() const { return timers_.size(); }

  // ---- Configuration ([modules.<name>] of the SN's configuration) --------------------------

  std::optional<std::string> config(std::string_view key) {
    if (!IE_SN_HOST_HAS(ctx_.host, config_get)) return std::nullopt;
    const std::string k(key);
    std::string buf(64, '\0');
    for (int attempt = 0; attempt < 3; ++attempt) {  // the value may change in between
      std::size_t len = buf.size();
      const int rc = ctx_.host->config_get(ctx_.env, k.c_str(), buf.data(), &len);
      if (rc == IE_SN_OK) {
        buf.resize(len - 1);
        return buf;
      }
      if (rc != IE_SN_ENOSPC) return std::nullopt;
      buf.assign(len, '\0');
    }
    return std::nullopt;
  }
  std::string config_or(std::string_view key, std::string_view fallback) {
    auto v = config(key);
    return v ? std::move(*v) : std::string(fallback);
  }
  // Changes the running value for every instance (each gets on_config).
  bool set_config(std::string_view key, std::string_view value) {
    if (!IE_SN_HOST_HAS(ctx_.host, config_set)) return false;
    const std::string k(key), v(value);
    return ctx_.host->config_set(ctx_.env, k.c_str(), v.c_str()) == IE_SN_OK;
  }

  // ---- Checkpoints (the SN's state database; blocking: not per packet) ---------------------

  bool save_state(std::string_view name, std::span<const std::uint8_t> data) {
    if (!IE_SN_HOST_HAS(ctx_.host, state_save)) return false;
    const std::string n(name);
    return ctx_.host->state_save(ctx_.env, n.c_str(), data.data(), data.size()) == IE_SN_OK;
  }
  bool save_state(std::string_view name, std::string_view data) {
    return save_state(name, std::span<const std::uint8_t>(
                                reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
  }
  // nullopt if never saved (or on a storage error).
  std::optional<std::vector<std::uint8_t>> load_state(std::string_view name) {
    if (!IE_SN_HOST_HAS(ctx_.host, state_load)) return std::nullopt;
    const std::string n(name);
    std::vector<std::uint8_t> buf(256);
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::size_t len = buf.size();
      const int rc = ctx_.host->state_load(ctx_.env, n.c_str(), buf.data(), &len);
      if (rc == IE_SN_OK) {
        buf.resize(len);
        return buf;
      }
      if (rc != IE_SN_ENOSPC) return std::nullopt;
      buf.resize(len);
    }
    return std::nullopt;
  }

  // ---- Log (prefixed with the module name by the SN) ---------------------------------------

  void log(ie_sn_log_level level, std::string_view message) {
    if (!IE_SN_HOST_HAS(ctx_.host, log)) return;
    const std::string m(message.substr(0, IE_SN_MAX_LOG_LEN + 1));
    ctx_.host->log(ctx_.env, level, m.c_str());
  }
  void log_debug(std::string_view m) { log(IE_SN_LOG_DEBUG, m); }
  void log_info(std::string_view m) { log(IE_SN_LOG_INFO, m); }
  void log_warn(std::string_view m) { log(IE_SN_LOG_WARN, m); }
  void log_error(std::string_view m) { log(IE_SN_LOG_ERROR, m); }

  // ---- Counters (shown by `iesn counters` as <module>.<name>, summed over workers) --------

  ModuleCounter declare_counter(std::string_view name, std::string_view help = {}) {
    if (!IE_SN_HOST_HAS(ctx_.host, counter_declare)) return {};
    const std::string n(name), h(help);
    return ModuleCounter{ctx_.host->counter_declare(ctx_.env, n.c_str(), h.c_str())};
  }
  void count(ModuleCounter c, std::uint64_t n = 1) {
    if (c.id != 0 && IE_SN_HOST_HAS(ctx_.host, counter_add))
      ctx_.host->counter_add(ctx_.env, c.id, n);
  }

  // ---- Raw access --------------------------------------------------------------------------

  const ie_sn_host* host() const { return ctx_.host; }
  ie_sn_env* env() const { return ctx_.env; }
  std::uint32_t worker_index() const { return ctx_.worker_index; }

 private:
  static ie_sn_decision decision(ie_sn_action a) {
    ie_sn_decision d{};
    d.action = a;
    return d;
  }

  static void timer_trampoline(void* instance, ie_sn_env*, std::uint64_t id, void*) noexcept {
    auto* self = static_cast<Module*>(instance);
    const auto it = self->timers_.find(id);
    if (it == self->timers_.end()) return;
    std::function<void()> fn = std::move(it->second);
    self->timers_.erase(it);
    try {
      fn();
    } catch (const std::exception& e) {
      self->log_error(std::string("timer callback threw: ") + e.what());
    } catch (...) {
      self->log_error("timer callback threw");
    }
  }

  ModuleContext ctx_;
  std::unordered_map<std::uint64_t, std::function<void()>> timers_;
};

namespace module_glue {

// [a-z0-9_]{1,32}, at compile time.
constexpr bool valid_name(const char* s) {
  std::size_t n = 0;
  for (; s[n] != '\0'; ++n) {
    const char c = s[n];
    if (n >= IE_SN_MAX_NAME_LEN || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return n > 0;
}

inline void log_exception(Module* m, const char* where) noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    try {
      m->log_error(std::string(where) + " threw: " + e.what());
    } catch (...) {
    }
  } catch (...) {
    try {
      m->log_error(std::string(where) + " threw");
    } catch (...) {
    }
  }
}

// The C entry points for class T.
template <typename T>
struct Glue {
  static void* create(const ie_sn_host* host, ie_sn_env* env, std::uint32_t worker) noexcept {
    if (host == nullptr || host->abi_version != IE_SN_MODULE_ABI_VERSION) return nullptr;
    try {
      Module* m = new T(ModuleContext{host, env, worker});
      return m;
    } catch (const std::exception& e) {
      if (IE_SN_HOST_HAS(host, log)) {
        char msg[256];
        std::snprintf(msg, sizeof msg, "create() failed: %s", e.what());
        host->log(env, IE_SN_LOG_ERROR, msg);
      }
    } catch (...) {
      if (IE_SN_HOST_HAS(host, log)) host->log(env, IE_SN_LOG_ERROR, "create() failed");
    }
    return nullptr;
  }
  static void destroy(void* instance) noexcept { delete static_cast<Module*>(instance); }
  static void on_packets(void* instance, ie_sn_env*, const ie_sn_packet* packets,
                         ie_sn_decision* out, std::size_t n) noexcept {
    auto* m = static_cast<Module*>(instance);
    try {
      m->on_packets(std::span<const ie_sn_packet>(packets, n), std::span<ie_sn_decision>(out, n));
    } catch (...) {
      for (std::size_t i = 0; i < n; ++i)
        out[i] = Module::drop();
      log_exception(m, "on_packets");
    }
  }
  static void on_control(void* instance, ie_sn_env*, ie_sn_pipe peer, std::uint32_t id,
                         const std::uint8_t* data, std::size_t len) noexcept {
    auto* m = static_cast<Module*>(instance);
    try {
      m->on_control(peer, id, std::span<const std::uint8_t>(data, len));
    } catch (...) {
      log_exception(m, "on_control");
    }
  }
  static void on_pipe_down(void* instance, ie_sn_env*, ie_sn_pipe pipe) noexcept {
    auto* m = static_cast<Module*>(instance);
    try {
      m->on_pipe_down(pipe);
    } catch (...) {
      log_exception(m, "on_pipe_down");
    }
  }
  static void on_config(void* instance, ie_sn_env*) noexcept {
    auto* m = static_cast<Module*>(instance);
    try {
      m->on_config();
    } catch (...) {
      log_exception(m, "on_config");
    }
  }
};

// Whether T overrides a callback (its member pointer type then names T or a class between).
template <typename A, typename B>
inline constexpr bool kOverrides = !std::is_same_v<A, B>;

template <typename T>
constexpr ie_sn_module_descriptor make_descriptor(const char* name, std::uint16_t service_id,
                                                  const char* description) {
  static_assert(std::is_base_of_v<Module, T>, "a module class derives from ie::sn::Module");
  static_assert(std::is_constructible_v<T, const ModuleContext&>,
                "a module class is constructible from const ie::sn::ModuleContext&");
  ie_sn_module_descriptor d{};
  d.abi_version = IE_SN_MODULE_ABI_VERSION;
  d.struct_size = sizeof(ie_sn_module_descriptor);
  d.name = name;
  d.service_id = service_id;
  d.reserved = 0;
  d.description = description;
  d.create = &Glue<T>::create;
  d.destroy = &Glue<T>::destroy;
  d.on_packets = &Glue<T>::on_packets;
  if constexpr (kOverrides<decltype(&T::on_control), decltype(&Module::on_control)>)
    d.on_control = &Glue<T>::on_control;
  if constexpr (kOverrides<decltype(&T::on_pipe_down), decltype(&Module::on_pipe_down)>)
    d.on_pipe_down = &Glue<T>::on_pipe_down;
  if constexpr (kOverrides<decltype(&T::on_config), decltype(&Module::on_config)>)
    d.on_config = &Glue<T>::on_config;
  return d;
}

}  // namespace module_glue
}  // namespace ie::sn

// A module in a shared object: defines the exported ie_sn_module_v1(). Use once per .so, at
// namespace scope.
#define IE_SN_MODULE(Class, name, service_id, description)                            \
  static_assert(::ie::sn::module_glue::valid_name(name),                              \
                "module name must be 1-32 characters of [a-z0-9_]");                  \
  extern "C" __attribute__((visibility("default"))) const ie_sn_module_descriptor*    \
  ie_sn_module_v1(void) {                                                             \
    static constexpr ie_sn_module_descriptor kDescriptor =                            \
        ::ie::sn::module_glue::make_descriptor<Class>(name, service_id, description); \
    return &kDescriptor;                                                              \
  }

// A module compiled into the SN: defines `const ie_sn_module_descriptor* function()` in the
// current namespace, to pass to ModuleRuntime::add_builtin.
#define IE_SN_BUILTIN_MODULE(Class, function, name, service_id, description)          \
  static_assert(::ie::sn::module_glue::valid_name(name),                              \
                "module name must be 1-32 characters of [a-z0-9_]");                  \
  const ie_sn_module_descriptor* function() {                                         \
    static constexpr ie_sn_module_descriptor kDescriptor =                            \
        ::ie::sn::module_glue::make_descriptor<Class>(name, service_id, description); \
    return &kDescriptor;                                                              \
  }
