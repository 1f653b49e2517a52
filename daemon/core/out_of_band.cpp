// Out-of-band service invocations (docs/ied.md "Out-of-band services", the SN side in
// docs/sn.md "Out-of-band requests"): `iectl service enable|disable|list` -> the control
// methods here -> the state database -> HostLink::set_invocations, which sends the whole set
// ({"op":"service.set"}) to every associated SN and again after every new association.
//   1. a change is checked (make_invocation) and applied to a copy of the set;
//   2. the copy is stored (one transaction), then becomes the set, then goes to the link
//      (a new generation); the reply names the generation, so iectl can wait for it;
//   3. each tick, a refusal of the current generation by the ACTIVE SN undoes what that
//      generation added (one bad enable does not poison later ones): stored, sent again,
//      kept for `service.list` as last_refusal. A standby's refusal is only reported.
#include "ie/ied/out_of_band.hpp"

#include <algorithm>

#include "daemon_impl.hpp"
#include "ie/util/log.hpp"

namespace ie::ied {

namespace {

using ctl::Json;

bool valid_service_name(std::string_view s) {
  return !s.empty() && s.size() <= 32 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// A string for an error message: at most 64 characters, control characters as '?'.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < 64; ++i)
    out += static_cast<unsigned char>(s[i]) < 0x20 ? '?' : s[i];
  return out + (s.size() > 64 ? "...\"" : "\"");
}

Result<std::string_view> string_param(const Json& params, const char* key, bool required) {
  const auto it = params.find(key);
  if (it == params.end()) {
    if (required) return fail(Errc::invalid_argument, std::string(key) + ": required");
    return std::string_view();
  }
  if (!it->is_string()) return fail(Errc::invalid_argument, std::string(key) + ": not a string");
  return std::string_view(*it->get_ptr<const std::string*>());
}

Json invocations_json(const std::vector<link::Invocation>& list) {
  Json a = Json::array();
  for (const auto& inv : list)
    a.push_back(inv.to_json());
  return a;
}

}  // namespace

Result<link::Invocation> make_invocation(std::string_view service, std::string_view direction,
                                         std::string_view prefix) {
  if (!valid_service_name(service))
    return fail(Errc::invalid_argument,
                "service: " + quoted(service) + " is not a service name ([a-z0-9_]{1,32})");
  if (direction != "in" && direction != "out" && direction != "both")
    return fail(Errc::invalid_argument,
                "direction: " + quoted(direction) + " is not one of in, out, both");
  const auto p = IpPrefix::parse(prefix, /*clear_host_bits=*/true);
  if (!p)
    return fail(Errc::invalid_argument,
                "prefix: " + quoted(prefix) + " is not ADDR/LEN (e.g. 198.51.100.0/24, fd00::/64)");
  return link::Invocation{std::string(service), std::string(direction), p->str()};
}

Result<link::Invocation> invocation_from_params(const Json& params) {
  auto service = string_param(params, "service", true);
  if (!service) return fail(service.error());
  auto direction = string_param(params, "direction", false);
  if (!direction) return fail(direction.error());
  auto prefix = string_param(params, "prefix", true);
  if (!prefix) return fail(prefix.error());
  return make_invocation(
      *service,
      direction->empty() && !params.contains("direction") ? std::string_view("in") : *direction,
      *prefix);
}

InvocationSet InvocationSet::from_stored(const std::vector<link::Invocation>& stored,
                                         std::vector<std::string>* dropped) {
  InvocationSet s;
  for (const auto& inv : stored) {
    auto c = make_invocation(inv.service, inv.direction, inv.prefix);
    if (!c || *c != inv) {
      if (dropped)
        dropped->push_back(inv.str() + (c ? ": not canonical" : ": " + c.error().context));
      continue;
    }
    if (auto r = s.enable(*c); !r || !*r) {
      if (dropped) dropped->push_back(inv.str() + (r ? ": a duplicate" : ": over the limit"));
    }
  }
  return s;
}

bool InvocationSet::contains(const link::Invocation& inv) const {
  return std::find(entries_.begin(), entries_.end(), inv) != entries_.end();
}

Result<bool> InvocationSet::enable(const link::Invocation& inv) {
  if (contains(inv)) return false;
  if (entries_.size() >= kMaxInvocations)
    return fail(Errc::too_large, "at most " + std::to_string(kMaxInvocations) +
                                     " out-of-band invocations (disable one first)");
  entries_.push_back(inv);
  return true;
}

Result<void> InvocationSet::disable(const link::Invocation& inv) {
  if (!remove(inv))
    return fail(Errc::not_found,
                "no out-of-band invocation " + inv.str() + " (see `iectl service list`)");
  return ok();
}

bool InvocationSet::remove(const link::Invocation& inv) {
  const auto it = std::find(entries_.begin(), entries_.end(), inv);
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

bool InvocationSet::clear() {
  const bool had = !entries_.empty();
  entries_.clear();
  return had;
}

// ---- the daemon's actions ----

Result<void> Daemon::Impl::load_invocations() {
  auto stored = state->invocations();
  if (!stored) return fail(stored.error());
  std::vector<std::string> dropped;
  oob = InvocationSet::from_stored(*stored, &dropped);
  for (const auto& d : dropped)
    IE_LOG_WARN("{}: out-of-band invocation dropped: {}", state->path(), d);
  if (!dropped.empty())
    if (auto r = state->set_invocations(oob.entries()); !r) return fail(r.error());
  if (!oob.entries().empty()) {
    link->set_invocations(oob.entries());
    IE_LOG_INFO("{} out-of-band invocation(s) to send to the first-hop SNs", oob.entries().size());
  }
  return ok();
}

Result<void> Daemon::Impl::push_invocations(InvocationSet next,
                                            std::vector<link::Invocation> added) {
  if (auto r = state->set_invocations(next.entries()); !r) return fail(r.error());
  oob = std::move(next);
  oob_added = std::move(added);
  link->set_invocations(oob.entries());
  return ok();
}

Result<Json> Daemon::Impl::service_enable(const Json& params) {
  auto inv = invocation_from_params(params);
  if (!inv) return fail(inv.error());
  InvocationSet next = oob;
  auto changed = next.enable(*inv);
  if (!changed) return fail(changed.error());
  if (*changed) {
    if (auto r = push_invocations(std::move(next), {*inv}); !r) return fail(r.error());
    IE_LOG_INFO("out-of-band: enabled {} (generation {})", inv->str(),
                link->invocation_generation());
  }
  return Json{{"changed", *changed},
              {"generation", link->invocation_generation()},
              {"invocation", inv->to_json()}};
}

Result<Json> Daemon::Impl::service_disable(const Json& params) {
  bool all = false;
  if (const auto it = params.find("all"); it != params.end()) {
    if (!it->is_boolean()) return fail(Errc::invalid_argument, "all: not a boolean");
    all = it->get<bool>();
  }
  InvocationSet next = oob;
  bool changed = true;
  Json out;
  std::string what = "everything";
  if (all) {
    for (const char* k : {"service", "direction", "prefix"})
      if (params.contains(k))
        return fail(Errc::invalid_argument, std::string(k) + ": not with \"all\"");
    changed = next.clear();
  } else {
    auto inv = invocation_from_params(params);
    if (!inv) return fail(inv.error());
    if (auto r = next.disable(*inv); !r) return fail(r.error());
    out["invocation"] = inv->to_json();
    what = inv->str();
  }
  if (changed) {
    if (auto r = push_invocations(std::move(next), {}); !r) return fail(r.error());
    IE_LOG_INFO("out-of-band: disabled {} (generation {})", what, link->invocation_generation());
  }
  out["changed"] = changed;
  out["generation"] = link->invocation_generation();
  return out;
}

Json Daemon::Impl::service_list_json() const {
  const std::uint64_t gen = link->invocation_generation();
  Json sn_list = Json::array();
  for (std::size_t i = 0; i < sns.size(); ++i) {
    const SnEntry& e = sns[i];
    if (!e.peer) continue;
    const auto st = link->sn_state(*e.peer);
    if (!st) continue;
    Json j;
    j["name"] = e.name;
    j["active"] = active && *active == i;
    j["state"] = st->oob_acked == gen ? "applied" : st->oob_refused == gen ? "refused" : "pending";
    j["acked_generation"] = st->oob_acked;
    j["error"] = st->oob_error.empty() ? Json(nullptr) : Json(st->oob_error);
    j["applied"] = invocations_json(st->oob_applied);
    sn_list.push_back(std::move(j));
  }
  Json out;
  out["generation"] = gen;
  out["invocations"] = invocations_json(oob.entries());
  out["sns"] = std::move(sn_list);
  if (oob_last_refusal) {
    const OobRefusal& r = *oob_last_refusal;
    out["last_refusal"] = {
        {"generation", r.generation},
        {"sn", r.sn},
        {"entry", r.removed.empty() ? Json(nullptr) : r.removed.front().to_json()},
        {"error", r.error}};
  } else {
    out["last_refusal"] = nullptr;
  }
  return out;
}

void Daemon::Impl::check_oob_refusal() {
  const std::uint64_t gen = link->invocation_generation();
  if (gen == 0 || gen == oob_refusal_seen || !active || !sns[*active].peer) return;
  const auto st = link->sn_state(*sns[*active].peer);
  if (!st || st->oob_refused != gen) return;
  oob_refusal_seen = gen;
  OobRefusal r{gen, sns[*active].name, oob_added, st->oob_error};
  if (oob_added.empty()) {
    // Nothing this generation added to blame (the set loaded at start, a disable, an SN
    // that offers less): kept as it is and reported.
    IE_LOG_WARN("out-of-band: {} refused the invocations (generation {}): {}", r.sn, gen, r.error);
  } else {
    InvocationSet next = oob;
    for (const auto& inv : oob_added)
      next.remove(inv);
    IE_LOG_WARN("out-of-band: {} refused {} (generation {}): {}; removed it again", r.sn,
                oob_added.front().str(), gen, r.error);
    if (auto p = push_invocations(std::move(next), {}); !p)
      IE_LOG_WARN("out-of-band: storing the set without {}: {}", oob_added.front().str(),
                  p.error().to_string());
  }
  oob_last_refusal = std::move(r);
}

}  // namespace ie::ied
