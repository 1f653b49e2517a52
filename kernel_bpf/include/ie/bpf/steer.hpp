// ie::bpf::Steering: loads InterEdge's steering programs (kernel_bpf/steer.bpf.c, embedded as
// a bpftool skeleton), attaches them through bpf_link fds it owns, and reads/writes their maps.
// Destroying it closes the links, so everything detaches (also when the process is killed).
// Threading: attach_* and the destructor from one thread; map calls (policies, flow_mark,
// stats, info) are single syscalls and may be made from any thread. See docs/bpf.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ie/bpf/steer_abi.h"
#include "ie/util/result.hpp"

struct bpf_link;
struct ie_steer;  // the generated skeleton (steer.skel.h in the build dir)

namespace ie::bpf {

// The layout the BPF side sees (clang -target bpf) is the one C++ sees.
static_assert(sizeof(ie_flow_key) == 40);
static_assert(offsetof(ie_flow_key, family) == 0);
static_assert(offsetof(ie_flow_key, proto) == 1);
static_assert(offsetof(ie_flow_key, pad) == 2);
static_assert(offsetof(ie_flow_key, sport) == 4);
static_assert(offsetof(ie_flow_key, dport) == 6);
static_assert(offsetof(ie_flow_key, saddr) == 8);
static_assert(offsetof(ie_flow_key, daddr) == 24);
static_assert(sizeof(ie_flow_val) == 16);
static_assert(offsetof(ie_flow_val, mark) == 0);
static_assert(offsetof(ie_flow_val, last_ns) == 8);
static_assert(sizeof(ie_cgroup_policy) == 8);
static_assert(offsetof(ie_cgroup_policy, flags) == 4);
static_assert(sizeof(ie_stats) == 8 * IE_STAT_COUNT);

// BPF_TCX_EGRESS (Linux 6.6); Debian 12's linux/bpf.h predates it.
inline constexpr int kBpfTcxEgress = 47;

constexpr bool mark_in_range(std::uint32_t mark) {
  return (mark & IE_MARK_RANGE_MASK) == IE_MARK_BASE;
}
constexpr bool mark_is_explicit(std::uint32_t mark) {
  return (mark & IE_MARK_EXPLICIT_MASK) == IE_MARK_BASE;
}
constexpr bool mark_is_policy(std::uint32_t mark) {
  return mark_in_range(mark) && !mark_is_explicit(mark);
}
// Precondition: slot < IE_MAX_SLOTS / index < IE_MAX_POLICIES.
constexpr std::uint32_t explicit_mark(std::uint32_t slot) {
  return IE_MARK_BASE | slot;
}
constexpr std::uint32_t policy_mark(std::uint32_t index) {
  return IE_MARK_POLICY_BASE | index;
}

// A key of ie_flows, as the kernel sends the flow into the TUN (source = the local socket).
using FlowKey = ie_flow_key;
// Ports in host order; addresses as on the wire (network order bytes).
FlowKey flow_key_v4(std::uint8_t proto, std::span<const std::uint8_t, 4> saddr, std::uint16_t sport,
                    std::span<const std::uint8_t, 4> daddr, std::uint16_t dport);
FlowKey flow_key_v6(std::uint8_t proto, std::span<const std::uint8_t, 16> saddr,
                    std::uint16_t sport, std::span<const std::uint8_t, 16> daddr,
                    std::uint16_t dport);

// The per-CPU counters of ie_stats, summed; one field per IE_BPF_STATS entry.
struct Stats {
#define IE_STATS_FIELD_(name, text) std::uint64_t name = 0;
  IE_BPF_STATS(IE_STATS_FIELD_)
#undef IE_STATS_FIELD_

  // f(name, description, value) for every counter, in IE_BPF_STATS order.
  template <typename F>
  void for_each(F&& f) const {
#define IE_STATS_VISIT_(name, text) f(#name, text, name);
    IE_BPF_STATS(IE_STATS_VISIT_)
#undef IE_STATS_VISIT_
  }
};

// What the kernel reports about one loaded program (bpf_prog_info). run_time_ns/run_cnt
// stay 0 unless kernel.bpf_stats_enabled=1.
struct ProgramInfo {
  std::string name;
  std::uint32_t id = 0;
  std::uint32_t verified_insns = 0;
  std::uint32_t xlated_len = 0;  // bytes of the verified program
  std::uint32_t jited_len = 0;   // bytes of machine code
  std::uint64_t run_time_ns = 0;
  std::uint64_t run_cnt = 0;
};
struct ProgInfo {
  ProgramInfo sock_create;
  ProgramInfo tun_egress;
};

class Steering {
 public:
  // Opens and loads (verifies) the programs and creates the maps; attaches nothing.
  // Needs root (CAP_BPF + CAP_NET_ADMIN, or CAP_SYS_ADMIN): Errc::permission otherwise.
  static Result<std::unique_ptr<Steering>> load();
  ~Steering();
  Steering(const Steering&) = delete;
  Steering& operator=(const Steering&) = delete;

  // Attaches ie_sock_create to a cgroup v2 directory (it then runs for sockets created in
  // that cgroup and below). Each call adds one bpf_link.
  Result<void> attach_cgroup(const std::string& cgroup_dir);
  // Attaches ie_tun_egress to the egress of interface `ifindex` (tcx, Linux 6.6+).
  Result<void> attach_tun(int ifindex);

  // Sockets created in cgroup `cgroup_id` (or below, unless a deeper cgroup has its own
  // policy) get `mark`, which must be in InterEdge's range. Replaces an existing policy.
  Result<void> set_cgroup_policy(std::uint64_t cgroup_id, std::uint32_t mark);
  // Errc::not_found if the cgroup had no policy.
  Result<void> remove_cgroup_policy(std::uint64_t cgroup_id);

  // The id the kernel uses for a cgroup v2 directory (its inode number).
  static Result<std::uint64_t> cgroup_id(const std::string& dir);
  // Where cgroup v2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts).
  static Result<std::string> cgroup2_mount();

  // The mark recorded for a flow by ie_tun_egress, if any.
  std::optional<std::uint32_t> flow_mark(const FlowKey& key) const;
  Stats stats() const;
  ProgInfo info() const;

  // Raw fds for BPF_PROG_TEST_RUN and map inspection in tests and benchmarks.
  int tun_egress_fd_for_test() const;
  int sock_create_fd_for_test() const;
  int flows_fd_for_test() const;

 private:
  explicit Steering(ie_steer* skel) : skel_(skel) {}

  ie_steer* skel_;                       // owned; destroyed after the links
  std::vector<bpf_link*> cgroup_links_;  // owned (bpf_link__destroy)
  std::vector<int> tcx_links_;           // owned link fds
};

}  // namespace ie::bpf
