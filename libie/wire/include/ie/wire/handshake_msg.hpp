// Codecs of the control-plane datagrams that share the ILP UDP port (byte 1 == 0 marks them;
// see ie/wire/demux.hpp). Layouts, all integers big-endian:
//
//   1 initiation  [1][0][pattern][0] sender u32 | noise message 1 | mac1 16 | mac2 16
//   2 response    [2][0][0][0] sender u32 | receiver u32 | noise message 2 | mac1 16 | mac2 16
//   3 cookie      [3][0][0][0] receiver u32 | nonce 24 | encrypted cookie 16 + tag 16
//   4 control     [4][0][0][0] receiver u32 | counter u64 | AEAD(inner messages) incl. tag 16
//   5 final       [5][0][0][0] receiver u32 | noise message 3 (XX only)
//   6 echo        [6][0][0][0] nonce 16 | mac1 16        (36 bytes: a round-trip measurement)
//   7 echo reply  [7][0][0][0] nonce 16                  (20 bytes: never larger than 6)
//
// mac1 covers every byte before it, mac2 every byte before it (incl. mac1). The codecs only
// check lengths and fixed bytes; crypto/ verifies MACs and Noise.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ie/util/bytes.hpp"
#include "ie/wire/drop_reason.hpp"

namespace ie::wire {

inline constexpr std::size_t kMacLen = 16;
inline constexpr std::size_t kCookieNonceLen = 24;
inline constexpr std::size_t kCookieLen = 16;
inline constexpr std::size_t kControlHeaderLen = 16;  // type..counter: the AEAD's AD
// The largest control-plane datagram taken or sent: room for a PROBE padded to the largest
// datagram a host's link sends (link::HostLink::kBufSize), so padded PROBEs can test every
// size data packets use.
inline constexpr std::size_t kMaxControlPlaneDatagram = 2048;

enum class HandshakePattern : std::uint8_t { ik = 0, xx = 1 };

struct InitiationView {
  HandshakePattern pattern = HandshakePattern::ik;
  std::uint32_t sender = 0;
  ConstByteSpan noise;
  ConstByteSpan mac1, mac2;
  ConstByteSpan before_mac1, before_mac2;  // what each MAC covers
};

struct ResponseView {
  std::uint32_t sender = 0, receiver = 0;
  ConstByteSpan noise;
  ConstByteSpan mac1, mac2;
  ConstByteSpan before_mac1, before_mac2;
};

struct CookieReplyView {
  std::uint32_t receiver = 0;
  ConstByteSpan nonce;             // 24 bytes
  ConstByteSpan encrypted_cookie;  // 32 bytes
};

struct ControlView {
  std::uint32_t receiver = 0;
  std::uint64_t counter = 0;
  ConstByteSpan header;      // the 16 bytes used as AD
  ConstByteSpan ciphertext;  // >= 16 bytes
};

struct FinalView {
  std::uint32_t receiver = 0;
  ConstByteSpan noise;
};

inline constexpr std::size_t kEchoNonceLen = 16;
inline constexpr std::size_t kEchoLen = 4 + kEchoNonceLen + kMacLen;  // 36
inline constexpr std::size_t kEchoReplyLen = 4 + kEchoNonceLen;       // 20

struct EchoView {
  ConstByteSpan nonce;        // 16 bytes
  ConstByteSpan mac1;         // echo only (empty in a reply)
  ConstByteSpan before_mac1;  // echo only
};

DropReason parse_initiation(ConstByteSpan d, InitiationView* out);
DropReason parse_response(ConstByteSpan d, ResponseView* out);
DropReason parse_cookie_reply(ConstByteSpan d, CookieReplyView* out);
DropReason parse_control(ConstByteSpan d, ControlView* out);
DropReason parse_final(ConstByteSpan d, FinalView* out);
DropReason parse_echo(ConstByteSpan d, EchoView* out);
DropReason parse_echo_reply(ConstByteSpan d, EchoView* out);

// Encoders write the header and copy `noise` after it; MACs are left zero for the caller to
// fill (mac offsets: size - 32 and size - 16). Return the datagram length or 0 if out is too
// small or the result would exceed kMaxControlPlaneDatagram.
std::size_t encode_initiation(HandshakePattern p, std::uint32_t sender, ConstByteSpan noise,
                              ByteSpan out);
std::size_t encode_response(std::uint32_t sender, std::uint32_t receiver, ConstByteSpan noise,
                            ByteSpan out);
std::size_t encode_cookie_reply(std::uint32_t receiver, ConstByteSpan nonce,
                                ConstByteSpan encrypted_cookie, ByteSpan out);
// Writes the 16-byte control header; the caller encrypts into out[16..].
void encode_control_header(std::uint32_t receiver, std::uint64_t counter, std::uint8_t* out16);
std::size_t encode_final(std::uint32_t receiver, ConstByteSpan noise, ByteSpan out);
// An echo (mac1 left zero for the caller) or its reply; nonce must be kEchoNonceLen bytes.
std::size_t encode_echo(ConstByteSpan nonce, ByteSpan out);
std::size_t encode_echo_reply(ConstByteSpan nonce, ByteSpan out);

// ---- inner control messages (the plaintext of a type-4 datagram) -----------------------
// A sequence of items: type u8 | length u16 | value. Unknown types are skipped.
//   1 KEY_OFFER        spi u32 | version u8 | key (16 for version 0, 32 for version 1)
//   2 KEY_ACK          spi u32
//   3 KEEPALIVE        (empty)
//   4 CLOSE            reason u8
//   5 SERVICE_REQUEST  id u32 | opaque bytes
//   6 SERVICE_RESPONSE id u32 | opaque bytes
//   7 PROBE            id u32: a keepalive that asks a peer which does not keep the
//                      association alive itself (an SN's host pipes) to answer at once;
//                      with bit 31 of the id set (kProbeAnswerAlways), every peer answers
//                      (a round-trip measurement, e.g. of a direct host-to-host path)
//   8 PROBE_ACK        id u32: that answer, echoing the PROBE's id (the prober's RTT)
//   9 PAD              any bytes (zeros when we write it), ignored: makes a message as
//                      long as the sender wants (a PROBE padded to a size tests whether
//                      datagrams of that size get through; docs/ilp.md "Padded PROBEs")
inline constexpr std::uint32_t kProbeAnswerAlways = 0x80000000u;
enum class ControlItemType : std::uint8_t {
  key_offer = 1,
  key_ack = 2,
  keepalive = 3,
  close = 4,
  service_request = 5,
  service_response = 6,
  probe = 7,
  probe_ack = 8,
  pad = 9,
};
inline constexpr std::uint8_t kMaxControlItemType = 9;

struct ControlItem {
  ControlItemType type = ControlItemType::keepalive;
  std::uint32_t spi_or_id = 0;  // KEY_OFFER/KEY_ACK spi, SERVICE_* / PROBE* id
  std::uint8_t version = 0;     // KEY_OFFER
  std::uint8_t reason = 0;      // CLOSE
  ConstByteSpan data;           // KEY_OFFER key, SERVICE_* bytes
  std::size_t pad = 0;          // PAD: its length (written as zeros; read back as data)
};

// Validates the whole sequence (lengths per type) without calling back; then iterate.
DropReason validate_control_items(ConstByteSpan plain);

class ControlItemIterator {
 public:
  explicit ControlItemIterator(ConstByteSpan plain) : rest_(plain) {}
  // Next known item of a validated sequence (unknown types skipped).
  bool next(ControlItem* out);

 private:
  ConstByteSpan rest_;
};

// Appends one item; returns false if it does not fit.
class ControlItemWriter {
 public:
  explicit ControlItemWriter(ByteSpan out) : out_(out) {}
  bool add(const ControlItem& item);
  std::size_t size() const { return pos_; }

 private:
  ByteSpan out_;
  std::size_t pos_ = 0;
};

}  // namespace ie::wire
