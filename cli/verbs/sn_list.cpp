// `iectl sn list`: the SNs ied knows, from config, DNS and anycast probes, the IESP each
// belongs to and which one is active for its IESP (`sn.list`); then the anycast probes that
// failed.
#include "verbs/sn_list.hpp"

#include "format.hpp"

// verb_sn_list: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_sn_list {

namespace {

// "anycast ADDR: ERROR" for each anycast address whose last probe failed or was refused.
std::string anycast_errors(const Json& result) {
  std::string out;
  for (const Json& a : fmt::array(result, "anycast")) {
    const std::string err = fmt::text(a, "error", "");
    if (!err.empty()) out += "anycast " + fmt::text(a, "address") + ": " + err + "\n";
  }
  return out;
}

}  // namespace
}  // namespace iectl::verb_sn_list

namespace iectl {
std::string format_sn_list(const Json& result) {
  const Json& sns = fmt::array(result, "sns");
  if (sns.empty()) return "no SNs\n" + verb_sn_list::anycast_errors(result);
  fmt::Table t(
      {"name", "endpoint", "iesp", "state", "source", "prio", "weight", "rtt", "expires", "key"});
  t.right(5).right(6).right(7).right(8);
  for (const Json& sn : sns) {
    std::string state = fmt::text(sn, "state");
    if (fmt::flag(sn, "pinned").value_or(false)) state += " (pinned)";
    // No expiry (static SNs) is "-", as is any missing field.
    t.row({fmt::text(sn, "name"), fmt::text(sn, "endpoint"), fmt::text(sn, "iesp"), state,
           fmt::text(sn, "source"), fmt::text(sn, "priority"), fmt::text(sn, "weight"),
           fmt::flag(sn, "rtt_unreachable").value_or(false) ? std::string("no answer")
                                                            : fmt::ms(fmt::number(sn, "rtt_ms")),
           fmt::duration_s(fmt::u64(sn, "expires_in_s")), fmt::short_key(fmt::text(sn, "key"))});
  }
  return t.str() + verb_sn_list::anycast_errors(result);
}

}  // namespace iectl

namespace iectl::verb_sn_list {
namespace {

IECTL_GROUP("sn", "the Service Nodes ied can associate with: list, discover, ping, use");

IECTL_VERB({"sn", "list"}, "the known SNs, their IESP, state and RTT", [](CLI::App&) -> Run {
  return [](Session& s) {
    auto r = s.call("sn.list");
    return r ? s.print(*r, format_sn_list) : s.exit_code();
  };
});

}  // namespace
}  // namespace iectl::verb_sn_list
