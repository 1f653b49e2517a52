// Tells the kinds of datagram on an InterEdge UDP port apart by their first two bytes.
// PSP data packets have byte 1 = header-extension length, which is never 0; InterEdge
// control-plane messages have byte 1 == 0 and their type in byte 0. One socket, one byte
// read, no extra outer header on data packets.
#pragma once

#include <cstdint>

#include "ie/util/bytes.hpp"

namespace ie::wire {

enum class DatagramKind : std::uint8_t {
  invalid = 0,          // too short or an unknown control-plane type
  psp = 0xff,           // a PSP (ILP data) packet
  handshake_init = 1,   // Noise handshake message 1 (IK or XX)
  handshake_resp = 2,   // Noise handshake message 2
  cookie_reply = 3,     // responder under load: retry with this cookie
  control = 4,          // control channel (Noise transport keys)
  handshake_final = 5,  // Noise handshake message 3 (XX)
  echo = 6,             // a round-trip measurement, answered without any session state
  echo_reply = 7,       // its answer
};

inline DatagramKind classify(ConstByteSpan d) {
  if (d.size() < 4) return DatagramKind::invalid;
  if (d[1] != 0) return DatagramKind::psp;
  switch (d[0]) {
    case 1:
      return DatagramKind::handshake_init;
    case 2:
      return DatagramKind::handshake_resp;
    case 3:
      return DatagramKind::cookie_reply;
    case 4:
      return DatagramKind::control;
    case 5:
      return DatagramKind::handshake_final;
    case 6:
      return DatagramKind::echo;
    case 7:
      return DatagramKind::echo_reply;
    default:
      return DatagramKind::invalid;
  }
}

}  // namespace ie::wire
