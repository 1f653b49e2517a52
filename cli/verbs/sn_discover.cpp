// `iectl sn discover`: look the edomain's SNs up again now (`sn.discover`, admin), then show
// the list as `iectl sn list` does.
#include "verbs/sn_list.hpp"

// verb_sn_discover: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_sn_discover {
namespace {

IECTL_VERB({"sn", "discover"}, "re-run SN discovery (DNS) now and list the result (admin)",
           [](CLI::App&) -> Run {
             return [](Session& s) {
               auto r = s.call("sn.discover");
               return r ? s.print(*r, format_sn_list) : s.exit_code();
             };
           });

}  // namespace
}  // namespace iectl::verb_sn_discover
