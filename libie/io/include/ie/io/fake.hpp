// In-memory fakes of the I/O seams for unit tests: a FakeNetwork of FakeDatagramPorts
// (addressed by sockaddr, with seeded knobs to drop, duplicate and reorder) and a
// FakePacketDevice (inject what the "kernel" sends, collect what the node writes), so whole
// nodes can exchange packets inside one process without sockets or root.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ie/io/datagram.hpp"

namespace ie::io {

class FakeNetwork;

class FakeDatagramPort final : public DatagramPort {
 public:
  Result<std::size_t> recv_batch(std::span<Datagram> out) override;
  Result<std::size_t> send_batch(std::span<const Datagram> in) override;
  int fd() const override { return -1; }
  const sockaddr_storage& address() const { return addr_; }
  socklen_t address_len() const { return addr_len_; }
  std::size_t pending() const { return inbox_.size(); }

 private:
  friend class FakeNetwork;
  struct Item {
    Bytes bytes;
    sockaddr_storage from;
    socklen_t from_len;
  };
  FakeNetwork* net_ = nullptr;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  std::deque<Item> inbox_;
};

class FakeNetwork {
 public:
  explicit FakeNetwork(std::uint64_t seed = 1) : rng_(seed) {}
  // A port at "ip:port" (as io::parse_endpoint reads it). Owned by the network.
  Result<FakeDatagramPort*> add_port(const std::string& endpoint);

  double drop = 0;       // probability a datagram is lost
  double duplicate = 0;  // probability it is delivered twice
  double reorder = 0;    // probability it overtakes the one queued before it
  std::uint64_t delivered = 0, dropped = 0, unroutable = 0;

 private:
  friend class FakeDatagramPort;
  void deliver(const FakeDatagramPort& from, const Datagram& d);
  std::map<std::string, std::unique_ptr<FakeDatagramPort>> ports_;  // key: endpoint string
  std::mt19937_64 rng_;
};

// Packets pass as given, with whatever frame header the test puts in front (frame_hdr:
// what frame_header_len() reports, e.g. kVnetHdrLen to stand in for an offloading TUN).
class FakePacketDevice final : public PacketDevice {
 public:
  explicit FakePacketDevice(std::size_t frame_hdr = 0) : frame_hdr_(frame_hdr) {}
  Result<std::size_t> read_batch(std::span<Packet> out) override;
  Result<std::size_t> write_batch(std::span<const Packet> in) override;
  int fd() const override { return -1; }
  std::size_t frame_header_len() const override { return frame_hdr_; }

  void inject(Bytes packet) { to_node_.push_back(std::move(packet)); }
  std::vector<Bytes> take_written() { return std::exchange(from_node_, {}); }

 private:
  std::size_t frame_hdr_ = 0;
  std::deque<Bytes> to_node_;
  std::vector<Bytes> from_node_;
};

}  // namespace ie::io
