// iesn.toml: parsing with toml++ and validation of the whole configuration. Every error is
// "FILE:LINE:COL: what", pointing at the offending value, key, or the table that lacks a
// required key. toml++ reports syntax errors by exception; they are caught here, nothing
// escapes.
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <optional>
#include <set>
#include <sstream>

#include "ie/conf/toml_reader.hpp"
#include "ie/io/udp.hpp"
#include "ie/sn/config.hpp"

namespace ie::sn {

using conf::is_absolute_path;
using conf::quoted;
using conf::scalar_string;
using conf::type_name;

namespace {

std::string_view edomain_part(std::string_view sn_name) {
  return sn_name.substr(0, sn_name.find('.'));
}

// 0.0.0.0:P / [::]:P, or port 0: not an endpoint anyone can be sent to.
bool is_wildcard_endpoint(const std::string& ep) {
  socklen_t len = 0;
  const auto sa = io::parse_endpoint(ep, &len);
  if (!sa) return true;
  if (sa->ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&*sa);
    return v4->sin_addr.s_addr == htonl(INADDR_ANY) || v4->sin_port == 0;
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&*sa);
  return IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr) || v6->sin6_port == 0;
}

bool valid_module_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (const char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

Result<SnConfig> validate(const toml::table& root, const std::string& file) {
  const conf::Reader p(file);
  SnConfig c;
  IE_TRY(p.only_keys(root, "the top level",
                     {"sn", "edomain", "peer", "route", "services", "modules"}));

  // [sn]
  auto sn_t = p.table(root, "sn", "sn");
  if (!sn_t) return fail(sn_t.error());
  if (*sn_t == nullptr)
    return p.err(toml::source_region{{1, 1}, {1, 1}, {}}, Errc::invalid_argument,
                 "missing [sn] table");
  const toml::table& sn = **sn_t;
  IE_TRY(p.only_keys(sn, "[sn]",
                     {"name", "listen", "workers", "private_key_file", "state_db", "control_socket",
                      "cache_capacity", "host_prefixes", "advertise", "max_handshakes_per_second",
                      "psp_contexts_per_worker"}));
  {
    auto name = p.sn_name(sn, "name", "sn.name");
    if (!name) return fail(name.error());
    c.name = std::move(*name);
    c.edomain = std::string(edomain_part(c.name));
  }
  if (auto v = p.str(sn, "listen", "sn.listen"); !v) {
    return fail(v.error());
  } else if (v->has_value()) {
    socklen_t len = 0;
    if (!io::parse_endpoint(**v, &len))
      return p.err(*sn.get("listen"), "sn.listen: expected a numeric IP:PORT or [IPv6]:PORT (got " +
                                          quoted(**v) + ")");
    c.listen = **v;
  }
  // advertise: the unicast endpoint hosts that found this SN at an anycast address associate
  // with (the control service's info answer); default: listen unless it is a wildcard.
  if (sn.get("advertise") != nullptr) {
    auto a = p.address(sn, "sn", "advertise");
    if (!a) return fail(a.error());
    if (is_wildcard_endpoint(*a))
      return p.err(*sn.get("advertise"), "sn.advertise: " + quoted(*a) +
                                             " is a wildcard address; hosts need one to "
                                             "reach this SN at");
    c.advertise = *a;
  } else if (!is_wildcard_endpoint(c.listen)) {
    c.advertise = c.listen;
  }
  if (auto v = p.integer(sn, "workers", "sn.workers", 0, kMaxWorkers); !v) {
    return fail(v.error());
  } else if (v->has_value()) {
    c.workers = static_cast<unsigned>(**v);
  }
  if (auto v = p.path(sn, "private_key_file", "sn.private_key_file", false); !v) {
    return fail(v.error());
  } else if (!v->has_value()) {
    return p.err(sn, "missing sn.private_key_file");
  } else {
    c.private_key_file = **v;
  }
  if (auto v = p.path(sn, "state_db", "sn.state_db", true); !v) {
    return fail(v.error());
  } else if (v->has_value()) {
    c.state_db = **v;
  }
  if (auto v = p.path(sn, "control_socket", "sn.control_socket", true); !v) {
    return fail(v.error());
  } else if (v->has_value()) {
    if ((*v)->size() >= 108)  // sizeof sockaddr_un::sun_path, with its NUL
      return p.err(*sn.get("control_socket"),
                   "sn.control_socket: longer than a Unix socket path may be (107)");
    c.control_socket = **v;
  }
  if (auto v = p.integer(sn, "cache_capacity", "sn.cache_capacity", 1,
                         static_cast<std::int64_t>(kMaxCacheCapacity));
      !v) {
    return fail(v.error());
  } else if (v->has_value()) {
    c.cache_capacity = static_cast<std::size_t>(**v);
  }
  if (auto v = p.integer(sn, "max_handshakes_per_second", "sn.max_handshakes_per_second", 0,
                         kMaxHandshakesPerSecond);
      !v) {
    return fail(v.error());
  } else if (v->has_value()) {
    c.max_handshakes_per_second = static_cast<std::uint32_t>(**v);
  }
  if (auto v = p.integer(sn, "psp_contexts_per_worker", "sn.psp_contexts_per_worker", 1,
                         static_cast<std::int64_t>(kMaxPspContextsPerWorker));
      !v) {
    return fail(v.error());
  } else if (v->has_value()) {
    c.psp_contexts_per_worker = static_cast<std::size_t>(**v);
  }
  {
    auto list = p.strings(sn, "host_prefixes", "sn.host_prefixes");
    if (!list) return fail(list.error());
    for (const auto& [text, node] : *list) {
      auto pre = Prefix::parse(text);
      if (!pre) return p.err(*node, "sn.host_prefixes: " + pre.error().context);
      for (const auto& q : c.host_prefixes) {
        if (q == *pre) return p.err(*node, "sn.host_prefixes: " + pre->str() + " listed twice");
      }
      c.host_prefixes.push_back(*pre);
    }
  }

  // [edomain] and [[edomain.sn]]
  std::set<noise::PublicKey> keys;
  auto new_key = [&](const toml::table& t, const std::string& name) -> Result<noise::PublicKey> {
    auto k = p.public_key(t, name);
    if (!k) return fail(k.error());
    if (!keys.insert(*k).second)
      return p.err(*t.get("public_key"), name + ".public_key is already the key of another SN");
    return *k;
  };
  const toml::node* gateway_node = nullptr;
  auto ed_t = p.table(root, "edomain", "edomain");
  if (!ed_t) return fail(ed_t.error());
  if (*ed_t != nullptr) {
    const toml::table& ed = **ed_t;
    IE_TRY(p.only_keys(ed, "[edomain]",
                       {"gateway", "rekey_seconds", "direct_pipes", "direct_idle_seconds", "sn"}));
    if (ed.contains("gateway")) {
      auto g = p.sn_name(ed, "gateway", "edomain.gateway");
      if (!g) return fail(g.error());
      gateway_node = ed.get("gateway");
      if (edomain_part(*g) != c.edomain)
        return p.err(*gateway_node, "edomain.gateway " + quoted(*g) +
                                        " is not in this SN's edomain " + quoted(c.edomain));
      c.gateway = std::move(*g);
    }
    if (auto v = p.integer(ed, "rekey_seconds", "edomain.rekey_seconds", 1, kMaxRekeySeconds); !v) {
      return fail(v.error());
    } else if (v->has_value()) {
      c.rekey_seconds = static_cast<unsigned>(**v);
    }
    if (auto v = p.boolean(ed, "direct_pipes", "edomain.direct_pipes"); !v) {
      return fail(v.error());
    } else if (v->has_value()) {
      c.direct_pipes = **v;
    }
    if (auto v = p.integer(ed, "direct_idle_seconds", "edomain.direct_idle_seconds", 1, 86400);
        !v) {
      return fail(v.error());
    } else if (v->has_value()) {
      c.direct_idle_seconds = static_cast<unsigned>(**v);
    }
    auto sns = p.tables(ed, "sn", "edomain.sn");
    if (!sns) return fail(sns.error());
    for (const toml::table* t : *sns) {
      IE_TRY(p.only_keys(*t, "[[edomain.sn]]", {"name", "address", "public_key"}));
      SnRef r;
      auto name = p.sn_name(*t, "name", "edomain.sn.name");
      if (!name) return fail(name.error());
      r.name = std::move(*name);
      const toml::node& nn = *t->get("name");
      if (r.name == c.name)
        return p.err(nn, "edomain.sn " + quoted(r.name) + " is this SN (list only the others)");
      if (edomain_part(r.name) != c.edomain)
        return p.err(nn, "edomain.sn " + quoted(r.name) + " is not in this SN's edomain " +
                             quoted(c.edomain) + " (remote edomains go in [[peer]])");
      for (const auto& o : c.domain_sns) {
        if (o.name == r.name) return p.err(nn, "edomain.sn " + quoted(r.name) + " listed twice");
      }
      auto addr = p.address(*t, "edomain.sn");
      if (!addr) return fail(addr.error());
      r.address = std::move(*addr);
      auto k = new_key(*t, "edomain.sn");
      if (!k) return fail(k.error());
      r.public_key = *k;
      c.domain_sns.push_back(std::move(r));
    }
  }
  if (c.gateway.empty()) c.gateway = c.name;
  if (c.gateway != c.name) {
    bool listed = false;
    for (const auto& s : c.domain_sns)
      listed = listed || s.name == c.gateway;
    if (!listed)
      return p.err(*gateway_node, "edomain.gateway " + quoted(c.gateway) +
                                      " is neither this SN nor listed in [[edomain.sn]]");
  }

  // [[peer]]
  {
    auto peers = p.tables(root, "peer", "peer");
    if (!peers) return fail(peers.error());
    for (const toml::table* t : *peers) {
      IE_TRY(p.only_keys(*t, "[[peer]]", {"edomain", "gateway", "address", "public_key"}));
      PeerDomain d;
      auto ed = p.required_str(*t, "edomain", "peer.edomain");
      if (!ed) return fail(ed.error());
      const toml::node& en = *t->get("edomain");
      if (!valid_edomain(*ed))
        return p.err(
            en, "peer.edomain " + quoted(*ed) + " is not a label of a-z, 0-9, '-', 1..31 long");
      if (*ed == c.edomain)
        return p.err(en, "peer.edomain " + quoted(*ed) +
                             " is this SN's own edomain (its SNs go in [[edomain.sn]])");
      for (const auto& o : c.peers) {
        if (o.edomain == *ed) return p.err(en, "peer.edomain " + quoted(*ed) + " listed twice");
      }
      d.edomain = std::move(*ed);
      auto g = p.sn_name(*t, "gateway", "peer.gateway");
      if (!g) return fail(g.error());
      if (edomain_part(*g) != d.edomain)
        return p.err(*t->get("gateway"),
                     "peer.gateway " + quoted(*g) + " is not in edomain " + quoted(d.edomain));
      d.gateway.name = std::move(*g);
      auto addr = p.address(*t, "peer");
      if (!addr) return fail(addr.error());
      d.gateway.address = std::move(*addr);
      auto k = new_key(*t, "peer");
      if (!k) return fail(k.error());
      d.gateway.public_key = *k;
      c.peers.push_back(std::move(d));
    }
  }

  // [[route]]
  {
    auto routes = p.tables(root, "route", "route");
    if (!routes) return fail(routes.error());
    for (const toml::table* t : *routes) {
      IE_TRY(p.only_keys(*t, "[[route]]", {"prefix", "sn"}));
      StaticRoute r;
      auto text = p.required_str(*t, "prefix", "route.prefix");
      if (!text) return fail(text.error());
      auto pre = Prefix::parse(*text);
      if (!pre) return p.err(*t->get("prefix"), "route.prefix: " + pre.error().context);
      for (const auto& o : c.routes) {
        if (o.prefix == *pre)
          return p.err(*t->get("prefix"), "route.prefix " + pre->str() + " listed twice");
      }
      r.prefix = *pre;
      auto sn_name = p.sn_name(*t, "sn", "route.sn");
      if (!sn_name) return fail(sn_name.error());
      const std::string_view dom = edomain_part(*sn_name);
      const toml::node& sn_node = *t->get("sn");
      if (dom == c.edomain && *sn_name != c.name) {
        bool listed = false;
        for (const auto& s : c.domain_sns)
          listed = listed || s.name == *sn_name;
        if (!listed)
          return p.err(sn_node,
                       "route.sn " + quoted(*sn_name) +
                           " is in this edomain but neither this SN nor listed in [[edomain.sn]]");
      } else if (dom != c.edomain && c.is_gateway()) {
        bool peered = false;
        for (const auto& d : c.peers)
          peered = peered || d.edomain == dom;
        if (!peered)
          return p.err(sn_node, "route.sn " + quoted(*sn_name) + ": edomain " + quoted(dom) +
                                    " has no [[peer]] (this SN is the gateway)");
      }
      r.sn = std::move(*sn_name);
      c.routes.push_back(std::move(r));
    }
  }

  // [services]
  auto svc_t = p.table(root, "services", "services");
  if (!svc_t) return fail(svc_t.error());
  if (*svc_t != nullptr) {
    const toml::table& st = **svc_t;
    IE_TRY(p.only_keys(st, "[services]", {"out_of_band", "imposed", "upstream"}));
    auto names = [&](const char* key, std::vector<std::string>* out) -> Result<void> {
      const std::string where = std::string("services.") + key;
      auto list = p.strings(st, key, where);
      if (!list) return fail(list.error());
      for (const auto& [name, node] : *list) {
        if (!valid_module_name(name))
          return p.err(*node, where + ": " + quoted(name) + " is not a module name");
        if (std::find(out->begin(), out->end(), name) != out->end())
          return p.err(*node, where + ": " + quoted(name) + " listed twice");
        out->push_back(name);
      }
      return ok();
    };
    IE_TRY(names("out_of_band", &c.out_of_band));
    IE_TRY(names("imposed", &c.imposed));
    if (st.contains("upstream")) {
      auto up = p.sn_name(st, "upstream", "services.upstream");
      if (!up) return fail(up.error());
      bool known = false;
      for (const auto& s : c.domain_sns)
        known = known || s.name == *up;
      for (const auto& d : c.peers)
        known = known || d.gateway.name == *up;
      if (!known)
        return p.err(*st.get("upstream"),
                     "services.upstream " + quoted(*up) +
                         " is neither in [[edomain.sn]] nor a [[peer]] gateway");
      c.upstream = std::move(*up);
    }
  }

  // [modules]
  auto mod_t = p.table(root, "modules", "modules");
  if (!mod_t) return fail(mod_t.error());
  if (*mod_t != nullptr) {
    for (auto&& [k, v] : **mod_t) {
      const std::string key(k.str());
      if (key == "load") {
        auto paths = p.strings(**mod_t, "load", "modules.load");
        if (!paths) return fail(paths.error());
        for (const auto& [path, node] : *paths) {
          if (!is_absolute_path(path))
            return p.err(*node, "modules.load: " + quoted(path) + " is not an absolute path");
          for (const auto& o : c.module_paths) {
            if (o == path) return p.err(*node, "modules.load: " + quoted(path) + " listed twice");
          }
          c.module_paths.push_back(path);
        }
        continue;
      }
      if (!v.is_table())
        return p.err(
            k.source(), Errc::invalid_argument,
            "unknown key " + quoted(key) +
                " in [modules] (allowed: load, and [modules.NAME] tables of module settings)");
      if (!valid_module_name(key))
        return p.err(k.source(), Errc::invalid_argument,
                     "[modules." + key + "]: module names are 1..63 of a-z, 0-9, '_'");
      auto& settings = c.module_config[key];
      for (auto&& [sk, sv] : *v.as_table()) {
        if (!(sv.is_string() || sv.is_integer() || sv.is_boolean() || sv.is_floating_point()))
          return p.err(sv, "modules." + key + "." + std::string(sk.str()) +
                               " must be a string, integer, boolean or float (got " +
                               type_name(sv) + ")");
        settings[std::string(sk.str())] = scalar_string(sv);
      }
    }
  }
  return c;
}

}  // namespace

Result<SnConfig> parse_config(std::string_view toml_text, const std::string& file_name) {
  return conf::parse_config_with<SnConfig>(toml_text, file_name, validate);
}

Result<SnConfig> load_config(const std::string& path) {
  auto text = conf::read_config_file(path);
  if (!text) return fail(text.error());
  return parse_config(*text, path);
}

}  // namespace ie::sn
