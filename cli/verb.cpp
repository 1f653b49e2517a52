// The verb registry, the command tree built from it, and the Session's one control call with
// its mapping of failures to exit codes (verb.hpp).
#include "verb.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>

#include "ie/ctl/client.hpp"

namespace iectl {
namespace {

struct Registry {
  std::vector<Verb> verbs;
  std::map<std::string, std::string> groups;  // name -> help
};

// Function-local: verbs register from other files' static initialisers.
Registry& registry() {
  static Registry r;
  return r;
}

void die(const std::string& what) {
  std::fprintf(stderr, "iectl: %s\n", what.c_str());
  std::abort();
}

std::string joined(const std::vector<std::string>& path) {
  std::string s;
  for (const auto& p : path)
    s += (s.empty() ? "" : " ") + p;
  return s;
}

// The subcommand `name` of parent, creating it (as a group needing a subcommand) if missing.
CLI::App* group_of(CLI::App* parent, const std::string& name) {
  for (CLI::App* sub : parent->get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == name) return sub;
  const auto& groups = registry().groups;
  const auto help = groups.find(name);
  CLI::App* g = parent->add_subcommand(name, help == groups.end() ? name : help->second);
  g->require_subcommand(1);
  return g;
}

}  // namespace

bool register_verb(Verb v) {
  if (v.path.empty() || !v.setup) die("a verb without a name or setup");
  for (const auto& other : registry().verbs)
    if (other.path == v.path) die("verb registered twice: " + joined(v.path));
  registry().verbs.push_back(std::move(v));
  return true;
}

bool register_group(std::string name, std::string help) {
  if (!registry().groups.emplace(name, std::move(help)).second)
    die("group registered twice: " + name);
  return true;
}

std::optional<Json> Session::call(const std::string& method, const Json& params, ErrorStyle style) {
  auto client = ie::ctl::Client::connect(globals_.socket);
  if (!client) {
    // Client::connect names the socket and says whether ied looks down.
    err_ << "iectl: " << client.error().to_string() << "\n";
    exit_ = client.error().code == ie::Errc::permission ? kExitPermission : kExitDaemonDown;
    return std::nullopt;
  }
  auto reply = client->request(method, params);
  if (!reply) {
    // Connected but no usable answer (closed, timed out, garbage): as good as down.
    err_ << "iectl: " << method << ": " << reply.error().to_string() << "\n";
    exit_ = kExitDaemonDown;
    return std::nullopt;
  }
  if (!reply->ok) {
    const ie::Error& e = reply->error;
    if (style == ErrorStyle::as_is)
      err_ << e.context << "\n";
    else
      err_ << "iectl: " << e.context << " (" << ie::errc_name(e.code) << ")\n";
    exit_ = e.code == ie::Errc::permission ? kExitPermission : kExitFailed;
    return std::nullopt;
  }
  return std::move(reply->result);
}

int Session::print(const Json& result, const std::function<std::string(const Json&)>& human) {
  if (globals_.json)
    out_ << result.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  else
    out_ << human(result);
  return kExitOk;
}

int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"iectl: look at and control the InterEdge host daemon (ied)", "iectl"};
  app.set_version_flag("--version", std::string("iectl ") + IECTL_VERSION);
  Globals g;
  app.add_option("--socket", g.socket, "ied's control socket")
      ->envname("IECTL_SOCKET")
      ->capture_default_str();
  app.add_flag("--json", g.json, "print the daemon's JSON result instead of a table");
  app.require_subcommand(1);
  app.fallthrough();  // global options also after the verb: `iectl sn list --json`

  Run chosen;
  for (const Verb& v : registry().verbs) {
    CLI::App* parent = &app;
    for (std::size_t i = 0; i + 1 < v.path.size(); ++i)
      parent = group_of(parent, v.path[i]);
    CLI::App* cmd = parent->add_subcommand(v.path.back(), v.help);
    Run r = v.setup(*cmd);
    cmd->callback([&chosen, r] { chosen = r; });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports an unknown verb as "A subcommand is required": name the word instead.
    const auto left = app.remaining(true);
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && !left.empty() &&
        left.front().rfind('-', 0) != 0) {
      err << "iectl: unknown command \"" << left.front() << "\" (see iectl --help)\n";
      return kExitUsage;
    }
    const int rc = app.exit(e, out, err);
    return rc == 0 ? kExitOk : kExitUsage;  // --help, --version: 0
  }
  if (!chosen) return kExitUsage;  // unreachable: require_subcommand
  Session s(g, out, err);
  return chosen(s);
}

}  // namespace iectl
