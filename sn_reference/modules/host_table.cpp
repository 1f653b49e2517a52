// The host table (ie_sn_host): one static table of C functions that turn a module's calls
// into calls on its worker's WorkerServices or on the runtime's shared services. Each call
// checks its arguments and answers IE_SN_EINVAL (0 for calls returning an id) rather than
// crash; none lets an exception out (a C caller could not unwind it).
#include <algorithm>
#include <cstring>

#include "runtime_internal.hpp"

namespace ie::sn::detail {
namespace {

// The ILP header holds at most 255 words, 12 bytes of which are fixed (ie/wire/ilp.hpp).
constexpr std::size_t kMaxOutTlvs = 255 * 4 - 12;
constexpr std::size_t kMaxOutInner = 65535;
constexpr std::size_t kMaxPendingTimers = 65536;
constexpr std::uint64_t kMaxTimerDelayMs = std::uint64_t{1} << 31;

// Runs f, turning any exception into `on_error` (bad_alloc is the realistic one).
template <typename R, typename F>
R guarded(R on_error, F&& f) noexcept {
  try {
    return f();
  } catch (...) {
    return on_error;
  }
}

bool valid_key(const ie_sn_env* env, const ie_sn_flow_key* key) {
  return key != nullptr && key->reserved == 0 && key->reserved2 == 0 &&
         key->service_id == env->mod->service_id;
}

// A cacheable decision (DROP, or FORWARD with 1..8 non-zero hops) -> the cache's form.
std::optional<Decision> cacheable(const ie_sn_decision& d) {
  Decision out;
  if (d.action == IE_SN_DROP) {
    out.action = Action::drop;
    return out;
  }
  if (d.action != IE_SN_FORWARD || d.hop_count < 1 || d.hop_count > IE_SN_MAX_NEXT_HOPS)
    return std::nullopt;
  out.action = Action::forward;
  out.hop_count = static_cast<std::uint8_t>(d.hop_count);
  for (std::uint32_t i = 0; i < d.hop_count; ++i) {
    if (d.hops[i] == 0) return std::nullopt;
    out.hops[i] = d.hops[i];
  }
  return out;
}

// Shared by config_get and state_load: copies `value` (+ a NUL if nul) into buf/len.
int copy_out(std::string_view value, bool nul, void* buf, std::size_t* len) {
  const std::size_t need = value.size() + (nul ? 1 : 0);
  if (*len < need) {
    *len = need;
    return IE_SN_ENOSPC;
  }
  if (!value.empty()) std::memcpy(buf, value.data(), value.size());
  if (nul) static_cast<char*>(buf)[value.size()] = '\0';
  *len = need;
  return IE_SN_OK;
}

// ---- decision cache ------------------------------------------------------------------------

int h_cache_insert(ie_sn_env* env, const ie_sn_flow_key* key, const ie_sn_decision* d) {
  if (env == nullptr || !valid_key(env, key) || d == nullptr) return IE_SN_EINVAL;
  const auto c = cacheable(*d);
  if (!c) return IE_SN_EINVAL;
  return env->worker->cache_insert(to_flow_key(*key), *c) ? IE_SN_OK : IE_SN_EINVAL;
}

int h_cache_remove(ie_sn_env* env, const ie_sn_flow_key* key) {
  if (env == nullptr || !valid_key(env, key)) return IE_SN_EINVAL;
  return env->worker->cache().remove(to_flow_key(*key)) ? IE_SN_OK : IE_SN_ENOENT;
}

int h_cache_hit_count(ie_sn_env* env, const ie_sn_flow_key* key, std::uint64_t* hits) {
  if (env == nullptr || !valid_key(env, key) || hits == nullptr) return IE_SN_EINVAL;
  const auto h = env->worker->cache().hit_count(to_flow_key(*key));
  if (!h) return IE_SN_ENOENT;
  *hits = *h;
  return IE_SN_OK;
}

int h_cache_recently_used(ie_sn_env* env, const ie_sn_flow_key* key, std::uint64_t since_ns) {
  if (env == nullptr || !valid_key(env, key)) return IE_SN_EINVAL;
  return env->worker->cache().recently_used(to_flow_key(*key), since_ns) ? 1 : 0;
}

// ---- routing and sending -------------------------------------------------------------------

int h_route_lookup(ie_sn_env* env, const ie_sn_addr* dst, ie_sn_pipe* pipe) {
  if (env == nullptr || dst == nullptr || pipe == nullptr) return IE_SN_EINVAL;
  return guarded(IE_SN_EIO, [&] {
    const auto p = env->worker->route(*dst);
    if (!p) return IE_SN_ENOENT;
    *pipe = *p;
    return IE_SN_OK;
  });
}

int h_sn_lookup(ie_sn_env* env, const char* sn_name, ie_sn_pipe* pipe) {
  if (env == nullptr || pipe == nullptr) return IE_SN_EINVAL;
  const auto name = bounded_cstr(sn_name, sizeof(ie_sn_pipe_info::sn_name) - 1);
  if (!name || name->empty()) return IE_SN_EINVAL;
  return guarded(IE_SN_EIO, [&] {
    const auto p = env->worker->sn_route(*name);
    if (!p) return IE_SN_ENOENT;
    *pipe = *p;
    return IE_SN_OK;
  });
}

int h_pipe_info(ie_sn_env* env, ie_sn_pipe pipe, ie_sn_pipe_info* info) {
  // The first version of the struct ended with sn_name; flags came later (a minor version).
  if (env == nullptr || pipe == 0 || info == nullptr ||
      info->struct_size < offsetof(ie_sn_pipe_info, flags))
    return IE_SN_EINVAL;
  return guarded(IE_SN_EIO, [&] {
    auto pi = env->worker->pipe_info(pipe);
    if (!pi) return IE_SN_ENOENT;
    // The caller's struct may be smaller (an older module: no flags) or larger (a newer
    // minor version): fill what both know.
    const std::size_t n = std::min<std::size_t>(info->struct_size, sizeof(ie_sn_pipe_info));
    pi->struct_size = static_cast<std::uint32_t>(n);
    pi->sn_name[sizeof pi->sn_name - 1] = '\0';
    std::memcpy(info, &*pi, n);
    return IE_SN_OK;
  });
}

// A failed send/reply: the pipe is gone (ENOENT) or the worker refused it (EIO).
int failed_on(ie_sn_env* env, ie_sn_pipe pipe) {
  return env->worker->pipe_info(pipe) ? IE_SN_EIO : IE_SN_ENOENT;
}

int h_send(ie_sn_env* env, ie_sn_pipe pipe, const ie_sn_out_packet* p) {
  if (env == nullptr || pipe == 0 || p == nullptr || p->struct_size < sizeof(ie_sn_out_packet) ||
      (p->tlvs == nullptr && p->tlvs_len != 0) || p->tlvs_len > kMaxOutTlvs ||
      (p->inner == nullptr && p->inner_len != 0) || p->inner_len > kMaxOutInner)
    return IE_SN_EINVAL;
  return guarded(IE_SN_EIO, [&] {
    ie_sn_out_packet copy = *p;  // the v1 part only
    copy.struct_size = sizeof copy;
    return env->worker->send(pipe, copy) ? IE_SN_OK : failed_on(env, pipe);
  });
}

int h_control_reply(ie_sn_env* env, ie_sn_pipe peer, std::uint32_t id, const std::uint8_t* data,
                    std::size_t len) {
  if (env == nullptr || peer == 0 || (data == nullptr && len != 0) || len > kMaxOutInner)
    return IE_SN_EINVAL;
  return guarded(IE_SN_EIO, [&] {
    return env->worker->control_reply(peer, id, ConstByteSpan(data, len)) ? IE_SN_OK
                                                                          : failed_on(env, peer);
  });
}

// ---- time and timers -----------------------------------------------------------------------

std::uint64_t h_now_ns(ie_sn_env* env) {
  return env == nullptr ? 0 : env->worker->now_ns();
}

std::uint64_t h_timer_add(ie_sn_env* env, std::uint64_t delay_ms, ie_sn_timer_fn fn, void* arg) {
  if (env == nullptr || fn == nullptr || delay_ms > kMaxTimerDelayMs || env->destroying ||
      env->timers.size() >= kMaxPendingTimers)
    return 0;
  return guarded(std::uint64_t{0}, [&]() -> std::uint64_t {
    const std::uint64_t id = env->next_timer_id++;
    std::weak_ptr<ie_sn_env> weak = env->weak_from_this();
    auto fire = [weak, id, fn, arg] {
      const auto e = weak.lock();
      if (!e) return;  // the instance is gone
      const auto it = e->timers.find(id);
      if (it == e->timers.end()) return;  // cancelled
      e->timers.erase(it);
      if (e->instance == nullptr || e->destroying) return;
      fn(e->instance, e.get(), id, arg);
    };
    const std::uint64_t wid =
        env->worker->add_timer(std::chrono::milliseconds(delay_ms), std::move(fire));
    if (wid == 0) return 0;
    env->timers.emplace(id, wid);
    return id;
  });
}

int h_timer_cancel(ie_sn_env* env, std::uint64_t timer_id) {
  if (env == nullptr || timer_id == 0) return IE_SN_EINVAL;
  const auto it = env->timers.find(timer_id);
  if (it == env->timers.end()) return IE_SN_ENOENT;  // fired, cancelled or never was
  const std::uint64_t wid = it->second;
  env->timers.erase(it);
  return guarded(IE_SN_EIO, [&] {
    env->worker->cancel_timer(wid);
    return IE_SN_OK;
  });
}

// ---- configuration -------------------------------------------------------------------------

int h_config_get(ie_sn_env* env, const char* key, char* buf, std::size_t* len) {
  const auto k = bounded_cstr(key, IE_SN_MAX_CONFIG_KEY_LEN);
  if (env == nullptr || !k || !valid_config_key(*k) || len == nullptr ||
      (buf == nullptr && *len != 0))
    return IE_SN_EINVAL;
  return guarded(IE_SN_EIO, [&] {
    std::lock_guard lock(env->rt->config_mu);
    const auto m = env->rt->config.find(env->mod->name);
    if (m == env->rt->config.end()) return IE_SN_ENOENT;
    const auto v = m->second.find(std::string(*k));
    if (v == m->second.end()) return IE_SN_ENOENT;
    return copy_out(v->second, true, buf, len);
  });
}

int h_config_set(ie_sn_env* env, const char* key, const char* value) {
  const auto k = bounded_cstr(key, IE_SN_MAX_CONFIG_KEY_LEN);
  const auto v = bounded_cstr(value, IE_SN_MAX_CONFIG_VALUE_LEN);
  if (env == nullptr || !k || !valid_config_key(*k) || !v) return IE_SN_EINVAL;
  return guarded(IE_SN_EIO, [&] {
    std::lock_guard lock(env->rt->config_mu);
    auto& slot = env->rt->config[env->mod->name][std::string(*k)];
    if (slot != *v) {
      slot = std::string(*v);
      env->mod->config_gen.fetch_add(1, std::memory_order_release);
    }
    return IE_SN_OK;
  });
}

// ---- checkpoints ---------------------------------------------------------------------------

int h_state_save(ie_sn_env* env, const char* name, const std::uint8_t* data, std::size_t len) {
  const auto n = bounded_cstr(name, IE_SN_MAX_STATE_NAME_LEN);
  if (env == nullptr || !n || n->empty() || (data == nullptr && len != 0) ||
      len > IE_SN_MAX_STATE_LEN)
    return IE_SN_EINVAL;
  return guarded(IE_SN_EIO, [&] {
    auto r = env->rt->state->save(env->mod->name, *n, ConstByteSpan(data, len));
    if (!r) {
      IE_LOG_RATELIMITED(spdlog::level::warn, "module '{}': state_save '{}': {}", env->mod->name,
                         *n, r.error().to_string());
      return IE_SN_EIO;
    }
    return IE_SN_OK;
  });
}

int h_state_load(ie_sn_env* env, const char* name, std::uint8_t* buf, std::size_t* len) {
  const auto n = bounded_cstr(name, IE_SN_MAX_STATE_NAME_LEN);
  if (env == nullptr || !n || n->empty() || len == nullptr || (buf == nullptr && *len != 0))
    return IE_SN_EINVAL;
  return guarded(IE_SN_EIO, [&] {
    auto r = env->rt->state->load(env->mod->name, *n);
    if (!r) {
      IE_LOG_RATELIMITED(spdlog::level::warn, "module '{}': state_load '{}': {}", env->mod->name,
                         *n, r.error().to_string());
      return IE_SN_EIO;
    }
    if (!*r) return IE_SN_ENOENT;
    const Bytes& b = **r;
    return copy_out(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()), false, buf,
                    len);
  });
}

// ---- log and counters ----------------------------------------------------------------------

void h_log(ie_sn_env* env, int level, const char* message) {
  if (env == nullptr || message == nullptr) return;
  std::uint64_t suppressed = 0;
  if (!env->mod->log_limit.allow(&suppressed)) return;
  guarded(0, [&] {
    // Cut, and no control characters: a module cannot forge log lines.
    const std::size_t n = ::strnlen(message, IE_SN_MAX_LOG_LEN);
    std::string text(message, n);
    for (char& c : text)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    if (n == IE_SN_MAX_LOG_LEN && message[n] != '\0') text += "...";
    spdlog::level::level_enum lv = spdlog::level::info;
    switch (level) {
      case IE_SN_LOG_DEBUG:
        lv = spdlog::level::debug;
        break;
      case IE_SN_LOG_INFO:
        lv = spdlog::level::info;
        break;
      case IE_SN_LOG_WARN:
        lv = spdlog::level::warn;
        break;
      case IE_SN_LOG_ERROR:
        lv = spdlog::level::err;
        break;
      default:
        break;
    }
    if (suppressed > 0)
      spdlog::log(lv, "[{}] ({} messages suppressed)", env->mod->name, suppressed);
    spdlog::log(lv, "[{}] {}", env->mod->name, text);
    return 0;
  });
}

std::uint32_t h_counter_declare(ie_sn_env* env, const char* name, const char* help) {
  (void)help;  // not kept yet: iesn status shows names only
  const auto n = bounded_cstr(name, IE_SN_MAX_COUNTER_NAME_LEN);
  if (env == nullptr || !n || !valid_counter_name(*n)) return 0;
  for (const auto r : kReservedCounters)
    if (*n == r) return 0;
  return guarded(std::uint32_t{0}, [&]() -> std::uint32_t {
    ModuleEntry& m = *env->mod;
    std::lock_guard lock(m.counter_mu);
    for (std::size_t i = 0; i < m.counter_names.size(); ++i)
      if (m.counter_names[i] == *n) return static_cast<std::uint32_t>(i + 1);
    if (m.counter_names.size() >= kMaxCounters) return 0;
    m.counter_names.emplace_back(*n);
    m.counter_count.store(static_cast<std::uint32_t>(m.counter_names.size()),
                          std::memory_order_release);
    return static_cast<std::uint32_t>(m.counter_names.size());
  });
}

void h_counter_add(ie_sn_env* env, std::uint32_t counter_id, std::uint64_t n) {
  if (env == nullptr || counter_id == 0 ||
      counter_id > env->mod->counter_count.load(std::memory_order_acquire))
    return;
  env->counters->c[counter_id - 1].add(n);
}

constexpr ie_sn_host kHost = {
    sizeof(ie_sn_host),
    IE_SN_MODULE_ABI_VERSION,
    h_cache_insert,
    h_cache_remove,
    h_cache_hit_count,
    h_cache_recently_used,
    h_route_lookup,
    h_sn_lookup,
    h_pipe_info,
    h_send,
    h_control_reply,
    h_now_ns,
    h_timer_add,
    h_timer_cancel,
    h_config_get,
    h_config_set,
    h_state_save,
    h_state_load,
    h_log,
    h_counter_declare,
    h_counter_add,
};

}  // namespace

const ie_sn_host* host_table() {
  return &kHost;
}

}  // namespace ie::sn::detail
