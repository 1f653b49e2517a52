// TUN device (ie/io/tun.hpp).
#include "ie/io/tun.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ie::io {
namespace {

// ioctls on interfaces go through any socket of the family.
Result<void> if_ioctl(unsigned long req, ifreq* ifr, const char* what) {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail(Errc::io, "socket", errno);
  const int r = ::ioctl(s, req, ifr);
  const int e = errno;
  ::close(s);
  if (r != 0)
    return fail(e == EPERM ? Errc::permission : Errc::io, std::string(what) + " " + ifr->ifr_name,
                e);
  return ok();
}

void set_name(ifreq* ifr, const std::string& name) {
  std::memset(ifr, 0, sizeof *ifr);
  std::strncpy(ifr->ifr_name, name.c_str(), IFNAMSIZ - 1);
}

}  // namespace

Result<TunDevice> TunDevice::open(const std::string& name, TunOptions options) {
  if (name.size() >= IFNAMSIZ)
    return fail(Errc::invalid_argument, "interface name too long: " + name);
  const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return fail(errno == EACCES ? Errc::permission : Errc::io, "open /dev/net/tun", errno);
  ifreq ifr;
  set_name(&ifr, name);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (options.offload) ifr.ifr_flags |= IFF_VNET_HDR;
  if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
    const int e = errno;
    ::close(fd);
    return fail(e == EPERM ? Errc::permission : Errc::io, "TUNSETIFF " + name, e);
  }
  if (options.offload) {
    // The header the kernel writes/expects in front of every packet, and what it may hand
    // us: packets with partial checksums and TCP segments of up to 64 KiB (no UDP
    // segmentation offload: UDP arrives as single datagrams).
    int hdr = static_cast<int>(kVnetHdrLen);
    const char* what = nullptr;
    if (::ioctl(fd, TUNSETVNETHDRSZ, &hdr) != 0) {
      what = "TUNSETVNETHDRSZ ";
    } else if (::ioctl(fd, TUNSETOFFLOAD,
                       static_cast<unsigned long>(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) != 0) {
      what = "TUNSETOFFLOAD ";
    }
    if (what != nullptr) {
      const int e = errno;
      ::close(fd);
      return fail(Errc::io, what + name, e);
    }
  }
  return TunDevice(fd, ifr.ifr_name, options.offload ? kVnetHdrLen : 0);
}

TunDevice& TunDevice::operator=(TunDevice&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    name_ = std::move(o.name_);
    hdr_ = o.hdr_;
    o.fd_ = -1;
  }
  return *this;
}

TunDevice::~TunDevice() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> TunDevice::set_mtu(int mtu) {
  ifreq ifr;
  set_name(&ifr, name_);
  ifr.ifr_mtu = mtu;
  return if_ioctl(SIOCSIFMTU, &ifr, "SIOCSIFMTU");
}

Result<void> TunDevice::set_ipv4(const std::string& addr, int prefix_len) {
  if (prefix_len < 0 || prefix_len > 32) return fail(Errc::invalid_argument, "prefix length");
  ifreq ifr;
  set_name(&ifr, name_);
  auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
  sin->sin_family = AF_INET;
  if (inet_pton(AF_INET, addr.c_str(), &sin->sin_addr) != 1)
    return fail(Errc::parse, "IPv4 address: " + addr);
  IE_TRY(if_ioctl(SIOCSIFADDR, &ifr, "SIOCSIFADDR"));
  set_name(&ifr, name_);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(prefix_len == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix_len));
  IE_TRY(if_ioctl(SIOCSIFNETMASK, &ifr, "SIOCSIFNETMASK"));
  return set_up(true);
}

Result<void> TunDevice::set_up(bool up) {
  ifreq ifr;
  set_name(&ifr, name_);
  IE_TRY(if_ioctl(SIOCGIFFLAGS, &ifr, "SIOCGIFFLAGS"));
  if (up)
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  else
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags & ~IFF_UP);
  return if_ioctl(SIOCSIFFLAGS, &ifr, "SIOCSIFFLAGS");
}

Result<std::size_t> TunDevice::read_batch(std::span<Packet> out) {
  std::size_t n = 0;
  for (; n < out.size(); ++n) {
    const ssize_t r = ::read(fd_, out[n].buf.data(), out[n].buf.size());
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      if (n > 0) break;
      return fail(Errc::io, "read " + name_, errno);
    }
    out[n].len = static_cast<std::size_t>(r);
  }
  return n;
}

Result<std::size_t> TunDevice::write_batch(std::span<const Packet> in) {
  std::size_t n = 0;
  for (; n < in.size(); ++n) {
    const ssize_t r = ::write(fd_, in[n].buf.data(), in[n].len);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      if (n > 0) break;
      return fail(Errc::io, "write " + name_, errno);
    }
  }
  return n;
}

}  // namespace ie::io
