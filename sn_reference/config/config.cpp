// iesn.toml: parsing with toml++ and validation of the whole configuration. Every error is
// "FILE:LINE:COL: what", pointing at the offending value, key, or the table that lacks a
// required key. toml++ reports syntax errors by exception; they are caught here, nothing
// escapes.
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <optional>
#include <set>
#include <sstream>

#include "ie/io/udp.hpp"
#include "ie/sn/config.hpp"

namespace ie::sn {

bool valid_edomain(std::string_view label) {
  if (label.empty() || label.size() > 31) return false;
  for (const char c : label) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool valid_sn_name(std::string_view name) {
  const auto dot = name.find('.');
  if (dot == std::string_view::npos) return false;
  return valid_edomain(name.substr(0, dot)) && valid_edomain(name.substr(dot + 1));
}

namespace {

std::string_view edomain_part(std::string_view sn_name) {
  return sn_name.substr(0, sn_name.find('.'));
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date/time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string quoted(std::string_view s) {
  std::string q = "\"";
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      q += buf;
    } else {
      q += c;
    }
  }
  return q + "\"";
}

bool is_absolute_path(const std::string& p) {
  return !p.empty() && p.front() == '/' && p.find('\0') == std::string::npos;
}

// One parse: the file name for messages and the checks shared by every table.
class Parser {
 public:
  explicit Parser(const std::string& file) : file_(file) {}

  Unexpected err(const toml::source_region& where, Errc code, const std::string& what) const {
    std::ostringstream s;
    s << file_ << ":" << where.begin.line << ":" << where.begin.column << ": " << what;
    return fail(code, s.str());
  }
  Unexpected err(const toml::node& n, const std::string& what) const {
    return err(n.source(), Errc::invalid_argument, what);
  }

  // Every key of t must be one of `allowed`.
  Result<void> only_keys(const toml::table& t, const std::string& where,
                         std::initializer_list<std::string_view> allowed) const {
    for (auto&& [k, v] : t) {
      bool found = false;
      for (const auto a : allowed)
        found = found || k.str() == a;
      if (found) continue;
      std::string list;
      for (const auto a : allowed)
        list += (list.empty() ? "" : ", ") + std::string(a);
      return err(k.source(), Errc::invalid_argument,
                 "unknown key " + quoted(k.str()) + " in " + where + " (allowed: " + list + ")");
    }
    return ok();
  }

  Result<const toml::table*> table(const toml::table& parent, std::string_view key,
                                   const std::string& name) const {
    const toml::node* n = parent.get(key);
    if (n == nullptr) return static_cast<const toml::table*>(nullptr);
    if (!n->is_table()) return err(*n, name + " must be a table (got " + type_name(*n) + ")");
    return n->as_table();
  }

  // An array whose elements are all tables ([[name]] or an array of inline tables).
  Result<std::vector<const toml::table*>> tables(const toml::table& parent, std::string_view key,
                                                 const std::string& name) const {
    std::vector<const toml::table*> out;
    const toml::node* n = parent.get(key);
    if (n == nullptr) return out;
    if (!n->is_array())
      return err(*n, name + " must be an array of tables, written [[" + name + "]] (got " +
                         type_name(*n) + ")");
    for (const auto& el : *n->as_array()) {
      if (!el.is_table())
        return err(
            el, name + " must hold tables, written [[" + name + "]] (got " + type_name(el) + ")");
      out.push_back(el.as_table());
    }
    return out;
  }

  Result<std::optional<std::string>> str(const toml::table& t, std::string_view key,
                                         const std::string& name) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::optional<std::string>();
    if (!n->is_string()) return err(*n, name + " must be a string (got " + type_name(*n) + ")");
    return std::optional<std::string>(n->as_string()->get());
  }

  Result<std::string> required_str(const toml::table& t, std::string_view key,
                                   const std::string& name) const {
    auto s = str(t, key, name);
    if (!s) return fail(s.error());
    if (!s->has_value()) return err(t, "missing " + name);
    return std::move(**s);
  }

  Result<std::optional<std::int64_t>> integer(const toml::table& t, std::string_view key,
                                              const std::string& name, std::int64_t lo,
                                              std::int64_t hi) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::optional<std::int64_t>();
    if (!n->is_integer()) return err(*n, name + " must be an integer (got " + type_name(*n) + ")");
    const std::int64_t v = n->as_integer()->get();
    if (v < lo || v > hi)
      return err(*n, name + " must be " + std::to_string(lo) + ".." + std::to_string(hi) +
                         " (got " + std::to_string(v) + ")");
    return std::optional<std::int64_t>(v);
  }

  // An array of strings, each with its node (for error positions).
  Result<std::vector<std::pair<std::string, const toml::node*>>> strings(
      const toml::table& t, std::string_view key, const std::string& name) const {
    std::vector<std::pair<std::string, const toml::node*>> out;
    const toml::node* n = t.get(key);
    if (n == nullptr) return out;
    if (!n->is_array())
      return err(*n, name + " must be an array of strings (got " + type_name(*n) + ")");
    for (const auto& el : *n->as_array()) {
      if (!el.is_string()) return err(el, name + " must hold strings (got " + type_name(el) + ")");
      out.emplace_back(el.as_string()->get(), &el);
    }
    return out;
  }

  // A path value: absolute, or empty when empty_ok.
  Result<std::optional<std::string>> path(const toml::table& t, std::string_view key,
                                          const std::string& name, bool empty_ok) const {
    auto s = str(t, key, name);
    if (!s) return fail(s.error());
    if (!s->has_value()) return s;
    const std::string& p = **s;
    if (p.empty() && empty_ok) return s;
    if (!is_absolute_path(p))
      return err(*t.get(key), name + " must be an absolute path (got " + quoted(p) + ")");
    return s;
  }

  Result<noise::PublicKey> public_key(const toml::table& t, const std::string& name) const {
    auto text = required_str(t, "public_key", name + ".public_key");
    if (!text) return fail(text.error());
    auto k = key_from_base64(*text);
    if (!k)
      return err(*t.get("public_key"),
                 name + ".public_key: not a base64 32-byte key (44 characters, standard base64)");
    if (*k == noise::PublicKey{})
      return err(*t.get("public_key"), name + ".public_key is all zero");
    return *k;
  }

  Result<std::string> address(const toml::table& t, const std::string& name) const {
    auto a = required_str(t, "address", name + ".address");
    if (!a) return fail(a.error());
    socklen_t len = 0;
    auto ep = io::parse_endpoint(*a, &len);
    if (!ep)
      return err(
          *t.get("address"),
          name + ".address: expected a numeric IP:PORT or [IPv6]:PORT (got " + quoted(*a) + ")");
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&*ep);  // port at the same offset in v6
    if (sin->sin_port == 0) return err(*t.get("address"), name + ".address: port 0");
    return std::move(*a);
  }

  Result<std::string> sn_name(const toml::table& t, std::string_view key,
                              const std::string& name) const {
    auto s = required_str(t, key, name);
    if (!s) return fail(s.error());
    if (!valid_sn_name(*s))
      return err(*t.get(key),
                 name + " " + quoted(*s) +
                     " is not DOM.SN (two labels of a-z, 0-9, '-', 1..31 long, joined by a dot)");
    return std::move(*s);
  }

 private:
  const std::string& file_;
};

std::string scalar_string(const toml::node& n) {
  if (const auto* s = n.as_string()) return s->get();
  if (const auto* i = n.as_integer()) return std::to_string(i->get());
  if (const auto* b = n.as_boolean()) return b->get() ? "true" : "false";
  const double d = n.as_floating_point()->get();
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip form
  return std::string(buf, r.ptr);
}

bool valid_module_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (const char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

Result<SnConfig> validate(const toml::table& root, const std::string& file) {
  const Parser p(file);
  SnConfig c;
  IE_TRY(p.only_keys(root, "the top level", {"sn", "edomain", "peer", "route", "modules"}));

  // [sn]
  auto sn_t = p.table(root, "sn", "sn");
  if (!sn_t) return fail(sn_t.error());
  if (*sn_t == nullptr)
    return p.err(toml::source_region{{1, 1}, {1, 1}, {}}, Errc::invalid_argument,
                 "missing [sn] table");
  const toml::table& sn = **sn_t;
  IE_TRY(p.only_keys(sn, "[sn]",
                     {"name", "listen", "workers", "private_key_file", "state_db", "control_socket",
                      "cache_capacity", "host_prefixes"}));
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
    IE_TRY(p.only_keys(ed, "[edomain]", {"gateway", "rekey_seconds", "sn"}));
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
  try {
    toml::table root = toml::parse(toml_text, file_name);
    return validate(root, file_name);
  } catch (const toml::parse_error& e) {
    return Parser(file_name).err(e.source(), Errc::parse, std::string(e.description()));
  } catch (const std::exception& e) {
    return fail(Errc::internal, file_name + ": " + e.what());
  }
}

Result<SnConfig> load_config(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int e = errno;
    return fail(e == ENOENT ? Errc::not_found : (e == EACCES ? Errc::permission : Errc::io),
                "config " + path, e);
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return fail(Errc::io, "read config " + path, e);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      ::close(fd);
      return fail(Errc::too_large,
                  "config " + path + ": larger than " + std::to_string(kMaxConfigBytes) + " bytes");
    }
  }
  ::close(fd);
  return parse_config(text, path);
}

}  // namespace ie::sn
