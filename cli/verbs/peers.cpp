// `iectl peers`: the hosts ied exchanges traffic with and how (`peers`).
#include <cstdio>

#include "format.hpp"
#include "verb.hpp"

// verb_peers: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_peers {
namespace {

// The direct path column: "on-link", or "closer"/"farther"/"measuring" with the direct and
// the SN path's RTT ("closer 0.21/10.40 ms", "+" after the SN path's figure when it is the
// first hop's only, not end to end); "-" without a direct path.
std::string direct(const Json& p) {
  if (!p.contains("direct") || !p["direct"].is_object()) return fmt::kNone;
  const Json& d = p["direct"];
  std::string s = fmt::text(d, "path");
  if (s == "on-link") return s;
  const auto num = [&](const char* k) -> std::string {
    if (!d.contains(k) || !d[k].is_number()) return fmt::kNone;
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", d[k].get<double>());
    return b;
  };
  const bool first_hop = d.contains("sn_rtt_from") && d["sn_rtt_from"] == "first-hop";
  return s + " " + num("rtt_ms") + "/" + num("sn_rtt_ms") + (first_hop ? "+" : "") + " ms";
}

std::string human(const Json& r) {
  const Json& peers = fmt::array(r, "peers");
  if (peers.empty()) return "no peers\n";
  fmt::Table t({"address", "sn", "state", "via", "direct", "tx", "rx", "last rx", "key"});
  t.right(5).right(6).right(7);
  for (const Json& p : peers) {
    const auto age = fmt::u64(p, "last_rx_age_ms");
    t.row({fmt::text(p, "address"), fmt::text(p, "sn"), fmt::text(p, "state"), fmt::text(p, "via"),
           direct(p), fmt::count(fmt::u64(p, "tx_packets")), fmt::count(fmt::u64(p, "rx_packets")),
           age ? fmt::ms(static_cast<double>(*age)) + " ago" : fmt::kNone,
           fmt::short_key(fmt::text(p, "key"))});
  }
  return t.str();
}

IECTL_VERB({"peers"}, "the peers, their SN, path and traffic", [](CLI::App&) -> Run {
  return [](Session& s) {
    auto r = s.call("peers");
    return r ? s.print(*r, human) : s.exit_code();
  };
});

}  // namespace
}  // namespace iectl::verb_peers
