// ied.toml: the host daemon's configuration (docs/ied.md has the reference). Parsed and
// validated in one go; every error is "FILE:LINE:COL: what". Unknown keys and tables are
// errors, so a typo never passes silently. Example:
//
//   [daemon]
//   state_dir = "/var/lib/interedge"        # identity key and state database
//   socket = "/run/interedge/ied.sock"      # control socket (mode 0666; admin: root + group)
//   admin_group = "interedge"               # may change settings (optional)
//   listen = "0.0.0.0:0"                    # UDP endpoint for associations
//
//   [tun]
//   name = "ie0"
//   mtu = 0                                  # 0: from the path MTU to the SN minus overhead
//
//   [host]
//   addresses = ["10.1.0.2"]                 # our addresses, registered with the SN
//   prefixes = ["10.2.0.0/16"]               # destinations steered into the TUN
//
//   [discovery]
//   order = ["static", "dns", "anycast"]     # sources, preferred in this order
//   dns_domain = "dom1.example"              # SRV _interedge._udp.<domain>
//   anycast = ["192.0.2.1:1000"]             # probed with XX first contact (docs/discovery.md)
//   anycast_interval_s = 60                  # re-probe period (and at once when no SN is up)
//   rtt_survey_s = 300                       # re-measure candidates' RTT (0: rank by order)
//   dns_servers = ["192.0.2.53:53"]          # default: /etc/resolv.conf
//   peer_dns = true                          # look up peers' SN and key by reverse TXT
//   iesp = "default"                         # the IESP of DNS and anycast candidates
//   default_iesp = "default"                 # flows no [[policy]] names (docs/discovery.md)
//
//   [[iesp]]                                 # another IESP whose SNs are discovered
//   name = "beta"
//   dns_domain = "beta.example"              # its own SRV/TXT records (docs/discovery.md)
//   anycast = ["192.0.2.2:1000"]             # and/or its own anycast addresses
//
//   [[sn]]                                   # a statically configured SN
//   name = "dom1.sn1"
//   endpoint = "192.0.2.1:1000"
//   key = "base64 X25519 public key"
//   priority = 10                            # lower is preferred (as in SRV)
//   iesp = "default"                         # the edge-service provider it belongs to
//
//   [[policy]]                               # which IESP carries a flow (first hop)
//   prefix = "10.3.0.0/16"                   # destination (longest prefix wins), and/or
//   service = "ip-uncached"                  # the flow's service or bundle
//   iesp = "acme"                            # an IESP some [[sn]] or discovery serves
//
//   [[peer]]                                 # a statically known InterEdge host / prefix
//   prefix = "10.2.0.0/24"
//   sn = "dom2.sn1"                          # its first-hop SN
//   key = "base64 X25519 public key"         # its static key (optional: without it we
//                                            # only answer sessions it opens)
//   endpoint = "172.16.9.2:1001"             # its ied's UDP endpoint: direct path if on-link
//
//   [timers]
//   keepalive_ms = 1000                      # association keepalive / liveness probes
//   dead_after_ms = 3000                     # failover when an SN is silent this long
//
//   [steering]                               # docs/bpf.md
//   enabled = true                           # BPF programs, marks and rules (needs CAP_BPF)
//   table = 7300                             # routing tables table .. table+64
//   rule_priority = 7300                     # `ip rule` preference of ied's rules
//
//   [[steering.policy]]                      # every socket made in this cgroup (and below)
//   cgroup = "/sys/fs/cgroup/apps.slice"     # goes through InterEdge to these prefixes,
//   prefixes = ["10.2.0.0/16"]               # whatever program (static, Go, io_uring)
//   service = "ip"
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ie/crypto/noise.hpp"
#include "ie/util/result.hpp"

namespace ie::ied {

struct StaticSn {
  std::string name;      // DOM.SN
  std::string endpoint;  // ip:port
  crypto::noise::PublicKey key{};
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  std::string iesp = "default";  // the IESP (edge-service provider) it belongs to
  bool operator==(const StaticSn&) const = default;
};

struct StaticPeer {
  std::string prefix;  // "10.2.0.0/24" (validated)
  std::string sn;      // DOM.SN
  // The hosts' static key, to open end-to-end sessions to them. Without it we only answer
  // hosts that open a session to us (their key comes with their handshake).
  std::optional<crypto::noise::PublicKey> key;
  // Its ied's UDP endpoint ("ip:port"): when that is on one of our links (no gateway on the
  // route) and key is set, the two daemons associate directly and bypass the SNs.
  std::string endpoint;
  bool operator==(const StaticPeer&) const = default;
};

// [[policy]]: flows to `prefix` (longest prefix wins) and/or of `service` (a service or
// bundle name, as a socket or [[steering.policy]] chose it; flows that reached the TUN by a
// route are "ip") take their first hop through an SN of `iesp` (iesp_policy.hpp).
struct FlowPolicy {
  std::string prefix;   // "" any destination
  std::string service;  // "" any service
  std::string iesp;
  bool operator==(const FlowPolicy&) const = default;
};

inline constexpr std::size_t kMaxFlowPolicies = 256;
inline constexpr std::size_t kMaxIespNameLen = 31;
inline constexpr const char* kDefaultIesp = "default";

// An IESP name: 1..31 characters of a-z, 0-9, '-', '_', '.'.
bool valid_iesp_name(std::string_view name);

// [[steering.policy]]: sockets created by processes in `cgroup` (or below it; the deepest
// configured cgroup wins) reach `prefixes` through InterEdge with `service`.
struct SteeringPolicy {
  std::string cgroup;
  std::vector<std::string> prefixes;
  std::string service = "ip";
  bool operator==(const SteeringPolicy&) const = default;
};

inline constexpr std::size_t kMaxSteeringPolicies = 64;

struct SteeringConfig {
  bool enabled = true;
  std::uint32_t table = 7300;
  std::uint32_t rule_priority = 7300;
  std::vector<SteeringPolicy> policies;
};

// Where SN candidates come from (docs/discovery.md). `lookup` is the seam for the lookup
// service of issue 4: it has a name here and one case in Impl::start_discovery
// (daemon/core/sn_set.cpp), and the configuration refuses it until it exists.
enum class DiscoverySource { static_config, dns, anycast, lookup };
// "static", "dns", "anycast", "lookup".
const char* discovery_source_name(DiscoverySource s);

inline constexpr std::size_t kMaxAnycastAddresses = 16;

struct IedConfig {
  std::string file;  // where it was read from ("" for text)
  // [daemon]
  std::string state_dir = "/var/lib/interedge";
  std::string socket = "/run/interedge/ied.sock";
  std::string admin_group;
  std::string listen = "0.0.0.0:0";
  // [tun]
  std::string tun_name = "ie0";
  unsigned tun_mtu = 0;
  // [host]
  std::vector<std::string> addresses;
  std::vector<std::string> prefixes;
  // [discovery]
  std::vector<DiscoverySource> order = {DiscoverySource::static_config, DiscoverySource::dns,
                                        DiscoverySource::anycast};
  std::string dns_domain;
  std::vector<std::string> anycast;  // "ip:port" / "[v6]:port", numeric, not wildcards
  std::chrono::seconds anycast_interval{60};
  // Candidates not associated have their RTT measured this often (sn_rank.hpp; 0: no RTT
  // surveys and no RTT ranking).
  std::chrono::seconds rtt_survey{300};
  std::vector<std::string> dns_servers;
  bool peer_dns = false;
  std::string discovery_iesp = kDefaultIesp;  // discovery.iesp
  std::string default_iesp = kDefaultIesp;    // discovery.default_iesp
  // [[iesp]]: further IESPs whose SNs are discovered in DNS, each under a domain of its own,
  // and/or at anycast addresses of their own
  struct IespDns {
    std::string iesp;
    std::string dns_domain;
    bool operator==(const IespDns&) const = default;
  };
  std::vector<IespDns> iesp_dns;
  struct IespAnycast {
    std::string iesp;
    std::vector<std::string> addresses;
    bool operator==(const IespAnycast&) const = default;
  };
  std::vector<IespAnycast> iesp_anycast;
  // [[sn]], [[peer]], [[policy]]
  std::vector<StaticSn> sns;
  std::vector<StaticPeer> peers;
  std::vector<FlowPolicy> policies;
  // [timers]
  std::chrono::milliseconds keepalive{1000};
  std::chrono::milliseconds dead_after{3000};
  // [steering]
  SteeringConfig steering;
};

// The IESPs the configuration serves: every [[sn]]'s, and discovery.iesp when DNS or
// anycast discovery is configured; sorted, no duplicates.
// Every DNS discovery the configuration asks for, one per IESP: discovery.dns_domain (for
// discovery.iesp) first, then the [[iesp]] tables; none when discovery.order lacks "dns".
std::vector<IedConfig::IespDns> dns_discoveries(const IedConfig& c);
// Every anycast address to probe with its IESP and its place in that IESP's list:
// discovery.anycast (for discovery.iesp) first, then the [[iesp]] tables'; none when
// discovery.order lacks "anycast".
struct AnycastTarget {
  std::string address;
  std::string iesp;
  std::size_t order = 0;
  bool operator==(const AnycastTarget&) const = default;
};
std::vector<AnycastTarget> anycast_targets(const IedConfig& c);
std::vector<std::string> config_iesps(const IedConfig& c);

Result<IedConfig> parse_ied_config(std::string_view toml_text, const std::string& file_name);
Result<IedConfig> load_ied_config(const std::string& path);

}  // namespace ie::ied
