// Path MTU towards ied's next hops (SNs and direct peers) and what to do with an inner packet
// read from the TUN that would not fit the path once ILP (and e2e) bytes are added
// (docs/ied.md, "Path MTU").
//
// Where the path MTU comes from: the kernel. ied's UDP socket keeps the kernel's default
// path MTU discovery (IP_PMTUDISC_WANT / IPV6_PMTUDISC_WANT: DF on every datagram that fits),
// so a router with a smaller MTU answers with ICMP "fragmentation needed" / "packet too big",
// the kernel validates it against our socket and keeps the smaller MTU as a per-destination
// route exception. PathMtuCache reads it back per next hop (RTM_GETROUTE, the same answer
// `ip route get` prints), at most once per refresh period while the hop is in use.
//
// What happens to a packet (check_path_mtu): it fits -> sent; it does not fit and has DF
// (IPv4) or is IPv6 -> an ICMP "fragmentation needed" / ICMPv6 "packet too big" carrying the
// usable inner MTU is built for the TUN (icmp_ptb.hpp) and the packet is dropped, so the
// sender's kernel lowers its path MTU for that destination and TCP resegments; PTBs are
// rate-limited by a token bucket (like the kernel's icmp_msgs_per_sec/burst), and a packet
// over the limit is sent on. Everything sent on that is larger than the path (IPv4 without
// DF, IPv6 no larger than its 1280-byte minimum on a path that carries less, packets no PTB
// may answer, packets over the PTB rate) is fragmented by our kernel as an outer UDP datagram
// and reassembled by the SN or peer: nothing is black-holed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "ie/ied/ip_addr.hpp"
#include "ie/ied/plpmtud.hpp"
#include "ie/util/bytes.hpp"

namespace ie::ied {

// A token bucket: `per_second` tokens added per second, at most `burst` held; starts full.
class TokenBucket {
 public:
  using Time = std::chrono::steady_clock::time_point;
  TokenBucket(double per_second, double burst) : rate_(per_second), burst_(burst), tokens_(burst) {}
  // Takes one token if there is one.
  bool take(Time now);

 private:
  double rate_;
  double burst_;
  double tokens_;
  std::optional<Time> last_;
};

// The kernel's defaults for ICMP errors (net.ipv4.icmp_msgs_per_sec, icmp_msgs_burst).
inline constexpr double kPtbPerSecond = 1000;
inline constexpr double kPtbBurst = 50;

enum class MtuAction : std::uint8_t {
  send,              // fits the path
  ptb,               // answered with the PTB in ptb_out (ptb_len bytes); drop the packet
  fragment_outside,  // too big, but no PTB may answer it: send it (the outer is fragmented)
  rate_limited,      // a PTB was due but the bucket is empty: send it (the outer is fragmented)
  fragmented,        // (ied, on a black hole: not check_path_mtu) sent as inner fragments
};

// The decision for one inner IP packet (checksummed, as read from the TUN) on a path that
// carries inner packets of at most max_inner bytes. A PTB (build_ptb, source: the packet's
// destination, MTU max_inner) takes one token from bucket; ptb_out must hold kPtbMaxV6 bytes.
MtuAction check_path_mtu(ConstByteSpan pkt, std::size_t max_inner, TokenBucket& bucket,
                         TokenBucket::Time now, ByteSpan ptb_out, std::size_t* ptb_len);

struct FlowEntry;  // flow_table.hpp

// Whether a packet goes out after check_path_mtu said `action`: every action but ptb (the PTB
// answers it and the packet is dropped). Counts a packet that goes out in its flow's
// packets_out/bytes_out (flow may be null: no flow entry), so a flow counts only what was
// sent.
bool count_if_sent(FlowEntry* flow, std::size_t bytes, MtuAction action);

// Bytes ILP adds around an inner packet of an ILP datagram: outer IP header (by the next
// hop's family) + UDP + PSP header + ILP header with its TLVs (wire::ilp_header_len) + PSP tag.
std::size_t ilp_datagram_overhead(bool outer_v6, std::size_t ilp_header_len);

// Path MTUs of next hops, by UDP endpoint ("a.b.c.d:port", "[v6]:port"), looked up through
// a function (ied: Netlink::route_get(addr).path_mtu()) when first asked and again when the
// last look-up is older than the refresh period (a route exception appears when an ICMP
// arrives, and expires after net.ipv4.route.mtu_expires). Bounded: past max_entries the
// entry looked up longest ago is forgotten. Single-threaded.
class PathMtuCache {
 public:
  using Time = std::chrono::steady_clock::time_point;
  using Lookup = std::function<std::optional<std::uint32_t>(const IpAddr&)>;
  struct Hop {
    IpAddr addr;
    std::uint32_t mtu = 0;    // 0: never looked up successfully
    std::uint64_t drops = 0;  // times the MTU went down
    Time checked{};
    // Black-hole detection (plpmtud.hpp), driven by ied for the link peer that last used
    // this hop (0: none), while datagrams above Plpmtud::kFloor went there (last_big).
    Plpmtud plpmtud;
    std::uint64_t peer = 0;
    Time last_big{};
    // IP and UDP header bytes by the hop's family.
    std::size_t headers() const { return (addr.is_v6() ? 40u : 20u) + 8u; }
    // The largest UDP payload the kernel sends to the hop with DF (0: MTU unknown).
    std::size_t kernel_payload() const { return mtu > headers() ? mtu - headers() : 0; }
    // The path MTU to use: the kernel's, or the black-hole limit found if smaller.
    std::uint32_t usable_mtu() const {
      const auto cap = plpmtud.cap();
      return cap && *cap + headers() < mtu ? static_cast<std::uint32_t>(*cap + headers()) : mtu;
    }
  };

  PathMtuCache(Lookup lookup, std::chrono::milliseconds refresh, std::size_t max_entries = 1024)
      : lookup_(std::move(lookup)), refresh_(refresh), max_(max_entries) {}

  // The next hop's entry, refreshed when due; nullptr for an unparsable endpoint or one whose
  // path MTU could never be looked up (the caller then sends without a check). A failed
  // refresh keeps the last value.
  Hop* get(const std::string& endpoint, Time now);
  const std::map<std::string, Hop>& hops() const { return hops_; }
  std::map<std::string, Hop>& hops() { return hops_; }

 private:
  Lookup lookup_;
  std::chrono::milliseconds refresh_;
  std::size_t max_;
  std::map<std::string, Hop> hops_;
};

}  // namespace ie::ied
