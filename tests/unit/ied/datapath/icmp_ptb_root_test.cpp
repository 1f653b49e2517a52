// The kernel's reaction to our "packet too big" messages. In a network namespace of its own:
//
//   UDP socket --(10.78.0.1 -> 10.78.0.2, DF, 1428 B)--> [TUN iedptb0] --read--> this test
//   UDP socket <--path MTU learned-- kernel <--write build_ptb(packet, 1300)-- this test
//
// (and the same for IPv6 with 1280). The socket's IP_MTU / IPV6_MTU and `ip route get` must
// show the MTU from our PTB; a copy with a broken checksum, written first, must not change it
// (so the check would catch a wrong checksum). Needs root: fails, never skips, without it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "ie/ied/flow_key.hpp"
#include "ie/ied/icmp_ptb.hpp"
#include "ie/ied/netlink.hpp"
#include "ie/io/tun.hpp"
#include "netns_guard.hpp"

namespace ie::ied {
namespace {

using namespace std::chrono_literals;
using test::sh;

class PtbRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "needs root (CAP_NET_ADMIN); CI runs these as root";
    static int n = 0;
    ns_.emplace("ptb" + std::to_string(n++));
    ASSERT_TRUE(ns_->ok()) << "could not create/enter netns " << ns_->name();
    auto tun = io::TunDevice::open("iedptb0");
    ASSERT_TRUE(tun.ok()) << tun.error().to_string();
    tun_.emplace(std::move(*tun));
    auto nl = Netlink::open();
    ASSERT_TRUE(nl.ok()) << nl.error().to_string();
    nl_.emplace(std::move(*nl));
    auto idx = nl_->ifindex("iedptb0");
    ASSERT_TRUE(idx.ok()) << idx.error().to_string();
    ASSERT_TRUE(nl_->add_address(*idx, *IpAddr::parse("10.78.0.1"), 24).ok());
    ASSERT_TRUE(nl_->add_address(*idx, *IpAddr::parse("fd78::1"), 64).ok());
    auto up = nl_->set_link(*idx, true, 1500);
    ASSERT_TRUE(up.ok()) << up.error().to_string();
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    nl_.reset();
    tun_.reset();
    ns_.reset();
  }

  // A connected UDP socket that never fragments, to peer:9000.
  void connect_udp(const IpAddr& peer) {
    fd_ = ::socket(peer.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    int v = peer.is_v4() ? IP_PMTUDISC_DO : IPV6_PMTUDISC_DO;
    ASSERT_EQ(::setsockopt(fd_, peer.is_v4() ? IPPROTO_IP : IPPROTO_IPV6,
                           peer.is_v4() ? IP_MTU_DISCOVER : IPV6_MTU_DISCOVER, &v, sizeof v),
              0);
    sockaddr_storage ss;
    const socklen_t len = peer.to_sockaddr(9000, &ss);
    ASSERT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len), 0) << errno;
  }

  int socket_mtu(bool v4) const {
    int mtu = 0;
    socklen_t len = sizeof mtu;
    if (::getsockopt(fd_, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_MTU : IPV6_MTU, &mtu, &len) != 0)
      return -errno;
    return mtu;
  }

  // Reads the TUN until a UDP packet to peer:9000 of `len` bytes shows up (the kernel may send
  // other packets, e.g. router solicitations); bounded by count and time.
  std::optional<Bytes> read_udp(const IpAddr& peer, std::size_t len) {
    std::uint8_t buf[2048];
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    for (int i = 0; i < 200 && std::chrono::steady_clock::now() < deadline; ++i) {
      pollfd p{tun_->fd(), POLLIN, 0};
      ::poll(&p, 1, 100);
      io::Packet pk{ByteSpan(buf), 0};
      auto r = tun_->read_batch(std::span(&pk, 1));
      if (!r.ok() || *r == 0) continue;
      auto k = parse_flow(ConstByteSpan(buf, pk.len));
      if (k && k->proto == kProtoUdp && k->dst_addr() == peer && k->dst_port == 9000 &&
          pk.len == len)
        return Bytes(buf, buf + pk.len);
    }
    return std::nullopt;
  }

  void write_tun(ConstByteSpan pkt) {
    Bytes copy(pkt.begin(), pkt.end());
    io::Packet pk{ByteSpan(copy), copy.size()};
    auto w = tun_->write_batch(std::span<const io::Packet>(&pk, 1));
    ASSERT_TRUE(w.ok()) << w.error().to_string();
    ASSERT_EQ(*w, 1u);
  }

  // Waits (bounded) until the socket's MTU is `want`; returns the last value seen.
  int wait_mtu(bool v4, int want) {
    int mtu = socket_mtu(v4);
    for (int i = 0; i < 100 && mtu != want; ++i) {
      std::this_thread::sleep_for(20ms);
      mtu = socket_mtu(v4);
    }
    return mtu;
  }

  void run(const IpAddr& peer, std::size_t payload, std::uint32_t ptb_mtu) {
    const bool v4 = peer.is_v4();
    connect_udp(peer);
    ASSERT_EQ(socket_mtu(v4), 1500);
    Bytes data(payload, 0x5a);
    ASSERT_EQ(::send(fd_, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
    const std::size_t ip_len = payload + 8 + (v4 ? 20 : 40);
    auto pkt = read_udp(peer, ip_len);
    ASSERT_TRUE(pkt) << "the UDP packet never reached the TUN";
    if (v4) {
      EXPECT_NE(load_be16(pkt->data() + 6) & 0x4000, 0) << "DF not set";
    }

    std::uint8_t out[1500];
    const std::size_t n = build_ptb(*pkt, ptb_mtu, peer, out);
    ASSERT_GT(n, 0u);
    // A broken ICMP checksum is dropped by the kernel: the MTU stays.
    Bytes broken(out, out + n);
    broken[(v4 ? 20 : 40) + 2] ^= 0x01;
    write_tun(broken);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(socket_mtu(v4), 1500) << "kernel took a PTB with a wrong checksum?";
    // The real one is taken.
    write_tun(ConstByteSpan(out, n));
    EXPECT_EQ(wait_mtu(v4, static_cast<int>(ptb_mtu)), static_cast<int>(ptb_mtu));
    auto rg = nl_->route_get(peer);
    ASSERT_TRUE(rg.ok()) << rg.error().to_string();
    EXPECT_EQ(rg->route_mtu, ptb_mtu);
    EXPECT_EQ(rg->path_mtu(), ptb_mtu);
    EXPECT_EQ(rg->link_mtu, 1500u);
    const std::string ipr = sh("ip route get " + peer.str());
    EXPECT_NE(ipr.find("mtu " + std::to_string(ptb_mtu)), std::string::npos) << ipr;
    // The connected socket was told too (the error the PTB reported, read and cleared here);
    // then a datagram above the learned MTU is refused locally and one that fits goes out.
    int so_error = 0;
    socklen_t el = sizeof so_error;
    ASSERT_EQ(::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &el), 0);
    EXPECT_EQ(so_error, EMSGSIZE);
    errno = 0;
    EXPECT_EQ(::send(fd_, data.data(), data.size(), 0), -1);
    EXPECT_EQ(errno, EMSGSIZE);
    const std::size_t fits = ptb_mtu - 8 - (v4 ? 20 : 40);
    EXPECT_EQ(::send(fd_, data.data(), fits, 0), static_cast<ssize_t>(fits)) << strerror(errno);
    EXPECT_TRUE(read_udp(peer, ptb_mtu)) << "the datagram that fits never reached the TUN";
  }

  std::optional<test::NetnsGuard> ns_;
  std::optional<io::TunDevice> tun_;
  std::optional<Netlink> nl_;
  int fd_ = -1;
};

TEST_F(PtbRoot, KernelLearnsIpv4MtuFromOurFragmentationNeeded) {
  run(*IpAddr::parse("10.78.0.2"), 1400, 1300);
}

TEST_F(PtbRoot, KernelLearnsIpv6MtuFromOurPacketTooBig) {
  run(*IpAddr::parse("fd78::2"), 1400, 1280);
}

}  // namespace
}  // namespace ie::ied
