// The test traffic of ie-testhost: inner IPv4/UDP packets whose payload carries a marker
// text, a sequence number and the send time, and the receiver's bookkeeping of them (loss,
// duplicates, order) per inner source.
//
//   inner packet: IPv4 header (20 bytes, valid checksum, proto 17) | UDP header (8 bytes,
//                 checksum 0, ports kTestUdpPort) | payload
//   payload:      "IETH" | kind (1 data, 2 echo) | marker length | flow (BE16) |
//                 seq (BE64) | send time (BE64, CLOCK_MONOTONIC ns of the original sender) |
//                 marker text | zero padding up to the requested size
//
// The send time is the original sender's: an echo carries it back unchanged, so the sender
// computes the round trip with its own clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ie/util/bytes.hpp"

namespace ie::tools {

inline constexpr std::size_t kIpv4HeaderLen = 20;
inline constexpr std::size_t kUdpHeaderLen = 8;
inline constexpr std::size_t kInnerHeaderLen = kIpv4HeaderLen + kUdpHeaderLen;
inline constexpr std::size_t kPayloadFixedLen = 4 + 1 + 1 + 2 + 8 + 8;
inline constexpr std::size_t kMaxMarkerLen = 64;
inline constexpr std::size_t kMaxPayloadLen = 1400;
inline constexpr std::uint16_t kTestUdpPort = 9999;

enum class PayloadKind : std::uint8_t { data = 1, echo = 2 };

struct TestPayload {
  PayloadKind kind = PayloadKind::data;
  std::uint16_t flow = 0;
  std::uint64_t seq = 0;
  std::uint64_t sent_ns = 0;
  std::string_view marker;  // at most kMaxMarkerLen bytes
};

struct TestPacket {
  std::uint32_t src = 0;  // inner IPv4 addresses, host byte order
  std::uint32_t dst = 0;
  TestPayload payload;  // marker points into the parsed buffer
};

// The payload size needed for a marker (the smallest valid --size).
inline std::size_t min_payload_len(std::string_view marker) {
  return kPayloadFixedLen + marker.size();
}

// Writes IPv4 + UDP headers and a payload of payload_len bytes into out. Returns the packet
// length, or 0 if out is too small, the marker too long or payload_len too small for it.
std::size_t write_test_packet(ByteSpan out, std::uint32_t src, std::uint32_t dst,
                              const TestPayload& p, std::size_t payload_len);

// Parses an inner packet; nullopt unless it is an IPv4/UDP test packet with a valid header
// checksum and lengths that fit.
std::optional<TestPacket> parse_test_packet(ConstByteSpan inner);

// Turns a received data packet (parse_test_packet succeeded) into its echo in place: the
// addresses swap, the kind becomes echo, the header checksum is recomputed.
void make_echo_in_place(ByteSpan inner);

// The IPv4 header checksum of a 20-byte header (its checksum field taken as zero).
std::uint16_t ipv4_header_checksum(const std::uint8_t* header);

// "10.1.0.2" -> host-order address; nullopt if not a dotted IPv4 address.
std::optional<std::uint32_t> parse_ipv4(const std::string& text);
std::string ipv4_str(std::uint32_t addr);

// Sequence numbers seen from one source: how many were new, repeated or late, and which
// are missing. Sequence numbers at or above kMaxSeq are counted as out of range only, so
// memory stays bounded (2 MiB per source at most).
class SeqTracker {
 public:
  static constexpr std::uint64_t kMaxSeq = std::uint64_t{1} << 24;

  enum class Seen { fresh, duplicate, out_of_range };
  Seen add(std::uint64_t seq);

  std::uint64_t received() const { return unique_ + duplicates_; }
  std::uint64_t unique() const { return unique_; }
  std::uint64_t duplicates() const { return duplicates_; }
  std::uint64_t out_of_order() const { return out_of_order_; }
  std::uint64_t out_of_range() const { return out_of_range_; }
  // One past the highest sequence number seen (0 if none).
  std::uint64_t end() const { return end_; }

  struct Losses {
    std::uint64_t missing = 0;  // sequence numbers in [0, expected) never seen
    std::uint64_t runs = 0;     // maximal runs of consecutive missing numbers
    std::uint64_t longest = 0;  // the longest run
    std::uint64_t first = 0;    // the first missing number (valid if missing > 0)
  };
  // Missing sequence numbers in [0, expected) (expected is capped at kMaxSeq).
  Losses losses(std::uint64_t expected) const;

 private:
  bool test(std::uint64_t seq) const {
    return seq / 64 < bits_.size() && ((bits_[seq / 64] >> (seq % 64)) & 1) != 0;
  }
  std::vector<std::uint64_t> bits_;
  std::uint64_t unique_ = 0, duplicates_ = 0, out_of_order_ = 0, out_of_range_ = 0;
  std::uint64_t end_ = 0;
};

}  // namespace ie::tools
