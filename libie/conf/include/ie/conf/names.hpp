// The names configuration files and the wire use for SNs and edomains, and the size limit on
// configuration files (without pulling in toml++).
#pragma once

#include <cstddef>
#include <string_view>

namespace ie::conf {

inline constexpr std::size_t kMaxConfigBytes = 1 << 20;

// An edomain label: a-z, 0-9, '-', 1..31 characters.
bool valid_edomain(std::string_view label);
// An SN name, DOM.SN: two such labels joined by a dot.
bool valid_sn_name(std::string_view name);

}  // namespace ie::conf
