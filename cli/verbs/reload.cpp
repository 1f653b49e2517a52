// `iectl reload`: ied re-reads its configuration file (`reload`, admin; the same as SIGHUP).
// An invalid file is refused (exit 1, the error as FILE:LINE:COL) and the running
// configuration stays; otherwise it prints what was applied and what needs a restart.
#include "format.hpp"
#include "verb.hpp"

// verb_reload: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_reload {
namespace {

std::string list(const Json& r, const char* key) {
  std::string s;
  for (const Json& v : fmt::array(r, key))
    if (v.is_string()) s += (s.empty() ? "" : ", ") + v.get<std::string>();
  return s.empty() ? "nothing" : s;
}

IECTL_VERB({"reload"}, "re-read ied's configuration file (admin; same as SIGHUP)",
           [](CLI::App&) -> Run {
             return [](Session& s) {
               auto r = s.call("reload", Json::object(), Session::ErrorStyle::as_is);
               return r ? s.print(*r,
                                  [](const Json& j) {
                                    return "reloaded " + fmt::text(j, "file") +
                                           "\napplied: " + list(j, "applied") +
                                           "\nneeds a restart (kept as running): " +
                                           list(j, "restart_needed") + "\n";
                                  })
                        : s.exit_code();
             };
           });

}  // namespace
}  // namespace iectl::verb_reload
