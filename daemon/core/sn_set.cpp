// Choosing first-hop SNs (ARCHITECTURE.md "SN discovery and association"): candidates come
// from the sources in discovery.order (static configuration, DNS SRV/TXT); DNS candidates are
// pinned on first use (a changed key is refused until re-pinned). ied keeps associations
// with the two best usable candidates — the active SN and a warm standby — so a failover is a
// switch, not a handshake: when the active SN's association dies (no answer to keepalives
// for timers.dead_after) traffic moves to the standby at once, and back when the better SN
// is ready again. Preference: source order, then priority, then RFC 2782 order.
#include <algorithm>

#include "daemon_impl.hpp"
#include "ie/util/log.hpp"

namespace ie::ied {

namespace {
constexpr auto kDnsRetry = std::chrono::seconds(5);
constexpr auto kMinDnsInterval = std::chrono::seconds(1);
constexpr std::size_t kAssociated = 2;  // active + warm standby

std::size_t source_rank(const IedConfig& cfg, DiscoverySource s) {
  for (std::size_t i = 0; i < cfg.order.size(); ++i)
    if (cfg.order[i] == s) return i;
  return cfg.order.size();
}
}  // namespace

void Daemon::Impl::add_static_sns() {
  if (source_rank(cfg, DiscoverySource::static_config) >= cfg.order.size()) return;
  for (const auto& s : cfg.sns) {
    SnEntry e;
    e.name = s.name;
    e.endpoint = s.endpoint;
    e.key = s.key;
    e.priority = s.priority;
    e.weight = s.weight;
    e.source = DiscoverySource::static_config;
    e.order = sns.size();
    sns.push_back(std::move(e));
  }
}

void Daemon::Impl::start_dns_discovery() {
  if (!dns || cfg.dns_domain.empty() || dns_in_flight) return;
  dns_in_flight = true;
  dns_next.reset();
  dns->discover_sns(cfg.dns_domain,
                    [this](Result<std::vector<SnCandidate>> r) { on_dns_sns(std::move(r)); });
}

void Daemon::Impl::on_dns_sns(Result<std::vector<SnCandidate>> r) {
  dns_in_flight = false;
  const auto now = Clock::now();
  if (!r) {
    dns_error = r.error().to_string();
    IE_LOG_WARN("SN discovery in DNS ({}): {}", cfg.dns_domain, dns_error);
    dns_next = now + kDnsRetry;
    return;  // keep what we had: records past their TTL still beat no SN
  }
  dns_error.clear();
  // Before anything is moved out of sns.
  const std::optional<std::string> active_name =
      active ? std::optional<std::string>(sns[*active].name) : std::nullopt;
  // Replace the DNS candidates, keeping the associations of those that remain.
  std::vector<SnEntry> kept;
  for (auto& e : sns)
    if (e.source != DiscoverySource::dns) kept.push_back(std::move(e));
  std::vector<SnEntry> old_dns;
  for (auto& e : sns)
    if (e.source == DiscoverySource::dns) old_dns.push_back(std::move(e));
  Clock::time_point earliest = now + std::chrono::hours(1);
  std::size_t order = 0;
  for (const auto& c : *r) {
    SnEntry e;
    e.name = c.name;
    e.endpoint = c.endpoint;
    e.key = c.key;
    e.priority = c.priority;
    e.weight = c.weight;
    e.source = DiscoverySource::dns;
    e.order = order++;
    e.expires = c.expires;
    earliest = std::min(earliest, c.expires);
    auto pin = state->check_pin(c.name, c.key);
    if (!pin) {
      e.error = pin.error().to_string();
    } else if (*pin == PinResult::mismatch) {
      e.error = "key differs from the pinned key (re-pin with `iectl sn use " + c.name +
                " --repin` after checking it)";
      IE_LOG_WARN("SN {} at {}: {}", c.name, c.endpoint, e.error);
    }
    for (auto& o : old_dns)
      if (o.peer && o.name == e.name && o.key == e.key && o.endpoint == e.endpoint) {
        e.peer = o.peer;
        o.peer.reset();
      }
    kept.push_back(std::move(e));
  }
  // Old DNS candidates that vanished: drop their associations.
  for (auto& o : old_dns)
    if (o.peer) link->remove_sn(*o.peer);
  sns = std::move(kept);
  active.reset();
  if (active_name)
    for (std::size_t i = 0; i < sns.size(); ++i)
      if (sns[i].name == *active_name && sns[i].peer) active = i;
  dns_next = std::max(earliest, now + kMinDnsInterval);
  reconcile_sns();
}

void Daemon::Impl::reconcile_sns() {
  // Preference order of usable candidates.
  std::vector<std::size_t> pref;
  for (std::size_t i = 0; i < sns.size(); ++i)
    if (sns[i].error.empty()) pref.push_back(i);
  std::stable_sort(pref.begin(), pref.end(), [this](std::size_t a, std::size_t b) {
    const SnEntry& x = sns[a];
    const SnEntry& y = sns[b];
    const auto rx = source_rank(cfg, x.source), ry = source_rank(cfg, y.source);
    if (rx != ry) return rx < ry;
    if (x.priority != y.priority) return x.priority < y.priority;
    return x.order < y.order;
  });
  // Associate with the first kAssociated; others lose their association.
  std::vector<std::string> addrs = cfg.addresses;
  for (std::size_t k = 0; k < pref.size(); ++k) {
    SnEntry& e = sns[pref[k]];
    if (k < kAssociated && !e.peer) {
      auto p = link->add_sn(e.endpoint, e.key, addrs);
      if (!p) {
        e.error = p.error().to_string();
        continue;
      }
      e.peer = *p;
    } else if (k >= kAssociated && e.peer && !(active && *active == pref[k])) {
      link->remove_sn(*e.peer);
      e.peer.reset();
    }
  }
  // Active: the most preferred candidate that is ready (associated and registered).
  std::optional<std::size_t> best;
  for (const std::size_t i : pref)
    if (!forced.empty() && sns[i].name == forced && sns[i].peer && link->sn_ready(*sns[i].peer))
      best = i;
  for (const std::size_t i : pref)
    if (!best)
      if (sns[i].peer && link->sn_ready(*sns[i].peer)) best = i;
  if (best && best != active) {
    if (active) {
      counters.add(Ctr::failovers);
      IE_LOG_INFO("first-hop SN: {} -> {}", sns[*active].name, sns[*best].name);
    } else {
      IE_LOG_INFO("first-hop SN: {} ({})", sns[*best].name, sns[*best].endpoint);
    }
    active = best;
    // New connection ids through the new SN: caches along the old way keyed the old ones.
    connection_ids.clear();
  } else if (!best && active && !(sns[*active].peer && link->can_send(*sns[*active].peer))) {
    IE_LOG_WARN("first-hop SN {} lost and no other SN ready", sns[*active].name);
    active.reset();
  }
}

std::optional<link::PeerId> Daemon::Impl::active_peer() const {
  if (!active) return std::nullopt;
  return sns[*active].peer;
}

Result<std::string> Daemon::Impl::use_sn(const std::string& name) {
  for (std::size_t i = 0; i < sns.size(); ++i) {
    if (sns[i].name != name) continue;
    if (!sns[i].error.empty()) return fail(Errc::invalid_argument, name + ": " + sns[i].error);
    if (!sns[i].peer) {
      auto p = link->add_sn(sns[i].endpoint, sns[i].key, cfg.addresses);
      if (!p) return fail(p.error());
      sns[i].peer = *p;
    }
    if (!link->sn_ready(*sns[i].peer))
      return fail(Errc::busy, name + " is not associated yet; try again in a moment");
    forced = name;
    if (active != i) {
      counters.add(Ctr::failovers);
      connection_ids.clear();
    }
    active = i;
    return name;
  }
  return fail(Errc::not_found, "no SN named " + name + " (see `iectl sn list`)");
}

}  // namespace ie::ied
