// `iectl sn use NAME`: make NAME the active SN and pin it (`sn.use`, admin).
#include <memory>

#include "format.hpp"
#include "verb.hpp"

namespace iectl {
namespace {

IECTL_VERB({"sn", "use"}, "associate with SN NAME and stay with it (admin)",
           [](CLI::App& cmd) -> Run {
             auto name = std::make_shared<std::string>();
             cmd.add_option("name", *name, "the SN (DOM.SN)")->required();
             return [name](Session& s) {
               auto r = s.call("sn.use", Json{{"name", *name}});
               return r ? s.print(*r,
                                  [](const Json& j) {
                                    return "active SN: " + fmt::text(j, "active") + "\n";
                                  })
                        : s.exit_code();
             };
           });

}  // namespace
}  // namespace iectl
