// SnStatus: sums, the JSON form the control methods return, its inverse (the CLI reads
// replies back into SnStatus), and the human tables `iesn status|counters|pipes|modules`
// print.
#include <algorithm>
#include <cstdio>
#include <string_view>

#include "ie/sn/status.hpp"

namespace ie::sn {

using ctl::Json;

CacheStatus& CacheStatus::operator+=(const CacheStatus& o) {
  hits += o.hits;
  misses += o.misses;
  inserts += o.inserts;
  evictions += o.evictions;
  removes += o.removes;
  size += o.size;
  capacity += o.capacity;
  return *this;
}

PspContextStatus& PspContextStatus::operator+=(const PspContextStatus& o) {
  hits += o.hits;
  misses += o.misses;
  in_use += o.in_use;
  capacity += o.capacity;
  return *this;
}

DropCounts SnStatus::drops() const {
  DropCounts d{};
  for (const auto& w : per_worker) {
    for (std::size_t i = 0; i < d.size(); ++i)
      d[i] += w.drops[i];
  }
  return d;
}

std::uint64_t SnStatus::total_drops() const {
  std::uint64_t t = 0;
  for (const auto n : drops())
    t += n;
  return t;
}

CacheStatus SnStatus::cache() const {
  CacheStatus c;
  for (const auto& w : per_worker)
    c += w.cache;
  return c;
}

PspContextStatus SnStatus::psp_contexts() const {
  PspContextStatus c;
  for (const auto& w : per_worker)
    c += w.psp_contexts;
  return c;
}

PipeSummary summarize(const std::vector<PipeStatus>& pipes) {
  PipeSummary s;
  for (const auto& p : pipes) {
    ++s.total;
    (p.kind == IE_SN_PIPE_SN ? s.sns : s.hosts) += 1;
    s.established += p.established ? 1 : 0;
  }
  return s;
}

// ---- JSON ----

namespace {

Json drops_json(const DropCounts& d) {
  Json j = Json::object();
  for (std::size_t i = 1; i < d.size(); ++i)
    j[std::string(wire::drop_reason_name(static_cast<wire::DropReason>(i)))] = d[i];
  return j;
}

Json cache_json(const CacheStatus& c) {
  return Json{{"hits", c.hits},           {"misses", c.misses},   {"inserts", c.inserts},
              {"evictions", c.evictions}, {"removes", c.removes}, {"size", c.size},
              {"capacity", c.capacity}};
}

Json psp_json(const PspContextStatus& c) {
  return Json{
      {"hits", c.hits}, {"misses", c.misses}, {"in_use", c.in_use}, {"capacity", c.capacity}};
}

// Readers: a missing key leaves *out alone; a present key of the wrong type is an error.
Unexpected bad(const std::string& key, const char* want) {
  return fail(Errc::protocol, "status reply: \"" + key + "\" must be " + want);
}

const Json* member(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

Result<void> read_u64(const Json& j, const char* key, std::uint64_t* out) {
  const Json* v = member(j, key);
  if (v == nullptr) return ok();
  if (v->is_number_unsigned()) {
    *out = v->get<std::uint64_t>();
  } else if (v->is_number_integer() && v->get<std::int64_t>() >= 0) {
    *out = static_cast<std::uint64_t>(v->get<std::int64_t>());
  } else {
    return bad(key, "an unsigned integer");
  }
  return ok();
}

Result<void> read_str(const Json& j, const char* key, std::string* out) {
  const Json* v = member(j, key);
  if (v == nullptr) return ok();
  if (!v->is_string()) return bad(key, "a string");
  *out = v->get<std::string>();
  return ok();
}

Result<void> read_bool(const Json& j, const char* key, bool* out) {
  const Json* v = member(j, key);
  if (v == nullptr) return ok();
  if (!v->is_boolean()) return bad(key, "a boolean");
  *out = v->get<bool>();
  return ok();
}

Result<void> read_object(const Json& j, const char* key, const Json** out) {
  *out = member(j, key);
  if (*out != nullptr && !(*out)->is_object()) return bad(key, "an object");
  return ok();
}

Result<void> read_array(const Json& j, const char* key, const Json** out) {
  *out = member(j, key);
  if (*out != nullptr && !(*out)->is_array()) return bad(key, "an array");
  return ok();
}

Result<void> read_drops(const Json& j, DropCounts* d) {
  for (std::size_t i = 1; i < d->size(); ++i) {
    const std::string name(wire::drop_reason_name(static_cast<wire::DropReason>(i)));
    IE_TRY(read_u64(j, name.c_str(), &(*d)[i]));
  }
  return ok();
}

Result<void> read_cache(const Json& j, CacheStatus* c) {
  IE_TRY(read_u64(j, "hits", &c->hits));
  IE_TRY(read_u64(j, "misses", &c->misses));
  IE_TRY(read_u64(j, "inserts", &c->inserts));
  IE_TRY(read_u64(j, "evictions", &c->evictions));
  IE_TRY(read_u64(j, "removes", &c->removes));
  IE_TRY(read_u64(j, "size", &c->size));
  IE_TRY(read_u64(j, "capacity", &c->capacity));
  return ok();
}

Result<void> read_psp(const Json& j, PspContextStatus* c) {
  IE_TRY(read_u64(j, "hits", &c->hits));
  IE_TRY(read_u64(j, "misses", &c->misses));
  IE_TRY(read_u64(j, "in_use", &c->in_use));
  IE_TRY(read_u64(j, "capacity", &c->capacity));
  return ok();
}

}  // namespace

Json pipe_to_json(const PipeStatus& p) {
  Json j{{"id", p.id},
         {"kind", p.kind == IE_SN_PIPE_SN ? "sn" : "host"},
         {"name", p.name},
         {"address", p.address},
         {"established", p.established},
         {"rx_packets", p.rx_packets},
         {"rx_bytes", p.rx_bytes},
         {"tx_packets", p.tx_packets},
         {"tx_bytes", p.tx_bytes},
         {"addrs", p.addrs},
         {"standby", p.standby},
         {"invocations", p.invocations}};
  j["last_rx_age_ms"] = p.last_rx_age_ms ? Json(*p.last_rx_age_ms) : Json(nullptr);
  j["on_demand"] = p.on_demand;
  return j;
}

Json status_to_json(const SnStatus& s) {
  Json workers = Json::array();
  for (const auto& w : s.per_worker)
    workers.push_back(Json{{"index", w.index},
                           {"drops", drops_json(w.drops)},
                           {"cache", cache_json(w.cache)},
                           {"psp_contexts", psp_json(w.psp_contexts)}});
  Json modules = Json::array();
  for (const auto& m : s.modules)
    modules.push_back(Json{{"name", m.name}, {"service_id", m.service_id}, {"origin", m.origin}});
  Json counters = Json::object();
  for (const auto& [k, v] : s.module_counters)
    counters[k] = v;
  return Json{
      {"name", s.name},
      {"edomain", s.edomain},
      {"version", s.version},
      {"uptime_s", s.uptime_s},
      {"workers", s.workers},
      {"drops", drops_json(s.drops())},
      {"cache", cache_json(s.cache())},
      {"psp_contexts", psp_json(s.psp_contexts())},
      {"per_worker", workers},
      {"pipe_summary", Json{{"total", s.pipe_summary.total},
                            {"hosts", s.pipe_summary.hosts},
                            {"sns", s.pipe_summary.sns},
                            {"established", s.pipe_summary.established}}},
      {"modules", modules},
      {"module_counters", counters},
      {"association", Json{{"peers", s.association.peers},
                           {"handshakes", s.association.handshakes},
                           {"handshake_budget", s.association.handshake_budget},
                           {"static_dh_reused", s.association.static_dh_reused},
                           {"probes_answered", s.association.probes_answered},
                           {"echoes_answered", s.association.echoes_answered},
                           {"crossed_initiations_kept", s.association.crossed_initiations_kept},
                           {"direct_pipes", s.association.direct_pipes},
                           {"direct_opened", s.association.direct_opened},
                           {"direct_failed", s.association.direct_failed},
                           {"direct_idle_closed", s.association.direct_idle_closed},
                           {"locates_relayed", s.association.locates_relayed},
                           {"hellos_refused", s.association.hellos_refused}}}};
}

Result<PipeStatus> pipe_from_json(const Json& j) {
  if (!j.is_object()) return fail(Errc::protocol, "status reply: a pipe must be an object");
  PipeStatus p;
  std::uint64_t id = 0;
  IE_TRY(read_u64(j, "id", &id));
  if (id > 0xffffffffu) return bad("id", "a pipe id (32 bits)");
  p.id = static_cast<PipeId>(id);
  std::string kind = "host";
  IE_TRY(read_str(j, "kind", &kind));
  if (kind != "host" && kind != "sn") return bad("kind", "\"host\" or \"sn\"");
  p.kind = kind == "sn" ? IE_SN_PIPE_SN : IE_SN_PIPE_HOST;
  IE_TRY(read_str(j, "name", &p.name));
  IE_TRY(read_str(j, "address", &p.address));
  IE_TRY(read_bool(j, "established", &p.established));
  IE_TRY(read_u64(j, "rx_packets", &p.rx_packets));
  IE_TRY(read_u64(j, "rx_bytes", &p.rx_bytes));
  IE_TRY(read_u64(j, "tx_packets", &p.tx_packets));
  IE_TRY(read_u64(j, "tx_bytes", &p.tx_bytes));
  const Json* addrs = nullptr;
  IE_TRY(read_array(j, "addrs", &addrs));
  if (addrs != nullptr) {
    for (const auto& a : *addrs) {
      if (!a.is_string()) return bad("addrs", "an array of strings");
      p.addrs.push_back(a.get<std::string>());
    }
  }
  IE_TRY(read_bool(j, "standby", &p.standby));
  IE_TRY(read_bool(j, "on_demand", &p.on_demand));
  const Json* inv = nullptr;
  IE_TRY(read_array(j, "invocations", &inv));
  if (inv != nullptr) {
    for (const auto& a : *inv) {
      if (!a.is_string()) return bad("invocations", "an array of strings");
      p.invocations.push_back(a.get<std::string>());
    }
  }
  if (const Json* age = member(j, "last_rx_age_ms"); age != nullptr && !age->is_null()) {
    std::uint64_t v = 0;
    IE_TRY(read_u64(j, "last_rx_age_ms", &v));
    p.last_rx_age_ms = v;
  }
  return p;
}

Result<SnStatus> status_from_json(const Json& j) {
  if (!j.is_object()) return fail(Errc::protocol, "status reply: not an object");
  SnStatus s;
  IE_TRY(read_str(j, "name", &s.name));
  IE_TRY(read_str(j, "edomain", &s.edomain));
  IE_TRY(read_str(j, "version", &s.version));
  IE_TRY(read_u64(j, "uptime_s", &s.uptime_s));
  std::uint64_t workers = 0;
  IE_TRY(read_u64(j, "workers", &workers));
  if (workers > 0xffffffffu) return bad("workers", "a worker count");
  s.workers = static_cast<unsigned>(workers);
  const Json* per_worker = nullptr;
  IE_TRY(read_array(j, "per_worker", &per_worker));
  if (per_worker != nullptr) {
    for (const auto& wj : *per_worker) {
      if (!wj.is_object()) return bad("per_worker", "an array of objects");
      WorkerStatus w;
      std::uint64_t index = 0;
      IE_TRY(read_u64(wj, "index", &index));
      if (index > 0xffffffffu) return bad("index", "a worker index");
      w.index = static_cast<unsigned>(index);
      const Json* o = nullptr;
      IE_TRY(read_object(wj, "drops", &o));
      if (o != nullptr) IE_TRY(read_drops(*o, &w.drops));
      IE_TRY(read_object(wj, "cache", &o));
      if (o != nullptr) IE_TRY(read_cache(*o, &w.cache));
      IE_TRY(read_object(wj, "psp_contexts", &o));
      if (o != nullptr) IE_TRY(read_psp(*o, &w.psp_contexts));
      s.per_worker.push_back(w);
    }
  }
  const Json* o = nullptr;
  IE_TRY(read_object(j, "pipe_summary", &o));
  if (o != nullptr) {
    IE_TRY(read_u64(*o, "total", &s.pipe_summary.total));
    IE_TRY(read_u64(*o, "hosts", &s.pipe_summary.hosts));
    IE_TRY(read_u64(*o, "sns", &s.pipe_summary.sns));
    IE_TRY(read_u64(*o, "established", &s.pipe_summary.established));
  }
  const Json* arr = nullptr;
  IE_TRY(read_array(j, "modules", &arr));
  if (arr != nullptr) {
    for (const auto& mj : *arr) {
      if (!mj.is_object()) return bad("modules", "an array of objects");
      ModuleStatus m;
      IE_TRY(read_str(mj, "name", &m.name));
      std::uint64_t id = 0;
      IE_TRY(read_u64(mj, "service_id", &id));
      if (id > 0xffff) return bad("service_id", "a 16-bit service id");
      m.service_id = static_cast<std::uint16_t>(id);
      IE_TRY(read_str(mj, "origin", &m.origin));
      s.modules.push_back(std::move(m));
    }
  }
  IE_TRY(read_object(j, "module_counters", &o));
  if (o != nullptr) {
    for (auto it = o->begin(); it != o->end(); ++it) {
      std::uint64_t v = 0;
      IE_TRY(read_u64(*o, it.key().c_str(), &v));
      s.module_counters[it.key()] = v;
    }
  }
  IE_TRY(read_object(j, "association", &o));
  if (o != nullptr) {
    IE_TRY(read_u64(*o, "peers", &s.association.peers));
    IE_TRY(read_u64(*o, "handshakes", &s.association.handshakes));
    IE_TRY(read_u64(*o, "handshake_budget", &s.association.handshake_budget));
    IE_TRY(read_u64(*o, "static_dh_reused", &s.association.static_dh_reused));
    IE_TRY(read_u64(*o, "probes_answered", &s.association.probes_answered));
    IE_TRY(read_u64(*o, "echoes_answered", &s.association.echoes_answered));
    IE_TRY(read_u64(*o, "crossed_initiations_kept", &s.association.crossed_initiations_kept));
    IE_TRY(read_u64(*o, "direct_pipes", &s.association.direct_pipes));
    IE_TRY(read_u64(*o, "direct_opened", &s.association.direct_opened));
    IE_TRY(read_u64(*o, "direct_failed", &s.association.direct_failed));
    IE_TRY(read_u64(*o, "direct_idle_closed", &s.association.direct_idle_closed));
    IE_TRY(read_u64(*o, "locates_relayed", &s.association.locates_relayed));
    IE_TRY(read_u64(*o, "hellos_refused", &s.association.hellos_refused));
  }
  IE_TRY(read_array(j, "pipes", &arr));
  if (arr != nullptr) {
    for (const auto& pj : *arr) {
      auto p = pipe_from_json(pj);
      if (!p) return fail(p.error());
      s.pipes.push_back(std::move(*p));
    }
  }
  return s;
}

// ---- Human forms ----

namespace {

// Columns padded to their widest cell; numeric columns right-aligned.
class TextTable {
 public:
  explicit TextTable(std::vector<bool> right_aligned) : right_(std::move(right_aligned)) {}
  void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  std::string render(const std::string& indent = "") const {
    std::vector<std::size_t> width;
    for (const auto& r : rows_) {
      if (width.size() < r.size()) width.resize(r.size(), 0);
      for (std::size_t i = 0; i < r.size(); ++i)
        width[i] = std::max(width[i], r[i].size());
    }
    std::string out;
    for (const auto& r : rows_) {
      std::string line = indent;
      for (std::size_t i = 0; i < r.size(); ++i) {
        const bool right = i < right_.size() && right_[i];
        const std::size_t pad = width[i] - r[i].size();
        if (i > 0) line += "  ";
        if (right) line.append(pad, ' ');
        line += r[i];
        if (!right && i + 1 < r.size()) line.append(pad, ' ');
      }
      while (!line.empty() && line.back() == ' ')
        line.pop_back();
      out += line + "\n";
    }
    return out;
  }

 private:
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

std::string n(std::uint64_t v) {
  return std::to_string(v);
}

std::string duration(std::uint64_t s) {
  char buf[64];
  const std::uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
  if (d > 0) {
    std::snprintf(buf, sizeof buf, "%llud %02llu:%02llu:%02llu", static_cast<unsigned long long>(d),
                  static_cast<unsigned long long>(h), static_cast<unsigned long long>(m),
                  static_cast<unsigned long long>(sec));
  } else {
    std::snprintf(buf, sizeof buf, "%02llu:%02llu:%02llu", static_cast<unsigned long long>(h),
                  static_cast<unsigned long long>(m), static_cast<unsigned long long>(sec));
  }
  return buf;
}

std::string age(const std::optional<std::uint64_t>& ms) {
  if (!ms) return "-";
  if (*ms < 10000) return n(*ms) + "ms";
  if (*ms < 600000) return n(*ms / 1000) + "s";
  return n(*ms / 60000) + "m";
}

std::string reason_name(std::size_t i) {
  return std::string(wire::drop_reason_name(static_cast<wire::DropReason>(i)));
}

// Per-worker columns only while they fit a terminal.
constexpr std::size_t kMaxWorkerColumns = 8;

}  // namespace

std::string format_status(const SnStatus& s) {
  std::string out = "iesn " + (s.name.empty() ? std::string("?") : s.name) + " (edomain " +
                    (s.edomain.empty() ? std::string("?") : s.edomain) + ")" +
                    (s.version.empty() ? "" : ", version " + s.version) + "\n";
  TextTable t({false, false});
  t.row({"uptime", duration(s.uptime_s)});
  t.row({"workers", n(s.workers)});
  const PipeSummary& p = s.pipe_summary;
  t.row({"pipes", n(p.total) + " (" + n(p.hosts) + " hosts, " + n(p.sns) + " SNs), " +
                      n(p.established) + " established"});
  const AssociationStatus& a = s.association;
  t.row({"associations", n(a.peers) + " peers, " + n(a.handshakes) + " handshakes (" +
                             (a.handshake_budget == 0 ? std::string("no budget")
                                                      : "budget " + n(a.handshake_budget) + "/s") +
                             ")"});
  const CacheStatus c = s.cache();
  t.row({"cache", n(c.hits) + " hits, " + n(c.misses) + " misses, " + n(c.evictions) +
                      " evictions; " + n(c.size) + " of " + n(c.capacity) + " entries"});
  const PspContextStatus pc = s.psp_contexts();
  t.row({"psp contexts", n(pc.hits) + " hits, " + n(pc.misses) + " misses; " + n(pc.in_use) +
                             " of " + n(pc.capacity) + " in use"});
  std::string mods;
  for (const auto& m : s.modules)
    mods += (mods.empty() ? "" : ", ") + m.name + " (" + n(m.service_id) + ")";
  t.row({"modules", mods.empty() ? "none" : mods});
  t.row({"drops", n(s.total_drops())});
  out += t.render();
  const DropCounts d = s.drops();
  TextTable dt({false, true, false});
  for (std::size_t i = 1; i < d.size(); ++i) {
    if (d[i] == 0) continue;
    dt.row({reason_name(i), n(d[i]),
            std::string(wire::drop_reason_text(static_cast<wire::DropReason>(i)))});
  }
  out += dt.render("  ");
  return out;
}

std::string format_counters(const SnStatus& s) {
  const bool per_worker = s.per_worker.size() > 1 && s.per_worker.size() <= kMaxWorkerColumns;
  std::vector<bool> right{false, true};
  std::vector<std::string> head{"COUNTER", "TOTAL"};
  if (per_worker) {
    for (const auto& w : s.per_worker) {
      head.push_back("W" + n(w.index));
      right.push_back(true);
    }
  }
  TextTable t(right);
  t.row(head);
  auto add = [&](const std::string& name, std::uint64_t total, auto per) {
    std::vector<std::string> r{name, n(total)};
    if (per_worker) {
      for (const auto& w : s.per_worker)
        r.push_back(n(per(w)));
    }
    t.row(std::move(r));
  };
  const CacheStatus c = s.cache();
  add("cache.hits", c.hits, [](const WorkerStatus& w) { return w.cache.hits; });
  add("cache.misses", c.misses, [](const WorkerStatus& w) { return w.cache.misses; });
  add("cache.inserts", c.inserts, [](const WorkerStatus& w) { return w.cache.inserts; });
  add("cache.evictions", c.evictions, [](const WorkerStatus& w) { return w.cache.evictions; });
  add("cache.removes", c.removes, [](const WorkerStatus& w) { return w.cache.removes; });
  add("cache.size", c.size, [](const WorkerStatus& w) { return w.cache.size; });
  add("cache.capacity", c.capacity, [](const WorkerStatus& w) { return w.cache.capacity; });
  const PspContextStatus pc = s.psp_contexts();
  add("psp_contexts.hits", pc.hits, [](const WorkerStatus& w) { return w.psp_contexts.hits; });
  add("psp_contexts.misses", pc.misses,
      [](const WorkerStatus& w) { return w.psp_contexts.misses; });
  add("psp_contexts.in_use", pc.in_use,
      [](const WorkerStatus& w) { return w.psp_contexts.in_use; });
  add("psp_contexts.capacity", pc.capacity,
      [](const WorkerStatus& w) { return w.psp_contexts.capacity; });
  const DropCounts d = s.drops();
  for (std::size_t i = 1; i < d.size(); ++i)
    add("drop." + reason_name(i), d[i], [i](const WorkerStatus& w) { return w.drops[i]; });
  auto single = [&](const std::string& name, std::uint64_t v) { t.row({name, n(v)}); };
  single("pipes.total", s.pipe_summary.total);
  single("pipes.hosts", s.pipe_summary.hosts);
  single("pipes.sns", s.pipe_summary.sns);
  single("pipes.established", s.pipe_summary.established);
  single("association.peers", s.association.peers);
  single("association.handshakes", s.association.handshakes);
  single("association.static_dh_reused", s.association.static_dh_reused);
  single("association.probes_answered", s.association.probes_answered);
  single("association.echoes_answered", s.association.echoes_answered);
  single("association.crossed_initiations_kept", s.association.crossed_initiations_kept);
  single("direct.pipes", s.association.direct_pipes);
  single("direct.opened", s.association.direct_opened);
  single("direct.failed", s.association.direct_failed);
  single("direct.idle_closed", s.association.direct_idle_closed);
  single("direct.locates_relayed", s.association.locates_relayed);
  single("direct.hellos_refused", s.association.hellos_refused);
  for (const auto& [k, v] : s.module_counters)
    single("module." + k, v);
  return t.render();
}

std::string format_pipes(const std::vector<PipeStatus>& pipes) {
  if (pipes.empty()) return "no pipes\n";
  TextTable t({true, false, false, false, false, true, true, true, true, true, false, false});
  t.row({"ID", "KIND", "NAME", "ADDRESS", "STATE", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES",
         "LAST RX", "REGISTERED", "INVOKED"});
  for (const auto& p : pipes) {
    std::string addrs;
    for (const auto& a : p.addrs)
      addrs += (addrs.empty() ? "" : ",") + a;
    if (!addrs.empty() && p.standby) addrs += " (standby)";
    std::string invoked;
    for (const auto& v : p.invocations)
      invoked += (invoked.empty() ? "" : "; ") + v;
    t.row({n(p.id), p.kind == IE_SN_PIPE_SN ? (p.on_demand ? "sn*" : "sn") : "host",
           p.name.empty() ? "-" : p.name, p.address.empty() ? "-" : p.address,
           p.established ? "up" : "down", n(p.rx_packets), n(p.rx_bytes), n(p.tx_packets),
           n(p.tx_bytes), age(p.last_rx_age_ms), addrs.empty() ? "-" : addrs,
           invoked.empty() ? "-" : invoked});
  }
  return t.render();
}

std::string format_modules(const SnStatus& s) {
  std::string out;
  if (s.modules.empty()) {
    out = "no modules\n";
  } else {
    TextTable t({true, false, false});
    t.row({"SERVICE", "NAME", "ORIGIN"});
    for (const auto& m : s.modules)
      t.row({n(m.service_id), m.name, m.origin});
    out = t.render();
  }
  if (!s.module_counters.empty()) {
    TextTable t({false, true});
    t.row({"COUNTER", "VALUE"});
    for (const auto& [k, v] : s.module_counters)
      t.row({k, n(v)});
    out += "\n" + t.render();
  }
  return out;
}

}  // namespace ie::sn
