// What one SN worker offers its service modules, as a C++ interface. The pipe-terminus
// implements it per worker (iesn's Worker); tests implement it with fakes. The module runtime
// (ie/sn/modules.hpp) turns the C host table (interedge/sn_module.h) into calls on it, so the
// C ABI stays a thin, mechanical layer.
//
// Every method is called on the worker's own thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "ie/sn/decision_cache.hpp"
#include "ie/util/bytes.hpp"
#include "interedge/sn_module.h"

namespace ie::sn {

using PipeId = std::uint32_t;  // 0 is never a pipe

class WorkerServices {
 public:
  virtual ~WorkerServices() = default;

  virtual unsigned worker_index() const = 0;
  // This worker's decision-cache shard (insert through cache_insert, which stamps).
  virtual DecisionCache& cache() = 0;
  // Inserts into it what a module decided, stamped so that a later change of a hop's role
  // makes the decision stale (Decision::stamp); false if the decision is invalid.
  virtual bool cache_insert(const FlowKey& key, Decision d) = 0;
  // Monotonic nanoseconds (the clock cache last-use times are in).
  virtual std::uint64_t now_ns() = 0;
  // The pipe towards an inner destination address, if any.
  virtual std::optional<PipeId> route(const ie_sn_addr& dst) = 0;
  // The pipe towards an SN named DOM.SN (direct, or via the gateway); nullopt if it is this
  // SN or unknown.
  virtual std::optional<PipeId> sn_route(std::string_view sn_name) = 0;
  // What a pipe is; nullopt if it is gone.
  virtual std::optional<ie_sn_pipe_info> pipe_info(PipeId pipe) = 0;
  // Seals and sends a new ILP packet on a pipe; false if the pipe is gone or p is invalid.
  virtual bool send(PipeId pipe, const ie_sn_out_packet& p) = 0;
  // Answers an out-of-band request (only meaningful on the control worker).
  virtual bool control_reply(PipeId peer, std::uint32_t id, ConstByteSpan data) = 0;
  // One-shot timer on this worker; returns an id != 0.
  virtual std::uint64_t add_timer(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
  virtual bool cancel_timer(std::uint64_t id) = 0;
};

// Conversions between the ABI's types and the cache's.
inline FlowKey to_flow_key(const ie_sn_flow_key& k) {
  FlowKey f;
  for (int i = 0; i < 16; ++i)
    f.src[static_cast<std::size_t>(i)] = k.src.bytes[i];
  f.service_id = k.service_id;
  f.connection_id = k.connection_id;
  return f;
}

}  // namespace ie::sn
