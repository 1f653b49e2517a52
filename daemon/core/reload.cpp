// Reloading ied.toml (SIGHUP, `iectl reload`; docs/ied.md "Reloading"). The file is read and
// validated whole first: an invalid file changes nothing. Then what can change while
// running is applied, and what cannot is named and left as it was:
//   applied live:   [host] prefixes (routes into the TUN), [[peer]], [[sn]] (static SN
//                   candidates: associations of removed ones are closed, new ones join the
//                   choice, also of a new IESP), [[steering.policy]], [[policy]] and
//                   discovery.default_iesp (the flow -> IESP table: it decides per packet,
//                   so existing flows follow it from their next packet too)
//   restart needed: [daemon], [tun], [host] addresses, the rest of [discovery], [timers],
//                   [steering] enabled/table/rule_priority
#include "daemon_impl.hpp"
#include "ie/util/log.hpp"

namespace ie::ied {

using ctl::Json;

void Daemon::Impl::set_static_peers(const std::vector<StaticPeer>& peers) {
  static_peers.clear();
  for (const auto& p : peers) {
    PeerRoute r;
    r.sn = p.sn;
    r.key = p.key;
    r.endpoint = p.endpoint;
    static_peers.emplace_back(*IpPrefix::parse(p.prefix), std::move(r));
  }
  std::stable_sort(static_peers.begin(), static_peers.end(),
                   [](const auto& a, const auto& b) { return a.first.len > b.first.len; });
  // Direct associations made for endpoints the peers' routes may no longer name.
  std::vector<IpAddr> made;
  for (const auto& [addr, ep] : direct_endpoint)
    made.push_back(addr);
  const auto now = Clock::now();
  for (const IpAddr& addr : made) {
    const PeerRoute* route = nullptr;
    for (const auto& [prefix, r] : static_peers)
      if (!route && prefix.contains(addr)) route = &r;
    if (route == nullptr) route = dns_peers.find(addr, now);
    route_changed(addr, route);
  }
}

Result<Json> Daemon::Impl::reload() {
  if (opts.config_path.empty())
    return fail(Errc::invalid_argument, "ied was started without a configuration file");
  auto loaded = load_ied_config(opts.config_path);
  if (!loaded) {
    IE_LOG_ERROR("reload refused, the running configuration stays: {}", loaded.error().to_string());
    return fail(loaded.error());
  }
  IedConfig next = std::move(*loaded);
  Json applied = Json::array();
  Json restart = Json::array();

  // What only a restart can change: keep the running values, say which.
  auto keep = [&](const char* name, auto& now_v, auto& next_v) {
    if (!(now_v == next_v)) {
      restart.push_back(name);
      next_v = now_v;
    }
  };
  keep("daemon.state_dir", cfg.state_dir, next.state_dir);
  keep("daemon.socket", cfg.socket, next.socket);
  keep("daemon.admin_group", cfg.admin_group, next.admin_group);
  keep("daemon.listen", cfg.listen, next.listen);
  keep("tun.name", cfg.tun_name, next.tun_name);
  keep("tun.mtu", cfg.tun_mtu, next.tun_mtu);
  keep("host.addresses", cfg.addresses, next.addresses);
  keep("discovery.order", cfg.order, next.order);
  keep("discovery.dns_domain", cfg.dns_domain, next.dns_domain);
  keep("iesp", cfg.iesp_dns, next.iesp_dns);
  keep("iesp.anycast", cfg.iesp_anycast, next.iesp_anycast);
  keep("discovery.dns_servers", cfg.dns_servers, next.dns_servers);
  keep("discovery.peer_dns", cfg.peer_dns, next.peer_dns);
  keep("discovery.iesp", cfg.discovery_iesp, next.discovery_iesp);
  keep("discovery.anycast", cfg.anycast, next.anycast);
  keep("discovery.anycast_interval_s", cfg.anycast_interval, next.anycast_interval);
  keep("timers.keepalive_ms", cfg.keepalive, next.keepalive);
  keep("timers.dead_after_ms", cfg.dead_after, next.dead_after);
  keep("steering.enabled", cfg.steering.enabled, next.steering.enabled);
  keep("steering.table", cfg.steering.table, next.steering.table);
  keep("steering.rule_priority", cfg.steering.rule_priority, next.steering.rule_priority);

  // [[steering.policy]] first: the one step that can fail on the system's side (a cgroup
  // that does not exist); then nothing else has changed yet.
  if (cfg.steering.policies != next.steering.policies) {
    if (steering) {
      if (auto r = steering->replace_policies(next.steering.policies, *nl, tun_ifindex, addresses);
          !r) {
        IE_LOG_ERROR("reload refused, the running configuration stays: {}", r.error().to_string());
        return fail(r.error());
      }
      applied.push_back("steering.policy");
    } else {
      restart.push_back("steering.policy");
      next.steering.policies = cfg.steering.policies;
    }
  }

  // [host] prefixes: routes into the TUN.
  if (cfg.prefixes != next.prefixes) {
    std::vector<IpPrefix> want;
    for (const auto& p : next.prefixes)
      want.push_back(*IpPrefix::parse(p));
    for (const auto& p : prefixes)
      if (std::find(want.begin(), want.end(), p) == want.end()) {
        RouteSpec rs;
        rs.dst = p;
        rs.ifindex = tun_ifindex;
        if (auto d = nl->del_route(rs); !d && d.error().code != Errc::not_found)
          IE_LOG_WARN("reload: {}", d.error().to_string());
      }
    for (const auto& p : want)
      if (std::find(prefixes.begin(), prefixes.end(), p) == prefixes.end())
        if (auto a = add_prefix_route(p); !a) IE_LOG_WARN("reload: {}", a.error().to_string());
    prefixes = std::move(want);
    applied.push_back("host.prefixes");
  }

  if (cfg.peers != next.peers) {
    set_static_peers(next.peers);
    applied.push_back("peer");
  }

  // Read on every tick (rtt_survey.cpp): the next survey follows the new period, and 0 ranks
  // by order alone from the next reconcile on.
  if (cfg.rtt_survey != next.rtt_survey) applied.push_back("discovery.rtt_survey_s");

  const bool sns_changed = cfg.sns != next.sns;
  const bool policy_changed =
      cfg.policies != next.policies || cfg.default_iesp != next.default_iesp;
  cfg = std::move(next);
  if (policy_changed) connection_ids.clear();  // flows may take another first hop now
  if (policy_changed && !sns_changed) {
    set_iesps();
    applied.push_back("policy");
    reconcile_sns();  // the default IESP may be another one now
  }
  if (sns_changed) {
    // Static candidates are rebuilt; a remaining one keeps its association (same name,
    // endpoint, key and IESP), a removed one is closed.
    const auto saved = save_actives();
    std::vector<SnEntry> old_static, kept;
    for (auto& e : sns)
      (e.source == DiscoverySource::static_config ? old_static : kept).push_back(std::move(e));
    sns = std::move(kept);
    add_static_sns();
    for (auto& e : sns) {
      if (e.source != DiscoverySource::static_config) continue;
      for (auto& o : old_static)
        if (o.peer && o.name == e.name && o.endpoint == e.endpoint && o.key == e.key &&
            o.iesp == e.iesp) {
          e.peer = o.peer;
          o.peer.reset();
        }
    }
    for (auto& o : old_static)
      if (o.peer) link->remove_sn(*o.peer);
    restore_actives(saved);
    applied.push_back("sn");
    if (policy_changed) applied.push_back("policy");
    reconcile_sns();
  }
  IE_LOG_INFO("reloaded {}: applied {}, needs a restart: {}", opts.config_path, applied.dump(),
              restart.dump());
  return Json{{"file", opts.config_path}, {"applied", applied}, {"restart_needed", restart}};
}

}  // namespace ie::ied
