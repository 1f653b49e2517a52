// A Linux TUN device (layer-3 packets, no packet-information header) behind the PacketDevice
// seam, with the few ioctls the daemon needs to bring it up: MTU, IPv4 address, link up.
// The device exists while the fd is open (non-persistent) and vanishes when it closes.
// Needs CAP_NET_ADMIN.
#pragma once

#include <string>

#include "ie/io/datagram.hpp"

namespace ie::io {

class TunDevice final : public PacketDevice {
 public:
  // name: the wanted interface name ("ie0"), or "" for a kernel-chosen "tunN".
  static Result<TunDevice> open(const std::string& name);

  TunDevice(TunDevice&& o) noexcept : fd_(o.fd_), name_(std::move(o.name_)) { o.fd_ = -1; }
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

 private:
  TunDevice(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  int fd_ = -1;
  std::string name_;
};

}  // namespace ie::io
