// Cost of the steering programs (needs root; prints figures, not a test):
//  1. socket()+connect()+accept()+close() on loopback TCP from a process in a temporary
//     cgroup, with ie_sock_create attached there and a policy for the cgroup vs nothing
//     attached, alternating rounds in one run (median ns per connect, ratio);
//  2. ie_tun_egress per packet via BPF_PROG_TEST_RUN (repeat 1e6, the kernel's own average):
//     an unmarked packet, a marked packet of a known flow (the steady state), and for scale
//     an empty tc program (r0 = 0; exit);
//  3. the verifier's figures for both programs.
// Every loop is bounded in count and time. Usage: bench_bpf_steer [connects_per_round]
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ie/bpf/steer.hpp"
#include "temp_cgroup.hpp"

namespace {

using ie::bpf::Steering;
using Clock = std::chrono::steady_clock;

// Median ns of one loopback TCP connect (socket, connect, accept, RST close), over up to `n`
// connects or 2 s.
double connect_ns(int listener, const sockaddr_in& addr, int n) {
  std::vector<double> ns;
  ns.reserve(static_cast<std::size_t>(n));
  const auto stop = Clock::now() + std::chrono::seconds(2);
  const linger rst{1, 0};  // no TIME_WAIT pile-up over many rounds
  for (int i = 0; i < n && Clock::now() < stop; ++i) {
    const auto t0 = Clock::now();
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) break;
    if (::connect(c, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(c);
      break;
    }
    const int a = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    ::setsockopt(c, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
    ::close(c);
    if (a >= 0) ::close(a);
    ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
  }
  if (ns.empty()) return 0;
  std::nth_element(ns.begin(), ns.begin() + static_cast<long>(ns.size() / 2), ns.end());
  return ns[ns.size() / 2];
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The kernel's average ns per run of `prog_fd` on `pkt` with skb->mark = mark (1e6 runs).
double test_run_ns(int prog_fd, std::vector<std::uint8_t> pkt, std::uint32_t mark) {
  __sk_buff ctx{};
  ctx.mark = mark;
  bpf_test_run_opts o{};
  o.sz = sizeof o;
  o.data_in = pkt.data();
  o.data_size_in = static_cast<std::uint32_t>(pkt.size());
  o.ctx_in = &ctx;
  o.ctx_size_in = sizeof ctx;
  o.repeat = 1000000;
  if (bpf_prog_test_run_opts(prog_fd, &o) != 0) {
    std::fprintf(stderr, "BPF_PROG_TEST_RUN: %s\n", std::strerror(errno));
    return -1;
  }
  return o.duration;
}

// Ethernet + IPv4 + UDP (8 bytes) + 32 bytes of payload: 10.1.2.3:40000 -> 192.0.2.7:53.
std::vector<std::uint8_t> udp4_frame() {
  std::vector<std::uint8_t> b(14 + 20 + 8 + 32, 0);
  b[12] = 0x08;
  b[14] = 0x45;
  b[14 + 3] = 20 + 8 + 32;
  b[14 + 8] = 64;
  b[14 + 9] = IPPROTO_UDP;
  const std::uint8_t s[4] = {10, 1, 2, 3}, d[4] = {192, 0, 2, 7};
  std::memcpy(&b[14 + 12], s, 4);
  std::memcpy(&b[14 + 16], d, 4);
  b[34] = 40000 >> 8;
  b[35] = 40000 & 0xff;
  b[37] = 53;
  b[39] = 8 + 32;
  return b;
}

std::string own_cgroup(const std::string& mount) {
  std::ifstream f("/proc/self/cgroup");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("0::", 0) == 0) return mount + line.substr(3);
  return mount;
}

}  // namespace

int main(int argc, char** argv) {
  const int per_round = argc > 1 ? std::clamp(std::atoi(argv[1]), 100, 100000) : 5000;
  constexpr int kRounds = 5;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "bench_bpf_steer needs root (BPF, cgroups)\n");
    return 1;
  }
  auto mount = Steering::cgroup2_mount();
  if (!mount.ok()) {
    std::fprintf(stderr, "%s\n", mount.error().to_string().c_str());
    return 1;
  }

  // --- 1. connect() latency in a cgroup, with and without the sock_create program.
  const int lst = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof addr;
  if (lst < 0 || ::bind(lst, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lst, 128) != 0 || ::getsockname(lst, reinterpret_cast<sockaddr*>(&addr), &alen)) {
    std::perror("listen");
    return 1;
  }
  std::vector<double> off, on;
  std::uint64_t marked = 0;
  {
    const std::string home = own_cgroup(*mount);
    ie::bpf::cgtest::TempCgroup cg(*mount, "bench", *mount);
    if (!cg.ok() ||
        !ie::bpf::cgtest::write_file(cg.path() + "/cgroup.procs", std::to_string(::getpid()))) {
      std::fprintf(stderr, "cannot create/join a cgroup under %s\n", mount->c_str());
      return 1;
    }
    auto id = Steering::cgroup_id(cg.path());
    for (int r = 0; r < kRounds && id.ok(); ++r) {
      off.push_back(connect_ns(lst, addr, per_round));
      auto s = Steering::load();
      if (!s.ok() || !(*s)->attach_cgroup(cg.path()).ok() ||
          !(*s)->set_cgroup_policy(*id, ie::bpf::policy_mark(1)).ok()) {
        std::fprintf(stderr, "load/attach failed\n");
        break;
      }
      on.push_back(connect_ns(lst, addr, per_round));
      marked += (*s)->stats().sock_marked;
    }
    ie::bpf::cgtest::write_file(home + "/cgroup.procs", std::to_string(::getpid()));
  }
  ::close(lst);
  const double off_ns = median(off), on_ns = median(on);
  std::printf("connect_loopback_ns_without %.0f\n", off_ns);
  std::printf("connect_loopback_ns_with_sock_create %.0f (%llu sockets marked)\n", on_ns,
              static_cast<unsigned long long>(marked));
  if (off_ns > 0)
    std::printf("connect_ratio %.3f (delta %.0f ns; %d rounds x %d connects, medians)\n",
                on_ns / off_ns, on_ns - off_ns, kRounds, per_round);

  // --- 2. ie_tun_egress per packet vs an empty tc program.
  auto loaded = Steering::load();
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.error().to_string().c_str());
    return 1;
  }
  std::unique_ptr<Steering> steer = std::move(loaded.value());
  const bpf_insn empty[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},  // r0 = 0 (TC_ACT_OK)
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  const int empty_fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "ie_empty", "GPL", empty, 2, nullptr);
  const int egress = steer->tun_egress_fd_for_test();
  const auto pkt = udp4_frame();
  const double empty_ns = empty_fd >= 0 ? test_run_ns(empty_fd, pkt, 0) : -1;
  const double unmarked_ns = test_run_ns(egress, pkt, 0);
  test_run_ns(egress, pkt, ie::bpf::explicit_mark(1));  // creates the entry
  const double marked_ns = test_run_ns(egress, pkt, ie::bpf::explicit_mark(1));
  std::printf("tc_empty_ns_per_packet %.0f\n", empty_ns);
  std::printf("tun_egress_unmarked_ns_per_packet %.0f\n", unmarked_ns);
  std::printf("tun_egress_marked_known_flow_ns_per_packet %.0f\n", marked_ns);
  if (empty_ns > 0)
    std::printf("tun_egress_ratio_vs_empty unmarked %.2f marked %.2f\n", unmarked_ns / empty_ns,
                marked_ns / empty_ns);
  std::printf("tun_egress_flow_updates %llu (1 expected: only the first marked run writes)\n",
              static_cast<unsigned long long>(steer->stats().pkt_recorded));
  if (empty_fd >= 0) ::close(empty_fd);

  // --- 3. Verifier figures.
  const ie::bpf::ProgInfo info = steer->info();
  for (const auto* p : {&info.sock_create, &info.tun_egress})
    std::printf("prog %s verified_insns %u xlated_bytes %u jited_bytes %u\n", p->name.c_str(),
                p->verified_insns, p->xlated_len, p->jited_len);
  return 0;
}
