// A Linux TUN device (layer-3 packets, no packet-information header) behind the PacketDevice
// seam, with the few ioctls the daemon needs to bring it up: MTU, IPv4 address, link up.
// The device exists while the fd is open (non-persistent) and vanishes when it closes.
// Needs CAP_NET_ADMIN.
//
// With TunOptions::offload every frame read or written starts with a 10-byte virtio-net
// header (IFF_VNET_HDR) and the device offers checksum and TCP segmentation offload
// (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6): a read may return a TCP "super packet" of up to
// 64 KiB with a partial checksum, and a write may hand the kernel one (the daemon's side of
// this is ie/ied/tcp_offload.hpp). Read buffers must then hold kMaxTunFrame bytes.
#pragma once

#include <string>

#include "ie/io/datagram.hpp"

namespace ie::io {

struct TunOptions {
  bool offload = false;  // virtio-net header + checksum/TSO offloads (see above)
};

// The largest frame an offloading TUN returns: header + a 64 KiB IP packet.
inline constexpr std::size_t kMaxTunFrame = kVnetHdrLen + 65535;

class TunDevice final : public PacketDevice {
 public:
  // name: the wanted interface name ("ie0"), or "" for a kernel-chosen "tunN".
  static Result<TunDevice> open(const std::string& name, TunOptions options = {});

  TunDevice(TunDevice&& o) noexcept : fd_(o.fd_), name_(std::move(o.name_)), hdr_(o.hdr_) {
    o.fd_ = -1;
  }
  TunDevice& operator=(TunDevice&& o) noexcept;
  ~TunDevice() override;

  const std::string& name() const { return name_; }
  Result<void> set_mtu(int mtu);
  // Assigns addr/prefix (e.g. "10.77.0.1", 24) and brings the link up.
  Result<void> set_ipv4(const std::string& addr, int prefix_len);
  Result<void> set_up(bool up);

  Result<std::size_t> read_batch(std::span<Packet> out) override;
  Result<std::size_t> write_batch(std::span<const Packet> in) override;
  int fd() const override { return fd_; }
  std::size_t frame_header_len() const override { return hdr_; }

 private:
  TunDevice(int fd, std::string name, std::size_t hdr)
      : fd_(fd), name_(std::move(name)), hdr_(hdr) {}
  int fd_ = -1;
  std::string name_;
  std::size_t hdr_ = 0;  // 0 or kVnetHdrLen
};

}  // namespace ie::io
