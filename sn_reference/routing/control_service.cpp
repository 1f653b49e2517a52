// The built-in `control` service: host registration and SN info, JSON bodies
// (docs/sn.md "Out-of-band requests and the control service").
#include <nlohmann/json.hpp>

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

}  // namespace

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
    r.response = dump(json{{"ok", true},
                           {"sn", info.sn_name},
                           {"edomain", std::string(edomain_of(info.sn_name))},
                           {"services", info.services}});
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
    }
    r.response = dump(ok);
    return r;
  }
  r.response = answer_error("unknown op \"" + op.substr(0, 32) + "\"");
  return r;
}

}  // namespace ie::sn
