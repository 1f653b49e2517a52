// `iectl config check [FILE]`: have ied validate a configuration file (`config.check`),
// without applying it. An invalid file's error is printed as is, "FILE:LINE:COL: what", so
// editors can jump to it.
#include <memory>

#include "format.hpp"
#include "verb.hpp"

// verb_config_check: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_config_check {
namespace {

IECTL_GROUP("config", "ied's configuration: check");

IECTL_VERB({"config", "check"}, "validate FILE (default: the file ied runs with)",
           [](CLI::App& cmd) -> Run {
             auto file = std::make_shared<std::string>();
             cmd.add_option("file", *file, "the ied.toml to check");
             return [file](Session& s) {
               Json params = Json::object();
               if (!file->empty()) params["path"] = *file;
               auto r = s.call("config.check", params, Session::ErrorStyle::as_is);
               return r ? s.print(*r,
                                  [](const Json& j) {
                                    return fmt::text(j, "path", "configuration") + ": ok\n";
                                  })
                        : s.exit_code();
             };
           });

}  // namespace
}  // namespace iectl::verb_config_check
