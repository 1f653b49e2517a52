// Batched UDP over recvmmsg/sendmmsg with GSO/GRO, and endpoint parsing (ie/io/udp.hpp).
//
// Receive: 1. one iovec per caller buffer; 2. recvmmsg(MSG_DONTWAIT); 3. read back length,
// peer and the UDP_GRO cmsg. Send: 1. one mmsghdr per Datagram (per segment when GSO is
// unavailable), with a UDP_SEGMENT cmsg for GSO; 2. sendmmsg; 3. map the count of sent
// messages back to consumed Datagrams, and skip a Datagram the kernel refuses. The buffers
// stay the caller's throughout.
#include "ie/io/udp.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace ie::io {

namespace {
constexpr std::size_t kCtrl = 64;  // room for one UDP_GRO / UDP_SEGMENT cmsg
constexpr std::size_t kMaxMsgs = 1024;
bool is_fatal(int e) {
  return e == EBADF || e == ENOTSOCK || e == EFAULT;
}
}  // namespace

Result<sockaddr_storage> parse_endpoint(const std::string& text, socklen_t* len) {
  std::string host;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return fail(Errc::parse, "endpoint: expected [v6]:port: " + text);
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos)
      return fail(Errc::parse, "endpoint: expected host:port: " + text);
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string::npos)  // IPv6 needs brackets, or the port is ambiguous
      return fail(Errc::parse, "endpoint: IPv6 needs [addr]:port: " + text);
  }
  unsigned port = 0;
  const char* end = port_text.data() + port_text.size();
  const auto [p, ec] = std::from_chars(port_text.data(), end, port);
  if (port_text.empty() || ec != std::errc{} || p != end || port > 65535)
    return fail(Errc::parse, "endpoint: bad port: " + text);
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return ss;
  }
  ss = sockaddr_storage{};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return ss;
  }
  return fail(Errc::parse, "endpoint: bad host: " + text);
}

std::string endpoint_str(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &s->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(s->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(s->sin6_port));
  }
  return "?";
}

struct UdpSocket::Scratch {
  std::array<mmsghdr, kMaxMsgs> msgs{};
  std::array<iovec, kMaxMsgs> iov{};
  std::array<std::uint32_t, kMaxMsgs> dgram{};  // message -> Datagram index in the chunk
  alignas(cmsghdr) std::array<std::array<char, kCtrl>, UdpSocket::kMaxBatch> ctrl{};
};

UdpSocket::UdpSocket(int fd, std::unique_ptr<Scratch> scratch)
    : fd_(fd), scratch_(std::move(scratch)) {}

UdpSocket::UdpSocket(UdpSocket&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      gso_(o.gso_),
      gro_(o.gro_),
      send_dropped_(o.send_dropped_),
      recv_errors_(o.recv_errors_),
      scratch_(std::move(o.scratch_)) {}

UdpSocket& UdpSocket::operator=(UdpSocket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    gso_ = o.gso_;
    gro_ = o.gro_;
    send_dropped_ = o.send_dropped_;
    recv_errors_ = o.recv_errors_;
    scratch_ = std::move(o.scratch_);
  }
  return *this;
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

Result<UdpSocket> UdpSocket::bind(const std::string& endpoint, const UdpOptions& o) {
  socklen_t len = 0;
  auto addr = parse_endpoint(endpoint, &len);
  if (!addr) return fail(addr.error());
  const int fd = ::socket(addr->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return fail(Errc::io, "udp socket " + endpoint, errno);
  UdpSocket s(fd, std::make_unique<Scratch>());
  const int one = 1;
  auto opt = [&](int level, int name, int value, const char* what) -> Result<void> {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0)
      return fail(Errc::io, std::string("udp setsockopt ") + what, errno);
    return ok();
  };
  if (addr->ss_family == AF_INET6) IE_TRY(opt(IPPROTO_IPV6, IPV6_V6ONLY, one, "IPV6_V6ONLY"));
  if (o.reuse_port) IE_TRY(opt(SOL_SOCKET, SO_REUSEPORT, one, "SO_REUSEPORT"));
  // The *FORCE variants pass net.core.[rw]mem_max (they need CAP_NET_ADMIN, which iesn and
  // ied have); without it the plain options apply, capped by the sysctl.
  if (o.recv_buffer > 0 &&
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &o.recv_buffer, sizeof o.recv_buffer) != 0)
    IE_TRY(opt(SOL_SOCKET, SO_RCVBUF, o.recv_buffer, "SO_RCVBUF"));
  if (o.send_buffer > 0 &&
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &o.send_buffer, sizeof o.send_buffer) != 0)
    IE_TRY(opt(SOL_SOCKET, SO_SNDBUF, o.send_buffer, "SO_SNDBUF"));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&*addr), len) != 0) {
    const int e = errno;
    return fail(e == EADDRINUSE ? Errc::exists : Errc::io, "udp bind " + endpoint, e);
  }
  // GSO: the option is readable exactly when the kernel knows UDP_SEGMENT.
  int seg = 0;
  socklen_t seg_len = sizeof seg;
  s.gso_ = ::getsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, &seg_len) == 0;
  if (o.gro) s.gro_ = ::setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
  return s;
}

Result<void> UdpSocket::connect(const std::string& endpoint) {
  socklen_t len = 0;
  auto addr = parse_endpoint(endpoint, &len);
  if (!addr) return fail(addr.error());
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&*addr), len) != 0)
    return fail(Errc::io, "udp connect " + endpoint, errno);
  return ok();
}

Result<sockaddr_storage> UdpSocket::local_address(socklen_t* len) const {
  sockaddr_storage ss{};
  *len = sizeof ss;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0)
    return fail(Errc::io, "udp getsockname", errno);
  return ss;
}

Result<std::size_t> UdpSocket::recv_batch(std::span<Datagram> out) {
  Scratch& s = *scratch_;
  const std::size_t n = std::min(out.size(), kMaxBatch);
  if (n == 0) return std::size_t{0};
  for (std::size_t i = 0; i < n; ++i) {
    s.iov[i].iov_base = out[i].buf.data();
    s.iov[i].iov_len = out[i].buf.size();
    msghdr& h = s.msgs[i].msg_hdr;
    h = msghdr{};
    h.msg_name = &out[i].peer;
    h.msg_namelen = sizeof out[i].peer;
    h.msg_iov = &s.iov[i];
    h.msg_iovlen = 1;
    if (gro_) {
      h.msg_control = s.ctrl[i].data();
      h.msg_controllen = kCtrl;
    }
    s.msgs[i].msg_len = 0;
  }
  int r;
  do {
    r = ::recvmmsg(fd_, s.msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT, nullptr);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    const int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK) return std::size_t{0};
    if (is_fatal(e) || e == EINVAL || e == ENOMEM) return fail(Errc::io, "recvmmsg", e);
    ++recv_errors_;  // a queued ICMP error (ECONNREFUSED, EHOSTUNREACH, ...): consumed
    return std::size_t{0};
  }
  for (std::size_t i = 0; i < static_cast<std::size_t>(r); ++i) {
    Datagram& d = out[i];
    msghdr& h = s.msgs[i].msg_hdr;
    d.len = std::min<std::size_t>(s.msgs[i].msg_len, d.buf.size());
    d.peer_len = h.msg_namelen;
    d.segment_size = 0;
    if (!gro_) continue;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int gso = 0;
        std::memcpy(&gso, CMSG_DATA(c), sizeof gso);
        if (gso > 0 && static_cast<std::size_t>(gso) < d.len)
          d.segment_size = static_cast<std::uint16_t>(gso);
      }
    }
  }
  return static_cast<std::size_t>(r);
}

Result<std::size_t> UdpSocket::send_batch(std::span<const Datagram> in) {
  Scratch& s = *scratch_;
  std::size_t consumed = 0;
  // The kernel refused the GSO message heading the chunk (EINVAL: a segment longer than the
  // route's MTU, ...): send that Datagram's segments one by one instead, as without GSO.
  std::size_t split_at = SIZE_MAX;
  // Each pass builds messages for a chunk starting at `consumed`, sends them and advances;
  // every pass consumes at least one Datagram or returns, so it ends within in.size() passes.
  while (consumed < in.size()) {
    std::size_t nmsg = 0;
    std::size_t ndg = 0;
    std::size_t nctrl = 0;
    bool oversize_first = false;
    for (std::size_t k = consumed; k < in.size() && ndg < kMaxBatch; ++k, ++ndg) {
      const Datagram& d = in[k];
      const std::size_t len = std::min(d.len, d.buf.size());
      const bool gso = d.segment_size != 0 && len > d.segment_size;
      const bool kernel_gso = gso_ && k != split_at;
      const std::size_t segs = gso ? (len + d.segment_size - 1u) / d.segment_size : 1;
      if (nmsg + ((gso && !kernel_gso) ? segs : 1) > kMaxMsgs) break;
      auto add_msg = [&](const std::uint8_t* p, std::size_t n) {
        s.iov[nmsg].iov_base = const_cast<std::uint8_t*>(p);
        s.iov[nmsg].iov_len = n;
        msghdr& h = s.msgs[nmsg].msg_hdr;
        h = msghdr{};
        if (d.peer_len != 0) {
          h.msg_name = const_cast<sockaddr_storage*>(&d.peer);
          h.msg_namelen = d.peer_len;
        }
        h.msg_iov = &s.iov[nmsg];
        h.msg_iovlen = 1;
        s.dgram[nmsg] = static_cast<std::uint32_t>(ndg);
        return &h;
      };
      if (gso && kernel_gso && segs > kMaxSegments) {
        // More segments than the kernel takes: dropped, once it heads a chunk.
        oversize_first = ndg == 0;
        break;
      }
      if (gso && kernel_gso) {
        msghdr* h = add_msg(d.buf.data(), len);
        ++nmsg;
        char* ctrl = s.ctrl[nctrl++].data();
        std::memset(ctrl, 0, kCtrl);
        h->msg_control = ctrl;
        h->msg_controllen = CMSG_SPACE(sizeof(std::uint16_t));
        cmsghdr* c = CMSG_FIRSTHDR(h);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
        const std::uint16_t seg = d.segment_size;
        std::memcpy(CMSG_DATA(c), &seg, sizeof seg);
      } else if (gso) {
        for (std::size_t off = 0; off < len; off += d.segment_size) {
          add_msg(d.buf.data() + off, std::min<std::size_t>(d.segment_size, len - off));
          ++nmsg;
        }
      } else {
        add_msg(d.buf.data(), len);
        ++nmsg;
      }
    }
    if (oversize_first) {
      ++send_dropped_;
      ++consumed;
      continue;
    }
    int r;
    do {
      r = ::sendmmsg(fd_, s.msgs.data(), static_cast<unsigned>(nmsg), MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      const int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) return consumed;
      if (is_fatal(e)) return fail(Errc::io, "sendmmsg", e);
      if (e == EIO && gso_ && s.msgs[0].msg_hdr.msg_control != nullptr) {
        gso_ = false;  // the route cannot segment after all: resend with the fallback
        continue;
      }
      if (s.msgs[0].msg_hdr.msg_control != nullptr && split_at != consumed) {
        split_at = consumed;  // this GSO Datagram, segment by segment
        continue;
      }
      // The first message was refused (EMSGSIZE, unreachable, ...): drop its Datagram.
      ++send_dropped_;
      ++consumed;
      continue;
    }
    if (r == 0) return consumed;
    // Messages [0, r) went out; a Datagram is consumed once its first message is out, and
    // the unsent fallback segments of a partly-sent Datagram are dropped.
    const auto sent = static_cast<std::size_t>(r);
    const std::size_t last = s.dgram[sent - 1];
    for (std::size_t m = sent; m < nmsg && s.dgram[m] == last; ++m)
      ++send_dropped_;
    consumed += last + 1;
  }
  return consumed;
}

}  // namespace ie::io
