// UdpSocket: a nonblocking IPv4 or IPv6 UDP socket that moves batches of datagrams with one
// system call (recvmmsg / sendmmsg), the DatagramPort real nodes run on. Options: SO_REUSEPORT
// (one socket per worker), buffer sizes, UDP GRO on receive (coalesced datagrams reported
// with their segment size). UDP GSO on send (Datagram::segment_size) is detected at run time;
// without it a GSO Datagram is sent as one message per segment. Also the numeric endpoint
// helpers ("1.2.3.4:5", "[::1]:5") every io user shares. Single-threaded per socket; no
// allocation per datagram.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "ie/io/datagram.hpp"
#include "ie/util/result.hpp"

namespace ie::io {

// "a.b.c.d:port" or "[v6]:port" (numeric only, no DNS); *len gets the sockaddr length.
Result<sockaddr_storage> parse_endpoint(const std::string& text, socklen_t* len);
// The inverse: "a.b.c.d:port" / "[v6]:port"; "?" for other families.
std::string endpoint_str(const sockaddr_storage& addr);

struct UdpOptions {
  bool reuse_port = false;
  int recv_buffer = 0;  // SO_RCVBUF bytes; 0 keeps the default
  int send_buffer = 0;  // SO_SNDBUF bytes; 0 keeps the default
  bool gro = false;     // ask for UDP_GRO; gro_enabled() says whether the kernel took it
};

class UdpSocket final : public DatagramPort {
 public:
  static constexpr std::size_t kMaxBatch = 64;     // datagrams per system call
  static constexpr std::size_t kMaxSegments = 64;  // GSO segments per Datagram

  // Opens and binds (port 0 picks one). Errc::parse for a bad endpoint, Errc::exists when
  // the address is in use.
  static Result<UdpSocket> bind(const std::string& endpoint, const UdpOptions& options = {});

  UdpSocket(UdpSocket&& o) noexcept;
  UdpSocket& operator=(UdpSocket&& o) noexcept;
  ~UdpSocket() override;

  // Fixes the peer: sends may then leave Datagram::peer_len 0; receives come only from it.
  Result<void> connect(const std::string& endpoint);
  Result<sockaddr_storage> local_address(socklen_t* len) const;

  // At most kMaxBatch per call; 0 when nothing is pending. A datagram longer than buf is
  // truncated to buf.size(). With GRO, a Datagram may hold several datagrams of
  // segment_size bytes (the last may be shorter).
  Result<std::size_t> recv_batch(std::span<Datagram> out) override;
  // Any count (chunked). Returns how many from the front were consumed: sent, or dropped
  // because the kernel refused that datagram (unreachable, too big; see send_dropped()).
  // Fewer than in.size() when the socket buffer is full: retry the rest when writable.
  // A GSO Datagram (segment_size > 0, len > segment_size) has at most kMaxSegments segments
  // (else it is dropped) and, like any UDP payload, at most 65507 bytes in all (the kernel
  // refuses it: dropped). On the fallback path it is consumed once its first segment is out.
  // A GSO message the kernel refuses with EIO turns GSO off for the socket; one it refuses
  // otherwise (EINVAL: a segment longer than the route's MTU, SO_NO_CHECK) is sent again
  // segment by segment, like the fallback.
  Result<std::size_t> send_batch(std::span<const Datagram> in) override;
  int fd() const override { return fd_; }

  bool gso_supported() const { return gso_; }
  bool gro_enabled() const { return gro_; }
  std::uint64_t send_dropped() const { return send_dropped_; }
  std::uint64_t recv_errors() const { return recv_errors_; }  // queued ICMP errors seen
  void disable_gso_for_test() { gso_ = false; }

 private:
  struct Scratch;
  UdpSocket(int fd, std::unique_ptr<Scratch> scratch);

  int fd_ = -1;
  bool gso_ = false;
  bool gro_ = false;
  std::uint64_t send_dropped_ = 0;
  std::uint64_t recv_errors_ = 0;
  std::unique_ptr<Scratch> scratch_;  // mmsghdr/iovec/cmsg arrays reused by every call
};

}  // namespace ie::io
