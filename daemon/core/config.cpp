// ied.toml parsing and validation (config.hpp) on libie's TOML reader.
#include "ie/ied/config.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <exception>
#include <set>

#include "ie/conf/toml_reader.hpp"
#include "ie/ied/ip_addr.hpp"
#include "ie/ied/services.hpp"

namespace ie::ied {
namespace {

using conf::quoted;

// An optional IESP name field.
Result<std::optional<std::string>> iesp_field(const conf::Reader& p, const toml::table& t,
                                              const char* key, const std::string& what) {
  auto v = p.str(t, key, what);
  if (!v) return fail(v.error());
  if (*v && !valid_iesp_name(**v))
    return p.err(*t.get(key), what + " " + quoted(**v) +
                                  " is not an IESP name (1..31 characters of a-z, 0-9, '-', "
                                  "'_', '.')");
  return *v;
}

// An anycast address list (discovery.anycast, iesp.anycast): numeric IP:PORT / [IPv6]:PORT,
// neither port nor address 0, none twice (nor in `taken`: an address serves one IESP), at
// most kMaxAnycastAddresses.
Result<std::vector<std::string>> anycast_list(const conf::Reader& p, const toml::table& t,
                                              const std::string& what,
                                              const std::vector<std::string>& taken) {
  auto any = p.strings(t, "anycast", what);
  if (!any) return fail(any.error());
  std::vector<std::string> out;
  for (auto& [text, node] : *any) {
    socklen_t len = 0;
    const auto sa = io::parse_endpoint(text, &len);
    bool usable = static_cast<bool>(sa);
    if (usable && sa->ss_family == AF_INET) {
      const auto* v4 = reinterpret_cast<const sockaddr_in*>(&*sa);
      usable = v4->sin_port != 0 && v4->sin_addr.s_addr != htonl(INADDR_ANY);
    } else if (usable) {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&*sa);
      usable = v6->sin6_port != 0 && !IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
    }
    if (!usable)
      return p.err(*node, what + ": " + quoted(text) +
                              " is not a numeric IP:PORT or [IPv6]:PORT (port and address not 0)");
    for (const auto& prev : out)
      if (prev == text) return p.err(*node, what + ": " + quoted(text) + " twice");
    for (const auto& prev : taken)
      if (prev == text)
        return p.err(*node, what + ": " + quoted(text) + " is another IESP's anycast address");
    if (out.size() == kMaxAnycastAddresses)
      return p.err(*node,
                   what + ": at most " + std::to_string(kMaxAnycastAddresses) + " addresses");
    out.push_back(text);
  }
  return out;
}

Result<IedConfig> validate(const toml::table& root, const std::string& file) {
  const conf::Reader p(file);
  IedConfig c;
  c.file = file;
  if (auto r = p.only_keys(root, "the top level",
                           {"daemon", "tun", "host", "discovery", "iesp", "sn", "peer", "policy",
                            "timers", "steering"});
      !r)
    return fail(r.error());

  // [daemon]
  auto daemon = p.table(root, "daemon", "daemon");
  if (!daemon) return fail(daemon.error());
  if (const toml::table* d = *daemon) {
    if (auto r = p.only_keys(*d, "[daemon]", {"state_dir", "socket", "admin_group", "listen"}); !r)
      return fail(r.error());
    auto sd = p.path(*d, "state_dir", "daemon.state_dir", false);
    if (!sd) return fail(sd.error());
    if (*sd) c.state_dir = **sd;
    auto so = p.path(*d, "socket", "daemon.socket", false);
    if (!so) return fail(so.error());
    if (*so) c.socket = **so;
    auto ag = p.str(*d, "admin_group", "daemon.admin_group");
    if (!ag) return fail(ag.error());
    if (*ag) c.admin_group = **ag;
    if (d->get("listen")) {
      auto l = p.address(*d, "daemon", "listen");
      // Port 0 (any) is fine for a host; address() refuses it, so accept it here.
      if (!l) {
        auto s = p.str(*d, "listen", "daemon.listen");
        if (!s) return fail(s.error());
        socklen_t len = 0;
        if (!io::parse_endpoint(**s, &len)) return fail(l.error());
        c.listen = **s;
      } else {
        c.listen = *l;
      }
    }
  }

  // [tun]
  auto tun = p.table(root, "tun", "tun");
  if (!tun) return fail(tun.error());
  if (const toml::table* t = *tun) {
    if (auto r = p.only_keys(*t, "[tun]", {"name", "mtu"}); !r) return fail(r.error());
    auto n = p.str(*t, "name", "tun.name");
    if (!n) return fail(n.error());
    if (*n) {
      const std::string& name = **n;
      bool okname = !name.empty() && name.size() < 16;
      for (const char ch : name)
        okname = okname && ch > ' ' && ch != '/' && ch != ':' && ch != 0x7f;
      if (!okname)
        return p.err(*t->get("name"), "tun.name " + quoted(name) +
                                          " is not an interface name (1..15 characters, no "
                                          "spaces, '/' or ':')");
      c.tun_name = name;
    }
    auto m = p.integer(*t, "mtu", "tun.mtu", 0, 65535);
    if (!m) return fail(m.error());
    if (*m) {
      if (**m != 0 && **m < 1280)
        return p.err(*t->get("mtu"), "tun.mtu must be 0 (automatic) or 1280..65535");
      c.tun_mtu = static_cast<unsigned>(**m);
    }
  }

  // [host]
  auto host = p.table(root, "host", "host");
  if (!host) return fail(host.error());
  if (const toml::table* h = *host) {
    if (auto r = p.only_keys(*h, "[host]", {"addresses", "prefixes"}); !r) return fail(r.error());
    auto a = p.strings(*h, "addresses", "host.addresses");
    if (!a) return fail(a.error());
    for (auto& [text, node] : *a) {
      if (!IpAddr::parse(text))
        return p.err(*node, "host.addresses: " + quoted(text) + " is not an IP address");
      c.addresses.push_back(text);
    }
    auto pf = p.strings(*h, "prefixes", "host.prefixes");
    if (!pf) return fail(pf.error());
    for (auto& [text, node] : *pf) {
      if (!IpPrefix::parse(text))
        return p.err(*node, "host.prefixes: " + quoted(text) +
                                " is not a prefix like 10.2.0.0/16 (host bits must be zero)");
      c.prefixes.push_back(text);
    }
  }

  // [discovery]
  auto disc = p.table(root, "discovery", "discovery");
  if (!disc) return fail(disc.error());
  if (const toml::table* d = *disc) {
    if (auto r = p.only_keys(*d, "[discovery]",
                             {"order", "dns_domain", "dns_servers", "peer_dns", "anycast",
                              "anycast_interval_s", "rtt_survey_s", "iesp", "default_iesp"});
        !r)
      return fail(r.error());
    auto o = p.strings(*d, "order", "discovery.order");
    if (!o) return fail(o.error());
    if (d->get("order")) {
      c.order.clear();
      for (auto& [text, node] : *o) {
        DiscoverySource s{};
        if (text == "static") {
          s = DiscoverySource::static_config;
        } else if (text == "dns") {
          s = DiscoverySource::dns;
        } else if (text == "anycast") {
          s = DiscoverySource::anycast;
        } else if (text == "lookup") {
          return p.err(*node,
                       "discovery.order: the lookup service source does not exist yet (known: "
                       "static, dns, anycast)");
        } else {
          return p.err(*node, "discovery.order: unknown source " + quoted(text) +
                                  " (known: static, dns, anycast)");
        }
        for (auto prev : c.order)
          if (prev == s) return p.err(*node, "discovery.order: " + quoted(text) + " twice");
        c.order.push_back(s);
      }
    }
    auto dom = p.str(*d, "dns_domain", "discovery.dns_domain");
    if (!dom) return fail(dom.error());
    if (*dom) c.dns_domain = **dom;
    auto sv = p.strings(*d, "dns_servers", "discovery.dns_servers");
    if (!sv) return fail(sv.error());
    for (auto& [text, node] : *sv) {
      socklen_t len = 0;
      if (!io::parse_endpoint(text, &len))
        return p.err(*node, "discovery.dns_servers: " + quoted(text) +
                                " is not a numeric IP:PORT or [IPv6]:PORT");
      c.dns_servers.push_back(text);
    }
    auto any = anycast_list(p, *d, "discovery.anycast", {});
    if (!any) return fail(any.error());
    c.anycast = std::move(*any);
    auto ai = p.integer(*d, "anycast_interval_s", "discovery.anycast_interval_s", 1, 86400);
    if (!ai) return fail(ai.error());
    if (*ai) c.anycast_interval = std::chrono::seconds(**ai);
    auto rs = p.integer(*d, "rtt_survey_s", "discovery.rtt_survey_s", 0, 86400);
    if (!rs) return fail(rs.error());
    if (*rs) c.rtt_survey = std::chrono::seconds(**rs);
    auto pd = p.boolean(*d, "peer_dns", "discovery.peer_dns");
    if (!pd) return fail(pd.error());
    if (*pd) c.peer_dns = **pd;
    auto ie = iesp_field(p, *d, "iesp", "discovery.iesp");
    if (!ie) return fail(ie.error());
    if (*ie) c.discovery_iesp = **ie;
    auto di = iesp_field(p, *d, "default_iesp", "discovery.default_iesp");
    if (!di) return fail(di.error());
    if (*di) c.default_iesp = **di;
  }

  // [[iesp]]
  auto ies = p.tables(root, "iesp", "iesp");
  if (!ies) return fail(ies.error());
  std::vector<const toml::table*> dns_tables, anycast_tables;  // parallel to iesp_dns/_anycast
  std::vector<std::string> iesp_names;
  std::vector<std::string> all_anycast = c.anycast;  // an address serves one IESP
  for (const toml::table* t : *ies) {
    if (auto r = p.only_keys(*t, "[[iesp]]", {"name", "dns_domain", "anycast"}); !r)
      return fail(r.error());
    if (t->get("name") == nullptr) return p.err(*t, "missing iesp.name");
    auto name = iesp_field(p, *t, "name", "iesp.name");
    if (!name) return fail(name.error());
    if (std::find(iesp_names.begin(), iesp_names.end(), **name) != iesp_names.end())
      return p.err(*t->get("name"), "iesp.name " + quoted(**name) + " twice");
    iesp_names.push_back(**name);
    if (t->get("dns_domain") == nullptr && t->get("anycast") == nullptr)
      return p.err(*t, "iesp " + quoted(**name) +
                           " needs dns_domain (the domain its SNs are listed under) and/or "
                           "anycast (its anycast addresses)");
    if (t->get("dns_domain") != nullptr) {
      auto dom = p.str(*t, "dns_domain", "iesp.dns_domain");
      if (!dom) return fail(dom.error());
      if ((*dom)->empty()) return p.err(*t->get("dns_domain"), "iesp.dns_domain: empty");
      c.iesp_dns.push_back({**name, **dom});
      dns_tables.push_back(t);
    }
    if (t->get("anycast") != nullptr) {
      auto a = anycast_list(p, *t, "iesp.anycast", all_anycast);
      if (!a) return fail(a.error());
      if (a->empty()) return p.err(*t->get("anycast"), "iesp.anycast: empty");
      all_anycast.insert(all_anycast.end(), a->begin(), a->end());
      c.iesp_anycast.push_back({**name, std::move(*a)});
      anycast_tables.push_back(t);
    }
  }

  // [[sn]]
  auto sns = p.tables(root, "sn", "sn");
  if (!sns) return fail(sns.error());
  std::vector<const toml::node*> sn_key_nodes;  // parallel to c.sns
  for (const toml::table* t : *sns) {
    if (auto r =
            p.only_keys(*t, "[[sn]]", {"name", "endpoint", "key", "priority", "weight", "iesp"});
        !r)
      return fail(r.error());
    StaticSn s;
    const toml::node* name_node = t->get("name");
    if (name_node == nullptr) return p.err(*t, "missing sn.name");
    auto name = p.str(*t, "name", "sn.name");
    if (!name) return fail(name.error());
    if (!conf::valid_sn_name(**name))
      return p.err(*name_node, "sn.name " + quoted(**name) +
                                   " is not DOM.SN (two labels of a-z, 0-9, '-', 1..31 long)");
    s.name = **name;
    auto ep = p.address(*t, "sn", "endpoint");
    if (!ep) return fail(ep.error());
    s.endpoint = *ep;
    auto k = p.public_key(*t, "sn", "key");
    if (!k) return fail(k.error());
    s.key = *k;
    auto pr = p.integer(*t, "priority", "sn.priority", 0, 65535);
    if (!pr) return fail(pr.error());
    if (*pr) s.priority = static_cast<std::uint16_t>(**pr);
    auto w = p.integer(*t, "weight", "sn.weight", 0, 65535);
    if (!w) return fail(w.error());
    if (*w) s.weight = static_cast<std::uint16_t>(**w);
    auto ie = iesp_field(p, *t, "iesp", "sn.iesp");
    if (!ie) return fail(ie.error());
    if (*ie) s.iesp = **ie;
    for (const auto& o : c.sns)
      if (o.name == s.name) return p.err(*name_node, "sn.name " + quoted(s.name) + " twice");
    // HostLink tells SNs apart by their static key: two entries with one key would share
    // (and fight over) one association. Public keys, so a plain compare.
    for (std::size_t i = 0; i < c.sns.size(); ++i)
      if (c.sns[i].key == s.key) {
        const auto& first = sn_key_nodes[i]->source().begin;
        return p.err(*t->get("key"),
                     "sn.key of " + quoted(s.name) + " is also the key of " +
                         quoted(c.sns[i].name) + " (" + file + ":" + std::to_string(first.line) +
                         ":" + std::to_string(first.column) + "): each [[sn]] needs its own key");
      }
    sn_key_nodes.push_back(t->get("key"));
    c.sns.push_back(std::move(s));
  }

  // [[peer]]
  auto peers = p.tables(root, "peer", "peer");
  if (!peers) return fail(peers.error());
  for (const toml::table* t : *peers) {
    if (auto r = p.only_keys(*t, "[[peer]]", {"prefix", "sn", "key", "endpoint"}); !r)
      return fail(r.error());
    StaticPeer s;
    auto pf = p.required_str(*t, "prefix", "peer.prefix");
    if (!pf) return fail(pf.error());
    if (!IpPrefix::parse(*pf))
      return p.err(*t->get("prefix"),
                   "peer.prefix " + quoted(*pf) + " is not an address or prefix (host bits zero)");
    s.prefix = *pf;
    auto sn = p.required_str(*t, "sn", "peer.sn");
    if (!sn) return fail(sn.error());
    if (!conf::valid_sn_name(*sn))
      return p.err(*t->get("sn"), "peer.sn " + quoted(*sn) + " is not DOM.SN");
    s.sn = *sn;
    if (t->get("key")) {
      auto k = p.public_key(*t, "peer", "key");
      if (!k) return fail(k.error());
      s.key = *k;
    }
    if (t->get("endpoint")) {
      auto ep = p.address(*t, "peer", "endpoint");
      if (!ep) return fail(ep.error());
      if (!s.key) return p.err(*t->get("endpoint"), "peer.endpoint needs peer.key");
      s.endpoint = *ep;
    }
    c.peers.push_back(std::move(s));
  }

  // [[policy]]
  auto fpols = p.tables(root, "policy", "policy");
  if (!fpols) return fail(fpols.error());
  if (fpols->size() > kMaxFlowPolicies)
    return p.err(*root.get("policy"),
                 "policy: at most " + std::to_string(kMaxFlowPolicies) + " policies");
  std::vector<const toml::node*> policy_iesp_nodes;
  for (const toml::table* t : *fpols) {
    if (auto r = p.only_keys(*t, "[[policy]]", {"prefix", "service", "iesp"}); !r)
      return fail(r.error());
    FlowPolicy fp;
    auto pf = p.str(*t, "prefix", "policy.prefix");
    if (!pf) return fail(pf.error());
    if (*pf) {
      const auto parsed = IpPrefix::parse(**pf);
      if (!parsed)
        return p.err(*t->get("prefix"), "policy.prefix " + quoted(**pf) +
                                            " is not an address or prefix (host bits zero)");
      fp.prefix = parsed->str();
    }
    auto sv = p.str(*t, "service", "policy.service");
    if (!sv) return fail(sv.error());
    if (*sv) {
      if (auto rs = resolve_service(**sv); !rs)
        return p.err(*t->get("service"), "policy.service: " + rs.error().context);
      fp.service = **sv;
    }
    if (fp.prefix.empty() && fp.service.empty())
      return p.err(*t,
                   "policy needs prefix and/or service (flows no policy names go to "
                   "discovery.default_iesp)");
    auto ie = iesp_field(p, *t, "iesp", "policy.iesp");
    if (!ie) return fail(ie.error());
    if (!*ie) return p.err(*t, "missing policy.iesp");
    fp.iesp = **ie;
    for (const auto& o : c.policies)
      if (o.prefix == fp.prefix && o.service == fp.service)
        return p.err(*t, "policy for prefix " + quoted(fp.prefix) + " and service " +
                             quoted(fp.service) + " twice");
    policy_iesp_nodes.push_back(t->get("iesp"));
    c.policies.push_back(std::move(fp));
  }

  // [timers]
  auto timers = p.table(root, "timers", "timers");
  if (!timers) return fail(timers.error());
  if (const toml::table* t = *timers) {
    if (auto r = p.only_keys(*t, "[timers]", {"keepalive_ms", "dead_after_ms"}); !r)
      return fail(r.error());
    auto ka = p.integer(*t, "keepalive_ms", "timers.keepalive_ms", 100, 600000);
    if (!ka) return fail(ka.error());
    if (*ka) c.keepalive = std::chrono::milliseconds(**ka);
    auto da = p.integer(*t, "dead_after_ms", "timers.dead_after_ms", 300, 3600000);
    if (!da) return fail(da.error());
    if (*da) c.dead_after = std::chrono::milliseconds(**da);
    if (c.dead_after <= c.keepalive)
      return p.err(*t, "timers.dead_after_ms must be larger than timers.keepalive_ms");
  }

  // [steering]
  auto steer = p.table(root, "steering", "steering");
  if (!steer) return fail(steer.error());
  if (const toml::table* t = *steer) {
    if (auto r = p.only_keys(*t, "[steering]", {"enabled", "table", "rule_priority", "policy"}); !r)
      return fail(r.error());
    auto en = p.boolean(*t, "enabled", "steering.enabled");
    if (!en) return fail(en.error());
    if (*en) c.steering.enabled = **en;
    // Tables table .. table+1+kMaxSteeringPolicies; 253-255 (default, main, local) and 0
    // are the kernel's.
    auto tb = p.integer(*t, "table", "steering.table", 256, 0x7fff0000);
    if (!tb) return fail(tb.error());
    if (*tb) c.steering.table = static_cast<std::uint32_t>(**tb);
    auto pr = p.integer(*t, "rule_priority", "steering.rule_priority", 1, 32765);
    if (!pr) return fail(pr.error());
    if (*pr) c.steering.rule_priority = static_cast<std::uint32_t>(**pr);
    auto pols = p.tables(*t, "policy", "steering.policy");
    if (!pols) return fail(pols.error());
    if (pols->size() > kMaxSteeringPolicies)
      return p.err(*t->get("policy"), "steering.policy: at most " +
                                          std::to_string(kMaxSteeringPolicies) + " policies");
    for (const toml::table* pt : *pols) {
      if (auto r = p.only_keys(*pt, "[[steering.policy]]", {"cgroup", "prefixes", "service"}); !r)
        return fail(r.error());
      SteeringPolicy sp;
      auto cg = p.path(*pt, "cgroup", "steering.policy.cgroup", false);
      if (!cg) return fail(cg.error());
      if (!*cg) return p.err(*pt, "steering.policy needs cgroup (a cgroup v2 directory)");
      sp.cgroup = **cg;
      for (const auto& o : c.steering.policies)
        if (o.cgroup == sp.cgroup)
          return p.err(*pt->get("cgroup"),
                       "steering.policy.cgroup " + quoted(sp.cgroup) + " twice");
      auto pf = p.strings(*pt, "prefixes", "steering.policy.prefixes");
      if (!pf) return fail(pf.error());
      for (auto& [text, node] : *pf) {
        if (!IpPrefix::parse(text))
          return p.err(*node, "steering.policy.prefixes: " + quoted(text) +
                                  " is not a prefix like 10.2.0.0/16 (host bits must be zero)");
        sp.prefixes.push_back(text);
      }
      if (sp.prefixes.empty())
        return p.err(*pt, "steering.policy needs prefixes (the destinations it steers)");
      auto sv = p.str(*pt, "service", "steering.policy.service");
      if (!sv) return fail(sv.error());
      if (*sv) {
        if (auto rs = resolve_service(**sv); !rs)
          return p.err(*pt->get("service"), "steering.policy.service: " + rs.error().context);
        sp.service = **sv;
      }
      c.steering.policies.push_back(std::move(sp));
    }
  }

  // Cross-checks.
  bool uses_dns = false, uses_anycast = false;
  for (auto s : c.order) {
    uses_dns = uses_dns || s == DiscoverySource::dns;
    uses_anycast = uses_anycast || s == DiscoverySource::anycast;
  }
  if (!c.iesp_dns.empty() && !uses_dns)
    return p.err(*dns_tables.front()->get("dns_domain"),
                 "iesp.dns_domain is set but discovery.order does not list \"dns\"");
  if (!c.iesp_anycast.empty() && !uses_anycast)
    return p.err(*anycast_tables.front()->get("anycast"),
                 "iesp.anycast is set but discovery.order does not list \"anycast\"");
  for (std::size_t i = 0; i < c.iesp_dns.size(); ++i)
    if (!c.dns_domain.empty() && c.iesp_dns[i].iesp == c.discovery_iesp)
      return p.err(*dns_tables[i]->get("name"),
                   "iesp.name " + quoted(c.iesp_dns[i].iesp) +
                       " is discovery.iesp, which discovery.dns_domain already serves (one DNS "
                       "domain per IESP)");
  for (std::size_t i = 0; i < c.iesp_anycast.size(); ++i)
    if (!c.anycast.empty() && c.iesp_anycast[i].iesp == c.discovery_iesp)
      return p.err(*anycast_tables[i]->get("name"),
                   "iesp.name " + quoted(c.iesp_anycast[i].iesp) +
                       " is discovery.iesp, whose anycast addresses are discovery.anycast (list "
                       "them there)");
  if (c.sns.empty() && !(uses_dns && !c.dns_domain.empty()) &&
      !(uses_anycast && !c.anycast.empty()) && c.iesp_dns.empty() && c.iesp_anycast.empty())
    return p.err(root,
                 "no SN: configure [[sn]] entries, discovery.dns_domain, discovery.anycast or an "
                 "[[iesp]] with dns_domain or anycast");
  if (!c.anycast.empty() && !uses_anycast)
    return p.err(*(*disc)->get("anycast"),
                 "discovery.anycast is set but discovery.order does not list \"anycast\"");
  if (c.peer_dns && c.dns_domain.empty() && c.dns_servers.empty() && c.iesp_dns.empty())
    return p.err(root, "discovery.peer_dns needs discovery.dns_servers or dns_domain");
  // IESP references: each must be served by some [[sn]] or the discovery sources.
  const auto known = config_iesps(c);
  std::string known_text;
  for (const auto& k : known)
    known_text += (known_text.empty() ? "" : ", ") + k;
  auto is_known = [&](const std::string& n) {
    return std::find(known.begin(), known.end(), n) != known.end();
  };
  const bool discovers =
      (uses_dns && !c.dns_domain.empty()) || (uses_anycast && !c.anycast.empty());
  if (!discovers && disc && *disc && (*disc)->get("iesp"))
    return p.err(*(*disc)->get("iesp"),
                 "discovery.iesp is set but neither DNS nor anycast discovery is configured");
  for (std::size_t i = 0; i < c.policies.size(); ++i)
    if (!is_known(c.policies[i].iesp))
      return p.err(*policy_iesp_nodes[i], "policy.iesp " + quoted(c.policies[i].iesp) +
                                              " is unknown: no [[sn]] or discovery serves it "
                                              "(known: " +
                                              known_text + ")");
  if (!is_known(c.default_iesp)) {
    if (disc && *disc && (*disc)->get("default_iesp"))
      return p.err(*(*disc)->get("default_iesp"),
                   "discovery.default_iesp " + quoted(c.default_iesp) +
                       " is unknown: no [[sn]] or discovery serves it (known: " + known_text + ")");
    return p.err(root,
                 "no SN serves the IESP \"default\" (flows no [[policy]] names): set "
                 "discovery.default_iesp to one of " +
                     known_text);
  }
  return c;
}

}  // namespace

bool valid_iesp_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxIespNameLen) return false;
  for (const char ch : name)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
          ch == '.'))
      return false;
  return true;
}

std::vector<std::string> config_iesps(const IedConfig& c) {
  std::set<std::string> s;
  for (const auto& sn : c.sns)
    s.insert(sn.iesp);
  bool dyn = false;
  for (const auto src : c.order)
    dyn = dyn || (src == DiscoverySource::dns && !c.dns_domain.empty()) ||
          (src == DiscoverySource::anycast && !c.anycast.empty());
  if (dyn) s.insert(c.discovery_iesp);
  for (const auto& d : dns_discoveries(c))
    s.insert(d.iesp);
  for (const auto& a : anycast_targets(c))
    s.insert(a.iesp);
  return {s.begin(), s.end()};
}

std::vector<AnycastTarget> anycast_targets(const IedConfig& c) {
  std::vector<AnycastTarget> out;
  if (std::find(c.order.begin(), c.order.end(), DiscoverySource::anycast) == c.order.end())
    return out;
  for (std::size_t i = 0; i < c.anycast.size(); ++i)
    out.push_back({c.anycast[i], c.discovery_iesp, i});
  for (const auto& e : c.iesp_anycast)
    for (std::size_t i = 0; i < e.addresses.size(); ++i)
      out.push_back({e.addresses[i], e.iesp, i});
  return out;
}

std::vector<IedConfig::IespDns> dns_discoveries(const IedConfig& c) {
  std::vector<IedConfig::IespDns> out;
  if (std::find(c.order.begin(), c.order.end(), DiscoverySource::dns) == c.order.end()) return out;
  if (!c.dns_domain.empty()) out.push_back({c.discovery_iesp, c.dns_domain});
  out.insert(out.end(), c.iesp_dns.begin(), c.iesp_dns.end());
  return out;
}

const char* discovery_source_name(DiscoverySource s) {
  switch (s) {
    case DiscoverySource::static_config:
      return "static";
    case DiscoverySource::dns:
      return "dns";
    case DiscoverySource::anycast:
      return "anycast";
    case DiscoverySource::lookup:
      return "lookup";
  }
  return "?";
}

Result<IedConfig> parse_ied_config(std::string_view toml_text, const std::string& file_name) {
  return conf::parse_config_with<IedConfig>(toml_text, file_name, validate);
}

Result<IedConfig> load_ied_config(const std::string& path) {
  auto text = conf::read_config_file(path);
  if (!text) return fail(text.error());
  return parse_ied_config(*text, path);
}

}  // namespace ie::ied
