// The built-in `control` service: host registration and SN info, JSON bodies
// (docs/sn.md "Out-of-band requests and the control service").
#include <arpa/inet.h>
#include <netinet/in.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "ie/io/udp.hpp"
#include "ie/sn/routing.hpp"

namespace ie::sn {
namespace {

using nlohmann::json;

// Never throws: text cut from a request may end inside a UTF-8 sequence.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string answer_error(std::string_view what) {
  json j = {{"ok", false}, {"error", std::string(what)}};
  return dump(j);
}

// The "addrs" array: 1..max strings, each a numeric IPv4/IPv6 address.
Result<std::vector<Addr16>> parse_addrs(const json& req, std::size_t max) {
  const auto it = req.find("addrs");
  if (it == req.end()) return fail(Errc::invalid_argument, "missing \"addrs\"");
  if (!it->is_array()) return fail(Errc::invalid_argument, "\"addrs\" must be an array");
  if (it->empty()) return fail(Errc::invalid_argument, "\"addrs\" is empty");
  if (it->size() > max)
    return fail(Errc::too_large, "more than " + std::to_string(max) + " addresses");
  std::vector<Addr16> out;
  for (const auto& a : *it) {
    if (!a.is_string()) return fail(Errc::invalid_argument, "addresses must be strings");
    const auto& s = a.get_ref<const std::string&>();
    const auto addr = parse_addr(s);
    if (!addr)
      return fail(Errc::invalid_argument, "not an IP address: \"" + s.substr(0, 64) + "\"");
    out.push_back(*addr);
  }
  return out;
}

std::string offered_list(const ControlInfo& info) {
  std::string s;
  for (const auto& [name, id] : info.out_of_band)
    s += (s.empty() ? "" : ", ") + name;
  return s.empty() ? "none" : s;
}

json invocation_json(const Invocation& v) {
  return json{{"service", v.service},
              {"direction", std::string(direction_name(v.direction))},
              {"prefix", v.prefix.str()}};
}

json invocations_json(const std::vector<Invocation>& list) {
  json a = json::array();
  for (const auto& v : list)
    a.push_back(invocation_json(v));
  return a;
}

// One entry of service.set's "invocations" (`where` names it in errors).
Result<Invocation> parse_invocation(const json& e, const std::string& where,
                                    const ControlInfo& info) {
  if (!e.is_object()) return fail(Errc::invalid_argument, where + " must be an object");
  for (const auto& [k, v] : e.items()) {
    if (k != "service" && k != "direction" && k != "prefix" && k != "options")
      return fail(Errc::invalid_argument, where + ": unknown key \"" + k.substr(0, 32) +
                                              "\" (allowed: service, direction, prefix, options)");
  }
  Invocation v;
  const auto svc = e.find("service");
  if (svc == e.end() || !svc->is_string())
    return fail(Errc::invalid_argument, where + ": missing \"service\" (a string)");
  v.service = svc->get<std::string>();
  const auto offered = info.out_of_band.find(v.service);
  if (offered == info.out_of_band.end())
    return fail(Errc::not_found, where + ": service \"" + v.service.substr(0, 32) +
                                     "\" is not offered for out-of-band use by " + info.sn_name +
                                     " (offered: " + offered_list(info) + ")");
  v.service_id = offered->second;
  const auto dir = e.find("direction");
  if (dir == e.end() || !dir->is_string())
    return fail(Errc::invalid_argument,
                where + ": missing \"direction\" (\"in\", \"out\" or \"both\")");
  const auto d = parse_direction(dir->get_ref<const std::string&>());
  if (!d)
    return fail(Errc::invalid_argument,
                where + ": \"direction\" must be \"in\", \"out\" or \"both\"");
  v.direction = *d;
  const auto pre = e.find("prefix");
  if (pre == e.end() || !pre->is_string())
    return fail(Errc::invalid_argument, where + ": missing \"prefix\" (\"ADDRESS/LENGTH\")");
  auto p = Prefix::parse(pre->get_ref<const std::string&>(), /*clear_host_bits=*/true);
  if (!p) return fail(Errc::invalid_argument, where + ": " + p.error().context);
  v.prefix = *p;
  if (const auto o = e.find("options"); o != e.end()) {
    if (!o->is_object())
      return fail(Errc::invalid_argument, where + ": \"options\" must be an object");
    if (!o->empty())
      return fail(Errc::invalid_argument,
                  where + ": service \"" + v.service + "\" takes no options");
  }
  return v;
}

// An endpoint an SN can be reached at: a port, and not a wildcard address.
bool usable_endpoint(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    return a.sin_port != 0 && a.sin_addr.s_addr != htonl(INADDR_ANY);
  }
  if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    return a.sin6_port != 0 && !IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr);
  }
  return false;
}

// The "name" of sn.locate / sn.hello: a DOM.SN name.
Result<std::string> parse_sn_name(const json& req) {
  const auto it = req.find("name");
  if (it == req.end() || !it->is_string())
    return fail(Errc::invalid_argument, "missing \"name\" (an SN name, DOM.SN)");
  const auto& n = it->get_ref<const std::string&>();
  if (!valid_sn_name(n))
    return fail(Errc::invalid_argument,
                "\"name\" is not an SN name (DOM.SN): \"" + n.substr(0, 64) + "\"");
  return n;
}

json contact_json(const SnRef& c) {
  return json{{"ok", true},
              {"name", c.name},
              {"address", c.address},
              {"public_key", key_to_base64(c.public_key)}};
}

// sn.locate (docs/sn.md "On-demand direct pipes"): from an SN pipe only. Answered from what
// this SN knows (itself, the SNs its configuration names); else relayed one SN further
// towards the name, while the ttl lasts.
void locate(RouteTable& table, PipeId from, const json& req, const ControlInfo& info,
            ControlResult* r) {
  const auto pi = table.pipe_info(from);
  if (!pi || pi->kind != IE_SN_PIPE_SN) {
    r->response = answer_error("sn.locate is answered to SNs only");
    return;
  }
  auto name = parse_sn_name(req);
  if (!name) {
    r->response = answer_error(name.error().context);
    return;
  }
  unsigned ttl = kMaxLocateTtl;
  if (const auto t = req.find("ttl"); t != req.end()) {
    if (!t->is_number_unsigned() || t->get<std::uint64_t>() > kMaxLocateTtl) {
      r->response = answer_error("\"ttl\" must be an integer 0.." + std::to_string(kMaxLocateTtl));
      return;
    }
    ttl = t->get<unsigned>();
  }
  if (*name == info.sn_name) {
    if (info.endpoint.empty()) {
      r->response = answer_error(info.sn_name + " has no advertised endpoint ([sn] advertise)");
      return;
    }
    r->response = dump(contact_json(SnRef{info.sn_name, info.endpoint, info.public_key}));
    return;
  }
  for (const auto& c : info.known_sns) {
    if (c.name == *name) {
      r->response = dump(contact_json(c));
      return;
    }
  }
  const auto via = table.sn_route(*name);
  if (ttl == 0 || !via || *via == from) {
    r->response = answer_error(info.sn_name + " does not know " + *name);
    return;
  }
  r->relay_name = std::move(*name);
  r->relay_via = *via;
  r->relay_ttl = ttl - 1;
}

// sn.hello: the peer of a pipe that came up from an unknown key says which SN it is.
void hello(RouteTable& table, PipeId from, const json& req, const ControlInfo& info,
           ControlResult* r) {
  auto name = parse_sn_name(req);
  if (!name) {
    r->response = answer_error(name.error().context);
    return;
  }
  if (!info.direct_pipes) {
    r->response = answer_error(info.sn_name + " takes no direct pipes ([edomain] direct_pipes)");
    return;
  }
  if (*name == info.sn_name) {
    r->response = answer_error("that is this SN's name");
    return;
  }
  const auto pi = table.pipe_info(from);
  if (!pi) {
    r->response = answer_error("no such pipe");
    return;
  }
  if (pi->kind == IE_SN_PIPE_SN && pi->sn_name[0] != '\0') {  // configured, or verified before
    if (*name == pi->sn_name) {
      r->response = dump(json{{"ok", true}, {"sn", info.sn_name}});
    } else {
      r->response = answer_error("this pipe is " + std::string(pi->sn_name));
    }
    return;
  }
  if (!table.registered(from).empty()) {
    r->response = answer_error("a host pipe (it registered addresses) cannot become an SN pipe");
    return;
  }
  r->hello_name = std::move(*name);
}

}  // namespace

std::string locate_request(std::string_view name, unsigned ttl) {
  return dump(json{{"op", "sn.locate"}, {"name", std::string(name)}, {"ttl", ttl}});
}

std::string hello_request(std::string_view self_name) {
  return dump(json{{"op", "sn.hello"}, {"name", std::string(self_name)}});
}

Result<SnRef> parse_locate_answer(std::string_view body, std::string_view name) {
  const json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return fail(Errc::invalid_argument, "sn.locate answer is not a JSON object");
  const auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean())
    return fail(Errc::invalid_argument, "sn.locate answer without \"ok\"");
  if (!ok->get<bool>()) {
    const auto e = j.find("error");
    return fail(Errc::invalid_argument, e != j.end() && e->is_string()
                                            ? e->get<std::string>().substr(0, 200)
                                            : std::string("sn.locate failed"));
  }
  const auto str = [&](const char* k) -> std::string {
    const auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  SnRef c;
  c.name = str("name");
  if (c.name != name)
    return fail(Errc::invalid_argument, "sn.locate answer names \"" + c.name.substr(0, 64) +
                                            "\", not " + std::string(name));
  c.address = str("address");
  socklen_t len = 0;
  const auto ep = io::parse_endpoint(c.address, &len);
  if (!ep || !usable_endpoint(*ep))
    return fail(Errc::invalid_argument,
                "sn.locate answer: bad address \"" + c.address.substr(0, 64) + "\"");
  auto key = key_from_base64(str("public_key"));
  if (!key) return fail(Errc::invalid_argument, "sn.locate answer: bad public_key");
  c.public_key = *key;
  return c;
}

ControlResult handle_control_request(RouteTable& table, PipeId from, std::string_view body,
                                     const ControlInfo& info) {
  ControlResult r;
  if (body.size() > kMaxControlRequest) {
    r.response =
        answer_error("request larger than " + std::to_string(kMaxControlRequest) + " bytes");
    return r;
  }
  const json req = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded() || !req.is_object()) {
    r.response = answer_error("request is not a JSON object");
    return r;
  }
  const auto op_it = req.find("op");
  if (op_it == req.end() || !op_it->is_string()) {
    r.response = answer_error("missing \"op\" (a string)");
    return r;
  }
  const auto& op = op_it->get_ref<const std::string&>();
  if (op == "info") {
    json ok = {{"ok", true},
               {"sn", info.sn_name},
               {"edomain", std::string(edomain_of(info.sn_name))},
               {"services", info.services}};
    // Where a host that reached us at an anycast address should associate (docs/discovery.md
    // "Anycast"); only ever sent over an authenticated session, so no amplification.
    if (!info.endpoint.empty()) ok["endpoint"] = info.endpoint;
    r.response = dump(ok);
    return r;
  }
  if (op == "register" || op == "unregister") {
    auto addrs = parse_addrs(req, table.config().max_addrs_per_host);
    if (!addrs) {
      r.response = answer_error(addrs.error().context);
      return r;
    }
    RouteOp change;
    change.kind = op == "register" ? RouteOp::Kind::register_host : RouteOp::Kind::unregister_host;
    change.pipe = from;
    change.addrs = std::move(*addrs);
    // "standby": true: this SN is the host's warm standby (docs/sn.md "Standby hosts"); a
    // register sets the pipe's role every time, unregister ignores it.
    if (const auto sb = req.find("standby"); op == "register" && sb != req.end()) {
      if (!sb->is_boolean()) {
        r.response = answer_error("\"standby\" must be a boolean");
        return r;
      }
      change.standby = sb->get<bool>();
    }
    if (auto applied = table.apply(change); !applied) {
      r.response = answer_error(applied.error().context);
      return r;
    }
    r.applied.push_back(std::move(change));
    json ok = {{"ok", true}, {"sn", info.sn_name}};
    if (op == "register") {
      json list = json::array();
      for (const auto& a : table.registered(from))
        list.push_back(addr_str(a));
      ok["addrs"] = std::move(list);
      ok["standby"] = table.standby_of(from);
    }
    r.response = dump(ok);
    return r;
  }
  if (op == "service.set") {
    const auto it = req.find("invocations");
    if (it == req.end() || !it->is_array()) {
      r.response = answer_error("missing \"invocations\" (an array)");
      return r;
    }
    if (it->size() > kMaxInvocationsPerHost) {
      r.response =
          answer_error("more than " + std::to_string(kMaxInvocationsPerHost) + " invocations");
      return r;
    }
    RouteOp change;
    change.kind = RouteOp::Kind::set_invocations;
    change.pipe = from;
    for (std::size_t i = 0; i < it->size(); ++i) {
      auto v = parse_invocation((*it)[i], "invocations[" + std::to_string(i) + "]", info);
      if (!v) {
        r.response = answer_error(v.error().context);
        return r;
      }
      // The same invocation twice is kept once.
      if (std::find(change.invocations.begin(), change.invocations.end(), *v) ==
          change.invocations.end())
        change.invocations.push_back(std::move(*v));
    }
    if (auto applied = table.apply(change); !applied) {
      r.response = answer_error(applied.error().context);
      return r;
    }
    r.response = dump(json{
        {"ok", true}, {"sn", info.sn_name}, {"invocations", invocations_json(change.invocations)}});
    r.applied.push_back(std::move(change));
    return r;
  }
  if (op == "sn.locate") {
    locate(table, from, req, info, &r);
    return r;
  }
  if (op == "sn.hello") {
    hello(table, from, req, info, &r);
    return r;
  }
  if (op == "service.list") {
    if (!table.pipe_info(from)) {
      r.response = answer_error("no such pipe");
      return r;
    }
    json offered = json::array();
    for (const auto& [name, id] : info.out_of_band)
      offered.push_back(name);
    r.response = dump(json{{"ok", true},
                           {"sn", info.sn_name},
                           {"invocations", invocations_json(table.invocations(from))},
                           {"offered", std::move(offered)}});
    return r;
  }
  r.response = answer_error("unknown op \"" + op.substr(0, 32) + "\"");
  return r;
}

}  // namespace ie::sn
