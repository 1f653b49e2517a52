// ied's composition root (daemon.hpp): builds the subsystems in dependency order, runs the
// reactor, and tears everything down in reverse. Startup order:
//   1. state directory and database; identity key (created on first start, never logged)
//   2. reactor (signals: SIGTERM/SIGINT stop, SIGHUP reloads: reload.cpp)
//   3. netlink; stale routes and rules of a killed ied are flushed (tagged with protocol 73)
//   4. TUN device, its MTU, link up, routes for the configured prefixes; socket steering
//      (BPF programs, rules and tables: steering.hpp)
//   5. the SN link (UDP socket, associations; the stored out-of-band invocations) and
//      discovery (static, then DNS and anycast: sn_set.cpp)
//   6. end-to-end sessions
//   7. control socket; READY=1 to systemd
#include <grp.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "daemon_impl.hpp"
#include "ie/util/log.hpp"

namespace ie::ied {

namespace {
constexpr auto kTick = std::chrono::milliseconds(50);
// Bytes ILP adds around an e2e packet on the way to the SN, after the outer IP header
// (20 or 40 bytes, by the SN's address family): UDP + PSP header + ILP header (12) + TLVs +
// PSP tag. The TLV budget, 56 bytes, holds dest_sn and source_sn for SN names of up to 24
// characters each plus a cache_control TLV, padded to 4. Longer names (up to 63) make some
// full-size packets too big for the path: ip_path.cpp answers them with PTBs (path_mtu.hpp),
// and what it sends on is fragmented by the kernel (the socket keeps the default
// IP_PMTUDISC_WANT), nothing is lost. With this budget an IPv4 path of 1500 bytes
// leaves ie0 an MTU of 1288: enough for IPv6 (1280), which the kernel turns off below that.
constexpr unsigned kHopOverhead = 8 + 16 + 12 + 56 + 16;
}  // namespace

namespace {
// With IPv6 on ie0 (MTU >= 1280) the kernel would give it a link-local address and send
// router solicitations and MLD reports into it: packets no application asked for, which ied
// would only drop. No address generation (addr_gen_mode 1) and no RAs keep ie0 silent;
// routes through it work without an address of its own. Before the link goes up; best effort
// (no such files when IPv6 is off).
void quiet_ipv6(const std::string& dev) {
  const std::pair<const char*, const char*> settings[] = {{"addr_gen_mode", "1"},
                                                          {"accept_ra", "0"}};
  for (const auto& [key, value] : settings) {
    const std::string path = "/proc/sys/net/ipv6/conf/" + dev + "/" + key;
    std::FILE* f = std::fopen(path.c_str(), "we");
    if (f == nullptr) continue;
    const bool written = std::fputs(value, f) >= 0;
    if (std::fclose(f) != 0 || !written) IE_LOG_DEBUG("{}: could not write {}", path, value);
  }
}
}  // namespace

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Daemon::~Daemon() {
  if (impl_) impl_->teardown();
}

Result<std::unique_ptr<Daemon>> Daemon::create(DaemonOptions o) {
  auto impl = std::make_unique<Impl>();
  impl->opts = std::move(o);
  if (auto r = impl->setup(); !r) {
    impl->teardown();
    return fail(r.error());
  }
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

Result<void> Daemon::run() {
  (void)sd_notify(0, "READY=1\nSTATUS=running");
  IE_LOG_INFO("ied running: tun {} mtu {}, control socket {}", impl_->cfg.tun_name, impl_->tun_mtu,
              impl_->cfg.socket);
  auto r = impl_->reactor->run();
  (void)sd_notify(0, "STOPPING=1");
  return r;
}

void Daemon::stop() {
  impl_->reactor->stop();
}

// A [host] prefix routed into the TUN, with our address of its family as the source.
Result<void> Daemon::Impl::add_prefix_route(const IpPrefix& p) {
  RouteSpec rs;
  rs.dst = p;
  rs.ifindex = tun_ifindex;
  for (const auto& a : addresses)
    if (a.family() == p.addr.family()) {
      rs.src = a;
      break;
    }
  return nl->add_route(rs);
}

Result<void> Daemon::Impl::setup() {
  // 1. state
  auto st = State::open(cfg.state_dir);
  if (!st) return fail(st.error());
  state.emplace(std::move(*st));
  auto id = state->identity();
  if (!id) return fail(id.error());
  identity = std::move(*id);

  for (const auto& a : cfg.addresses)
    addresses.push_back(*IpAddr::parse(a));
  for (const auto& p : cfg.prefixes)
    prefixes.push_back(*IpPrefix::parse(p));
  set_static_peers(cfg.peers);

  // 2. reactor
  auto re = io::Reactor::create();
  if (!re) return fail(re.error());
  reactor = std::move(*re);
  if (auto r =
          reactor->stop_on_signals([](int sig) { IE_LOG_INFO("signal {}: shutting down", sig); },
                                   [this] {
                                     IE_LOG_INFO("SIGHUP: reloading {}", opts.config_path);
                                     (void)reload();  // logs what it did or why it refused
                                   });
      !r)
    return fail(r.error());

  // 3. netlink, stale state
  auto n = Netlink::open();
  if (!n) return fail(n.error());
  nl.emplace(std::move(*n));
  if (auto f = nl->flush_routes(); !f) {
    IE_LOG_WARN("flushing stale routes: {}", f.error().to_string());
  } else if (*f > 0) {
    IE_LOG_INFO("removed {} stale route(s) left by an earlier ied", *f);
  }
  // Path MTUs of the next hops, read back from the kernel's route exceptions (path_mtu.hpp).
  path_mtus.emplace(
      [this](const IpAddr& a) -> std::optional<std::uint32_t> {
        auto rg = nl->route_get(a);
        if (!rg) {
          IE_LOG_DEBUG("path MTU to {}: {}", a.str(), rg.error().to_string());
          return std::nullopt;
        }
        return rg->path_mtu();
      },
      std::chrono::milliseconds(500));
  if (auto f = nl->flush_rules(); !f) {
    IE_LOG_WARN("flushing stale rules: {}", f.error().to_string());
  } else if (*f > 0) {
    IE_LOG_INFO("removed {} stale rule(s) left by an earlier ied", *f);
  }

  // 4. TUN and routes. The MTU: configured, or the path MTU towards the first static SN
  // (else 1500) minus what e2e and the hop add.
  // With offloads (TSO/checksum, tcp_offload.hpp) when the kernel has them, else plain.
  auto t = io::TunDevice::open(cfg.tun_name, io::TunOptions{.offload = true});
  if (!t && t.error().code != Errc::permission) {
    IE_LOG_WARN("{}: offloads unavailable ({}); using a plain TUN (one packet per read)",
                cfg.tun_name, t.error().to_string());
    t = io::TunDevice::open(cfg.tun_name);
  }
  if (!t) return fail(t.error());
  tun.emplace(std::move(*t));
  auto idx = nl->ifindex(tun->name());
  if (!idx) return fail(idx.error());
  tun_ifindex = *idx;
  unsigned path_mtu = 1500;
  unsigned outer_ip = 20;  // SNs found later (DNS) are taken to be IPv4
  if (!cfg.sns.empty()) {
    socklen_t len = 0;
    auto ep = io::parse_endpoint(cfg.sns.front().endpoint, &len);
    if (ep) {
      auto a = IpAddr::from_sockaddr(reinterpret_cast<const sockaddr*>(&*ep), len);
      if (a) {
        if (a->is_v6()) outer_ip = 40;
        if (auto rg = nl->route_get(*a)) path_mtu = rg->path_mtu();
      }
    }
  }
  // The largest inner packet whose ILP datagram fits HostLink's buffers (UDP payload: the hop
  // overhead without UDP's 8 bytes, TLVs with SN names of up to 63 characters, e2e), so a
  // jumbo-frame path or a configured MTU cannot make ied cut packets.
  const unsigned e2e_overhead = static_cast<unsigned>(E2e::overhead(true));
  const unsigned max_mtu = static_cast<unsigned>(link::HostLink::kBufSize) - (kHopOverhead - 8) -
                           2 * (63 - 24) - e2e_overhead;
  if (cfg.tun_mtu > max_mtu)
    return fail(Errc::invalid_argument, "tun.mtu " + std::to_string(cfg.tun_mtu) +
                                            " is larger than ied carries (at most " +
                                            std::to_string(max_mtu) + ")");
  tun_mtu = cfg.tun_mtu != 0 ? cfg.tun_mtu
                             : std::min(path_mtu - outer_ip - kHopOverhead - e2e_overhead, max_mtu);
  tun_mtu = std::max(tun_mtu, 576u);
  quiet_ipv6(tun->name());
  if (auto r = nl->set_link(tun_ifindex, true, tun_mtu); !r) return fail(r.error());
  for (const auto& p : prefixes)
    if (auto r = add_prefix_route(p); !r) return fail(r.error());
  // Socket steering (docs/bpf.md): BPF programs, marks, rules, tables.
  if (cfg.steering.enabled) {
    auto ss = SocketSteering::start(cfg.steering, *nl, tun_ifindex, addresses);
    if (!ss) return fail(ss.error());
    steering = std::move(*ss);
  }
  tun_bufs.resize(64 * 2048);
  if (auto r = reactor->add_fd(tun->fd(), io::Reactor::kReadable,
                               [this](std::uint32_t) { on_tun_readable(); });
      !r)
    return fail(r.error());

  // 5. SN link and discovery
  link::LinkOptions lo;
  lo.bind = cfg.listen;
  lo.key = identity.clone();
  // Other hosts may associate with us directly (same link): IK from any key, like an SN.
  lo.listen = true;
  lo.timers.keepalive = cfg.keepalive;
  lo.timers.dead_after = cfg.dead_after;
  // A dead SN is retried every 2 s at most (not the default 8 s), so failback is quick.
  lo.timers.retry_max = std::chrono::seconds(2);
  // Room for bursts while the loop seals and opens (a TCP window at a few hundred Mbit/s).
  lo.socket_buffer = 4 << 20;
  // Runs of datagrams a GSO sender (a peer's or an SN's HostLink) sent in one go arrive in
  // one read (docs/ied.md "UDP segmentation offload").
  lo.gro = true;
  auto l = link::HostLink::create(std::move(lo));
  if (!l) return fail(l.error());
  link = std::move(*l);
  if (auto r = reactor->add_fd(link->fd(), io::Reactor::kReadable,
                               [this](std::uint32_t) { on_link_readable(); });
      !r)
    return fail(r.error());
  // Before any association: every SN gets the set right after it registers.
  if (auto r = load_invocations(); !r) return fail(r.error());
  anycast_list = anycast_targets(cfg);
  for (const auto& d : dns_discoveries(cfg)) {
    DnsDiscovery dd;
    dd.iesp = d.iesp;
    dd.domain = d.dns_domain;
    dns_discovery.push_back(std::move(dd));
  }
  if (!dns_discovery.empty() || cfg.peer_dns) {
    ResolverOptions ro;
    ro.servers = cfg.dns_servers;
    auto d = DnsResolver::create(*reactor, std::move(ro));
    if (!d) return fail(d.error());
    dns = std::move(*d);
  }
  add_static_sns();
  start_discovery();
  reconcile_sns();

  // 6. end-to-end sessions
  E2eOptions eo;
  eo.key = identity.clone();
  auto e = E2e::create(std::move(eo));
  if (!e) return fail(e.error());
  e2e = std::move(*e);
  flows = std::make_unique<FlowTable>(65536, rng());

  // 7. control socket
  ctl::ServerOptions so;
  so.mode = 0666;
  if (!cfg.admin_group.empty()) {
    if (const group* g = ::getgrnam(cfg.admin_group.c_str())) {
      so.admin_gid = g->gr_gid;
    } else {
      IE_LOG_WARN("admin_group {} does not exist: only root may change settings", cfg.admin_group);
    }
  }
  auto s = ctl::Server::start(*reactor, cfg.socket, dispatcher(), so);
  if (!s) return fail(s.error());
  server = std::move(*s);

  reactor->add_timer(kTick, [this] { tick(); });
  return ok();
}

void Daemon::Impl::tick() {
  if (stopping) return;
  link->service();
  const auto now = Clock::now();
  e2e->on_timer(now, eout);
  flush_e2e_output();
  discovery_tick(now);
  rtt_tick(now);
  reconcile_sns();
  check_oob_refusal();
  direct_tick(now);
  pmtu_tick(now);
  for (const auto& [addr, peer] : direct) {
    const bool up = direct_usable(peer);
    bool& was = direct_was_up[addr];
    if (up != was) IE_LOG_INFO("direct path to {}: {}", addr.str(), up ? "up" : "down, via SNs");
    was = up;
  }
  flows->expire(now, std::chrono::minutes(5));
  dns_peers.expire(now);
  reactor->add_timer(kTick, [this] { tick(); });
}

void Daemon::Impl::teardown() {
  stopping = true;
  // Reverse order of setup. Closing e2e sessions and SN associations sends CLOSE so peers
  // forget us at once rather than after their dead timers.
  server.reset();
  if (e2e && link) {
    e2e->close_all(Clock::now(), eout);
    flush_e2e_output();
  }
  e2e.reset();
  dns.reset();
  anycast.reset();  // closes probe sessions in flight
  if (reactor && link) reactor->remove_fd(link->fd());
  link.reset();
  // Our routes go with the TUN device anyway; removing them first keeps a half-torn-down
  // daemon from black-holing traffic into a device that no longer reads.
  if (nl && steering) steering->stop(*nl);
  steering.reset();
  if (nl && tun_ifindex != 0) {
    for (const auto& p : prefixes) {
      RouteSpec rs;
      rs.dst = p;
      rs.ifindex = tun_ifindex;
      (void)nl->del_route(rs);
    }
  }
  if (reactor && tun) reactor->remove_fd(tun->fd());
  tun.reset();  // the device vanishes with its fd
  nl.reset();
  reactor.reset();
}

}  // namespace ie::ied
