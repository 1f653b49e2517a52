// Control-protocol codec, line framing and method dispatch (ie/ctl/protocol.hpp).
#include "ie/ctl/protocol.hpp"

#include <algorithm>
#include <cerrno>
#include <exception>
#include <string>

namespace ie::ctl {
namespace {

// Nesting depth of a JSON text, counted outside strings (before handing it to the parser, so
// a hostile line cannot make the parser recurse deeply).
int json_depth(std::string_view s) {
  int depth = 0, max = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[')
      max = std::max(max, ++depth);
    else if (c == '}' || c == ']')
      --depth;
  }
  return max;
}

Unexpected parse_fail(const std::string& what) {
  return fail(Errc::parse, "control message: " + what);
}

Result<std::uint64_t> get_id(const Json& j) {
  auto it = j.find("id");
  if (it == j.end()) return parse_fail("missing \"id\"");
  if (!it->is_number_unsigned()) return parse_fail("\"id\" must be an unsigned integer");
  return it->get<std::uint64_t>();
}

Result<std::string> get_string(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return parse_fail(std::string("missing \"") + key + "\"");
  if (!it->is_string()) return parse_fail(std::string("\"") + key + "\" must be a string");
  return it->get<std::string>();
}

Result<Json> get_object(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return Json::object();
  if (!it->is_object()) return parse_fail(std::string("\"") + key + "\" must be an object");
  return *it;
}

}  // namespace

int errno_for(Errc code) {
  switch (code) {
    case Errc::ok:
      return 0;
    case Errc::invalid_argument:
      return EINVAL;
    case Errc::parse:
      return EBADMSG;
    case Errc::io:
      return EIO;
    case Errc::not_found:
      return ENOENT;
    case Errc::exists:
      return EEXIST;
    case Errc::permission:
      return EPERM;
    case Errc::timeout:
      return ETIMEDOUT;
    case Errc::protocol:
      return EPROTO;
    case Errc::crypto:
      return EBADMSG;
    case Errc::unsupported:
      return ENOTSUP;
    case Errc::busy:
      return EBUSY;
    case Errc::closed:
      return EPIPE;
    case Errc::too_large:
      return EMSGSIZE;
    case Errc::internal:
      return ENOTRECOVERABLE;
  }
  return EIO;
}

Errc errc_from_name(std::string_view name) {
#define IE_X(n, text) \
  if (name == #n) return Errc::n;
  IE_ERRC_LIST(IE_X)
#undef IE_X
  return Errc::internal;
}

// null (a default Json) is sent as {}: params, result and data are always objects.
namespace {
const Json& object_or_empty(const Json& j) {
  static const Json kEmpty = Json::object();
  return j.is_null() ? kEmpty : j;
}
}  // namespace

std::string encode(const Request& r) {
  Json j = {{"v", kProtocolVersion},
            {"id", r.id},
            {"method", r.method},
            {"params", object_or_empty(r.params)}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string encode(const Response& r) {
  Json j = {{"v", kProtocolVersion}, {"id", r.id}, {"ok", r.ok}};
  if (r.ok) {
    j["result"] = object_or_empty(r.result);
  } else {
    j["error"] = {{"code", errc_name(r.error.code)},
                  {"errno", r.error.sys_errno != 0 ? r.error.sys_errno : errno_for(r.error.code)},
                  {"message", r.error.context}};
  }
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string encode(const Event& e) {
  Json j = {{"v", kProtocolVersion}, {"event", e.name}, {"data", object_or_empty(e.data)}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<Message> decode(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (line.size() > kMaxFrame) return fail(Errc::too_large, "control message: line over 1 MiB");
  // JSON text never holds a raw NUL (inside strings it must be escaped); the parser would
  // stop at one and accept what came before.
  if (line.find('\0') != std::string_view::npos) return parse_fail("NUL byte in the message");
  if (json_depth(line) > kMaxDepth) return parse_fail("nested deeper than 32 levels");
  Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return parse_fail("not valid JSON");
  if (!j.is_object()) return parse_fail("not a JSON object");
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer()) return parse_fail("missing protocol version \"v\"");
  if (v->get<std::int64_t>() != kProtocolVersion) {
    return fail(Errc::unsupported,
                "control message: protocol version " + v->dump() + " (this side speaks 1)");
  }
  if (j.contains("method")) {
    Request r;
    auto id = get_id(j);
    if (!id) return fail(id.error());
    auto m = get_string(j, "method");
    if (!m) return fail(m.error());
    auto p = get_object(j, "params");
    if (!p) return fail(p.error());
    r.id = *id;
    r.method = std::move(*m);
    r.params = std::move(*p);
    return Message(std::move(r));
  }
  if (j.contains("event")) {
    Event e;
    auto n = get_string(j, "event");
    if (!n) return fail(n.error());
    auto d = get_object(j, "data");
    if (!d) return fail(d.error());
    e.name = std::move(*n);
    e.data = std::move(*d);
    return Message(std::move(e));
  }
  if (j.contains("ok")) {
    Response r;
    auto id = get_id(j);
    if (!id) return fail(id.error());
    r.id = *id;
    if (!j["ok"].is_boolean()) return parse_fail("\"ok\" must be a boolean");
    r.ok = j["ok"].get<bool>();
    if (r.ok) {
      auto res = j.find("result");
      r.result = res == j.end() ? Json::object() : *res;
    } else {
      auto e = get_object(j, "error");
      if (!e) return fail(e.error());
      auto code = get_string(*e, "code");
      if (!code) return fail(code.error());
      r.error.code = errc_from_name(*code);
      auto en = e->find("errno");
      if (en != e->end() && !en->is_number_integer())
        return parse_fail("\"errno\" must be an integer");
      r.error.sys_errno = en != e->end() ? en->get<int>() : 0;
      auto msg = e->find("message");
      if (msg != e->end() && !msg->is_string()) return parse_fail("\"message\" must be a string");
      r.error.context = msg != e->end() ? msg->get<std::string>() : std::string();
    }
    return Message(std::move(r));
  }
  return parse_fail("neither a request (\"method\"), a response (\"ok\") nor an event (\"event\")");
}

std::uint64_t salvage_id(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (line.size() > kMaxFrame || json_depth(line) > kMaxDepth) return 0;
  if (line.find('\0') != std::string_view::npos) return 0;  // not JSON (see decode)
  const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return 0;
  auto id = j.find("id");
  return id != j.end() && id->is_number_unsigned() ? id->get<std::uint64_t>() : 0;
}

void LineReader::feed(std::string_view bytes) {
  if (overflow_) return;
  buf_.append(bytes);
  std::size_t start = 0;  // first byte of the current (incomplete) line
  for (;;) {
    const auto nl = buf_.find('\n', std::max(scan_, start));
    if (nl == std::string::npos) break;
    if (nl - start > max_) {
      poison();
      return;
    }
    lines_.emplace_back(buf_, start, nl - start);
    start = nl + 1;
  }
  buf_.erase(0, start);  // one erase per feed keeps the cost linear
  scan_ = buf_.size();
  if (buf_.size() > max_) poison();
}

void LineReader::poison() {
  overflow_ = true;
  buf_.clear();
  buf_.shrink_to_fit();
  scan_ = 0;
}

bool LineReader::next(std::string* line) {
  if (lines_.empty()) return false;
  *line = std::move(lines_.front());
  lines_.pop_front();
  return true;
}

bool Dispatcher::add(std::string method, Handler h, Access access) {
  if (hello_server_ && method == "hello") return false;
  return handlers_.emplace(std::move(method), Entry{std::move(h), access}).second;
}

std::optional<Access> Dispatcher::access_of(std::string_view method) const {
  if (hello_server_ && method == "hello") return Access::read;
  auto it = handlers_.find(method);
  if (it == handlers_.end()) return std::nullopt;
  return it->second.access;
}

bool Dispatcher::add_hello(std::string server) {
  if (hello_server_ || handlers_.count("hello") != 0) return false;
  hello_server_ = std::move(server);
  return true;
}

Response Dispatcher::dispatch(const Request& req, const Caller& caller) const {
  Response resp;
  resp.id = req.id;
  if (hello_server_ && req.method == "hello") {
    Json methods = Json::array({"hello"});
    for (const auto& [name, e] : handlers_)
      methods.push_back(name);
    std::sort(methods.begin(), methods.end());
    resp.result = {
        {"protocol", kProtocolVersion}, {"server", *hello_server_}, {"methods", methods}};
    return resp;
  }
  auto it = handlers_.find(req.method);
  if (it == handlers_.end()) {
    resp.ok = false;
    resp.error = Error{Errc::not_found, 0, "unknown method \"" + req.method + "\""};
    return resp;
  }
  if (it->second.access == Access::admin && !caller.may_admin()) {
    resp.ok = false;
    resp.error = Error{Errc::permission, 0,
                       "\"" + req.method + "\" is an admin method; it needs " + admin_requirement_ +
                           " (caller uid " + std::to_string(caller.uid) + ")"};
    return resp;
  }
  try {
    auto r = it->second.handler(req.params, caller);
    if (r.ok()) {
      resp.result = std::move(r.value());
    } else {
      resp.ok = false;
      resp.error = r.error();
    }
  } catch (const std::exception& e) {
    resp.ok = false;
    resp.error = Error{Errc::internal, 0,
                       std::string("internal error in \"") + req.method + "\": " + e.what()};
  } catch (...) {
    resp.ok = false;
    resp.error = Error{Errc::internal, 0, std::string("internal error in \"") + req.method + "\""};
  }
  return resp;
}

std::string Dispatcher::handle_line(std::string_view line, const Caller& caller) const {
  auto m = decode(line);
  if (!m) {
    Response r;
    r.id = salvage_id(line);
    r.ok = false;
    r.error = m.error();
    return encode(r);
  }
  if (auto* req = std::get_if<Request>(&*m)) return encode(dispatch(*req, caller));
  Response r;
  if (auto* resp = std::get_if<Response>(&*m)) r.id = resp->id;
  r.ok = false;
  r.error = Error{Errc::protocol, 0, "a server accepts only requests"};
  return encode(r);
}

}  // namespace ie::ctl
