// What iesn shows about itself, and the local control socket that shows it: the status
// record (SnStatus) with its JSON and human forms, the control methods iesn serves
// (status, counters, pipes, modules, reload; protocol: docs/control-protocol.md; served by
// ctl::Server), and the client behind `iesn status|counters|pipes|
// modules|reload` and `iesn check-config`. Reference: docs/sn.md ("Operations").
//
// Threads: the server side (add_status_methods' handlers, ctl::Server) runs on one
// reactor thread, iesn's control worker; the provider and reload callbacks are called there.
// The client side is blocking and used by the CLI.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "ie/ctl/protocol.hpp"
#include "ie/sn/decision_cache.hpp"
#include "ie/sn/env.hpp"
#include "ie/util/result.hpp"
#include "ie/wire/drop_reason.hpp"
#include "interedge/sn_module.h"

namespace ie::sn {

// Drops by reason, indexed by wire::DropReason (index 0, `none`, stays 0).
using DropCounts = std::array<std::uint64_t, wire::kDropReasonCount>;

struct CacheStatus {
  std::uint64_t hits = 0, misses = 0, inserts = 0, evictions = 0, removes = 0;
  std::uint64_t size = 0, capacity = 0;

  // A snapshot of a cache shard (call on the shard's own thread).
  static CacheStatus of(const DecisionCache& c) {
    const CacheStats& s = c.stats();
    return {s.hits, s.misses, s.inserts, s.evictions, s.removes, c.size(), c.capacity()};
  }
  CacheStatus& operator+=(const CacheStatus& o);
  bool operator==(const CacheStatus&) const = default;
};

// A worker thread's PSP context cache (crypto::psp::context_cache_stats() on that thread):
// misses are keys expanded into a slot (a cold SA, or one whose context was evicted), in_use
// the contexts held now, capacity sn.psp_contexts_per_worker.
struct PspContextStatus {
  std::uint64_t hits = 0, misses = 0, in_use = 0, capacity = 0;

  PspContextStatus& operator+=(const PspContextStatus& o);
  bool operator==(const PspContextStatus&) const = default;
};

struct WorkerStatus {
  unsigned index = 0;
  DropCounts drops{};
  CacheStatus cache;
  PspContextStatus psp_contexts;
  bool operator==(const WorkerStatus&) const = default;
};

struct PipeStatus {
  PipeId id = 0;
  ie_sn_pipe_kind kind = IE_SN_PIPE_HOST;
  std::string name;     // DOM.SN of an SN pipe, "" for a host
  std::string address;  // the peer's outer endpoint, "ip:port" / "[v6]:port"
  bool established = false;
  std::uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
  std::vector<std::string> addrs;               // inner addresses a host registered
  bool standby = false;                         // ... as its warm standby (docs/sn.md)
  std::vector<std::string> invocations;         // a host's out-of-band invocations:
                                                // "SERVICE DIRECTION PREFIX"
  std::optional<std::uint64_t> last_rx_age_ms;  // nullopt: nothing received yet
  bool on_demand = false;                       // an on-demand direct SN pipe (docs/sn.md)
  bool operator==(const PipeStatus&) const = default;
};

struct PipeSummary {
  std::uint64_t total = 0, hosts = 0, sns = 0, established = 0;
  bool operator==(const PipeSummary&) const = default;
};
PipeSummary summarize(const std::vector<PipeStatus>& pipes);

struct ModuleStatus {
  std::string name;
  std::uint16_t service_id = 0;
  std::string origin;  // "builtin" or the shared object's path
  bool operator==(const ModuleStatus&) const = default;
};

struct AssociationStatus {
  std::uint64_t peers = 0;             // association Node::peer_count()
  std::uint64_t handshakes = 0;        // responder handshakes started
  std::uint64_t handshake_budget = 0;  // max_handshakes_per_second; 0: no limit
  std::uint64_t static_dh_reused = 0;  // handshakes that took a peer's kept static-static DH
  std::uint64_t probes_answered = 0;   // hosts' PROBEs answered (hosts are not kept alive)
  std::uint64_t echoes_answered = 0;   // echoes (sessionless round trips, RTT surveys) answered
  // Simultaneous initiations: a peer's set aside for ours (assoc::Node)
  std::uint64_t crossed_initiations_kept = 0;
  // On-demand direct SN pipes (docs/sn.md): up now; opened, given up, closed unused since
  // the start; sn.locate requests relayed; sn.hello claims refused.
  std::uint64_t direct_pipes = 0, direct_opened = 0, direct_failed = 0, direct_idle_closed = 0;
  std::uint64_t locates_relayed = 0, hellos_refused = 0;
  bool operator==(const AssociationStatus&) const = default;
};

struct SnStatus {
  std::string name;     // DOM.SN
  std::string edomain;  // DOM
  std::string version;  // e.g. "0.1.0"
  std::uint64_t uptime_s = 0;
  unsigned workers = 0;
  std::vector<WorkerStatus> per_worker;  // one per worker, by index
  PipeSummary pipe_summary;              // always filled
  std::vector<PipeStatus> pipes;         // only when StatusQuery::pipes asked for them
  std::vector<ModuleStatus> modules;
  std::map<std::string, std::uint64_t> module_counters;  // "<module>.<counter>", summed
  AssociationStatus association;

  DropCounts drops() const;  // summed over workers
  std::uint64_t total_drops() const;
  CacheStatus cache() const;              // summed over workers
  PspContextStatus psp_contexts() const;  // summed over workers
  bool operator==(const SnStatus&) const = default;
};

// JSON forms (the control methods' results). status_to_json leaves out `pipes` (the list is
// paged by the `pipes` method); pipe_to_json/pipe_from_json are one list element.
//   {"name","edomain","version","uptime_s","workers",
//    "drops":{"<reason>":n,...},"cache":{"hits",...,"size","capacity"},   (sums)
//    "psp_contexts":{"hits","misses","in_use","capacity"},                (sums)
//    "per_worker":[{"index","drops":{...},"cache":{...},"psp_contexts":{...}}],
//    "pipe_summary":{"total","hosts","sns","established"},
//    "modules":[{"name","service_id","origin"}],"module_counters":{"ip.x":n},
//    "association":{"peers","handshakes","handshake_budget","static_dh_reused",
//                   "probes_answered","echoes_answered","crossed_initiations_kept","direct_pipes",
//                   "direct_opened","direct_failed","direct_idle_closed","locates_relayed",
//                   "hellos_refused"}}
//   pipe: {"id","kind":"host"|"sn","name","address","established","rx_packets","rx_bytes",
//          "tx_packets","tx_bytes","addrs":[...],"invocations":["block in 10.3.0.0/24"],
//          "last_rx_age_ms":n|null,"on_demand":bool}
ctl::Json status_to_json(const SnStatus& s);
ctl::Json pipe_to_json(const PipeStatus& p);
// Inverse of the above; missing keys keep their defaults, unknown keys (and drop reasons this
// build does not know) are ignored, a wrong type is Errc::protocol naming the key.
Result<SnStatus> status_from_json(const ctl::Json& j);
Result<PipeStatus> pipe_from_json(const ctl::Json& j);

// Human forms (aligned text tables, each ending in '\n').
std::string format_status(const SnStatus& s);    // summary: identity, pipes, caches, drops
std::string format_counters(const SnStatus& s);  // every counter, total and per worker
std::string format_pipes(const std::vector<PipeStatus>& pipes);
std::string format_modules(const SnStatus& s);  // modules and their counters

// ---- Server side ----

inline constexpr std::size_t kPipesPerPage = 256;  // keeps a reply far below ctl::kMaxFrame

// What the provider is asked for. Pipes are listed by ascending id, after a cursor, so a
// large table is read in pages without the SN ever building the whole list.
struct StatusQuery {
  bool pipes = false;                      // fill SnStatus::pipes
  PipeId pipes_after = 0;                  // only pipes with id > pipes_after
  std::size_t pipe_limit = kPipesPerPage;  // at most this many
};
using StatusProvider = std::function<Result<SnStatus>(const StatusQuery&)>;
// Re-reads and applies the configuration; an error (e.g. an invalid file) is returned to
// the caller as is and the SN keeps its old configuration.
using ReloadHandler = std::function<Result<void>()>;

// Registers on d:
//   hello     {"protocol":1,"server":server,"methods":[...]}                anyone
//   status    status_to_json(provider({}))                                  anyone
//   counters  the same record (the CLI prints every counter)                anyone
//   modules   {"modules":[...],"module_counters":{...}}                     anyone
//   pipes     params {"after":id,"limit":1..256} ->
//             {"pipes":[...],"more":bool,"pipe_summary":{...}}               anyone
//   reload    {"reloaded":true}; ctl::Access::admin (iesn has no admin group: root only)
// Errors: a bad param is invalid_argument naming it; a non-admin reload is permission; the
// provider's or reload's own errors are passed on. Errc::exists if a name is already taken.
Result<void> add_status_methods(ctl::Dispatcher& d, StatusProvider provider, ReloadHandler reload,
                                const std::string& server = "iesn");

// The mode of iesn's control socket (served by ctl::Server, ie/ctl/server.hpp).
inline constexpr unsigned kControlSocketMode = 0660;

// ---- Client side (the iesn CLI) ----

enum StatusExit : int { kExitOk = 0, kExitFailure = 1, kExitUsage = 2, kExitDaemonDown = 3 };

// `iesn <what> [--socket PATH] [--json]`: what is status, counters, pipes, modules or reload.
// Prints the human form (or the JSON, pretty) to out and errors to err, prefixed "iesn: ".
// Returns kExitOk, kExitFailure (the call failed, e.g. reload refused or the new
// configuration invalid), kExitUsage (unknown what) or kExitDaemonDown (nothing listening on
// socket; the message names it).
int run_status_client(const std::string& socket, const std::string& what, bool json,
                      std::ostream& out, std::ostream& err);

// `iesn check-config PATH`: loads the file and the private key it names, and prints
// "ok: NAME (edomain DOM, gateway|member of GATEWAY), N edomain SNs, N peers, N routes,
// N modules; public key BASE64" or the error, to out. Returns the error, if any.
Result<void> check_config_file(const std::string& path, std::ostream& out);

}  // namespace ie::sn
