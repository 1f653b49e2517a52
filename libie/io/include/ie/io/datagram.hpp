// The batch I/O seams of the datapath, so nodes can run on real sockets and TUN devices or,
// in unit tests, on the in-memory fakes of ie/io/fake.hpp (two whole nodes in one process).
//
// Buffers are the caller's: a Datagram/Packet points at memory the caller owns for the
// duration of the call (with headroom in front if the caller wants to prepend headers).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "ie/util/bytes.hpp"
#include "ie/util/result.hpp"

namespace ie::io {

struct Datagram {
  ByteSpan buf;             // recv: capacity; send: the bytes to send (first len bytes)
  std::size_t len = 0;      // recv: bytes received; send: bytes to send
  sockaddr_storage peer{};  // recv: source; send: destination
  socklen_t peer_len = 0;
  // send: >0 asks for UDP GSO (the kernel splits len into segments of this size);
  // recv: >0 when the kernel coalesced several datagrams of this size (UDP GRO).
  std::uint16_t segment_size = 0;
};

class DatagramPort {
 public:
  virtual ~DatagramPort() = default;
  // Receives up to out.size() datagrams without blocking; returns how many (0: none ready).
  virtual Result<std::size_t> recv_batch(std::span<Datagram> out) = 0;
  // Sends the datagrams in order; returns how many were sent (fewer if the socket is full).
  virtual Result<std::size_t> send_batch(std::span<const Datagram> in) = 0;
  // The fd to watch for readability, or -1 (fakes).
  virtual int fd() const = 0;
};

struct Packet {
  ByteSpan buf;         // read: capacity; write: bytes
  std::size_t len = 0;  // read: bytes read; write: bytes to write
};

class PacketDevice {
 public:
  virtual ~PacketDevice() = default;
  virtual Result<std::size_t> read_batch(std::span<Packet> out) = 0;
  virtual Result<std::size_t> write_batch(std::span<const Packet> in) = 0;
  virtual int fd() const = 0;
  // Bytes of per-frame header in front of every packet read and written: 0 for plain IP
  // packets, kVnetHdrLen when the device carries a virtio-net header (TUN offloads,
  // ie/io/tun.hpp). The header is part of Packet::buf/len both ways.
  virtual std::size_t frame_header_len() const { return 0; }
};

// sizeof(struct virtio_net_hdr): the header of a TUN opened with IFF_VNET_HDR.
inline constexpr std::size_t kVnetHdrLen = 10;

}  // namespace ie::io
