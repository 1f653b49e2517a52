// The client side of iesn's control socket, behind `iesn status|counters|pipes|modules|
// reload [--socket PATH] [--json]`, and `iesn check-config PATH`. One call per verb (pipes:
// one call per page), printed as a human table or as JSON.
#include <cerrno>
#include <cstring>

#include "ie/ctl/client.hpp"
#include "ie/sn/config.hpp"
#include "ie/sn/status.hpp"

namespace ie::sn {

using ctl::Json;

namespace {

constexpr std::chrono::seconds kCallTimeout{10};
// Bounds the page loop whatever the server answers: pipe ids are 32-bit and must increase.
constexpr std::size_t kMaxPages = (std::size_t{1} << 32) / kPipesPerPage + 1;

int print_error(std::ostream& err, const std::string& what, const Error& e) {
  err << "iesn: " << what << ": " << e.context;
  if (e.code != Errc::ok) err << " (" << errc_name(e.code) << ")";
  err << "\n";
  return kExitFailure;
}

Result<std::vector<PipeStatus>> all_pipes(ctl::Client& c) {
  std::vector<PipeStatus> pipes;
  std::uint64_t after = 0;
  for (std::size_t page = 0; page < kMaxPages; ++page) {
    auto r = c.call("pipes", Json{{"after", after}, {"limit", kPipesPerPage}}, kCallTimeout);
    if (!r) return fail(r.error());
    const auto list = r->find("pipes");
    if (list == r->end() || !list->is_array())
      return fail(Errc::protocol, "pipes reply: \"pipes\" must be an array");
    for (const auto& pj : *list) {
      auto p = pipe_from_json(pj);
      if (!p) return fail(p.error());
      if (p->id <= after) return fail(Errc::protocol, "pipes reply: pipe ids out of order");
      after = p->id;
      pipes.push_back(std::move(*p));
    }
    const auto more = r->find("more");
    if (list->empty() || more == r->end() || !more->is_boolean() || !more->get<bool>())
      return pipes;
  }
  return fail(Errc::protocol, "pipes reply: too many pages");
}

}  // namespace

int run_status_client(const std::string& socket, const std::string& what, bool json,
                      std::ostream& out, std::ostream& err) {
  static const char* const kVerbs[] = {"status", "counters", "pipes", "modules", "reload"};
  bool known = false;
  for (const char* v : kVerbs)
    known = known || what == v;
  if (!known) {
    err << "iesn: unknown command \"" << what
        << "\" (expected status, counters, pipes, modules or reload)\n";
    return kExitUsage;
  }
  if (socket.empty()) {
    err << "iesn: no control socket given\n";
    return kExitUsage;
  }
  auto c = ctl::Client::connect(socket);
  if (!c) {
    const Error& e = c.error();
    if (e.code == Errc::not_found) {
      err << "iesn: cannot connect to " << socket << ": " << std::strerror(e.sys_errno)
          << " (is iesn running? use --socket PATH for another socket)\n";
      return kExitDaemonDown;
    }
    err << "iesn: cannot connect to " << socket << ": " << std::strerror(e.sys_errno)
        << (e.code == Errc::permission ? " (run as root or as a member of the socket's group)" : "")
        << "\n";
    return kExitFailure;
  }

  if (what == "pipes") {
    auto pipes = all_pipes(*c);
    if (!pipes) return print_error(err, what, pipes.error());
    if (json) {
      Json list = Json::array();
      for (const auto& p : *pipes)
        list.push_back(pipe_to_json(p));
      out << Json{{"pipes", std::move(list)}}.dump(2) << "\n";
    } else {
      out << format_pipes(*pipes);
    }
    return kExitOk;
  }

  auto r = c->call(what, Json::object(), kCallTimeout);
  if (!r) return print_error(err, what, r.error());
  if (json) {
    out << r->dump(2) << "\n";
    return kExitOk;
  }
  if (what == "reload") {
    out << "configuration reloaded\n";
    return kExitOk;
  }
  auto s = status_from_json(*r);
  if (!s) return print_error(err, what, s.error());
  if (what == "status") out << format_status(*s);
  if (what == "counters") out << format_counters(*s);
  if (what == "modules") out << format_modules(*s);
  return kExitOk;
}

Result<void> check_config_file(const std::string& path, std::ostream& out) {
  auto cfg = load_config(path);
  if (!cfg) {
    out << cfg.error().context << "\n";
    return fail(cfg.error());
  }
  auto key = load_private_key(cfg->private_key_file);
  if (!key) {
    out << path << ": sn.private_key_file: " << key.error().to_string() << "\n";
    return fail(key.error());
  }
  out << "ok: " << cfg->name << " (edomain " << cfg->edomain << ", "
      << (cfg->is_gateway() ? std::string("gateway") : "member of " + cfg->gateway) << "), "
      << cfg->domain_sns.size() << " edomain SNs, " << cfg->peers.size() << " peers, "
      << cfg->routes.size() << " routes, " << cfg->module_paths.size() << " modules; public key "
      << key_to_base64(key->pub) << "\n";
  return ok();
}

}  // namespace ie::sn
