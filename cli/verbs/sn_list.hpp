// The SN table printed by `iectl sn list` and `iectl sn discover` (same result shape).
#pragma once

#include <string>

#include "verb.hpp"

namespace iectl {

// {"sns":[{"name","endpoint","key","source","priority","weight","expires_in_s","rtt_ms",
//          "state","pinned"}]} as a table, or "no SNs\n".
std::string format_sn_list(const Json& result);

}  // namespace iectl
