/* InterEdge steering programs (docs/bpf.md), loaded by steer_loader.cpp from a skeleton.
 *
 * ie_sock_create (cgroup/sock_create): on every AF_INET/AF_INET6 TCP/UDP socket a task
 *   creates, find the deepest cgroup of the task (cgroup v2) that has a policy in
 *   ie_cgroup_policy and put the policy's mark on the socket. Policy routing (ip rule
 *   fwmark) then sends that socket's traffic to the policy's prefixes into ie0. It never
 *   refuses a socket.
 * ie_tun_egress (tcx egress on ie0): for each packet leaving into ie0 whose skb->mark is in
 *   InterEdge's range, records flow (family, proto, addresses, ports) -> mark in ie_flows,
 *   writing only when the entry is missing or its mark differs. It never drops.
 *
 * Packet path of ie_tun_egress (the skb stays the kernel's; we only read it):
 *   1. mark check: out of range -> pass (one load, one compare)
 *   2. parse the IPv4/IPv6 header at the network header (bpf_skb_load_bytes_relative, so
 *      it reads the same bytes on a TUN, where the packet starts at the IP header, and in
 *      BPF_PROG_TEST_RUN, which prepends an Ethernet header) and the TCP/UDP ports
 *   3. ie_flows lookup; update only on miss or changed mark; refresh last_ns <= 1/s
 *   4. pass */
#include <linux/bpf.h> /* first: the libbpf headers below use its types */

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ie/bpf/steer_abi.h"

#define IE_ETH_P_IP 0x0800
#define IE_ETH_P_IPV6 0x86DD
#define IE_IPPROTO_TCP 6
#define IE_IPPROTO_UDP 17
#define IE_TC_PASS 0 /* TC_ACT_OK == TCX_PASS */

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, IE_CGROUP_POLICIES_MAX);
  __type(key, __u64); /* cgroup id */
  __type(value, struct ie_cgroup_policy);
} ie_cgroup_policy SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, IE_FLOWS_MAX);
  __type(key, struct ie_flow_key);
  __type(value, struct ie_flow_val);
} ie_flows SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ie_stats);
} ie_stats SEC(".maps");

static __always_inline struct ie_stats* stats_get(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&ie_stats, &zero);
}

/* Per-CPU counters: a plain increment is race-free. */
#define IE_COUNT(st, name)             \
  do {                                 \
    if (st) (st)->v[IE_STAT_##name]++; \
  } while (0)

SEC("cgroup/sock_create")
int ie_sock_create(struct bpf_sock* ctx) {
  if (ctx->family != IE_FAMILY_INET && ctx->family != IE_FAMILY_INET6) return 1;
  if (ctx->protocol != IE_IPPROTO_TCP && ctx->protocol != IE_IPPROTO_UDP) return 1;

  /* Deepest first: a level below the task's own cgroup yields id 0. */
  for (int level = IE_CGROUP_MAX_LEVEL - 1; level >= 0; level--) {
    __u64 id = bpf_get_current_ancestor_cgroup_id(level);
    if (!id) continue;
    struct ie_cgroup_policy* p = bpf_map_lookup_elem(&ie_cgroup_policy, &id);
    if (!p) continue;
    ctx->mark = p->mark;
    struct ie_stats* st = stats_get();
    IE_COUNT(st, sock_marked);
    break;
  }
  return 1; /* never refuse a socket */
}

/* Reads the IP header at the network header into key; returns the offset of the L4 header
 * from the network header (0 when the packet carries no ports to read), -1 if malformed. */
static __always_inline int parse_ip(struct __sk_buff* skb, struct ie_flow_key* key) {
  if (skb->protocol == bpf_htons(IE_ETH_P_IP)) {
    __u8 h[20];
    if (bpf_skb_load_bytes_relative(skb, 0, h, sizeof(h), BPF_HDR_START_NET)) return -1;
    const __u32 ihl = h[0] & 0x0f;
    if ((h[0] >> 4) != 4 || ihl < 5) return -1;
    key->family = IE_FAMILY_INET;
    key->proto = h[9];
    __builtin_memcpy(key->saddr, &h[12], 4);
    __builtin_memcpy(key->daddr, &h[16], 4);
    if (((h[6] & 0x1f) | h[7]) != 0) return 0; /* non-first fragment: no ports */
    return (int)(ihl * 4);
  }
  if (skb->protocol == bpf_htons(IE_ETH_P_IPV6)) {
    __u8 h[40];
    if (bpf_skb_load_bytes_relative(skb, 0, h, sizeof(h), BPF_HDR_START_NET)) return -1;
    if ((h[0] >> 4) != 6) return -1;
    key->family = IE_FAMILY_INET6;
    key->proto = h[6]; /* extension headers are not walked: proto only, ports 0 */
    __builtin_memcpy(key->saddr, &h[8], 16);
    __builtin_memcpy(key->daddr, &h[24], 16);
    return 40;
  }
  return -2;
}

SEC("tc")
int ie_tun_egress(struct __sk_buff* skb) {
  struct ie_stats* st = stats_get();
  IE_COUNT(st, pkt_seen);
  const __u32 mark = skb->mark;
  if ((mark & IE_MARK_RANGE_MASK) != IE_MARK_BASE) return IE_TC_PASS;
  IE_COUNT(st, pkt_in_range);

  struct ie_flow_key key = {};
  const int l4 = parse_ip(skb, &key);
  if (l4 == -2) {
    IE_COUNT(st, pkt_not_ip);
    return IE_TC_PASS;
  }
  if (l4 < 0) {
    IE_COUNT(st, pkt_parse_fail);
    return IE_TC_PASS;
  }
  if (l4 > 0 && (key.proto == IE_IPPROTO_TCP || key.proto == IE_IPPROTO_UDP)) {
    __be16 ports[2];
    if (bpf_skb_load_bytes_relative(skb, (__u32)l4, ports, sizeof(ports), BPF_HDR_START_NET)) {
      IE_COUNT(st, pkt_parse_fail);
      return IE_TC_PASS;
    }
    key.sport = ports[0];
    key.dport = ports[1];
  }

  struct ie_flow_val* v = bpf_map_lookup_elem(&ie_flows, &key);
  const __u64 now = bpf_ktime_get_coarse_ns();
  if (v && v->mark == mark) {
    /* The common case: known flow, same mark. Racing refreshes write similar times. */
    if (now - v->last_ns >= IE_FLOW_REFRESH_NS) v->last_ns = now;
    return IE_TC_PASS;
  }
  struct ie_flow_val nv = {.mark = mark, .pad = 0, .last_ns = now};
  if (bpf_map_update_elem(&ie_flows, &key, &nv, BPF_ANY))
    IE_COUNT(st, flow_update_fail);
  else
    IE_COUNT(st, pkt_recorded);
  return IE_TC_PASS;
}
