// `iectl steering`: how ied steers sockets into InterEdge (`steering`; docs/bpf.md): the
// routing tables and rules, the service choices explicitly steered sockets use (one mark
// each), the cgroup policies, and the BPF programs' counters.
#include <cstdio>

#include "format.hpp"
#include "verb.hpp"

// verb_steering: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_steering {
namespace {

std::string hex(std::uint64_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08llx", static_cast<unsigned long long>(v));
  return b;
}

std::string options_text(const Json& c) {
  std::string s;
  if (c.contains("options") && c["options"].is_object())
    for (const auto& [k, v] : c["options"].items())
      s += (s.empty() ? "" : ",") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  return s.empty() ? "-" : s;
}

std::string human(const Json& r) {
  if (!r.value("enabled", false))
    return "socket steering is disabled ([steering] enabled = false)\n";
  std::string out = "table " + fmt::text(r, "table") + ", " + fmt::text(r, "rules") +
                    " rules, IPv6 " + (r.value("ipv6", false) ? "yes" : "no") + "; sockets " +
                    fmt::text(r, "sockets_steered") + " steered, " +
                    fmt::text(r, "sockets_cleared") + " cleared, " +
                    fmt::text(r, "requests_refused") + " refused\n";
  const Json& slots = fmt::array(r, "slots");
  if (!slots.empty()) {
    out += "\nexplicitly steered sockets (C API, shim):\n";
    fmt::Table t({"mark", "requested", "service", "options"});
    for (const Json& s : slots)
      t.row({hex(fmt::u64(s, "mark").value_or(0)), fmt::text(s, "requested"),
             fmt::text(s, "service"), options_text(s)});
    out += t.str();
  }
  const Json& pols = fmt::array(r, "policies");
  if (!pols.empty()) {
    out += "\ncgroup policies:\n";
    fmt::Table t({"mark", "table", "cgroup", "service", "options"});
    for (const Json& p : pols)
      t.row({hex(fmt::u64(p, "mark").value_or(0)), fmt::text(p, "table"), fmt::text(p, "cgroup"),
             fmt::text(p, "requested"), options_text(p)});
    out += t.str();
  }
  if (r.contains("bpf") && r["bpf"].is_object() && !r["bpf"].empty()) {
    out += "\nBPF programs:\n";
    fmt::Table t({"counter", "value"});
    t.right(1);
    for (const auto& [k, v] : r["bpf"].items())
      if (v.is_number_unsigned()) t.row({k, fmt::count(v.get<std::uint64_t>())});
    out += t.str();
  }
  return out;
}

IECTL_VERB({"steering"}, "socket steering: rules, marks, cgroup policies, BPF counters",
           [](CLI::App&) -> Run {
             return [](Session& s) {
               auto r = s.call("steering");
               return r ? s.print(*r, human) : s.exit_code();
             };
           });

}  // namespace
}  // namespace iectl::verb_steering
