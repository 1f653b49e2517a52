// TunDevice against the real kernel (needs root / CAP_NET_ADMIN; label `root`, and it fails
// rather than skips without it): create a uniquely named TUN, give it 10.x.y.1/24, bring it up,
// send a UDP datagram from an ordinary socket to 10.x.y.2 and read the IPv4 packet the kernel
// routes into the TUN; then write a packet into the TUN and check the kernel accepts it. The
// device is not persistent, so it vanishes when the fd closes, which is checked too.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ie/io/tun.hpp"
#include "ie/util/bytes.hpp"

namespace ie::io {
namespace {

using namespace std::chrono_literals;

// Sends msg (len bytes) from an ordinary UDP socket to addr:port, which a /24 route points
// into the TUN under test; the socket is closed before returning. dst receives the address.
// False if the socket could not be made or the datagram not sent.
bool send_udp_probe(const std::string& addr, std::uint16_t port, const void* msg, std::size_t len,
                    sockaddr_in* dst) {
  *dst = sockaddr_in{};
  dst->sin_family = AF_INET;
  dst->sin_port = htons(port);
  if (::inet_pton(AF_INET, addr.c_str(), &dst->sin_addr) != 1) return false;
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  const ssize_t n = ::sendto(s, msg, len, 0, reinterpret_cast<sockaddr*>(dst), sizeof *dst);
  ::close(s);
  return n == static_cast<ssize_t>(len);
}

TEST(TunRoot, RunsAsRoot) {
  ASSERT_EQ(::geteuid(), 0u) << "TUN tests need root (CAP_NET_ADMIN); CI runs them as root";
}

TEST(TunRoot, KernelRoutesUdpIntoTheTun) {
  ASSERT_EQ(::geteuid(), 0u) << "needs root";
  const unsigned pid = static_cast<unsigned>(::getpid());
  const std::string name = "ietun" + std::to_string(pid % 100000);
  // A /24 unlikely to collide with anything: 10.(200 + pid%50).(pid%250).0/24.
  const unsigned x = 200 + pid % 50, y = pid % 250;
  const std::string net = "10." + std::to_string(x) + "." + std::to_string(y) + ".";
  {
    auto tun = TunDevice::open(name);
    ASSERT_TRUE(tun.ok()) << tun.error().to_string();
    EXPECT_EQ(tun->name(), name);
    EXPECT_NE(::if_nametoindex(name.c_str()), 0u);
    ASSERT_TRUE(tun->set_mtu(1400).ok());
    auto addr = tun->set_ipv4(net + "1", 24);
    ASSERT_TRUE(addr.ok()) << addr.error().to_string();

    // An ordinary UDP socket sends to 10.x.y.2: the route for the /24 points into the TUN.
    sockaddr_in dst{};
    const char msg[] = "interedge-tun-probe";
    ASSERT_TRUE(send_udp_probe(net + "2", 4242, msg, sizeof msg, &dst));

    // Read until our UDP packet shows up (the kernel may also emit IPv6 router solicitations
    // or similar on a fresh link); bounded by count and time.
    std::uint8_t buf[2048];
    bool found = false;
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    for (int i = 0; i < 100 && !found && std::chrono::steady_clock::now() < deadline; ++i) {
      pollfd p{tun->fd(), POLLIN, 0};
      ::poll(&p, 1, 100);
      Packet pk{ByteSpan(buf), 0};
      auto r = tun->read_batch(std::span(&pk, 1));
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      if (*r == 0) continue;
      if (pk.len < 28 || (buf[0] >> 4) != 4 || buf[9] != IPPROTO_UDP) continue;
      const std::size_t ihl = (buf[0] & 0x0f) * 4u;
      ASSERT_GE(pk.len, ihl + 8 + sizeof msg);
      in_addr d{};
      std::memcpy(&d, buf + 16, 4);
      if (d.s_addr != dst.sin_addr.s_addr) continue;
      EXPECT_EQ(load_be16(buf + ihl + 2), 4242);                  // UDP destination port
      EXPECT_EQ(load_be16(buf + ihl + 4), 8 + sizeof msg);        // UDP length
      EXPECT_EQ(load_be16(buf + 2), pk.len);                      // IPv4 total length
      EXPECT_EQ(std::memcmp(buf + ihl + 8, msg, sizeof msg), 0);  // payload intact
      found = true;

      // Writing the same (valid) IPv4 packet back into the TUN is accepted by the kernel.
      Packet back{ByteSpan(buf), static_cast<std::uint32_t>(pk.len)};
      auto w = tun->write_batch(std::span<const Packet>(&back, 1));
      ASSERT_TRUE(w.ok()) << w.error().to_string();
      EXPECT_EQ(*w, 1u);
    }
    EXPECT_TRUE(found) << "no UDP packet to " << net << "2 arrived on " << name;
  }
  // Non-persistent: closing the fd removed the interface.
  EXPECT_EQ(::if_nametoindex(name.c_str()), 0u);
}

TEST(TunRoot, OffloadFramesCarryAVirtioNetHeader) {
  ASSERT_EQ(::geteuid(), 0u) << "needs root";
  const unsigned pid = static_cast<unsigned>(::getpid());
  const std::string name = "ietuo" + std::to_string(pid % 100000);
  const unsigned x = 150 + pid % 50, y = pid % 250;
  const std::string net = "10." + std::to_string(x) + "." + std::to_string(y) + ".";
  auto tun = TunDevice::open(name, TunOptions{.offload = true});
  ASSERT_TRUE(tun.ok()) << tun.error().to_string();
  EXPECT_EQ(tun->frame_header_len(), kVnetHdrLen);
  ASSERT_TRUE(tun->set_mtu(1400).ok());
  ASSERT_TRUE(tun->set_ipv4(net + "1", 24).ok());
  sockaddr_in dst{};
  const char msg[] = "interedge-offload-probe";
  ASSERT_TRUE(send_udp_probe(net + "2", 4243, msg, sizeof msg, &dst));
  std::vector<std::uint8_t> buf(kMaxTunFrame);
  bool found = false;
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  for (int i = 0; i < 100 && !found && std::chrono::steady_clock::now() < deadline; ++i) {
    pollfd p{tun->fd(), POLLIN, 0};
    ::poll(&p, 1, 100);
    Packet pk{ByteSpan(buf), 0};
    auto r = tun->read_batch(std::span(&pk, 1));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    if (*r == 0) continue;
    ASSERT_GE(pk.len, kVnetHdrLen);
    const std::uint8_t* ip = buf.data() + kVnetHdrLen;
    if (pk.len < kVnetHdrLen + 28 || (ip[0] >> 4) != 4 || ip[9] != IPPROTO_UDP) continue;
    found = true;
    // The header: no GSO for a small datagram; the checksum left to us (TUN_F_CSUM), its
    // location the UDP checksum field.
    EXPECT_EQ(buf[1], 0);  // gso_type NONE
    EXPECT_EQ(buf[0] & 1, 1) << "VIRTIO_NET_HDR_F_NEEDS_CSUM expected with TUN_F_CSUM";
    EXPECT_EQ(buf[6] | (buf[7] << 8), 20);  // csum_start: the UDP header
    EXPECT_EQ(buf[8] | (buf[9] << 8), 6);   // csum_offset: its checksum
    EXPECT_EQ(load_be16(ip + 2), pk.len - kVnetHdrLen);
    EXPECT_EQ(std::memcmp(ip + 28, msg, sizeof msg), 0);
    // A frame with an all-zero header is written as a plain packet.
    std::memset(buf.data(), 0, kVnetHdrLen);
    Packet back{ByteSpan(buf), pk.len};
    auto w = tun->write_batch(std::span<const Packet>(&back, 1));
    ASSERT_TRUE(w.ok()) << w.error().to_string();
    EXPECT_EQ(*w, 1u);
  }
  EXPECT_TRUE(found) << "no UDP frame arrived on " << name;
}

TEST(TunRoot, NameTooLongIsRejected) {
  ASSERT_EQ(::geteuid(), 0u) << "needs root";
  auto t = TunDevice::open("a-name-much-longer-than-ifnamsiz");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, Errc::invalid_argument);
}

}  // namespace
}  // namespace ie::io
