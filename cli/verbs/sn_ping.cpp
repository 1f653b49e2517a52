// `iectl sn ping [NAME]`: measure the RTT to one SN or to every known SN (`sn.ping`). A ping
// that fails is a row with its error, not a failed command: the daemon did answer.
#include <memory>

#include "format.hpp"
#include "verb.hpp"

// verb_sn_ping: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_sn_ping {
namespace {

std::string human(const Json& r) {
  const Json& results = fmt::array(r, "results");
  if (results.empty()) return "no SNs\n";
  fmt::Table t({"name", "endpoint", "rtt"});
  for (const Json& p : results) {
    const auto rtt = fmt::number(p, "rtt_ms");
    const std::string error = fmt::text(p, "error", "");
    t.row({fmt::text(p, "name"), fmt::text(p, "endpoint"),
           rtt ? fmt::ms(rtt) : (error.empty() ? "no reply" : "error: " + error)});
  }
  return t.str();
}

IECTL_VERB({"sn", "ping"}, "RTT to one SN (NAME) or to every known SN", [](CLI::App& cmd) -> Run {
  auto name = std::make_shared<std::string>();
  cmd.add_option("name", *name, "the SN (DOM.SN); default: every known SN");
  return [name](Session& s) {
    Json params = Json::object();
    if (!name->empty()) params["name"] = *name;
    auto r = s.call("sn.ping", params);
    return r ? s.print(*r, human) : s.exit_code();
  };
});

}  // namespace
}  // namespace iectl::verb_sn_ping
