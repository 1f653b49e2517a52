// Fuzzes the parser of an SN's info answer as anycast discovery reads it (parse_sn_info,
// ie/ied/anycast_probe.hpp): any bytes the responder sends over the probe session must give
// an SnInfo that holds what the parser promises, or an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ie/conf/names.hpp"
#include "ie/ied/anycast_probe.hpp"
#include "ie/io/udp.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto r = ie::ied::parse_sn_info(text);
  if (!r) {
    if (r.error().code != ie::Errc::protocol) __builtin_trap();
    return 0;
  }
  if (!ie::conf::valid_sn_name(r->name)) __builtin_trap();
  socklen_t len = 0;
  if (!ie::io::parse_endpoint(r->endpoint, &len)) __builtin_trap();
  return 0;
}
