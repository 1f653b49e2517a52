// TCP segmentation and receive offload in user space, between ied and a TUN opened with
// offloads (io::TunOptions::offload: every frame starts with a virtio-net header).
//
// Read side (TUN -> ied): the kernel hands over one TCP "super packet" of up to 64 KiB per
// read (gso_type TCPV4/TCPV6, gso_size = the MSS) with a partial checksum, or a single packet
// whose checksum it left to us (VIRTIO_NET_HDR_F_NEEDS_CSUM). open_tun_frame checks the
// header against the packet and completes a single packet's checksum in place;
// write_segment then produces the MTU-sized packets the kernel would have sent (its
// tcp_gso_segment; wireguard-go's tun/tcp_offload_linux.go): IPv4 total length, id + i and
// header checksum, IPv6 payload length, sequence number advanced, FIN/PSH only on the last
// segment, CWR only on the first, the full TCP checksum.
//
// Write side (ied -> TUN): TcpCoalescer joins consecutive in-order TCP segments of one flow
// within a batch into one super packet written with a GSO header (kernel GRO done here), so
// the receiving stack handles one packet instead of dozens. What does not qualify is written
// as it came, with an all-zero header. Order within a flow is kept.
//
// Parsing never trusts a length field: every read is bounds-checked. No allocation per
// packet (the coalescer's buffers are allocated at construction; its item list grows to the
// largest batch once). Not thread-safe (one datapath thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "ie/io/datagram.hpp"
#include "ie/util/bytes.hpp"

namespace ie::ied {

// struct virtio_net_hdr (linux/virtio_net.h), in the TUN's byte order: little-endian (the
// legacy header is host-endian and ied runs on x86_64).
inline constexpr std::uint8_t kVnetFlagNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
inline constexpr std::uint8_t kGsoNone = 0;
inline constexpr std::uint8_t kGsoTcpV4 = 1;
inline constexpr std::uint8_t kGsoTcpV6 = 4;
inline constexpr std::uint8_t kGsoEcn = 0x80;  // CWR set on the first segment

struct VnetHdr {
  std::uint8_t flags = 0;
  std::uint8_t gso_type = kGsoNone;
  std::uint16_t hdr_len = 0;      // bytes of headers (IP + TCP); advisory, never trusted
  std::uint16_t gso_size = 0;     // payload bytes per segment (MSS)
  std::uint16_t csum_start = 0;   // where checksumming starts (the L4 header)
  std::uint16_t csum_offset = 0;  // the checksum field, from csum_start

  static VnetHdr read(const std::uint8_t* p);  // kVnetHdrLen bytes
  void write(std::uint8_t* p) const;
};

// The largest IP packet a super packet can be (IPv4 total length / IPv6 payload length).
inline constexpr std::size_t kMaxSuperPacket = 65535;

// One frame read from an offloading TUN, checked.
struct TunFrame {
  VnetHdr hdr;
  ByteSpan packet;          // the IP packet (inside the frame)
  bool gso = false;         // a TCP super packet: write_segment(i) for i < segments
  bool v6 = false;          // (gso only, as the fields below)
  std::size_t ip_hlen = 0;  // IPv4 IHL * 4, or 40
  std::size_t tcp_hlen = 0;
  std::size_t payload = 0;  // TCP payload bytes in the super packet
  std::size_t segments = 1;
  // The largest segment write_segment produces.
  std::size_t max_segment() const { return gso ? ip_hlen + tcp_hlen + hdr.gso_size : 0; }
};

// Checks a frame (virtio-net header + packet). nullopt: malformed (shorter than the header,
// a GSO type other than TCPV4/TCPV6, a super packet whose IP/TCP headers, lengths or
// checksum location disagree with the header, IPv4 fragments or IPv6 extension headers in a
// super packet, a partial checksum whose location is outside the packet or at an odd offset
// from where summing starts). Not a super packet:
// completes the partial checksum in place (NEEDS_CSUM) and returns the packet with gso
// false. A super packet is left untouched.
std::optional<TunFrame> open_tun_frame(ByteSpan frame);

// Writes segment i (< f.segments) of a super packet into out; returns its length, or 0 if
// out is too small or i out of range.
std::size_t write_segment(const TunFrame& f, std::size_t i, ByteSpan out);

// Coalesces a batch of IP packets for an offloading TUN. Per batch: clear(), add() every
// packet in order (each must stay valid and unchanged until finish() has been used), then
// finish() gives what to write, in order.
//
// A packet joins the super packet of its flow (same addresses and ports, the latest of that
// flow in the batch, still open) when: IPv4 without options or fragmentation, or IPv6
// without extension headers; flags exactly ACK (or ACK|PSH, which closes it); its sequence
// number continues the super packet; acknowledgment number, window, TCP options (none, or
// one timestamp option, byte for byte), IPv4 TOS/TTL/DF or IPv6 traffic class/flow
// label/hop limit all equal the first packet's; a payload no larger than the first's (a
// shorter one closes it); both its IPv4 header checksum and its TCP checksum verify; the
// result stays within kMaxSuperPacket. Any other TCP packet of the flow closes the flow's
// super packet, so nothing overtakes it. A super packet of one packet is written as is.
class TcpCoalescer {
 public:
  // max_supers: super packets per batch at most (one kVnetHdrLen + kMaxSuperPacket buffer
  // each, allocated here); max_open: flows tracked at once per batch (the oldest is closed).
  explicit TcpCoalescer(std::size_t max_supers = 8, std::size_t max_open = 16);

  void clear();
  void add(ConstByteSpan ip_packet);

  // What to write: a packet of the batch as it was (frame empty; the caller puts an all-zero
  // header in front), or a frame (header + super packet, in this object's buffers, valid
  // until the next clear()) of count packets starting with packet index.
  struct Item {
    std::size_t index = 0;
    std::size_t count = 1;
    ByteSpan frame;
  };
  std::span<const Item> finish();

 private:
  // A super packet that may still grow: its item, its first packet, where it stands.
  struct Flow {
    std::size_t item = 0;
    ConstByteSpan first;
    bool v6 = false;
    std::uint8_t ip_hlen = 0;
    std::uint8_t tcp_hlen = 0;
    std::uint16_t gso_size = 0;
    std::uint32_t next_seq = 0;
    int super = -1;  // its frame in supers_ once a second packet joined
  };
  // A super packet being built in the arena.
  struct Super {
    std::size_t item = 0;
    std::size_t len = 0;  // bytes of its IP packet so far
    bool v6 = false;
    std::uint8_t ip_hlen = 0;
    std::uint8_t tcp_hlen = 0;
    std::uint16_t gso_size = 0;
    bool psh = false;  // its last packet had PSH
  };
  void close(std::size_t open_pos);
  bool start_super(Flow& fl);
  ByteSpan frame(std::size_t super);

  std::size_t max_supers_;
  std::size_t max_open_;
  std::vector<std::uint8_t> arena_;  // max_supers_ frames of kVnetHdrLen + kMaxSuperPacket
  std::vector<Item> items_;
  std::vector<Flow> flows_;    // oldest first, at most max_open_
  std::vector<Super> supers_;  // at most max_supers_, frame i at arena_ offset i * kFrame
  std::size_t added_ = 0;
};

}  // namespace ie::ied
