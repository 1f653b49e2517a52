// The registry of ILP metadata TLV types (see ie/wire/ilp.hpp for the encoding). One X-macro
// list gives each type its number, length bounds and whether it may appear more than once.
// Types 128-255 are "must understand": a receiver that does not know one drops the packet.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

// X(name, type, min_len, max_len, repeatable, "description")
#define IE_TLVS(X)                                                                     \
  X(app_options, 1, 0, 255, false, "service options as text, e.g. \"cache=off\"")      \
  X(qos_class, 2, 1, 1, false, "traffic class for last-hop QoS (0 = best effort)")     \
  X(group_id, 3, 32, 32, false, "multicast/anycast group (owner key hash)")            \
  X(topic, 4, 1, 255, false, "pub/sub topic name")                                     \
  X(source_edomain, 5, 1, 64, false, "edomain the packet entered InterEdge from")      \
  X(hop_count, 6, 1, 1, false, "SN hops taken so far (loop guard)")                    \
  X(cache_control, 7, 1, 1, false, "decision-cache hint: 0 default, 1 do not cache")   \
  X(return_sn, 8, 4, 19, true, "an SN the reply may use: ip(4 or 16) + port(2) + tag") \
  X(dest_sn, 9, 3, 64, false, "the SN serving the destination, named DOM.SN")          \
  X(source_sn, 10, 3, 64, false, "the sender's first-hop SN, named DOM.SN (for replies)")

namespace ie::wire {

enum class TlvType : std::uint8_t {
  pad = 0,
#define IE_X(name, type, min, max, rep, text) name = type,
  IE_TLVS(IE_X)
#undef IE_X
};

struct TlvSpec {
  std::string_view name;
  std::uint8_t min_len;
  std::uint8_t max_len;
  bool repeatable;
};

inline constexpr std::uint8_t kTlvMustUnderstand = 128;

// The registry entry for a type, or nullopt if unknown.
std::optional<TlvSpec> tlv_spec(std::uint8_t type);

}  // namespace ie::wire
