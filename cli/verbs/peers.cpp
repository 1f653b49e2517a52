// `iectl peers`: the hosts ied exchanges traffic with and how (`peers`).
#include "format.hpp"
#include "verb.hpp"

// verb_peers: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_peers {
namespace {

std::string human(const Json& r) {
  const Json& peers = fmt::array(r, "peers");
  if (peers.empty()) return "no peers\n";
  fmt::Table t({"address", "sn", "state", "via", "tx", "rx", "last rx", "key"});
  t.right(4).right(5).right(6);
  for (const Json& p : peers) {
    const auto age = fmt::u64(p, "last_rx_age_ms");
    t.row({fmt::text(p, "address"), fmt::text(p, "sn"), fmt::text(p, "state"), fmt::text(p, "via"),
           fmt::count(fmt::u64(p, "tx_packets")), fmt::count(fmt::u64(p, "rx_packets")),
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
