// `iectl service enable|disable|list`: out-of-band services on the first-hop SN (issue 5;
// docs/iectl.md, the methods `service.*` in docs/control-protocol.md). ied stores the set,
// sends it to its SNs and answers with the new generation; enable and disable then ask
// `service.list` until the active SN has acknowledged that generation (exit 0, printing what
// applies), refused it (exit 1 with the SN's reason; ied has undone the change), or the wait
// runs out (exit 1: pending, ied keeps sending it). --no-wait returns after ied stored it.
#include <chrono>
#include <memory>
#include <thread>

#include "format.hpp"
#include "verb.hpp"

// verb_service: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_service {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string service;
  std::string prefix;
  std::string direction = "in";
  bool all = false;
  bool no_wait = false;
  double wait_s = 5;
};

std::string entry_text(const Json& e) {
  return fmt::text(e, "service") + " " + fmt::text(e, "direction") + " " + fmt::text(e, "prefix");
}

std::string entries_table(const Json& list) {
  if (list.empty()) return "  nothing\n";
  fmt::Table t({"service", "direction", "prefix"});
  for (const Json& e : list)
    t.row({fmt::text(e, "service"), fmt::text(e, "direction"), fmt::text(e, "prefix")});
  std::string out;
  const std::string s = t.str();
  // Indented under the line that introduces it.
  std::size_t start = 0;
  while (start < s.size()) {
    const auto nl = s.find('\n', start);
    out += "  " + s.substr(start, nl - start + 1);
    start = nl == std::string::npos ? s.size() : nl + 1;
  }
  return out;
}

std::string format_list(const Json& r) {
  std::string out = "generation " + fmt::text(r, "generation") + "\n";
  const Json& inv = fmt::array(r, "invocations");
  if (inv.empty()) {
    out += "no out-of-band invocations\n";
  } else {
    fmt::Table t({"service", "direction", "prefix"});
    for (const Json& e : inv)
      t.row({fmt::text(e, "service"), fmt::text(e, "direction"), fmt::text(e, "prefix")});
    out += t.str();
  }
  const Json& sns = fmt::array(r, "sns");
  if (!sns.empty()) {
    fmt::Table t({"sn", "active", "state", "acked", "applied", "error"});
    t.right(3).right(4);
    for (const Json& sn : sns)
      t.row({fmt::text(sn, "name"), fmt::text(sn, "active"), fmt::text(sn, "state"),
             fmt::text(sn, "acked_generation"), std::to_string(fmt::array(sn, "applied").size()),
             fmt::text(sn, "error")});
    out += "\n" + t.str();
  }
  const Json& lr = fmt::object(r, "last_refusal");
  if (!lr.empty()) {
    const Json& e = fmt::object(lr, "entry");
    out += "\nlast refusal (generation " + fmt::text(lr, "generation") +
           "): " + fmt::text(lr, "sn") + " refused " +
           (e.empty() ? std::string("the set") : entry_text(e) + ", removed again") + ": " +
           fmt::text(lr, "error") + "\n";
  }
  return out;
}

// After a change: waits for the active SN's verdict on its generation, prints, returns the
// exit code.
int wait_for_sn(Session& s, const Json& change, const std::string& what, const Args& a) {
  const auto gen = fmt::u64(change, "generation").value_or(0);
  const auto deadline = Clock::now() + std::chrono::duration<double>(a.wait_s);
  std::string active_name;
  for (;;) {
    auto l = s.call("service.list");
    if (!l) return s.exit_code();
    const Json& lr = fmt::object(*l, "last_refusal");
    if (!lr.empty() && fmt::u64(lr, "generation") == gen) {
      const Json& e = fmt::object(lr, "entry");
      s.err() << "iectl: " << fmt::text(lr, "sn") << " refused "
              << (e.empty() ? std::string("the set") : entry_text(e)) << ": "
              << fmt::text(lr, "error") << (e.empty() ? "" : " (ied removed it again)") << "\n";
      return kExitFailed;
    }
    active_name.clear();
    for (const Json& sn : fmt::array(*l, "sns")) {
      if (!fmt::flag(sn, "active").value_or(false)) continue;
      active_name = fmt::text(sn, "name");
      if (fmt::u64(sn, "acked_generation").value_or(0) >= gen) {
        Json out = change;
        out["sn"] = sn.value("name", "");
        out["applied"] = fmt::array(sn, "applied");
        return s.print(out, [&](const Json& j) {
          return what + "\n" + fmt::text(j, "sn") + " applies:\n" +
                 entries_table(fmt::array(j, "applied"));
        });
      }
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  s.err() << "iectl: " << what << ", but "
          << (active_name.empty() ? std::string("no SN is active")
                                  : active_name + " has not acknowledged it")
          << " after " << a.wait_s << " s: pending (generation " << gen
          << "); ied keeps sending it, see `iectl service list`\n";
  return kExitFailed;
}

void add_entry_options(CLI::App& cmd, Args& a, bool service_required) {
  auto* svc = cmd.add_option("service", a.service, "the service, e.g. block");
  if (service_required) svc->required();
  cmd.add_option("--prefix", a.prefix,
                 "ADDR/LEN: the far end of the traffic (its source for in, destination for out)");
  cmd.add_option("--direction", a.direction, "in (to this host), out (from it) or both")
      ->check(CLI::IsMember({"in", "out", "both"}))
      ->capture_default_str();
  cmd.add_option("--wait", a.wait_s, "seconds to wait for the active SN's answer")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd.add_flag("--no-wait", a.no_wait, "return once ied has stored the change");
}

int change(Session& s, const char* method, const Json& params, const Args& a, bool enable) {
  auto r = s.call(method, params);
  if (!r) return s.exit_code();
  const Json& inv = fmt::object(*r, "invocation");
  const bool changed = fmt::flag(*r, "changed").value_or(false);
  std::string what;
  if (enable)
    what = changed ? "enabled " + entry_text(inv) : entry_text(inv) + " was already enabled";
  else if (a.all)
    what = changed ? "disabled every invocation" : "nothing was enabled";
  else
    what = "disabled " + entry_text(inv);
  if (a.no_wait)
    return s.print(*r, [&](const Json& j) {
      return what + " (generation " + fmt::text(j, "generation") + "; not waiting for the SN)\n";
    });
  return wait_for_sn(s, *r, what, a);
}

IECTL_GROUP("service", "out-of-band services on the first-hop SN: enable, disable, list");

IECTL_VERB({"service", "enable"},
           "run SERVICE on the first-hop SN for traffic to or from --prefix (admin)",
           [](CLI::App& cmd) -> Run {
             auto a = std::make_shared<Args>();
             add_entry_options(cmd, *a, true);
             return [a](Session& s) {
               if (a->prefix.empty()) {
                 s.err() << "iectl: service enable: --prefix is required\n";
                 return static_cast<int>(kExitUsage);
               }
               const Json params{
                   {"service", a->service}, {"direction", a->direction}, {"prefix", a->prefix}};
               return change(s, "service.enable", params, *a, true);
             };
           });

IECTL_VERB({"service", "disable"}, "stop SERVICE for --prefix, or every service with --all (admin)",
           [](CLI::App& cmd) -> Run {
             auto a = std::make_shared<Args>();
             add_entry_options(cmd, *a, false);
             cmd.add_flag("--all", a->all, "disable every out-of-band invocation");
             return [a](Session& s) {
               if (a->all && (!a->service.empty() || !a->prefix.empty())) {
                 s.err() << "iectl: service disable: --all takes no SERVICE or --prefix\n";
                 return static_cast<int>(kExitUsage);
               }
               if (!a->all && (a->service.empty() || a->prefix.empty())) {
                 s.err() << "iectl: service disable: SERVICE and --prefix are required (or "
                            "--all)\n";
                 return static_cast<int>(kExitUsage);
               }
               const Json params = a->all ? Json{{"all", true}}
                                          : Json{{"service", a->service},
                                                 {"direction", a->direction},
                                                 {"prefix", a->prefix}};
               return change(s, "service.disable", params, *a, false);
             };
           });

IECTL_VERB({"service", "list"}, "the out-of-band invocations and what each SN applies",
           [](CLI::App&) -> Run {
             return [](Session& s) {
               auto r = s.call("service.list");
               return r ? s.print(*r, format_list) : s.exit_code();
             };
           });

}  // namespace
}  // namespace iectl::verb_service
