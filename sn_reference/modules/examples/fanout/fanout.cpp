// fanout: an example service module that replicates every packet of its service to a list
// of destinations named in its configuration. Built out of tree against the two installed
// SDK headers only (docs/service-modules.md walks through it).
//
//   [modules]
//   load = ["/usr/local/lib/interedge/modules/libfanout.so"]
//   [modules.fanout]
//   to = "dom2.sn1, 10.1.0.3, fd00::3"   # SN names (DOM.SN) and/or host addresses
//   idle_seconds = 60                    # cached flows idle this long are removed
//
// Each packet is forwarded (IE_SN_FORWARD) to the pipe every destination resolves to: a host
// address through route_lookup (a host associated here, else the SN that serves it), an SN
// name through sn_lookup (a direct pipe, else the edomain gateway). A pipe gets one copy
// however many destinations lead to it, and never the pipe the packet came from, so the
// same `to` on every SN of a path builds a replication tree: one copy per SN-SN hop, and
// the SN the hosts are associated with makes one copy per host. The decision is cached for
// the flow; the module keeps the keys it cached so that a configuration change removes them
// (entries would otherwise keep the old destinations).
//
// Service id: FANOUT_SERVICE_ID, 0x8001 (32769, the experimental range) unless the build
// says otherwise (-DFANOUT_SERVICE_ID=...).
#include <ie/sn/module.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#ifndef FANOUT_SERVICE_ID
#define FANOUT_SERVICE_ID 0x8001
#endif

namespace {

constexpr std::size_t kMaxTargets = 32;
constexpr std::size_t kMaxTracked = 65536;  // cached flows remembered for removal

struct Target {
  std::string text;                // as configured
  std::optional<ie_sn_addr> addr;  // a host address; else an SN name
};

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

// The flow key's bytes (ie_sn_flow_key has no padding: 16 + 2 + 2 + 4 + 8).
std::string key_bytes(const ie_sn_flow_key& k) {
  static_assert(sizeof(ie_sn_flow_key) == 32);
  return std::string(reinterpret_cast<const char*>(&k), sizeof k);
}

class Fanout final : public ie::sn::Module {
 public:
  explicit Fanout(const ie::sn::ModuleContext& ctx) : Module(ctx) {
    copies_ = declare_counter("copies", "copies decided (one per destination pipe)");
    no_target_ = declare_counter("no_target", "packets dropped: no destination resolved");
    unresolved_ = declare_counter("unresolved", "destinations without a route (per packet)");
    truncated_ = declare_counter("truncated", "destination pipes beyond 8 left out");
    expired_ = declare_counter("flows_expired", "idle cached flows removed");
    load_config();
    schedule_sweep();
  }

  void on_packets(std::span<const ie_sn_packet> packets, std::span<ie_sn_decision> out) override {
    for (std::size_t i = 0; i < packets.size(); ++i)
      out[i] = decide(packets[i]);
  }

  void on_config() override {
    forget_flows();  // cached decisions name the old destinations
    load_config();
  }

 private:
  void load_config() {
    targets_.clear();
    const std::string to = config_or("to", "");
    std::size_t pos = 0;
    while (pos <= to.size()) {
      const std::size_t comma = std::min(to.find(',', pos), to.size());
      std::string item = trim(std::string_view(to).substr(pos, comma - pos));
      pos = comma + 1;
      if (item.empty()) continue;
      if (targets_.size() == kMaxTargets) {
        log_warn("more than 32 destinations in 'to': the rest are ignored");
        break;
      }
      targets_.push_back(Target{item, parse_addr(item)});
    }
    idle_ms_ = 60000;
    if (const auto idle = config("idle_seconds")) {
      char* end = nullptr;
      const unsigned long v = std::strtoul(idle->c_str(), &end, 10);
      if (end != idle->c_str() && *end == '\0' && v >= 1 && v <= 86400)
        idle_ms_ = v * 1000;
      else
        log_warn("idle_seconds must be 1..86400; using 60");
    }
    if (worker_index() == 0) {  // once, not once per worker
      std::string list;
      for (const Target& t : targets_)
        list += (list.empty() ? "" : ", ") + t.text;
      log_info("forwarding to " + std::to_string(targets_.size()) + " destination(s)" +
               (list.empty() ? "" : ": " + list));
    }
  }

  ie_sn_decision decide(const ie_sn_packet& p) {
    ie_sn_pipe hops[IE_SN_MAX_NEXT_HOPS];
    std::size_t n = 0;
    for (const Target& t : targets_) {
      const auto pipe = t.addr ? route(*t.addr) : sn_route(t.text);
      if (!pipe) {
        count(unresolved_);
        continue;
      }
      if (*pipe == p.from_pipe || std::find(hops, hops + n, *pipe) != hops + n) continue;
      if (n == IE_SN_MAX_NEXT_HOPS) {
        count(truncated_);
        continue;
      }
      hops[n++] = *pipe;
    }
    if (n == 0) {
      count(no_target_);
      return drop();
    }
    count(copies_, n);
    const ie_sn_decision d = forward(std::span<const ie_sn_pipe>(hops, n));
    remember_and_cache(flow_of(p), d);
    return d;
  }

  void remember_and_cache(const ie_sn_flow_key& key, const ie_sn_decision& d) {
    if (flows_.size() >= kMaxTracked) sweep(/*only_evicted=*/true);
    if (flows_.size() >= kMaxTracked) return;  // not cached: decided again next time
    if (cache_insert(key, d)) flows_.insert_or_assign(key_bytes(key), Flow{key, now_ns()});
  }

  // Forgets flows the cache no longer holds (evicted, or removed by the SN because their
  // pipe went); unless only_evicted, also removes flows idle for idle_seconds.
  void sweep(bool only_evicted) {
    const std::uint64_t now = now_ns(), idle_ns = idle_ms_ * 1000000;
    const std::uint64_t since = now > idle_ns ? now - idle_ns : 0;
    for (auto it = flows_.begin(); it != flows_.end();) {
      const Flow& f = it->second;
      if (!cache_hit_count(f.key)) {
        it = flows_.erase(it);
      } else if (!only_evicted && f.inserted_ns < since && !cache_recently_used(f.key, since)) {
        cache_remove(f.key);
        count(expired_);
        it = flows_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void schedule_sweep() {
    add_timer(std::chrono::milliseconds(idle_ms_), [this] {
      sweep(/*only_evicted=*/false);
      schedule_sweep();
    });
  }

  void forget_flows() {
    for (const auto& [bytes, f] : flows_)
      cache_remove(f.key);
    flows_.clear();
  }

  struct Flow {
    ie_sn_flow_key key;
    std::uint64_t inserted_ns;
  };

  std::vector<Target> targets_;
  std::uint64_t idle_ms_ = 60000;
  std::unordered_map<std::string, Flow> flows_;  // flows we cached, by key bytes
  ie::sn::ModuleCounter copies_, no_target_, unresolved_, truncated_, expired_;
};

}  // namespace

IE_SN_MODULE(Fanout, "fanout", FANOUT_SERVICE_ID,
             "replicates each packet to the destinations in its 'to' setting")
