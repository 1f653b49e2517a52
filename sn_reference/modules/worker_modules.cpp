// One worker's module instances (ie/sn/modules.hpp WorkerModules): dispatch by service id,
// the check of every decision a module returns, configuration changes, teardown.
//
// A batch through a module (on_packets), on the worker's thread:
//   1. the caller owns packets[] and out[]; out[] is pre-marked "unwritten";
//   2. the module's on_packets reads packets[] and writes out[] (and may call the host table);
//   3. every out[i] is checked against the ABI's rules: an invalid or unwritten decision
//      becomes DROP and is counted (<module>.invalid_decisions);
//   4. the caller acts on out[].
#include <algorithm>
#include <cassert>

#include "runtime_internal.hpp"

namespace ie::sn {
namespace {

constexpr std::uint32_t kUnwritten = 0xffffffffu;

bool valid_decision(const ie_sn_decision& d) {
  switch (d.action) {
    case IE_SN_DROP:
    case IE_SN_CONSUMED:
    case IE_SN_DEFAULT:
      return true;
    case IE_SN_FORWARD:
      if (d.hop_count < 1 || d.hop_count > IE_SN_MAX_NEXT_HOPS) return false;
      for (std::uint32_t i = 0; i < d.hop_count; ++i)
        if (d.hops[i] == 0) return false;
      return true;
    default:
      return false;
  }
}

}  // namespace

WorkerModules::WorkerModules(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WorkerModules::~WorkerModules() {
  // Reverse creation order. Pending timers are cancelled first, so none fires into a
  // destroyed instance; the env stays valid during destroy() (a module may checkpoint).
  for (auto it = impl_->envs.rbegin(); it != impl_->envs.rend(); ++it) {
    ie_sn_env& e = **it;
    e.destroying = true;
    for (const auto& [id, wid] : e.timers)
      impl_->worker->cancel_timer(wid);
    e.timers.clear();
    void* inst = std::exchange(e.instance, nullptr);
    if (inst != nullptr) e.mod->desc->destroy(inst);
  }
}

bool WorkerModules::has(std::uint16_t service_id) const {
  return impl_->find(service_id) != nullptr;
}

bool WorkerModules::on_packets(std::uint16_t service_id, std::span<const ie_sn_packet> packets,
                               std::span<ie_sn_decision> out) {
  ie_sn_env* env = impl_->find(service_id);
  if (env == nullptr) return false;
  assert(out.size() >= packets.size());
  const std::size_t n = std::min(packets.size(), out.size());
  if (n == 0) return true;
  for (std::size_t i = 0; i < n; ++i)
    out[i].action = kUnwritten;
  env->mod->desc->on_packets(env->instance, env, packets.data(), out.data(), n);
  std::uint64_t invalid = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ie_sn_decision& d = out[i];
    if (!valid_decision(d)) {
      d.action = IE_SN_DROP;
      ++invalid;
    }
    if (d.action != IE_SN_FORWARD) d.hop_count = 0;
  }
  env->counters->c[detail::kCounterPackets - 1].add(n);
  if (invalid > 0) {
    env->counters->c[detail::kCounterInvalidDecisions - 1].add(invalid);
    IE_LOG_RATELIMITED(spdlog::level::warn,
                       "module '{}' returned {} invalid decision(s) of {}: dropped", env->mod->name,
                       invalid, n);
  }
  return true;
}

bool WorkerModules::on_control(std::uint16_t service_id, PipeId peer, std::uint32_t id,
                               ConstByteSpan data) {
  ie_sn_env* env = impl_->find(service_id);
  if (env == nullptr || env->mod->desc->on_control == nullptr) return false;
  env->mod->desc->on_control(env->instance, env, peer, id, data.data(), data.size());
  return true;
}

void WorkerModules::on_pipe_down(PipeId pipe) {
  for (const auto& env : impl_->envs)
    if (env->mod->desc->on_pipe_down != nullptr)
      env->mod->desc->on_pipe_down(env->instance, env.get(), pipe);
}

void WorkerModules::poll_config() {
  for (const auto& env : impl_->envs) {
    const std::uint64_t gen = env->mod->config_gen.load(std::memory_order_acquire);
    if (gen == env->seen_config_gen) continue;
    env->seen_config_gen = gen;
    if (env->mod->desc->on_config != nullptr) env->mod->desc->on_config(env->instance, env.get());
  }
}

}  // namespace ie::sn
