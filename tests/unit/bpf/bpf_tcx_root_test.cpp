// ie_tun_egress attached with tcx to a real TUN (root; labels bpf, root): sockets with a mark
// in InterEdge's range send through the TUN (10.x.y.0/24 is routed there) and their flows
// show up in ie_flows; an unmarked or foreign-marked socket's packets leave no entry.
// Destroying the Steering detaches the program from the device.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "ie/bpf/steer.hpp"
#include "ie/io/tun.hpp"

namespace ie::bpf {
namespace {

// Programs attached at tcx egress of `ifindex`, or -1 on error.
int tcx_count(int ifindex) {
  std::uint32_t ids[8]{}, cnt = 8, flags = 0;
  const int rc =
      bpf_prog_query(ifindex, static_cast<bpf_attach_type>(kBpfTcxEgress), 0, &flags, ids, &cnt);
  return rc == 0 ? static_cast<int>(cnt) : -1;
}

struct Sent {
  FlowKey key{};
  bool ok = false;
};

// Opens a socket of `type` with SO_MARK `mark` (if nonzero), connects it to dst:port (TCP:
// non-blocking, the SYN is enough) and, for UDP, sends one datagram. Returns its flow key.
Sent send_from(int type, std::uint32_t mark, const sockaddr_in& dst) {
  Sent out;
  const int s = ::socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return out;
  if (mark != 0 && ::setsockopt(s, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) {
    ::close(s);
    return out;
  }
  const int rc = ::connect(s, reinterpret_cast<const sockaddr*>(&dst), sizeof dst);
  if (rc != 0 && errno != EINPROGRESS) {
    ::close(s);
    return out;
  }
  if (type == SOCK_DGRAM && ::send(s, "probe", 5, 0) != 5) {
    ::close(s);
    return out;
  }
  sockaddr_in src{};
  socklen_t len = sizeof src;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&src), &len);
  std::array<std::uint8_t, 4> sa{}, da{};
  std::memcpy(sa.data(), &src.sin_addr, 4);
  std::memcpy(da.data(), &dst.sin_addr, 4);
  out.key = flow_key_v4(type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP, sa, ntohs(src.sin_port),
                        da, ntohs(dst.sin_port));
  out.ok = true;
  ::close(s);
  return out;
}

TEST(TcxRoot, MarkedSocketsFlowsAreRecordedOnTheTun) {
  ASSERT_EQ(::geteuid(), 0u) << "BPF tcx tests need root; CI runs them as root";
  const unsigned pid = static_cast<unsigned>(::getpid());
  const std::string name = "iebpf" + std::to_string(pid % 100000);
  // A /24 unlikely to collide: 10.(150 + pid%50).(pid%250).0/24 (the TUN test uses 200+).
  const std::string net =
      "10." + std::to_string(150 + pid % 50) + "." + std::to_string(pid % 250) + ".";
  auto tun = io::TunDevice::open(name);
  ASSERT_TRUE(tun.ok()) << tun.error().to_string();
  auto addr = tun->set_ipv4(net + "1", 24);
  ASSERT_TRUE(addr.ok()) << addr.error().to_string();
  ASSERT_TRUE(tun->set_up(true).ok());
  const int ifindex = static_cast<int>(::if_nametoindex(name.c_str()));
  ASSERT_GT(ifindex, 0);

  auto loaded = Steering::load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  std::unique_ptr<Steering> steer = std::move(loaded.value());
  auto at = steer->attach_tun(ifindex);
  ASSERT_TRUE(at.ok()) << at.error().to_string();
  EXPECT_EQ(tcx_count(ifindex), 1);

  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(5353);
  ASSERT_EQ(::inet_pton(AF_INET, (net + "2").c_str(), &dst.sin_addr), 1);

  const Sent udp = send_from(SOCK_DGRAM, explicit_mark(7), dst);
  ASSERT_TRUE(udp.ok);
  EXPECT_EQ(steer->flow_mark(udp.key), std::optional<std::uint32_t>(explicit_mark(7)));

  dst.sin_port = htons(8443);
  const Sent tcp = send_from(SOCK_STREAM, policy_mark(2), dst);
  ASSERT_TRUE(tcp.ok);
  EXPECT_EQ(steer->flow_mark(tcp.key), std::optional<std::uint32_t>(policy_mark(2)));

  const Sent plain = send_from(SOCK_DGRAM, 0, dst);
  ASSERT_TRUE(plain.ok);
  EXPECT_EQ(steer->flow_mark(plain.key), std::nullopt);
  const Sent foreign = send_from(SOCK_DGRAM, 0x1e200001u, dst);
  ASSERT_TRUE(foreign.ok);
  EXPECT_EQ(steer->flow_mark(foreign.key), std::nullopt);

  const Stats st = steer->stats();
  EXPECT_GE(st.pkt_seen, 4u);
  EXPECT_GE(st.pkt_in_range, 2u);
  EXPECT_EQ(st.pkt_recorded, 2u);  // one per marked flow (a TCP SYN retry changes nothing)
  EXPECT_EQ(st.pkt_parse_fail, 0u);

  steer.reset();
  EXPECT_EQ(tcx_count(ifindex), 0);
}

TEST(TcxRoot, MissingInterfaceIsNotFound) {
  ASSERT_EQ(::geteuid(), 0u) << "needs root";
  auto loaded = Steering::load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  auto r = (*loaded)->attach_tun(0x7ffffff0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::not_found) << r.error().to_string();
}

}  // namespace
}  // namespace ie::bpf
