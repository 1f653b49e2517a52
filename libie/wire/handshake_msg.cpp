// Control-plane datagram codecs (ie/wire/handshake_msg.hpp).
#include "ie/wire/handshake_msg.hpp"

#include <cstring>

namespace ie::wire {
namespace {

bool fixed_ok(ConstByteSpan d, std::uint8_t type, bool pattern_byte) {
  return d[0] == type && d[1] == 0 && (pattern_byte || d[2] == 0) && d[3] == 0;
}

std::size_t put(ByteSpan out, std::uint8_t type, std::uint8_t b2, std::size_t fixed,
                ConstByteSpan noise, std::size_t trailer) {
  const std::size_t n = fixed + noise.size() + trailer;
  if (n > kMaxControlPlaneDatagram || out.size() < n) return 0;
  std::memset(out.data(), 0, n);
  out[0] = type;
  out[2] = b2;
  if (!noise.empty()) std::memcpy(out.data() + fixed, noise.data(), noise.size());
  return n;
}

}  // namespace

DropReason parse_initiation(ConstByteSpan d, InitiationView* out) {
  if (d.size() > kMaxControlPlaneDatagram) return DropReason::too_large;
  if (d.size() < 8 + 32 + 2 * kMacLen) return DropReason::truncated;
  if (!fixed_ok(d, 1, true) || d[2] > 1) return DropReason::bad_control_message;
  out->pattern = static_cast<HandshakePattern>(d[2]);
  out->sender = load_be32(d.data() + 4);
  out->noise = d.subspan(8, d.size() - 8 - 2 * kMacLen);
  out->mac1 = d.subspan(d.size() - 2 * kMacLen, kMacLen);
  out->mac2 = d.subspan(d.size() - kMacLen, kMacLen);
  out->before_mac1 = d.first(d.size() - 2 * kMacLen);
  out->before_mac2 = d.first(d.size() - kMacLen);
  return DropReason::none;
}

DropReason parse_response(ConstByteSpan d, ResponseView* out) {
  if (d.size() > kMaxControlPlaneDatagram) return DropReason::too_large;
  if (d.size() < 12 + 32 + 2 * kMacLen) return DropReason::truncated;
  if (!fixed_ok(d, 2, false)) return DropReason::bad_control_message;
  out->sender = load_be32(d.data() + 4);
  out->receiver = load_be32(d.data() + 8);
  out->noise = d.subspan(12, d.size() - 12 - 2 * kMacLen);
  out->mac1 = d.subspan(d.size() - 2 * kMacLen, kMacLen);
  out->mac2 = d.subspan(d.size() - kMacLen, kMacLen);
  out->before_mac1 = d.first(d.size() - 2 * kMacLen);
  out->before_mac2 = d.first(d.size() - kMacLen);
  return DropReason::none;
}

DropReason parse_cookie_reply(ConstByteSpan d, CookieReplyView* out) {
  constexpr std::size_t kLen = 8 + kCookieNonceLen + kCookieLen + 16;
  if (d.size() < kLen) return DropReason::truncated;
  if (d.size() > kLen) return DropReason::too_large;
  if (!fixed_ok(d, 3, false)) return DropReason::bad_control_message;
  out->receiver = load_be32(d.data() + 4);
  out->nonce = d.subspan(8, kCookieNonceLen);
  out->encrypted_cookie = d.subspan(8 + kCookieNonceLen, kCookieLen + 16);
  return DropReason::none;
}

DropReason parse_control(ConstByteSpan d, ControlView* out) {
  if (d.size() > kMaxControlPlaneDatagram) return DropReason::too_large;
  if (d.size() < kControlHeaderLen + 16) return DropReason::truncated;
  if (!fixed_ok(d, 4, false)) return DropReason::bad_control_message;
  out->receiver = load_be32(d.data() + 4);
  out->counter = load_be64(d.data() + 8);
  out->header = d.first(kControlHeaderLen);
  out->ciphertext = d.subspan(kControlHeaderLen);
  return DropReason::none;
}

DropReason parse_final(ConstByteSpan d, FinalView* out) {
  if (d.size() > kMaxControlPlaneDatagram) return DropReason::too_large;
  if (d.size() < 8 + 16) return DropReason::truncated;
  if (!fixed_ok(d, 5, false)) return DropReason::bad_control_message;
  out->receiver = load_be32(d.data() + 4);
  out->noise = d.subspan(8);
  return DropReason::none;
}

DropReason parse_echo(ConstByteSpan d, EchoView* out) {
  if (d.size() < kEchoLen) return DropReason::truncated;
  if (d.size() > kEchoLen) return DropReason::too_large;
  if (!fixed_ok(d, 6, false)) return DropReason::bad_control_message;
  out->nonce = d.subspan(4, kEchoNonceLen);
  out->mac1 = d.subspan(4 + kEchoNonceLen, kMacLen);
  out->before_mac1 = d.first(4 + kEchoNonceLen);
  return DropReason::none;
}

DropReason parse_echo_reply(ConstByteSpan d, EchoView* out) {
  if (d.size() < kEchoReplyLen) return DropReason::truncated;
  if (d.size() > kEchoReplyLen) return DropReason::too_large;
  if (!fixed_ok(d, 7, false)) return DropReason::bad_control_message;
  out->nonce = d.subspan(4, kEchoNonceLen);
  out->mac1 = {};
  out->before_mac1 = {};
  return DropReason::none;
}

std::size_t encode_initiation(HandshakePattern p, std::uint32_t sender, ConstByteSpan noise,
                              ByteSpan out) {
  const std::size_t n = put(out, 1, static_cast<std::uint8_t>(p), 8, noise, 2 * kMacLen);
  if (n != 0) store_be32(out.data() + 4, sender);
  return n;
}

std::size_t encode_response(std::uint32_t sender, std::uint32_t receiver, ConstByteSpan noise,
                            ByteSpan out) {
  const std::size_t n = put(out, 2, 0, 12, noise, 2 * kMacLen);
  if (n != 0) {
    store_be32(out.data() + 4, sender);
    store_be32(out.data() + 8, receiver);
  }
  return n;
}

std::size_t encode_cookie_reply(std::uint32_t receiver, ConstByteSpan nonce,
                                ConstByteSpan encrypted_cookie, ByteSpan out) {
  if (nonce.size() != kCookieNonceLen || encrypted_cookie.size() != kCookieLen + 16) return 0;
  const std::size_t n = put(out, 3, 0, 8, {}, kCookieNonceLen + kCookieLen + 16);
  if (n == 0) return 0;
  store_be32(out.data() + 4, receiver);
  std::memcpy(out.data() + 8, nonce.data(), kCookieNonceLen);
  std::memcpy(out.data() + 8 + kCookieNonceLen, encrypted_cookie.data(), encrypted_cookie.size());
  return n;
}

void encode_control_header(std::uint32_t receiver, std::uint64_t counter, std::uint8_t* out16) {
  out16[0] = 4;
  out16[1] = out16[2] = out16[3] = 0;
  store_be32(out16 + 4, receiver);
  store_be64(out16 + 8, counter);
}

std::size_t encode_echo(ConstByteSpan nonce, ByteSpan out) {
  if (nonce.size() != kEchoNonceLen) return 0;
  return put(out, 6, 0, 4, nonce, kMacLen);
}

std::size_t encode_echo_reply(ConstByteSpan nonce, ByteSpan out) {
  if (nonce.size() != kEchoNonceLen) return 0;
  return put(out, 7, 0, 4, nonce, 0);
}

std::size_t encode_final(std::uint32_t receiver, ConstByteSpan noise, ByteSpan out) {
  const std::size_t n = put(out, 5, 0, 8, noise, 0);
  if (n != 0) store_be32(out.data() + 4, receiver);
  return n;
}

// ---- inner control items ----------------------------------------------------------------

namespace {
bool item_len_ok(std::uint8_t type, std::size_t len) {
  switch (static_cast<ControlItemType>(type)) {
    case ControlItemType::key_offer:
      return len == 4 + 1 + 16 || len == 4 + 1 + 32;
    case ControlItemType::key_ack:
    case ControlItemType::probe:
    case ControlItemType::probe_ack:
      return len == 4;
    case ControlItemType::keepalive:
      return len == 0;
    case ControlItemType::close:
      return len == 1;
    case ControlItemType::service_request:
    case ControlItemType::service_response:
      return len >= 4;
    case ControlItemType::pad:
      return true;
  }
  return true;  // unknown types: skipped
}
}  // namespace

DropReason validate_control_items(ConstByteSpan plain) {
  std::size_t i = 0;
  while (i < plain.size()) {
    if (plain.size() - i < 3) return DropReason::bad_control_message;
    const std::uint8_t type = plain[i];
    const std::size_t len = load_be16(plain.data() + i + 1);
    if (plain.size() - i - 3 < len) return DropReason::bad_control_message;
    if (!item_len_ok(type, len)) return DropReason::bad_control_message;
    if (type == static_cast<std::uint8_t>(ControlItemType::key_offer)) {
      const std::uint8_t version = plain[i + 3 + 4];
      if (version > 1 || len != 5u + (version == 0 ? 16u : 32u))
        return DropReason::bad_control_message;
    }
    i += 3 + len;
  }
  return DropReason::none;
}

bool ControlItemIterator::next(ControlItem* out) {
  while (rest_.size() >= 3) {
    const std::uint8_t type = rest_[0];
    const std::size_t len = load_be16(rest_.data() + 1);
    if (rest_.size() - 3 < len) return false;
    const ConstByteSpan v = rest_.subspan(3, len);
    rest_ = rest_.subspan(3 + len);
    if (type < 1 || type > kMaxControlItemType || !item_len_ok(type, len)) continue;
    *out = ControlItem{};
    out->type = static_cast<ControlItemType>(type);
    switch (out->type) {
      case ControlItemType::key_offer:
        out->spi_or_id = load_be32(v.data());
        out->version = v[4];
        out->data = v.subspan(5);
        break;
      case ControlItemType::key_ack:
      case ControlItemType::probe:
      case ControlItemType::probe_ack:
        out->spi_or_id = load_be32(v.data());
        break;
      case ControlItemType::keepalive:
        break;
      case ControlItemType::close:
        out->reason = v[0];
        break;
      case ControlItemType::service_request:
      case ControlItemType::service_response:
        out->spi_or_id = load_be32(v.data());
        out->data = v.subspan(4);
        break;
      case ControlItemType::pad:
        out->data = v;
        out->pad = v.size();  // written back as that many zeros
        break;
    }
    return true;
  }
  return false;
}

bool ControlItemWriter::add(const ControlItem& item) {
  std::size_t len = 0;
  switch (item.type) {
    case ControlItemType::key_offer:
      len = 5 + item.data.size();
      break;
    case ControlItemType::key_ack:
    case ControlItemType::probe:
    case ControlItemType::probe_ack:
      len = 4;
      break;
    case ControlItemType::keepalive:
      len = 0;
      break;
    case ControlItemType::close:
      len = 1;
      break;
    case ControlItemType::service_request:
    case ControlItemType::service_response:
      len = 4 + item.data.size();
      break;
    case ControlItemType::pad:
      len = item.pad;
      break;
  }
  if (len > 0xffff || out_.size() - pos_ < 3 + len) return false;
  std::uint8_t* p = out_.data() + pos_;
  p[0] = static_cast<std::uint8_t>(item.type);
  store_be16(p + 1, static_cast<std::uint16_t>(len));
  p += 3;
  switch (item.type) {
    case ControlItemType::key_offer:
      store_be32(p, item.spi_or_id);
      p[4] = item.version;
      std::memcpy(p + 5, item.data.data(), item.data.size());
      break;
    case ControlItemType::key_ack:
    case ControlItemType::probe:
    case ControlItemType::probe_ack:
      store_be32(p, item.spi_or_id);
      break;
    case ControlItemType::keepalive:
      break;
    case ControlItemType::close:
      p[0] = item.reason;
      break;
    case ControlItemType::service_request:
    case ControlItemType::service_response:
      store_be32(p, item.spi_or_id);
      if (!item.data.empty()) std::memcpy(p + 4, item.data.data(), item.data.size());
      break;
    case ControlItemType::pad:
      std::memset(p, 0, len);
      break;
  }
  pos_ += 3 + len;
  return true;
}

}  // namespace ie::wire
