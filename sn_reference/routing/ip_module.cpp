// The built-in `ip` module: IP-like point-to-point delivery (docs/sn.md). Written against the
// plain C ABI (interedge/sn_module.h) like any out-of-tree module, except that it may use
// libie's TLV walker.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>

#include "ie/sn/routing.hpp"
#include "ie/wire/ilp.hpp"
#include "ie/wire/service_id.hpp"
#include "ie/wire/tlv.hpp"

namespace ie::sn {
namespace {

struct IpModule {
  const ie_sn_host* host = nullptr;
  std::uint32_t c_forwarded = 0, c_no_route = 0, c_spoofed = 0, c_bad_inner = 0, c_loop = 0,
                c_standby_bypass = 0;
};

void count(IpModule* m, ie_sn_env* env, std::uint32_t id) {
  if (id != 0) m->host->counter_add(env, id, 1);
}

void* ip_create(const ie_sn_host* host, ie_sn_env* env, std::uint32_t /*worker*/) {
  auto* m = new (std::nothrow) IpModule;
  if (m == nullptr) return nullptr;
  m->host = host;
  m->c_forwarded = host->counter_declare(env, "forwarded", "flows decided: forward");
  m->c_no_route = host->counter_declare(env, "no_route", "packets without a route");
  m->c_spoofed = host->counter_declare(env, "spoofed_source",
                                       "packets whose inner source the host does not own");
  m->c_bad_inner = host->counter_declare(env, "bad_inner_packet", "inner packet not IPv4/IPv6");
  m->c_loop = host->counter_declare(env, "loop", "route leads back to the arriving pipe");
  m->c_standby_bypass = host->counter_declare(
      env, "standby_bypass",
      "packets for a host registered here as standby sent on to the SN in dest_sn");
  return m;
}

// The pipe towards the SN a dest_sn TLV names; false for this SN or one we cannot reach.
bool lookup_sn(IpModule* m, ie_sn_env* env, ConstByteSpan value, ie_sn_pipe* via) {
  char name[sizeof(ie_sn_pipe_info{}.sn_name)];
  const std::size_t n = std::min(value.size(), sizeof name - 1);
  std::memcpy(name, value.data(), n);
  name[n] = '\0';
  return m->host->sn_lookup(env, name, via) == IE_SN_OK;
}

void ip_destroy(void* instance) {
  delete static_cast<IpModule*>(instance);
}

ie_sn_decision decide(IpModule* m, ie_sn_env* env, const ie_sn_packet& p) {
  ie_sn_decision d{};
  d.action = IE_SN_DROP;
  const auto addrs = inner_addrs(p.inner, p.inner_len);
  if (!addrs) {
    count(m, env, m->c_bad_inner);
    return d;
  }
  const ConstByteSpan tlvs(p.tlvs, p.tlvs_len);
  ie_sn_pipe_info from{};
  from.struct_size = sizeof from;
  if (m->host->pipe_info(env, p.from_pipe, &from) != IE_SN_OK) return d;  // pipe just went
  if (from.kind == IE_SN_PIPE_HOST) {
    // A host may only send from an address it registered here.
    ie_sn_pipe owner = 0;
    const ie_sn_addr src = to_sn_addr(addrs->src);
    if (m->host->route_lookup(env, &src, &owner) != IE_SN_OK || owner != p.from_pipe) {
      count(m, env, m->c_spoofed);
      return d;
    }
  }
  // Destination: a host registered here as active, else the SN the sender named (dest_sn),
  // else a host registered here as standby, else a static route.
  const ie_sn_addr dst = to_sn_addr(addrs->dst);
  ie_sn_pipe to = 0;
  const bool routed = m->host->route_lookup(env, &dst, &to) == IE_SN_OK;
  ie_sn_pipe_info to_info{};
  to_info.struct_size = sizeof to_info;
  const bool to_host = routed && m->host->pipe_info(env, to, &to_info) == IE_SN_OK &&
                       to_info.kind == IE_SN_PIPE_HOST;
  // A host that registered here as its warm standby is reached through the SN the sender
  // named when that is another SN we can reach (the host's active SN): not cached, since a
  // cache entry naming that SN would outlive the host's failover to us (its stamp sums the
  // epochs of the SN pipe, not the host's). Otherwise it gets the packet here, as an active one;
  // also when the named SN is the one the packet came from (it could not deliver it).
  const bool standby =
      to_host && to_info.struct_size >= offsetof(ie_sn_pipe_info, flags) + sizeof to_info.flags &&
      (to_info.flags & IE_SN_PIPE_F_STANDBY) != 0;
  bool bypass = false;
  if (standby) {
    wire::Tlv t;
    ie_sn_pipe via = 0;
    if (wire::find_tlv(tlvs, static_cast<std::uint8_t>(wire::TlvType::dest_sn), &t) &&
        lookup_sn(m, env, t.value, &via) && via != p.from_pipe) {
      to = via;
      bypass = true;
    }
  }
  // A forward by static route after the named SN could not be resolved (it names us while
  // the host is not registered here, e.g. between its daemon's restart and its
  // registration; or an SN we cannot reach) is a guess about a passing state: it is sent but
  // not cached, so the flow's next packet is decided again. Cached, it would outlive the
  // host's return (a cache entry goes only with its pipes) and send the flow round a loop.
  bool guess = false;
  if (!to_host) {
    wire::Tlv t;
    if (wire::find_tlv(tlvs, static_cast<std::uint8_t>(wire::TlvType::dest_sn), &t)) {
      ie_sn_pipe via = 0;
      if (lookup_sn(m, env, t.value, &via)) {
        to = via;
      } else if (!routed) {
        count(m, env, m->c_no_route);
        return d;
      } else {
        guess = true;
      }
    } else if (!routed) {
      count(m, env, m->c_no_route);
      return d;
    }
  }
  if (to == p.from_pipe) {
    count(m, env, m->c_loop);
    return d;
  }
  d.action = IE_SN_FORWARD;
  d.hop_count = 1;
  d.hops[0] = to;
  // Cache the flow unless the sender asked not to (cache_control = 1).
  wire::Tlv cc;
  const bool no_cache =
      wire::find_tlv(tlvs, static_cast<std::uint8_t>(wire::TlvType::cache_control), &cc) &&
      cc.value.size() == 1 && cc.value[0] == 1;
  if (!no_cache && !guess && !bypass) {
    ie_sn_flow_key key{};
    key.src = p.src;
    key.service_id = p.service_id;
    key.connection_id = p.connection_id;
    m->host->cache_insert(env, &key, &d);
  }
  count(m, env, m->c_forwarded);
  if (bypass) count(m, env, m->c_standby_bypass);
  return d;
}

void ip_on_packets(void* instance, ie_sn_env* env, const ie_sn_packet* packets, ie_sn_decision* out,
                   std::size_t n) {
  auto* m = static_cast<IpModule*>(instance);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = decide(m, env, packets[i]);
}

const ie_sn_module_descriptor kIp = {
    IE_SN_MODULE_ABI_VERSION,
    sizeof(ie_sn_module_descriptor),
    "ip",
    static_cast<std::uint16_t>(wire::ServiceId::ip),
    0,
    "IP-like point-to-point delivery to the inner destination",
    ip_create,
    ip_destroy,
    ip_on_packets,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace

const ie_sn_module_descriptor* ip_module() {
  return &kIp;
}

}  // namespace ie::sn
