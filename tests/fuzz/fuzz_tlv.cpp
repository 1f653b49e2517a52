// Fuzz target: TLV validation, iteration and lookup on an arbitrary TLV area. Whenever
// validate_tlvs accepts, every TLV the iterator yields must lie inside the area, respect the
// registry's length bounds and repeatability, and find_tlv must return the first of a type.
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ie/wire/ilp.hpp"
#include "ie/wire/tlv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > ie::wire::kIlpMaxHeaderLen) return 0;
  const ie::ConstByteSpan area(data, size);
  const bool valid = ie::wire::validate_tlvs(area) == ie::wire::DropReason::none;
  std::bitset<256> seen;
  ie::wire::TlvIterator it(area);
  ie::wire::Tlv t;
  std::size_t steps = 0;
  while (it.next(&t)) {
    if (++steps > size) std::abort();  // each TLV is at least 2 bytes
    if (t.value.data() < data || t.value.data() + t.value.size() > data + size) std::abort();
    if (valid) {
      const auto spec = ie::wire::tlv_spec(t.type);
      if (spec) {
        if (t.value.size() < spec->min_len || t.value.size() > spec->max_len) std::abort();
        if (seen[t.type] && !spec->repeatable) std::abort();
      } else if (t.type >= ie::wire::kTlvMustUnderstand) {
        std::abort();
      }
      if (!seen[t.type]) {
        ie::wire::Tlv first;
        if (!ie::wire::find_tlv(area, t.type, &first) || first.value.data() != t.value.data())
          std::abort();
      }
    }
    seen[t.type] = true;
  }
  return 0;
}
