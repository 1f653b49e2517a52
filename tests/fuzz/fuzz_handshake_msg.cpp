// Fuzz target: every control-plane datagram parser (types 1-5) on arbitrary bytes. Whatever
// a parser accepts must have the right type byte and views that lie inside the input and
// tile it exactly (header | noise | mac1 | mac2); re-encoding an accepted message from its
// view must reproduce the input byte for byte (MACs aside, which the encoder leaves zero).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ie/wire/demux.hpp"
#include "ie/wire/handshake_msg.hpp"

namespace {

using ie::ConstByteSpan;
using ie::wire::DropReason;

void require(bool ok) {
  if (!ok) std::abort();
}

bool inside(ConstByteSpan part, const std::uint8_t* data, std::size_t size) {
  return part.empty() || (part.data() >= data && part.data() + part.size() <= data + size);
}

// Compares all but the last `skip_tail` bytes (the MACs).
bool same_prefix(const std::uint8_t* a, const std::uint8_t* b, std::size_t n, std::size_t skip) {
  return std::memcmp(a, b, n - skip) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ConstByteSpan d(data, size);
  static std::uint8_t out[ie::wire::kMaxControlPlaneDatagram];
  const auto kind = ie::wire::classify(d);

  ie::wire::InitiationView iv;
  if (ie::wire::parse_initiation(d, &iv) == DropReason::none) {
    require(kind == ie::wire::DatagramKind::handshake_init);
    require(inside(iv.noise, data, size) && inside(iv.mac1, data, size));
    require(8 + iv.noise.size() + 32 == size && iv.before_mac2.size() == size - 16);
    const std::size_t n = ie::wire::encode_initiation(iv.pattern, iv.sender, iv.noise, out);
    require(n == size && same_prefix(out, data, n, 32));
  }
  ie::wire::ResponseView rv;
  if (ie::wire::parse_response(d, &rv) == DropReason::none) {
    require(kind == ie::wire::DatagramKind::handshake_resp);
    require(12 + rv.noise.size() + 32 == size && inside(rv.mac2, data, size));
    const std::size_t n = ie::wire::encode_response(rv.sender, rv.receiver, rv.noise, out);
    require(n == size && same_prefix(out, data, n, 32));
  }
  ie::wire::CookieReplyView cv;
  if (ie::wire::parse_cookie_reply(d, &cv) == DropReason::none) {
    require(kind == ie::wire::DatagramKind::cookie_reply && size == 64);
    const std::size_t n =
        ie::wire::encode_cookie_reply(cv.receiver, cv.nonce, cv.encrypted_cookie, out);
    require(n == size && same_prefix(out, data, n, 0));
  }
  ie::wire::ControlView tv;
  if (ie::wire::parse_control(d, &tv) == DropReason::none) {
    require(kind == ie::wire::DatagramKind::control);
    require(tv.header.size() == 16 && tv.ciphertext.size() + 16 == size);
    ie::wire::encode_control_header(tv.receiver, tv.counter, out);
    require(same_prefix(out, data, 16, 0));
  }
  ie::wire::FinalView fv;
  if (ie::wire::parse_final(d, &fv) == DropReason::none) {
    require(kind == ie::wire::DatagramKind::handshake_final);
    const std::size_t n = ie::wire::encode_final(fv.receiver, fv.noise, out);
    require(n == size && same_prefix(out, data, n, 0));
  }
  ie::wire::EchoView ev;
  if (ie::wire::parse_echo(d, &ev) == DropReason::none) {
    require(kind == ie::wire::DatagramKind::echo && size == ie::wire::kEchoLen);
    require(inside(ev.nonce, data, size) && inside(ev.mac1, data, size));
    const std::size_t n = ie::wire::encode_echo(ev.nonce, out);
    require(n == size && same_prefix(out, data, n, 16));
  }
  if (ie::wire::parse_echo_reply(d, &ev) == DropReason::none) {
    require(kind == ie::wire::DatagramKind::echo_reply && size == ie::wire::kEchoReplyLen);
    const std::size_t n = ie::wire::encode_echo_reply(ev.nonce, out);
    require(n == size && same_prefix(out, data, n, 0));
  }
  return 0;
}
