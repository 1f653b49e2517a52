// Fuzz target: the ILP header parser and TLV walk over arbitrary (decrypted) bytes. A header
// that parses must yield consistent spans, iterate without overrun, and re-encode (with its
// registered TLVs) to a header that parses to the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ie/wire/ilp.hpp"
#include "ie/wire/tlv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ie::ConstByteSpan in(data, size);
  ie::wire::IlpView v;
  if (ie::wire::parse_ilp(in, &v) != ie::wire::DropReason::none) return 0;
  if (v.header_len < ie::wire::kIlpBaseLen || v.header_len > size ||
      v.header_len > ie::wire::kIlpMaxHeaderLen || v.header_len % 4 != 0 ||
      v.tlvs.size() != v.header_len - ie::wire::kIlpBaseLen ||
      v.inner.size() != size - v.header_len) {
    std::abort();
  }
  // Walk the TLVs (bounded: each step consumes at least 2 bytes) and keep them for re-encoding.
  ie::wire::Tlv tlvs[ie::wire::kIlpMaxHeaderLen / 2];
  std::size_t count = 0;
  ie::wire::TlvIterator it(v.tlvs);
  ie::wire::Tlv t;
  while (it.next(&t)) {
    if (t.type == 0 || t.value.data() < v.tlvs.data() ||
        t.value.data() + t.value.size() > v.tlvs.data() + v.tlvs.size()) {
      std::abort();
    }
    if (count == sizeof tlvs / sizeof tlvs[0]) std::abort();
    tlvs[count++] = t;
  }
  static std::uint8_t buf[ie::wire::kIlpMaxHeaderLen];
  const std::size_t n = ie::wire::encode_ilp(v.header, std::span<const ie::wire::Tlv>(tlvs, count),
                                             ie::ByteSpan(buf));
  // Re-encoding drops extra padding, so it is never longer than the original.
  if (n == 0 || n > v.header_len) std::abort();
  ie::wire::IlpView again;
  if (ie::wire::parse_ilp(ie::ConstByteSpan(buf, n), &again) != ie::wire::DropReason::none ||
      again.header.service_id != v.header.service_id ||
      again.header.connection_id != v.header.connection_id ||
      again.header.flags != v.header.flags) {
    std::abort();
  }
  return 0;
}
