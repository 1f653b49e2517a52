// `iectl sn use NAME [--repin]`: make NAME the active SN and pin it (`sn.use`, admin);
// --repin accepts the key DNS now publishes for it in place of the pinned one.
#include <memory>

#include "format.hpp"
#include "verb.hpp"

// verb_sn_use: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_sn_use {
namespace {

IECTL_VERB({"sn", "use"}, "associate with SN NAME and stay with it (admin)",
           [](CLI::App& cmd) -> Run {
             auto name = std::make_shared<std::string>();
             auto repin = std::make_shared<bool>(false);
             cmd.add_option("name", *name, "the SN (DOM.SN)")->required();
             cmd.add_flag("--repin", *repin,
                          "accept the key DNS publishes now, replacing the pinned one (check "
                          "it first)");
             return [name, repin](Session& s) {
               Json params{{"name", *name}};
               if (*repin) params["repin"] = true;
               auto r = s.call("sn.use", params);
               return r ? s.print(*r,
                                  [](const Json& j) {
                                    return "active SN: " + fmt::text(j, "active") + "\n";
                                  })
                        : s.exit_code();
             };
           });

}  // namespace
}  // namespace iectl::verb_sn_use
