// Choosing first-hop SNs (ARCHITECTURE.md "SN discovery and association"): candidates come
// from the sources in discovery.order (static configuration, DNS SRV/TXT, anycast probes;
// docs/discovery.md); DNS and anycast candidates are pinned by name on first use (a changed
// key is refused until re-pinned). ied keeps associations
// with the two best usable candidates — the active SN and a warm standby — so a failover is a
// switch, not a handshake: when the active SN's association dies (no answer to keepalives
// for timers.dead_after) traffic moves to the standby at once, and back when the better SN
// is ready again. Preference: source order, then priority, then measured RTT (SNs much
// farther than the closest of their tier go after it; sn_rank.hpp, rtt_survey.cpp), then
// RFC 2782 / listed order.
// Several IESPs (edge-service providers; docs/discovery.md "Several IESPs"): every candidate
// belongs to one ([[sn]] iesp, discovery.iesp for DNS and anycast ones) and each IESP runs
// this choice on its own candidates, so ied holds an active SN and a standby per IESP at
// once; the [[policy]] table (iesp_policy.hpp) picks a flow's IESP (ip_path.cpp).
// Make before break: when discovery replaces (anycast moved) or drops (DNS records gone) the
// SN that is active for its IESP, that SN keeps its association and its traffic, marked
// retiring (no longer a candidate), until another SN of the IESP is ready; then traffic
// switches and the retiring SN's association is closed.
#include <algorithm>

#include "daemon_impl.hpp"
#include "ie/crypto/key_file.hpp"
#include "ie/util/log.hpp"

namespace ie::ied {

namespace {
constexpr auto kDnsRetry = std::chrono::seconds(5);
constexpr auto kMinDnsInterval = std::chrono::seconds(1);
// Anycast: a probe ends within kAnycastTimeout; with no usable SN a new round starts
// kAnycastRetry after the last one began (not only every anycast_interval).
constexpr auto kAnycastTimeout = std::chrono::seconds(3);
constexpr auto kAnycastRetry = std::chrono::seconds(2);
// At start, how long the most preferred SN's association may take before a less preferred
// SN that is already ready becomes active (reconcile_iesp).
constexpr auto kStartGrace = std::chrono::milliseconds(300);

std::string pin_mismatch(const std::string& name) {
  return "key differs from the pinned key (re-pin with `iectl sn use " + name +
         " --repin` after checking it)";
}

bool pinned_source(DiscoverySource s) {
  return s == DiscoverySource::dns || s == DiscoverySource::anycast;
}

}  // namespace

std::size_t source_rank(const IedConfig& cfg, DiscoverySource s) {
  for (std::size_t i = 0; i < cfg.order.size(); ++i)
    if (cfg.order[i] == s) return i;
  return cfg.order.size();
}

void Daemon::Impl::set_iesps() {
  auto p = IespPolicy::build(cfg.policies, cfg.default_iesp);
  if (!p) {
    // The configuration was validated: only a bug gets here. Keep the table we had.
    IE_LOG_ERROR("[[policy]]: {}", p.error().to_string());
  } else {
    policy = std::move(*p);
  }
  // IESPs no longer configured and without candidates go; new ones start empty.
  const auto names = config_iesps(cfg);
  for (auto it = iesps.begin(); it != iesps.end();) {
    const bool configured = std::find(names.begin(), names.end(), it->first) != names.end();
    bool has_sn = false;
    for (const auto& e : sns)
      has_sn = has_sn || e.iesp == it->first;
    it = (configured || has_sn) ? std::next(it) : iesps.erase(it);
  }
  for (const auto& n : names)
    iesps.try_emplace(n);
}

std::optional<std::size_t> Daemon::Impl::iesp_active(const std::string& iesp) const {
  const auto it = iesps.find(iesp);
  return it == iesps.end() ? std::nullopt : it->second.active;
}

const std::string& Daemon::Impl::flow_iesp(const IpAddr& dst, std::uint32_t mark) const {
  if (mark != 0 && steering && policy.has_service_rules())
    if (const auto c = steering->choice_of_mark(mark))
      return policy.choose(dst, c->service, c->requested);
  return policy.choose(dst);
}

std::map<std::string, link::PeerId> Daemon::Impl::save_actives() const {
  std::map<std::string, link::PeerId> out;
  for (const auto& [name, st] : iesps)
    if (st.active && sns[*st.active].peer) out[name] = *sns[*st.active].peer;
  return out;
}

void Daemon::Impl::restore_actives(const std::map<std::string, link::PeerId>& saved) {
  for (auto& [name, st] : iesps) {
    st.active.reset();
    const auto it = saved.find(name);
    if (it == saved.end()) continue;
    for (std::size_t i = 0; i < sns.size(); ++i)
      if (sns[i].iesp == name && sns[i].peer && *sns[i].peer == it->second) st.active = i;
  }
  active = iesp_active(policy.default_iesp());
}

void Daemon::Impl::retire_or_remove(SnEntry&& o, const std::map<std::string, link::PeerId>& saved,
                                    std::vector<SnEntry>& kept) {
  if (!o.peer) return;
  for (const auto& [iesp, peer] : saved)
    if (peer == *o.peer) {
      if (!o.retiring)
        IE_LOG_INFO(
            "SN {} ({}) retiring: it stays the first hop of IESP {} until another SN "
            "is ready",
            o.name, o.endpoint, iesp);
      o.retiring = true;
      kept.push_back(std::move(o));
      return;
    }
  link->remove_sn(*o.peer);
}

void Daemon::Impl::prune_retiring() {
  if (std::none_of(sns.begin(), sns.end(), [](const SnEntry& e) { return e.retiring; })) return;
  const auto saved = save_actives();
  std::vector<SnEntry> kept;
  for (auto& e : sns) {
    bool active_now = false;
    for (const auto& [iesp, peer] : saved)
      active_now = active_now || (e.peer && peer == *e.peer);
    if (!e.retiring || active_now) {
      kept.push_back(std::move(e));
      continue;
    }
    IE_LOG_INFO("SN {} ({}) retired", e.name, e.endpoint);
    if (e.peer) link->remove_sn(*e.peer);
  }
  sns = std::move(kept);
  restore_actives(saved);
}

void Daemon::Impl::add_static_sns() {
  set_iesps();  // start and reload both come here first
  if (source_rank(cfg, DiscoverySource::static_config) >= cfg.order.size()) return;
  for (const auto& s : cfg.sns) {
    SnEntry e = SnEntry::make(s.name, s.endpoint, s.key);
    e.priority = s.priority;
    e.weight = s.weight;
    e.iesp = s.iesp;
    e.source = DiscoverySource::static_config;
    e.order = sns.size();
    sns.push_back(std::move(e));
  }
}

void Daemon::Impl::start_discovery() {
  // The one place a dynamic source plugs in: each configured source starts here, and
  // discovery_tick() starts it again when it is due.
  for (const DiscoverySource s : cfg.order) {
    switch (s) {
      case DiscoverySource::static_config:
        break;  // add_static_sns(), once
      case DiscoverySource::dns:
        for (std::size_t i = 0; i < dns_discovery.size(); ++i)
          start_dns_discovery(i);
        break;
      case DiscoverySource::anycast:
        if (!anycast_list.empty()) start_anycast_discovery();
        break;
      case DiscoverySource::lookup:
        // The lookup service (issue 4) does not exist yet; the configuration refuses it.
        // Its client would start here and hand SnEntry candidates (source lookup, pinned
        // like DNS) to reconcile_sns().
        break;
    }
  }
}

void Daemon::Impl::discovery_tick(Clock::time_point now) {
  for (std::size_t i = 0; i < dns_discovery.size(); ++i)
    if (dns_discovery[i].next && now >= *dns_discovery[i].next && !dns_discovery[i].in_flight)
      start_dns_discovery(i);
  if (anycast_in_flight == 0) {
    const auto& targets = anycast_list;
    if (targets.empty()) return;
    const bool due = anycast_next && now >= *anycast_next;
    // An IESP with anycast addresses has no usable SN (none found yet, or every one is
    // down): look again soon, the anycast route may lead to another SN now.
    const bool hungry = std::any_of(targets.begin(), targets.end(),
                                    [&](const AnycastTarget& t) { return !iesp_active(t.iesp); });
    const bool starved = hungry && (!anycast_started || now - *anycast_started >= kAnycastRetry);
    if (due || starved) start_anycast_discovery();
  }
}

void Daemon::Impl::start_anycast_discovery() {
  const auto& targets = anycast_list;
  if (anycast_in_flight > 0 || targets.empty()) return;
  if (!anycast) {
    AnycastOptions ao;
    ao.timeout = kAnycastTimeout;
    ao.timers.keepalive = cfg.keepalive;
    ao.timers.dead_after = cfg.dead_after;
    ao.timers.retry_initial = std::chrono::milliseconds(500);
    ao.timers.retry_max = std::chrono::seconds(1);
    anycast = std::make_unique<AnycastProber>(*reactor, ao);
  }
  const auto now = Clock::now();
  anycast_started = now;
  anycast_next = now + cfg.anycast_interval;
  for (const auto& t : targets) {
    ++anycast_in_flight;
    anycast->probe(t.address, [this, t](Result<AnycastAnswer> r) { on_anycast(t, std::move(r)); });
  }
}

// One anycast address answered (or not). Its candidate is replaced by a usable new responder;
// a failed probe keeps it (a candidate that stopped answering at the anycast address may
// still serve at its unicast endpoint), and a refused responder (its key differs from the
// pin of its name) is listed with the error beside it, so an impostor on the anycast route
// cannot evict a good SN.
void Daemon::Impl::on_anycast(const AnycastTarget& target, Result<AnycastAnswer> r) {
  if (anycast_in_flight > 0) --anycast_in_flight;
  const std::string& address = target.address;
  if (!r) {
    if (anycast_errors[address] != r.error().to_string())
      IE_LOG_WARN("SN discovery at anycast {}: {}", address, r.error().to_string());
    anycast_errors[address] = r.error().to_string();
    return;
  }
  const AnycastAnswer& a = *r;
  SnEntry e = SnEntry::make(a.info.name, a.info.endpoint, a.key);
  e.source = DiscoverySource::anycast;
  e.iesp = target.iesp;
  e.anycast = address;
  e.order = target.order;
  auto pin = state->check_pin(e.name, e.key);
  if (!pin) {
    e.error = pin.error().to_string();
  } else if (*pin == PinResult::mismatch) {
    e.error = pin_mismatch(e.name);
  }
  anycast_errors[address] = e.error.empty() ? "" : "responder " + e.name + ": " + e.error;
  // The same SN as before at this address: nothing changes.
  for (auto& o : sns)
    if (!o.retiring && o.source == DiscoverySource::anycast && o.anycast == address &&
        o.name == e.name && o.key == e.key && o.endpoint == e.endpoint && o.error == e.error)
      return;
  if (e.error.empty()) {
    IE_LOG_INFO("SN discovery at anycast {}: {} ({}), key {}", address, e.name, e.endpoint,
                crypto::key_to_base64(e.key));
  } else {
    IE_LOG_WARN("SN discovery at anycast {}: {} at {}: {}", address, e.name, e.endpoint, e.error);
  }
  // The active SNs are found again by their associations (indices move below).
  const auto saved = save_actives();
  // A usable responder replaces every earlier candidate of this address; a refused one only
  // the earlier refused ones.
  std::vector<SnEntry> kept;
  for (auto& o : sns) {
    const bool replaced = o.source == DiscoverySource::anycast && o.anycast == address &&
                          (e.error.empty() || !o.error.empty());
    if (!replaced) {
      kept.push_back(std::move(o));
      continue;
    }
    if (o.peer && !e.peer && e.error.empty() && o.name == e.name && o.key == e.key &&
        o.endpoint == e.endpoint) {
      e.peer = o.peer;  // the same SN (re-pinned since, or back from retiring): keep it
    } else {
      retire_or_remove(std::move(o), saved, kept);
    }
  }
  kept.push_back(std::move(e));
  sns = std::move(kept);
  restore_actives(saved);
  reconcile_sns();
}

void Daemon::Impl::start_dns_discovery(std::size_t i) {
  if (!dns || i >= dns_discovery.size() || dns_discovery[i].in_flight) return;
  DnsDiscovery& d = dns_discovery[i];
  d.in_flight = true;
  d.next.reset();
  dns->discover_sns(d.domain,
                    [this, i](Result<std::vector<SnCandidate>> r) { on_dns_sns(i, std::move(r)); });
}

void Daemon::Impl::on_dns_sns(std::size_t i, Result<std::vector<SnCandidate>> r) {
  if (i >= dns_discovery.size()) return;
  DnsDiscovery& d = dns_discovery[i];
  d.in_flight = false;
  const auto now = Clock::now();
  if (!r) {
    d.error = r.error().to_string();
    IE_LOG_WARN("SN discovery in DNS ({}, IESP {}): {}", d.domain, d.iesp, d.error);
    d.next = now + kDnsRetry;
    return;  // keep what we had: records past their TTL still beat no SN
  }
  d.error.clear();
  // Before anything is moved out of sns.
  const auto saved = save_actives();
  // Replace this IESP's DNS candidates, keeping the associations of those that remain.
  const auto ours = [&](const SnEntry& e) {
    return e.source == DiscoverySource::dns && e.iesp == d.iesp;
  };
  std::vector<SnEntry> kept;
  for (auto& e : sns)
    if (!ours(e)) kept.push_back(std::move(e));
  std::vector<SnEntry> old_dns;
  for (auto& e : sns)
    if (ours(e)) old_dns.push_back(std::move(e));
  Clock::time_point earliest = now + std::chrono::hours(1);
  std::size_t order = 0;
  for (const auto& c : *r) {
    SnEntry e = SnEntry::make(c.name, c.endpoint, c.key);
    e.priority = c.priority;
    e.weight = c.weight;
    e.source = DiscoverySource::dns;
    e.iesp = d.iesp;
    e.order = order++;
    e.expires = c.expires;
    earliest = std::min(earliest, c.expires);
    auto pin = state->check_pin(c.name, c.key);
    if (!pin) {
      e.error = pin.error().to_string();
    } else if (*pin == PinResult::mismatch) {
      e.error = pin_mismatch(c.name);
      IE_LOG_WARN("SN {} at {}: {}", c.name, c.endpoint, e.error);
    }
    for (auto& o : old_dns)
      if (o.peer && o.name == e.name && o.key == e.key && o.endpoint == e.endpoint) {
        e.peer = o.peer;
        o.peer.reset();
      }
    kept.push_back(std::move(e));
  }
  // Old DNS candidates that vanished: their associations go (the active one once another
  // SN is ready).
  for (auto& o : old_dns)
    retire_or_remove(std::move(o), saved, kept);
  sns = std::move(kept);
  restore_actives(saved);
  d.next = std::max(earliest, now + kMinDnsInterval);
  reconcile_sns();
}

void Daemon::Impl::reconcile_sns() {
  // IESPs only candidates name (none today: every source's IESP is configured) join too.
  for (const auto& e : sns)
    iesps.try_emplace(e.iesp);
  for (auto& [name, st] : iesps)
    reconcile_iesp(name, st);
  active = iesp_active(policy.default_iesp());
  prune_retiring();
  set_roles();
}

void Daemon::Impl::set_roles() {
  for (std::size_t i = 0; i < sns.size(); ++i) {
    if (!sns[i].peer) continue;
    const auto st = iesps.find(sns[i].iesp);
    link->set_standby(*sns[i].peer, st == iesps.end() || st->second.active != i);
  }
}

void Daemon::Impl::reconcile_iesp(const std::string& iesp, IespState& st) {
  // Preference order of this IESP's usable candidates: tiers (source, priority), RTT
  // within a tier, then RFC 2782 / listed order (sn_rank.hpp, rtt_survey.cpp).
  const std::vector<std::size_t> pref = rank_iesp(iesp);
  // Associate with the first kAssociatedPerIesp; others lose their association.
  std::vector<std::string> addrs = cfg.addresses;
  for (std::size_t k = 0; k < pref.size(); ++k) {
    SnEntry& e = sns[pref[k]];
    if (k < kAssociatedPerIesp && !e.peer) {
      end_survey_of(e);  // its survey's association would hold the key
      auto p = link->add_sn(e.endpoint, e.key, addrs);
      if (!p) {
        e.error = p.error().to_string();
        continue;
      }
      e.peer = *p;
    } else if (k >= kAssociatedPerIesp && e.peer && !(st.active && *st.active == pref[k])) {
      link->remove_sn(*e.peer);
      e.peer.reset();
    }
  }
  // Active: the most preferred candidate that is ready (associated and registered).
  std::optional<std::size_t> best;
  for (const std::size_t i : pref)
    if (!st.forced.empty() && sns[i].name == st.forced && sns[i].peer &&
        link->sn_ready(*sns[i].peer))
      best = i;
  for (const std::size_t i : pref)
    if (!best)
      if (sns[i].peer && link->sn_ready(*sns[i].peer)) best = i;
  // At start the SNs' handshakes race: wait a moment for the most preferred associating one
  // rather than take whichever answered first and switch a few milliseconds later.
  if (!st.active && best && st.forced.empty() && Clock::now() - started < kStartGrace)
    for (const std::size_t i : pref) {
      if (i == *best) break;
      if (sns[i].peer) {  // associating: ready it would be best
        best.reset();
        break;
      }
    }
  if (best && best != st.active) {
    if (st.active) {
      counters.add(Ctr::failovers);
      // Tests and operators grep "first-hop SN: OLD -> NEW": keep that text first.
      IE_LOG_INFO("first-hop SN: {} -> {} (IESP {})", sns[*st.active].name, sns[*best].name, iesp);
    } else {
      IE_LOG_INFO("first-hop SN: {} ({}, IESP {})", sns[*best].name, sns[*best].endpoint, iesp);
    }
    st.active = best;
    // New connection ids through the new SN: caches along the old way keyed the old ones.
    connection_ids.clear();
  } else if (!best && st.active &&
             !(sns[*st.active].peer && link->can_send(*sns[*st.active].peer))) {
    IE_LOG_WARN("first-hop SN {} lost and no other SN ready (IESP {})", sns[*st.active].name, iesp);
    st.active.reset();
  }
}

std::optional<link::PeerId> Daemon::Impl::active_peer() const {
  if (!active) return std::nullopt;
  return sns[*active].peer;
}

Result<void> Daemon::Impl::repin_sn(const std::string& name) {
  std::optional<crypto::noise::PublicKey> key;
  for (const auto& e : sns)
    if (e.name == name && pinned_source(e.source) && !e.error.empty()) key = e.key;
  if (!key) return ok();
  if (auto r = state->repin(name, *key); !r) return fail(r.error());
  IE_LOG_INFO("SN {}: key {} pinned by the operator", name, crypto::key_to_base64(*key));
  // The pin is per name: a candidate still under the old key (an anycast address that
  // answered before, another DNS record) is refused from now on.
  for (std::size_t i = 0; i < sns.size(); ++i) {
    SnEntry& e = sns[i];
    if (e.name != name || !pinned_source(e.source)) continue;
    if (e.key == *key) {
      e.error.clear();
      continue;
    }
    e.error = pin_mismatch(name);
    if (e.peer) link->remove_sn(*e.peer);
    e.peer.reset();
    for (auto& [n, st] : iesps)
      if (st.active == i) st.active.reset();
  }
  active = iesp_active(policy.default_iesp());
  return ok();
}

Result<std::string> Daemon::Impl::use_sn(const std::string& name) {
  // Several candidates may carry the name (sources, a refused key beside the pinned one):
  // the first usable one is meant; only when none is usable is the refusal the answer.
  std::optional<std::size_t> pick;
  for (std::size_t i = 0; i < sns.size() && !pick; ++i)
    if (sns[i].name == name && sns[i].error.empty() && !sns[i].retiring) pick = i;
  for (std::size_t i = 0; i < sns.size() && !pick; ++i)
    if (sns[i].name == name) return fail(Errc::invalid_argument, name + ": " + sns[i].error);
  if (pick) {
    const std::size_t i = *pick;
    if (!sns[i].peer) {
      auto p = link->add_sn(sns[i].endpoint, sns[i].key, cfg.addresses);
      if (!p) return fail(p.error());
      sns[i].peer = *p;
    }
    if (!link->sn_ready(*sns[i].peer))
      return fail(Errc::busy, name + " is not associated yet; try again in a moment");
    IespState& st = iesps[sns[i].iesp];
    st.forced = name;
    if (st.active != i) {
      counters.add(Ctr::failovers);
      connection_ids.clear();
    }
    st.active = i;
    active = iesp_active(policy.default_iesp());
    set_roles();
    return name;
  }
  return fail(Errc::not_found, "no SN named " + name + " (see `iectl sn list`)");
}

}  // namespace ie::ied
