// `iectl status`: what ied is and how it is doing (method `status`).
#include "format.hpp"
#include "verb.hpp"

// verb_status: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_status {
namespace {

std::string sn_line(const Json& sn) {
  if (!sn.is_object()) return "none";
  std::string s =
      fmt::text(sn, "name") + " at " + fmt::text(sn, "endpoint") + ", " + fmt::text(sn, "state");
  if (auto reg = fmt::flag(sn, "registered")) s += *reg ? ", registered" : ", not registered";
  if (auto rtt = fmt::number(sn, "rtt_ms")) s += ", rtt " + fmt::ms(rtt);
  return s;
}

// The discovery sources in order, then what failed: "anycast; anycast 192.0.2.1:1000: ...",
// "dns two.test (IESP two): ..." (each IESP's DNS domain; older daemons: one "dns" entry).
std::string discovery_line(const Json& d) {
  std::string s = fmt::list(d, "order");
  if (d.contains("dns_iesps")) {
    for (const Json& x : fmt::array(d, "dns_iesps"))
      if (const std::string e = fmt::text(x, "error", ""); !e.empty())
        s += "; dns " + fmt::text(x, "domain") + " (IESP " + fmt::text(x, "iesp") + "): " + e;
  } else if (const std::string e = fmt::text(fmt::object(d, "dns"), "error", ""); !e.empty()) {
    s += "; dns: " + e;
  }
  for (const Json& a : fmt::array(d, "anycast"))
    if (const std::string e = fmt::text(a, "error", ""); !e.empty())
      s += "; anycast " + fmt::text(a, "address") + ": " + e;
  return s;
}

// Each IESP and its active SN: "acme (default): dom1.sn1; beta: none".
std::string iesps_line(const Json& list) {
  std::string s;
  for (const Json& i : list) {
    if (!s.empty()) s += "; ";
    s += fmt::text(i, "name");
    if (fmt::flag(i, "default").value_or(false)) s += " (default)";
    s += ": " + fmt::text(i, "active", "none");
  }
  return s;
}

// The non-zero counters of an object as indented "name  value" lines, or "  none".
std::string counters(const Json& obj) {
  std::vector<std::pair<std::string, std::string>> kv;
  for (const auto& [name, value] : obj.items()) {
    auto n = fmt::u64(obj, name);
    if (n && *n != 0) kv.emplace_back(name, fmt::counter(name, n));
  }
  return kv.empty() ? "  none\n" : fmt::pairs(kv, 2);
}

std::string human(const Json& r) {
  const Json& tun = fmt::object(r, "tun");
  std::string tun_text = fmt::text(tun, "name");
  if (auto mtu = fmt::u64(tun, "mtu")) tun_text += ", mtu " + std::to_string(*mtu);
  const auto sn = r.find("sn");
  std::string s =
      "ied " + fmt::text(r, "version") + ", up " + fmt::duration_s(fmt::u64(r, "uptime_s")) + "\n";
  std::vector<std::pair<std::string, std::string>> kv = {
      {"identity", fmt::text(r, "identity")},
      {"tun", tun_text},
      {"addresses", fmt::list(r, "addresses")},
      {"prefixes", fmt::list(r, "prefixes")},
      {"sn", sn_line(sn == r.end() ? Json() : *sn)}};
  if (const Json& il = fmt::array(r, "iesps"); !il.empty())
    kv.emplace_back("iesps", iesps_line(il));
  s += fmt::pairs(kv);
  if (const auto d = r.find("discovery"); d != r.end() && d->is_object())
    s += fmt::pairs({{"discovery", discovery_line(*d)}});
  s += "counters\n" + counters(fmt::object(r, "counters"));
  s += "drops\n" + counters(fmt::object(r, "drops"));
  return s;
}

IECTL_VERB({"status"}, "identity, TUN, addresses, the SN and counters", [](CLI::App&) -> Run {
  return [](Session& s) {
    auto r = s.call("status");
    return r ? s.print(*r, human) : s.exit_code();
  };
});

}  // namespace
}  // namespace iectl::verb_status
