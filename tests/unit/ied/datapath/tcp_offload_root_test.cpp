// TCP through two offloading TUNs (io::TunOptions::offload) joined by a relay that does what
// ied does with them (tcp_offload.hpp): every frame read is opened, super packets cut into
// segments, and each read batch coalesced again before it is written to the other TUN.
//
//   netns A (this thread)                                           netns B
//   client 10.79.0.1 / fd79::1 -- [ietoa0] <- relay thread -> [ietob0] -- server .2 / ::2
//
// 24 MiB go from A to B and 8 MiB back; both sides check every byte (a position-dependent
// pattern, so loss, reordering or duplication shows). The kernel must have handed the relay
// TCP super packets and taken coalesced ones. Needs root: fails, never skips, without it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "ie/ied/ip_addr.hpp"
#include "ie/ied/tcp_offload.hpp"
#include "ie/io/tun.hpp"
#include "netns_guard.hpp"

namespace ie::ied {
namespace {

using test::sh;
using namespace std::chrono_literals;

std::uint8_t pattern(std::uint64_t i, std::uint8_t salt) {
  return static_cast<std::uint8_t>(((i * 2654435761u) >> 13) ^ (i >> 20) ^ salt);
}

struct RelayStats {
  std::atomic<std::uint64_t> frames{0}, rx_super{0}, tx_super{0}, bad{0}, write_errors{0};
};

// Moves frames from `from` to `to` as ied would: open, segment, coalesce per read batch.
class Relay {
 public:
  Relay() : frames_(kRead * io::kMaxTunFrame), slots_(kSlots * 2048) {}

  void pass(io::TunDevice& from, io::TunDevice& to, RelayStats& st) {
    io::Packet rd[kRead];
    for (std::size_t i = 0; i < kRead; ++i)
      rd[i].buf = ByteSpan(frames_.data() + i * io::kMaxTunFrame, io::kMaxTunFrame);
    auto n = from.read_batch(std::span<io::Packet>(rd, kRead));
    if (!n.ok() || *n == 0) return;
    std::vector<ConstByteSpan> pkts;
    std::size_t used = 0;
    for (std::size_t j = 0; j < *n; ++j) {
      ++st.frames;
      const auto f = open_tun_frame(ByteSpan(rd[j].buf.data(), rd[j].len));
      if (!f) {
        ++st.bad;
        continue;
      }
      if (!f->gso) {
        pkts.push_back(f->packet);
        continue;
      }
      ++st.rx_super;
      for (std::size_t s = 0; s < f->segments && used < kSlots; ++s) {
        const ByteSpan slot(slots_.data() + used * 2048, 2048);
        const std::size_t len = write_segment(*f, s, slot);
        if (len == 0) {
          ++st.bad;
          continue;
        }
        pkts.push_back(slot.first(len));
        ++used;
      }
    }
    c_.clear();
    for (const auto& p : pkts)
      c_.add(p);
    std::vector<Bytes> singles;
    singles.reserve(pkts.size());
    std::vector<io::Packet> out;
    for (const auto& it : c_.finish()) {
      if (it.frame.empty()) {
        Bytes b(io::kVnetHdrLen, 0);
        b.insert(b.end(), pkts[it.index].begin(), pkts[it.index].end());
        singles.push_back(std::move(b));
        out.push_back(io::Packet{ByteSpan(singles.back()), singles.back().size()});
      } else {
        ++st.tx_super;
        out.push_back(io::Packet{it.frame, it.frame.size()});
      }
    }
    std::size_t done = 0;
    for (int tries = 0; done < out.size() && tries < 100; ++tries) {
      auto w = to.write_batch(std::span<const io::Packet>(out.data() + done, out.size() - done));
      if (!w.ok()) {
        ++st.write_errors;
        ++done;  // skip the one the kernel refused
        continue;
      }
      done += *w;
    }
  }

 private:
  static constexpr std::size_t kRead = 8;
  static constexpr std::size_t kSlots = 8 * 64;
  std::vector<std::uint8_t> frames_;
  std::vector<std::uint8_t> slots_;
  TcpCoalescer c_;
};

class TcpOffloadRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "needs root (CAP_NET_ADMIN); CI runs these as root";
    static int n = 0;
    const std::string tag = std::to_string(n++);
    a_.emplace("tofa" + tag);
    ASSERT_TRUE(a_->ok()) << "could not create/enter netns " << a_->name();
    ns_a_ = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(ns_a_, 0);
    auto ta = io::TunDevice::open("ietoa0", io::TunOptions{.offload = true});
    ASSERT_TRUE(ta.ok()) << ta.error().to_string();
    tun_a_.emplace(std::move(*ta));
    EXPECT_EQ(tun_a_->frame_header_len(), io::kVnetHdrLen);
    up("ietoa0", "10.79.0.1", "fd79::1");
    b_.emplace("tofb" + tag);  // enters B
    ASSERT_TRUE(b_->ok()) << "could not create/enter netns " << b_->name();
    auto tb = io::TunDevice::open("ietob0", io::TunOptions{.offload = true});
    ASSERT_TRUE(tb.ok()) << tb.error().to_string();
    tun_b_.emplace(std::move(*tb));
    up("ietob0", "10.79.0.2", "fd79::2");
    listen4_ = listener(AF_INET);
    listen6_ = listener(AF_INET6);
    ASSERT_EQ(::setns(ns_a_, CLONE_NEWNET), 0);  // back to A for the client
  }
  void TearDown() override {
    stop_ = true;
    if (relay_.joinable()) relay_.join();
    for (int fd : {listen4_, listen6_})
      if (fd >= 0) ::close(fd);
    tun_b_.reset();
    tun_a_.reset();
    b_.reset();  // back in A, B deleted
    if (ns_a_ >= 0) ::close(ns_a_);
    a_.reset();
  }

  void up(const std::string& dev, const std::string& v4, const std::string& v6) {
    int st = 0;
    sh("ip addr add " + v4 + "/24 dev " + dev + " && ip addr add " + v6 + "/64 dev " + dev +
           " nodad && ip link set " + dev + " mtu 1400 up",
       &st);
    ASSERT_EQ(st, 0) << "bringing up " << dev;
  }

  int listener(int family) {
    const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage ss;
    const IpAddr any = *IpAddr::parse(family == AF_INET ? "10.79.0.2" : "fd79::2");
    const socklen_t len = any.to_sockaddr(5201, &ss);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&ss), len), 0) << strerror(errno);
    EXPECT_EQ(::listen(fd, 1), 0);
    return fd;
  }

  void start_relay() {
    relay_ = std::thread([this] {
      Relay ab, ba;
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      while (!stop_ && std::chrono::steady_clock::now() < deadline) {
        pollfd p[2] = {{tun_a_->fd(), POLLIN, 0}, {tun_b_->fd(), POLLIN, 0}};
        if (::poll(p, 2, 50) <= 0) continue;
        if (p[0].revents & POLLIN) ab.pass(*tun_a_, *tun_b_, a_to_b_);
        if (p[1].revents & POLLIN) ba.pass(*tun_b_, *tun_a_, b_to_a_);
      }
    });
  }

  static void set_timeouts(int fd) {
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  static bool send_pattern(int fd, std::uint64_t total, std::uint8_t salt) {
    std::vector<std::uint8_t> buf(256 * 1024);
    for (std::uint64_t off = 0; off < total;) {
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), total - off));
      for (std::size_t i = 0; i < n; ++i)
        buf[i] = pattern(off + i, salt);
      std::size_t sent = 0;
      while (sent < n) {
        const ssize_t r = ::send(fd, buf.data() + sent, n - sent, MSG_NOSIGNAL);
        if (r <= 0) return false;
        sent += static_cast<std::size_t>(r);
      }
      off += n;
    }
    return true;
  }

  // Reads to EOF; the count of bytes that arrived in order and intact (stops at the first bad).
  static std::uint64_t recv_pattern(int fd, std::uint8_t salt) {
    std::vector<std::uint8_t> buf(256 * 1024);
    std::uint64_t off = 0;
    for (;;) {
      const ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
      if (r <= 0) return off;
      for (ssize_t i = 0; i < r; ++i)
        if (buf[static_cast<std::size_t>(i)] != pattern(off + static_cast<std::uint64_t>(i), salt))
          return off + static_cast<std::uint64_t>(i);
      off += static_cast<std::uint64_t>(r);
    }
  }

  void transfer(bool v6) {
    start_relay();
    constexpr std::uint64_t kUp = 24ull << 20, kDown = 8ull << 20;
    std::atomic<std::uint64_t> server_got{0};
    std::atomic<bool> server_sent{false};
    const int lfd = v6 ? listen6_ : listen4_;
    std::thread server([&] {
      pollfd p{lfd, POLLIN, 0};
      if (::poll(&p, 1, 10000) != 1) return;
      const int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      set_timeouts(c);
      server_got = recv_pattern(c, 1);
      server_sent = send_pattern(c, kDown, 2);
      ::close(c);
    });
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    set_timeouts(fd);
    sockaddr_storage ss;
    const socklen_t len = IpAddr::parse(v6 ? "fd79::2" : "10.79.0.2")->to_sockaddr(5201, &ss);
    const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
    EXPECT_TRUE(connected) << strerror(errno);
    bool sent = false;
    std::uint64_t got = 0;
    if (connected) {
      sent = send_pattern(fd, kUp, 1);
      ::shutdown(fd, SHUT_WR);
      got = recv_pattern(fd, 2);
    }
    ::close(fd);
    server.join();
    stop_ = true;
    relay_.join();
    EXPECT_TRUE(sent);
    EXPECT_EQ(server_got.load(), kUp);
    EXPECT_TRUE(server_sent.load());
    EXPECT_EQ(got, kDown);
    // Offloads were really used both ways, and nothing the kernel sent was refused.
    EXPECT_GT(a_to_b_.rx_super.load(), 0u) << "no TSO super packet read from A's TUN";
    EXPECT_GT(b_to_a_.rx_super.load(), 0u) << "no TSO super packet read from B's TUN";
    EXPECT_GT(a_to_b_.tx_super.load() + b_to_a_.tx_super.load(), 0u) << "nothing coalesced";
    EXPECT_EQ(a_to_b_.bad.load() + b_to_a_.bad.load(), 0u);
    EXPECT_EQ(a_to_b_.write_errors.load() + b_to_a_.write_errors.load(), 0u);
    std::printf(
        "A->B frames %llu (super in %llu, out %llu); B->A frames %llu (super in %llu, "
        "out %llu)\n",
        static_cast<unsigned long long>(a_to_b_.frames.load()),
        static_cast<unsigned long long>(a_to_b_.rx_super.load()),
        static_cast<unsigned long long>(a_to_b_.tx_super.load()),
        static_cast<unsigned long long>(b_to_a_.frames.load()),
        static_cast<unsigned long long>(b_to_a_.rx_super.load()),
        static_cast<unsigned long long>(b_to_a_.tx_super.load()));
  }

  std::optional<test::NetnsGuard> a_, b_;
  int ns_a_ = -1;
  std::optional<io::TunDevice> tun_a_, tun_b_;
  int listen4_ = -1, listen6_ = -1;
  std::thread relay_;
  std::atomic<bool> stop_{false};
  RelayStats a_to_b_, b_to_a_;
};

TEST_F(TcpOffloadRoot, Ipv4TransferIntact) {
  transfer(false);
}

TEST_F(TcpOffloadRoot, Ipv6TransferIntact) {
  transfer(true);
}

TEST(TunOffloadRoot, PlainModeStaysPlain) {
  ASSERT_EQ(::geteuid(), 0u) << "needs root (CAP_NET_ADMIN); CI runs these as root";
  test::NetnsGuard ns("tofp");
  ASSERT_TRUE(ns.ok());
  auto t = io::TunDevice::open("ietop0");
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ(t->frame_header_len(), 0u);
  auto o = io::TunDevice::open("ietoo0", io::TunOptions{.offload = true});
  ASSERT_TRUE(o.ok()) << o.error().to_string();
  EXPECT_EQ(o->frame_header_len(), io::kVnetHdrLen);
}

}  // namespace
}  // namespace ie::ied
