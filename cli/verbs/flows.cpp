// `iectl flows`: the flows ied is carrying, per 5-tuple, with the IESP [[policy]] picks for
// each and that IESP's active SN, its first hop (`flows`).
#include "format.hpp"
#include "verb.hpp"

// verb_flows: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_flows {
namespace {

std::string human(const Json& r) {
  const Json& flows = fmt::array(r, "flows");
  if (flows.empty()) return "no flows\n";
  fmt::Table t({"proto", "src", "dst", "service", "steered", "via", "iesp", "sn", "peer", "tx pkts",
                "rx pkts", "tx", "rx", "idle"});
  t.right(9).right(10).right(11).right(12).right(13);
  for (const Json& f : flows) {
    std::string service = fmt::text(f, "service");
    if (f.contains("service_requested") && f["service_requested"].is_string() &&
        f["service_requested"].get<std::string>() != service)
      service += " (" + f["service_requested"].get<std::string>() + ")";
    t.row({fmt::text(f, "proto"), fmt::text(f, "src"), fmt::text(f, "dst"), service,
           fmt::text(f, "steered_by"), fmt::text(f, "via"), fmt::text(f, "iesp"),
           fmt::text(f, "sn"), fmt::text(f, "peer"), fmt::count(fmt::u64(f, "tx_packets")),
           fmt::count(fmt::u64(f, "rx_packets")), fmt::bytes(fmt::u64(f, "tx_bytes")),
           fmt::bytes(fmt::u64(f, "rx_bytes")), fmt::duration_s(fmt::u64(f, "idle_s"))});
  }
  return t.str();
}

IECTL_VERB({"flows"}, "the flows being carried, with their path and traffic", [](CLI::App&) -> Run {
  return [](Session& s) {
    auto r = s.call("flows");
    return r ? s.print(*r, human) : s.exit_code();
  };
});

}  // namespace
}  // namespace iectl::verb_flows
