// Every reason a datagram can be dropped, as ONE X-macro list: expanded here into the C++
// enum and names, and (later) into BPF and status output, so a drop is always named and
// counted the same way everywhere. Append new reasons at the end; never renumber.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

// X(name, "human description")
#define IE_DROP_REASONS(X)                                                                  \
  X(none, "not dropped")                                                                    \
  X(truncated, "shorter than its headers")                                                  \
  X(bad_psp_header, "malformed PSP header")                                                 \
  X(unsupported_psp_version, "PSP version other than 0 (AES-128-GCM) or 1 (AES-256-GCM)")   \
  X(unknown_spi, "no receive association for this SPI")                                     \
  X(auth_failed, "PSP authentication tag did not verify")                                   \
  X(replayed, "sequence number already seen or older than the replay window")               \
  X(bad_ilp_header, "malformed ILP header")                                                 \
  X(bad_tlv, "malformed or duplicated ILP metadata TLV")                                    \
  X(unknown_service, "service id not served here")                                          \
  X(unknown_message_type, "unknown control-plane message type")                             \
  X(bad_mac1, "handshake MAC1 did not verify")                                              \
  X(cookie_required, "under load: handshake without a valid cookie MAC2")                   \
  X(stale_handshake, "handshake initiation not newer than the last accepted one")           \
  X(handshake_failed, "Noise handshake message did not verify")                             \
  X(unknown_receiver, "no session with this receiver index")                                \
  X(control_auth_failed, "control message did not authenticate")                            \
  X(control_replayed, "control message counter replayed or too old")                        \
  X(bad_control_message, "malformed control message")                                       \
  X(too_large, "larger than the buffer or the protocol allows")                             \
  X(rate_limited, "dropped by a rate limit")                                                \
  X(peer_not_allowed, "handshake from a static key or first contact not allowed here")      \
  X(no_route, "no pipe leads to the destination")                                           \
  X(dropped_by_service, "a service module or cache entry decided to drop it")               \
  X(spoofed_source, "inner source address not registered by the sending host")              \
  X(bad_inner_packet, "inner packet too short or not IPv4/IPv6 where the service needs it") \
  X(send_failed, "the kernel refused the datagram or the socket buffer stayed full")        \
  X(echo_not_answered, "echo to a node that does not answer echoes")                        \
  X(unexpected_echo_reply, "echo reply that matches no echo sent")

namespace ie::wire {

enum class DropReason : std::uint8_t {
#define IE_X(name, text) name,
  IE_DROP_REASONS(IE_X)
#undef IE_X
};

inline constexpr std::size_t kDropReasonCount = 0
#define IE_X(name, text) +1
    IE_DROP_REASONS(IE_X)
#undef IE_X
    ;

// Stable identifier ("auth_failed") for counters and status output.
std::string_view drop_reason_name(DropReason r);
// Human description for logs and `iectl status`.
std::string_view drop_reason_text(DropReason r);

}  // namespace ie::wire
