/* The steering ABI shared by the BPF programs (steer.bpf.c) and C++ (steer.hpp): mark
 * layout, map keys/values and the statistics slots. One copy, included by both sides;
 * fixed-width fields with explicit padding, so the layout is the same for clang -target bpf
 * and g++ (steer.hpp static_asserts sizes and offsets). See docs/bpf.md. */
#ifndef IE_BPF_STEER_ABI_H
#define IE_BPF_STEER_ABI_H

#include <linux/types.h>

/* Socket marks. A steered socket's SO_MARK satisfies (mark & IE_MARK_RANGE_MASK) ==
 * IE_MARK_BASE. Explicitly steered sockets: IE_MARK_BASE | slot, slot < IE_MAX_SLOTS (so
 * (mark & IE_MARK_EXPLICIT_MASK) == IE_MARK_BASE). Cgroup policies: IE_MARK_POLICY_BASE |
 * index, index < IE_MAX_POLICIES. IE_MARK_POLICY_BIT tells the two apart: set in a policy's
 * mark, clear in an explicit one (whose slots are the values below it). */
#define IE_MARK_RANGE_MASK 0xfff00000u
#define IE_MARK_BASE 0x1e100000u
#define IE_MARK_POLICY_BIT 0x80000u
#define IE_MARK_EXPLICIT_MASK (IE_MARK_RANGE_MASK | IE_MARK_POLICY_BIT)
#define IE_MARK_POLICY_BASE (IE_MARK_BASE | IE_MARK_POLICY_BIT)
#define IE_MAX_SLOTS IE_MARK_POLICY_BIT
#define IE_MAX_POLICIES 64u

/* Map sizes. */
#define IE_FLOWS_MAX 65536u          /* ie_flows: LRU, oldest flows fall out first */
#define IE_CGROUP_POLICIES_MAX 1024u /* ie_cgroup_policy: cgroups with a policy */

/* Deepest cgroup level the sock_create program looks at (root = level 0). */
#define IE_CGROUP_MAX_LEVEL 16

/* ie_flow_key.family: the AF_* values of Linux. */
#define IE_FAMILY_INET 2
#define IE_FAMILY_INET6 10

/* ie_tun_egress refreshes ie_flow_val.last_ns of an unchanged flow at most this often. */
#define IE_FLOW_REFRESH_NS 1000000000ull

/* ie_flows key: one flow as the kernel sends it into the TUN (source = local side).
 * IPv4 addresses in the first 4 bytes of saddr/daddr, the other 12 zero. Ports in network
 * order; 0 when the protocol has none (or for non-first IPv4 fragments). */
struct ie_flow_key {
  __u8 family; /* IE_FAMILY_INET or IE_FAMILY_INET6 */
  __u8 proto;  /* IPPROTO_* (IPv6: the next header of the fixed header) */
  __u16 pad;   /* zero */
  __be16 sport;
  __be16 dport;
  __u8 saddr[16];
  __u8 daddr[16];
};

/* ie_flows value. */
struct ie_flow_val {
  __u32 mark;    /* skb->mark of the flow's latest recorded packet */
  __u32 pad;     /* zero */
  __u64 last_ns; /* bpf_ktime_get_coarse_ns() of the last refresh (CLOCK_MONOTONIC_COARSE) */
};

/* ie_cgroup_policy: key __u64 cgroup id (the cgroup v2 directory's inode number). */
struct ie_cgroup_policy {
  __u32 mark;  /* set on every AF_INET/AF_INET6 TCP/UDP socket created in the cgroup */
  __u32 flags; /* reserved, zero */
};

/* Statistics: one PERCPU_ARRAY ie_stats with a single struct ie_stats per CPU (one lookup
 * per packet), X(name, description). */
#define IE_BPF_STATS(X)                                                         \
  X(sock_marked, "sockets marked by a cgroup policy (cgroup/sock_create)")      \
  X(pkt_seen, "packets seen on the TUN egress (tcx)")                           \
  X(pkt_in_range, "packets whose mark is in InterEdge's range")                 \
  X(pkt_recorded, "flow entries created or changed in ie_flows")                \
  X(pkt_parse_fail, "in-range packets with a truncated or malformed IP header") \
  X(pkt_not_ip, "in-range packets that are neither IPv4 nor IPv6")              \
  X(flow_update_fail, "ie_flows updates the kernel refused")

enum ie_stat {
#define IE_STAT_ENUM_(name, text) IE_STAT_##name,
  IE_BPF_STATS(IE_STAT_ENUM_)
#undef IE_STAT_ENUM_
      IE_STAT_COUNT
};

struct ie_stats {
  __u64 v[IE_STAT_COUNT];
};

#endif /* IE_BPF_STEER_ABI_H */
