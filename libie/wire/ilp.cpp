// ILP header and TLV codec (ie/wire/ilp.hpp, ie/wire/tlv.hpp).
#include "ie/wire/ilp.hpp"

#include <bitset>
#include <cstring>

#include "ie/wire/tlv.hpp"

namespace ie::wire {

std::optional<TlvSpec> tlv_spec(std::uint8_t type) {
  switch (type) {
#define IE_X(name, num, min, max, rep, text) \
  case num:                                  \
    return TlvSpec{#name, min, max, rep};
    IE_TLVS(IE_X)
#undef IE_X
  }
  return std::nullopt;
}

bool TlvIterator::next(Tlv* out) {
  while (!rest_.empty() && rest_[0] == 0)
    rest_ = rest_.subspan(1);  // padding
  if (rest_.size() < 2) return false;
  const std::size_t len = rest_[1];
  if (rest_.size() < 2 + len) return false;
  out->type = rest_[0];
  out->value = rest_.subspan(2, len);
  rest_ = rest_.subspan(2 + len);
  return true;
}

DropReason validate_tlvs(ConstByteSpan tlvs) {
  std::bitset<256> seen;
  std::size_t i = 0;
  while (i < tlvs.size()) {
    const std::uint8_t type = tlvs[i];
    if (type == 0) {
      ++i;
      continue;
    }
    if (tlvs.size() - i < 2) return DropReason::bad_tlv;
    const std::size_t len = tlvs[i + 1];
    if (tlvs.size() - i - 2 < len) return DropReason::bad_tlv;
    const auto spec = tlv_spec(type);
    if (spec) {
      if (len < spec->min_len || len > spec->max_len) return DropReason::bad_tlv;
      if (seen[type] && !spec->repeatable) return DropReason::bad_tlv;
    } else if (type >= kTlvMustUnderstand) {
      return DropReason::bad_tlv;
    }
    seen[type] = true;
    i += 2 + len;
  }
  return DropReason::none;
}

DropReason parse_ilp(ConstByteSpan data, IlpView* out) {
  if (data.size() < kIlpBaseLen) return DropReason::truncated;
  IlpWireHeader w;
  std::memcpy(&w, data.data(), sizeof w);
  const std::size_t hlen = std::size_t{w.header_words} * 4;
  if (hlen < kIlpBaseLen) return DropReason::bad_ilp_header;
  if ((w.version_flags >> 6) != kIlpVersion) return DropReason::bad_ilp_header;
  if (data.size() < hlen) return DropReason::truncated;
  const ConstByteSpan tlvs = data.subspan(kIlpBaseLen, hlen - kIlpBaseLen);
  const DropReason r = validate_tlvs(tlvs);
  if (r != DropReason::none) return r;
  out->header.service_id = load_be16(w.service_id_be);
  out->header.connection_id = load_be64(w.connection_id_be);
  out->header.flags = w.version_flags & kIlpFlagsDefined;  // reserved bits ignored
  out->header_len = hlen;
  out->tlvs = tlvs;
  out->inner = data.subspan(hlen);
  return DropReason::none;
}

std::size_t ilp_header_len(std::span<const Tlv> tlvs) {
  std::size_t n = kIlpBaseLen;
  for (const auto& t : tlvs) {
    if (t.type == 0 || t.value.size() > 255) return 0;
    n += 2 + t.value.size();
  }
  n = (n + 3) & ~std::size_t{3};
  return n > kIlpMaxHeaderLen ? 0 : n;
}

std::size_t encode_ilp(const IlpHeader& h, std::span<const Tlv> tlvs, ByteSpan out) {
  const std::size_t n = ilp_header_len(tlvs);
  if (n == 0 || out.size() < n) return 0;
  std::uint8_t* p = out.data();
  IlpWireHeader w;
  store_be16(w.service_id_be, h.service_id);
  store_be64(w.connection_id_be, h.connection_id);
  w.header_words = static_cast<std::uint8_t>(n / 4);
  w.version_flags = static_cast<std::uint8_t>((kIlpVersion << 6) | (h.flags & kIlpFlagsDefined));
  std::memcpy(p, &w, sizeof w);
  std::size_t pos = kIlpBaseLen;
  for (const auto& t : tlvs) {
    p[pos] = t.type;
    p[pos + 1] = static_cast<std::uint8_t>(t.value.size());
    if (!t.value.empty()) std::memcpy(p + pos + 2, t.value.data(), t.value.size());
    pos += 2 + t.value.size();
  }
  std::memset(p + pos, 0, n - pos);
  return n;
}

bool find_tlv(ConstByteSpan tlvs, std::uint8_t type, Tlv* out) {
  TlvIterator it(tlvs);
  Tlv t;
  while (it.next(&t)) {
    if (t.type == type) {
      *out = t;
      return true;
    }
  }
  return false;
}

}  // namespace ie::wire
