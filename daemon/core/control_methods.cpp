// The methods ied serves on its control socket (docs/control-protocol.md, "ied methods");
// iectl is their client. Thin: each reads the daemon's state or calls one action of it.
// Reads are open to anyone who can reach the socket; changes need Access::admin (root or
// the configured admin group, checked by ctl::Server from the caller's credentials).
#include "daemon_impl.hpp"
#include "ie/bpf/steer.hpp"
#include "ie/crypto/key_file.hpp"
#include "ie/wire/service_id.hpp"

namespace ie::ied {

namespace {

using ctl::Json;

const char* proto_name(std::uint8_t p) {
  switch (p) {
    case 1:
      return "icmp";
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 58:
      return "icmpv6";
    case 132:
      return "sctp";
    default:
      return nullptr;
  }
}

std::string endpoint_text(const IpAddr& a, std::uint16_t port) {
  return a.is_v6() ? "[" + a.str() + "]:" + std::to_string(port)
                   : a.str() + ":" + std::to_string(port);
}

Json opt_ms(const std::optional<double>& v) {
  return v ? Json(*v) : Json(nullptr);
}

}  // namespace

Json Daemon::Impl::sns_json() const {
  Json list = Json::array();
  const auto now = Clock::now();
  for (std::size_t i = 0; i < sns.size(); ++i) {
    const SnEntry& e = sns[i];
    Json j;
    j["name"] = e.name;
    j["endpoint"] = e.endpoint;
    j["key"] = crypto::key_to_base64(e.key);
    j["source"] = discovery_source_name(e.source);
    j["iesp"] = e.iesp;
    if (e.source == DiscoverySource::anycast) j["anycast"] = e.anycast;
    j["priority"] = e.priority;
    j["weight"] = e.weight;
    j["expires_in_s"] =
        e.expires ? Json(std::chrono::duration_cast<std::chrono::seconds>(*e.expires - now).count())
                  : Json(nullptr);
    std::optional<link::HostLink::SnState> st;
    if (e.peer) st = link->sn_state(*e.peer);
    // RTT: the association's (live) or the last survey's (rtt_survey.cpp), and how old.
    const RttRecord* rec = rtt_of(e);
    if (st && st->rtt_ms) {
      j["rtt_ms"] = *st->rtt_ms;
    } else {
      j["rtt_ms"] = rec ? opt_ms(rec->rtt_ms()) : Json(nullptr);
    }
    // What the ranking uses (sn_rank.hpp): the smallest recent round trip.
    j["rtt_min_ms"] = rec ? opt_ms(rec->rtt_ms()) : Json(nullptr);
    j["rtt_age_s"] =
        rec ? Json(std::chrono::duration_cast<std::chrono::seconds>(now - rec->at).count())
            : Json(nullptr);
    j["rtt_unreachable"] = rec != nullptr && rec->unreachable;
    std::string st_name = "candidate";
    if (!e.error.empty()) {
      st_name = "failed";
      j["error"] = e.error;
    } else if (iesp_active(e.iesp) == i) {
      st_name = "active";  // for its IESP
    } else if (e.peer && link->sn_ready(*e.peer)) {
      st_name = "standby";
    } else if (e.peer) {
      st_name = "connecting";
    }
    j["state"] = st_name;
    j["retiring"] = e.retiring;  // replaced or dropped by discovery, active until another is ready
    j["associated"] = st ? st->established : false;
    j["registered"] = st ? st->registered : false;
    j["pinned"] = (e.source == DiscoverySource::dns || e.source == DiscoverySource::anycast) &&
                  e.error.empty();
    list.push_back(std::move(j));
  }
  Json out;
  out["sns"] = std::move(list);
  // The first DNS discovery's last error (discovery.dns_domain's, or the first [[iesp]]'s),
  // then every failing one's under dns_errors.
  Json errs = Json::object();
  for (const auto& d : dns_discovery)
    if (!d.error.empty()) {
      if (!out.contains("dns_error")) out["dns_error"] = d.error;
      errs[d.iesp] = d.error;
    }
  if (!errs.empty()) out["dns_errors"] = std::move(errs);
  if (!anycast_list.empty()) out["anycast"] = discovery_json()["anycast"];
  return out;
}

// The sources in preference order and what their last attempts said.
Json Daemon::Impl::discovery_json() const {
  Json order = Json::array();
  for (const auto s : cfg.order)
    order.push_back(discovery_source_name(s));
  Json out = {{"order", std::move(order)}, {"iesp", cfg.discovery_iesp}};
  // "dns": the first DNS discovery (discovery.dns_domain, else the first [[iesp]]);
  // "dns_iesps": every one, with its IESP.
  Json per = Json::array();
  for (const auto& d : dns_discovery) {
    Json one = {{"iesp", d.iesp},
                {"domain", d.domain},
                {"error", d.error.empty() ? Json(nullptr) : Json(d.error)}};
    if (!out.contains("dns")) out["dns"] = {{"domain", d.domain}, {"error", one["error"]}};
    per.push_back(std::move(one));
  }
  if (!per.empty()) out["dns_iesps"] = std::move(per);
  // Each anycast address's last probe: error null when a usable SN answered; probed false
  // before the first answer or timeout.
  Json any = Json::array();
  for (const auto& t : anycast_list) {
    const auto it = anycast_errors.find(t.address);
    Json a = {{"address", t.address},
              {"iesp", t.iesp},
              {"probed", it != anycast_errors.end()},
              {"error", nullptr}};
    if (it != anycast_errors.end() && !it->second.empty()) a["error"] = it->second;
    any.push_back(std::move(a));
  }
  out["anycast"] = std::move(any);
  out["anycast_interval_s"] = cfg.anycast_interval.count();
  return out;
}

Json Daemon::Impl::status_json() const {
  Json j;
  j["version"] = "0.1.0";
  j["identity"] = crypto::key_to_base64(identity.pub);
  j["uptime_s"] = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count();
  j["tun"] = {{"name", tun ? tun->name() : cfg.tun_name}, {"mtu", tun_mtu}};
  // The path MTU to each next hop in use (SN or direct peer), as last read from the kernel
  // (path_mtu.hpp), and how often it went down; black-hole detection (plpmtud.hpp): its
  // state, the limit found (null: none) and the MTU in use.
  Json pm = Json::array();
  if (path_mtus)
    for (const auto& [endpoint, h] : path_mtus->hops())
      if (h.mtu != 0) {
        const auto cap = h.plpmtud.cap();
        pm.push_back({{"next_hop", endpoint},
                      {"mtu", h.mtu},
                      {"drops", h.drops},
                      {"probing", std::string(to_string(h.plpmtud.state()))},
                      {"black_hole_mtu", cap ? Json(*cap + h.headers()) : Json(nullptr)},
                      {"usable_mtu", h.usable_mtu()}});
      }
  j["path_mtu"] = std::move(pm);
  j["addresses"] = cfg.addresses;
  j["prefixes"] = cfg.prefixes;
  if (active) {
    const SnEntry& e = sns[*active];
    const auto st = e.peer ? link->sn_state(*e.peer) : std::nullopt;
    j["sn"] = {{"name", e.name},
               {"endpoint", e.endpoint},
               {"state", st && st->established ? "established" : "connecting"},
               {"registered", st ? st->registered : false},
               {"rtt_ms", st ? opt_ms(st->rtt_ms) : Json(nullptr)}};
  } else {
    j["sn"] = nullptr;
  }
  // Each IESP: its active SN, its candidates, the [[policy]] entries naming it.
  Json il = Json::array();
  for (const auto& [name, st] : iesps) {
    std::size_t candidates = 0, policies = 0;
    for (const auto& e : sns)
      candidates += e.iesp == name ? 1 : 0;
    for (const auto& p : cfg.policies)
      policies += p.iesp == name ? 1 : 0;
    il.push_back({{"name", name},
                  {"default", name == policy.default_iesp()},
                  {"active", st.active ? Json(sns[*st.active].name) : Json(nullptr)},
                  {"candidates", candidates},
                  {"policies", policies}});
  }
  j["iesps"] = std::move(il);
  j["discovery"] = discovery_json();
  Json c = Json::object();
  const char* names[] = {
#define IE_X(name, text) #name,
      IED_COUNTERS(IE_X)
#undef IE_X
  };
  for (std::size_t i = 0; i < counters.size(); ++i)
    c[names[i]] = counters.at(i);
  c["flows"] = flows ? flows->size() : 0;
  c["e2e_sessions"] = e2e ? e2e->stats().sessions : 0;
  c["udp_gso_packets"] = link ? link->stats().gso_packets : 0;
  c["udp_gro_packets"] = link ? link->stats().gro_packets : 0;
  j["counters"] = std::move(c);
  Json d = Json::object();
  for (std::size_t i = 1; i < wire::kDropReasonCount; ++i) {
    const auto r = static_cast<wire::DropReason>(i);
    std::uint64_t n = drops.at(i);
    if (e2e) n += e2e->drops(r);
    if (link) n += link->data_drops().get(r) + link->control_drops().get(r);
    if (n != 0) d[wire::drop_reason_name(r)] = n;
  }
  j["drops"] = std::move(d);
  return j;
}

ctl::Dispatcher Daemon::Impl::dispatcher() {
  ctl::Dispatcher d;
  d.add_hello("ied");
  d.add("status",
        [this](const Json&, const ctl::Caller&) -> Result<Json> { return status_json(); });
  d.add("sn.list", [this](const Json&, const ctl::Caller&) -> Result<Json> { return sns_json(); });
  d.add(
      "sn.discover",
      [this](const Json&, const ctl::Caller&) -> Result<Json> {
        if (dns_discovery.empty() && anycast_list.empty())
          return fail(Errc::unsupported,
                      "no DNS or anycast discovery configured (discovery.dns_domain, "
                      "discovery.anycast, [[iesp]])");
        start_discovery();  // answers come later: see sn.list
        return sns_json();
      },
      ctl::Access::admin);
  d.add("sn.ping", [this](const Json& params, const ctl::Caller&) -> Result<Json> {
    std::string name;
    if (params.contains("name")) {
      if (!params["name"].is_string()) return fail(Errc::invalid_argument, "name: not a string");
      name = params["name"].get<std::string>();
      if (name.empty()) return fail(Errc::invalid_argument, "name: empty (omit it to ping all)");
    }
    Json results = Json::array();
    for (const auto& e : sns) {
      if (!name.empty() && e.name != name) continue;
      Json r = {{"name", e.name}, {"endpoint", e.endpoint}};
      const auto st = e.peer ? link->sn_state(*e.peer) : std::nullopt;
      if (e.peer) link->probe(*e.peer);
      if (st && st->rtt_ms) {
        r["rtt_ms"] = *st->rtt_ms;
      } else {
        r["rtt_ms"] = nullptr;
        r["error"] = e.peer ? "no answer yet" : "not associated (only the two best SNs are)";
      }
      results.push_back(std::move(r));
    }
    if (!name.empty() && results.empty())
      return fail(Errc::not_found, "no SN named " + name + " (see `iectl sn list`)");
    return Json{{"results", std::move(results)}};
  });
  d.add(
      "sn.use",
      [this](const Json& params, const ctl::Caller&) -> Result<Json> {
        if (!params.contains("name") || !params["name"].is_string())
          return fail(Errc::invalid_argument, "name: required, a string (DOM.SN)");
        const std::string name = params["name"].get<std::string>();
        if (params.contains("repin")) {
          if (!params["repin"].is_boolean())
            return fail(Errc::invalid_argument, "repin: not a boolean");
          if (params["repin"].get<bool>())
            if (auto r = repin_sn(name); !r) return fail(r.error());
        }
        auto r = use_sn(name);
        if (!r) return fail(r.error());
        return Json{{"active", *r}};
      },
      ctl::Access::admin);
  d.add("peers", [this](const Json&, const ctl::Caller&) -> Result<Json> {
    Json list = Json::array();
    // The direct path, where there is one: on-link, or (not on-link) closer / farther than
    // the SN path by the RTTs measured (ip_path.cpp direct_tick), or not measured yet.
    const auto direct_of = [this](const IpAddr& addr) -> Json {
      const auto it = direct.find(addr);
      if (it == direct.end()) return nullptr;
      const auto far = direct_far.find(it->second);
      if (far == direct_far.end()) return Json{{"path", "on-link"}};
      const auto rtt = far->second.rtt.rtt_ms();
      bool whole = false;
      const auto sn = sn_path_rtt(far->second, &whole);
      return Json{{"path", far->second.closer ? "closer"
                           : rtt && sn        ? "farther"
                                              : "measuring"},
                  {"rtt_ms", rtt ? Json(*rtt) : Json(nullptr)},
                  {"sn_rtt_ms", sn ? Json(*sn) : Json(nullptr)},
                  {"sn_rtt_from", !sn ? Json(nullptr) : Json(whole ? "end-to-end" : "first-hop")}};
    };
    for (const auto& p : e2e->peers()) {
      Json j;
      j["address"] = p.addr.str();
      j["key"] = crypto::key_to_base64(p.key);
      const PeerRoute* route = nullptr;
      for (auto& [prefix, r] : static_peers)
        if (!route && prefix.contains(p.addr)) route = &r;
      if (!route) route = dns_peers.find(p.addr, Clock::now());
      // The SN ied sends the peer's packets to (dest_sn): the one the peer last named in its
      // own packets (source_sn) wins over its record, as in ip_path.cpp.
      const auto learned = learned_sn.find(p.addr);
      if (learned != learned_sn.end()) {
        j["sn"] = learned->second;
        j["sn_from"] = "peer";
      } else {
        j["sn"] = route ? Json(route->sn) : Json(nullptr);
        j["sn_from"] = route ? Json("record") : Json(nullptr);
      }
      j["state"] = p.established ? "established" : "connecting";
      j["via"] = direct_up(p.addr) ? "direct" : "sn";
      j["direct"] = direct_of(p.addr);
      j["tx_packets"] = p.tx_packets;
      j["rx_packets"] = p.rx_packets;
      j["queued"] = p.queued;
      list.push_back(std::move(j));
    }
    // Hosts reached only directly (no end-to-end session through SNs).
    for (const auto& [addr, peer] : direct) {
      if (e2e->peer(addr)) continue;
      const auto key = link->peer_key(peer);
      Json j;
      j["address"] = addr.str();
      j["key"] = key ? Json(crypto::key_to_base64(*key)) : Json(nullptr);
      j["sn"] = nullptr;
      j["state"] = link->can_send(peer) ? "established" : "connecting";
      j["via"] = direct_usable(peer) ? "direct" : "sn";
      j["direct"] = direct_of(addr);
      list.push_back(std::move(j));
    }
    return Json{{"peers", std::move(list)}};
  });
  // Name resolution's second half (resolve.cpp): the caller resolved the name itself.
  d.add("peer.resolve", [this](const Json& params, const ctl::Caller&) -> Result<Json> {
    return peer_resolve(params);
  });
  d.add("flows", [this](const Json&, const ctl::Caller&) -> Result<Json> {
    Json list = Json::array();
    const auto now = Clock::now();
    for (const auto& f : flows->list()) {
      Json j;
      const char* pn = proto_name(f.key.proto);
      j["proto"] = pn ? Json(pn) : Json(f.key.proto);
      j["src"] = endpoint_text(f.key.src_addr(), f.key.src_port);
      j["dst"] = endpoint_text(f.key.dst_addr(), f.key.dst_port);
      const auto svc = wire::service_name(f.entry.service);
      j["service"] = svc ? std::string(*svc) : std::to_string(f.entry.service);
      j["via"] = f.entry.via == FlowVia::direct ? "direct" : "sn";
      // How the flow reached ie0: a steered socket, a cgroup policy, or a [host] route.
      j["steered_by"] = "route";
      if (f.entry.mark != 0 && steering) {
        if (const auto c = steering->choice_of_mark(f.entry.mark)) {
          j["steered_by"] = bpf::mark_is_policy(f.entry.mark) ? "policy" : "socket";
          j["service_requested"] = c->requested;
        }
      }
      j["peer"] = f.entry.peer.str();
      // Its IESP by [[policy]] now (decided per packet) and that IESP's active SN.
      const std::string& iesp = flow_iesp(f.key.dst_addr(), f.entry.mark);
      j["iesp"] = iesp;
      const auto a = iesp_active(iesp);
      j["sn"] = a ? Json(sns[*a].name) : Json(nullptr);
      j["tx_packets"] = f.entry.packets_out;
      j["tx_bytes"] = f.entry.bytes_out;
      j["rx_packets"] = f.entry.packets_in;
      j["rx_bytes"] = f.entry.bytes_in;
      j["idle_s"] =
          std::chrono::duration_cast<std::chrono::seconds>(now - f.entry.last_seen).count();
      list.push_back(std::move(j));
    }
    return Json{{"flows", std::move(list)}};
  });
  // Socket steering (docs/socket-api.md): the caller passes the socket's fd with the
  // request (SCM_RIGHTS); holding it proves the socket is the caller's, so anyone may ask.
  auto steer_fd = [this](const ctl::Caller& caller) -> Result<int> {
    if (!steering)
      return fail(Errc::unsupported, "socket steering is disabled ([steering] enabled = false)");
    if (caller.fds.size() != 1)
      return fail(Errc::invalid_argument,
                  "pass exactly one socket file descriptor with the request (SCM_RIGHTS); got " +
                      std::to_string(caller.fds.size()));
    return caller.fds[0];
  };
  d.add("socket.set_service",
        [this, steer_fd](const Json& params, const ctl::Caller& caller) -> Result<Json> {
          auto fd = steer_fd(caller);
          if (!fd) return fail(fd.error());
          if (!params.contains("service") || !params["service"].is_string())
            return fail(Errc::invalid_argument, "service: a string is required");
          ServiceOptions options;
          if (params.contains("options")) {
            const Json& o = params["options"];
            if (!o.is_object()) return fail(Errc::invalid_argument, "options: not an object");
            if (o.size() > kMaxServiceOptions)
              return fail(Errc::invalid_argument,
                          "options: at most " + std::to_string(kMaxServiceOptions));
            for (const auto& [k, v] : o.items()) {
              if (!v.is_string())
                return fail(Errc::invalid_argument,
                            "options." + k.substr(0, 40) + ": not a string");
              options[k] = v.get<std::string>();
            }
          }
          return steering->set_service(*fd, params["service"].get<std::string>(), options);
        });
  d.add("socket.get_service",
        [this, steer_fd](const Json&, const ctl::Caller& caller) -> Result<Json> {
          auto fd = steer_fd(caller);
          if (!fd) return fail(fd.error());
          return steering->get_service(*fd);
        });
  d.add("socket.clear_service",
        [this, steer_fd](const Json&, const ctl::Caller& caller) -> Result<Json> {
          auto fd = steer_fd(caller);
          if (!fd) return fail(fd.error());
          return steering->clear_service(*fd);
        });
  // Out-of-band invocations (out_of_band.cpp).
  d.add(
      "service.enable",
      [this](const Json& params, const ctl::Caller&) { return service_enable(params); },
      ctl::Access::admin);
  d.add(
      "service.disable",
      [this](const Json& params, const ctl::Caller&) { return service_disable(params); },
      ctl::Access::admin);
  d.add("service.list",
        [this](const Json&, const ctl::Caller&) -> Result<Json> { return service_list_json(); });
  d.add(
      "reload", [this](const Json&, const ctl::Caller&) -> Result<Json> { return reload(); },
      ctl::Access::admin);
  d.add("steering", [this](const Json&, const ctl::Caller&) -> Result<Json> {
    if (!steering) return Json{{"enabled", false}};
    return steering->status_json();
  });
  d.add(
      "config.check",
      [this](const Json& params, const ctl::Caller&) -> Result<Json> {
        std::string path = opts.config_path;
        if (params.contains("path")) {
          if (!params["path"].is_string())
            return fail(Errc::invalid_argument, "path: not a string");
          path = params["path"].get<std::string>();
        }
        if (path.empty()) return fail(Errc::invalid_argument, "no path given and ied has no file");
        auto c = load_ied_config(path);
        if (!c) return fail(c.error());
        return Json{{"ok", true}, {"path", path}};
      },
      // It reads any file as the daemon's user and quotes it in errors: admin only.
      ctl::Access::admin);
  return d;
}

}  // namespace ie::ied
