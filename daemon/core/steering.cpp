// ied's socket steering (steering.hpp; docs/bpf.md).
#include "steering.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>

#include "ie/bpf/steer.hpp"
#include "ie/util/log.hpp"

namespace ie::ied {
namespace {

std::string hex(std::uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

Result<int> sock_int(int fd, int level, int opt, const char* what) {
  int v = 0;
  socklen_t len = sizeof v;
  if (::getsockopt(fd, level, opt, &v, &len) != 0)
    return fail(Errc::invalid_argument, std::string("getsockopt ") + what, errno);
  return v;
}

// The socket must be ours to steer: AF_INET/AF_INET6, TCP or UDP.
Result<void> check_socket(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
    return fail(Errc::invalid_argument, "the passed file descriptor is not a socket", ENOTSOCK);
  auto dom = sock_int(fd, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN");
  if (!dom) return fail(dom.error());
  if (*dom != AF_INET && *dom != AF_INET6)
    return fail(Errc::invalid_argument, "only AF_INET and AF_INET6 sockets can be steered",
                EAFNOSUPPORT);
  auto proto = sock_int(fd, SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL");
  if (!proto) return fail(proto.error());
  if (*proto != IPPROTO_TCP && *proto != IPPROTO_UDP)
    return fail(Errc::invalid_argument, "only TCP and UDP sockets can be steered", EPROTONOSUPPORT);
  return ok();
}

std::string own_cgroup() {
  std::ifstream f("/proc/self/cgroup");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return {};
}

ctl::Json choice_json(const ServiceChoice& c) {
  ctl::Json opts = ctl::Json::object();
  for (const auto& [k, v] : c.options)
    opts[k] = v;
  return {{"service", c.service}, {"requested", c.requested}, {"options", opts}};
}

}  // namespace

SocketSteering::~SocketSteering() = default;

Result<std::unique_ptr<SocketSteering>> SocketSteering::start(
    const SteeringConfig& cfg, Netlink& nl, int tun_ifindex, const std::vector<IpAddr>& addresses) {
  std::unique_ptr<SocketSteering> s(new SocketSteering());
  if (auto r = s->install(cfg, nl, tun_ifindex, addresses); !r) {
    s->stop(nl);
    return fail(r.error());
  }
  return s;
}

namespace {

// ied's own sockets (to its SNs) must not be steered into its own TUN.
Result<void> check_not_ours(const std::vector<SteeringPolicy>& policies) {
  if (policies.empty()) return ok();
  auto mount = bpf::Steering::cgroup2_mount();
  const std::string mine = own_cgroup();
  if (!mount || mine.empty()) return ok();
  const std::string self = *mount + (mine == "/" ? "" : mine);
  for (const auto& p : policies) {
    std::string pc = p.cgroup;
    while (pc.size() > 1 && pc.back() == '/')
      pc.pop_back();
    if (self == pc || self.rfind(pc + "/", 0) == 0)
      return fail(Errc::invalid_argument, "steering.policy cgroup " + p.cgroup +
                                              " contains ied itself (" + self +
                                              "): its own association traffic would loop into ie0");
  }
  return ok();
}

// A route into the TUN with the host's address of the prefix's family as source.
Result<RouteSpec> tun_route(Netlink& nl, const IpPrefix& dst, std::uint32_t table, int tun_ifindex,
                            const std::vector<IpAddr>& addresses) {
  RouteSpec rs;
  rs.dst = dst;
  rs.ifindex = tun_ifindex;
  rs.table = table;
  for (const auto& a : addresses)
    if (a.is_v6() == dst.addr.is_v6()) {
      rs.src = a;
      break;
    }
  if (auto r = nl.add_route(rs); !r) return fail(r.error());
  return rs;
}

}  // namespace

Result<void> SocketSteering::install(const SteeringConfig& cfg, Netlink& nl, int tun_ifindex,
                                     const std::vector<IpAddr>& addresses) {
  table_ = cfg.table;
  rule_priority_ = cfg.rule_priority;
  if (auto r = check_not_ours(cfg.policies); !r) return r;
  auto b = bpf::Steering::load();
  if (!b)
    return fail(b.error().code,
                "steering: loading the BPF programs: " + b.error().context +
                    " (needs CAP_BPF and CAP_NET_ADMIN; [steering] enabled = false runs without "
                    "socket steering)",
                b.error().sys_errno);
  bpf_ = std::move(*b);
  if (auto r = bpf_->attach_tun(tun_ifindex); !r)
    return fail(r.error().code, "steering: " + r.error().context, r.error().sys_errno);

  // Explicitly steered sockets: every destination. IPv6 needs IPv6 on ie0, which the kernel
  // turns off when the device's MTU is under 1280 (a small path MTU to the SN): then IPv6
  // sockets are not steered, and ied says so once.
  auto r4 = tun_route(nl, *IpPrefix::parse("0.0.0.0/0"), table_, tun_ifindex, addresses);
  if (!r4) return fail(r4.error());
  routes_.push_back(*r4);
  auto r6 = tun_route(nl, *IpPrefix::parse("::/0"), table_, tun_ifindex, addresses);
  if (r6) {
    routes_.push_back(*r6);
  } else {
    if (r6.error().sys_errno != ENODEV) return fail(r6.error());
    IE_LOG_WARN(
        "steering: no IPv6 on the TUN (its MTU is under 1280?): IPv6 sockets are not "
        "steered");
    ipv6_ = false;
  }
  for (const int fam : {AF_INET, AF_INET6}) {
    const RuleSpec rule{.family = fam,
                        .priority = rule_priority_,
                        .fwmark = IE_MARK_BASE,
                        .fwmask = IE_MARK_EXPLICIT_MASK,
                        .table = table_};
    if (auto a = nl.add_rule(rule); !a) return fail(a.error());
    rules_.push_back(rule);
  }
  return add_policies(cfg.policies, nl, tun_ifindex, addresses);
}

// Cgroup policies: their prefixes only, one table and one mark each.
Result<void> SocketSteering::add_policies(const std::vector<SteeringPolicy>& policies, Netlink& nl,
                                          int tun_ifindex, const std::vector<IpAddr>& addresses) {
  if (auto r = check_not_ours(policies); !r) return r;
  for (std::size_t i = 0; i < policies.size(); ++i) {
    const auto& p = policies[i];
    auto choice = resolve_service(p.service);
    if (!choice) return fail(choice.error());
    auto id = bpf::Steering::cgroup_id(p.cgroup);
    if (!id)
      return fail(id.error().code, "steering.policy: " + id.error().context, id.error().sys_errno);
    policies_.push_back(*choice);
    policy_cgroups_.push_back(p.cgroup);
    const auto table = table_ + 1 + static_cast<std::uint32_t>(i);
    const auto mark = bpf::policy_mark(static_cast<std::uint32_t>(i));
    for (const auto& text : p.prefixes) {
      const auto prefix = *IpPrefix::parse(text);
      if (prefix.addr.is_v6() && !ipv6_) {
        IE_LOG_WARN("steering.policy {}: {} left out (no IPv6 on the TUN)", p.cgroup, text);
        continue;
      }
      auto rs = tun_route(nl, prefix, table, tun_ifindex, addresses);
      if (!rs) return fail(rs.error());
      policy_routes_.push_back(*rs);
    }
    for (const int fam : {AF_INET, AF_INET6}) {
      const RuleSpec rule{.family = fam,
                          .priority = rule_priority_,
                          .fwmark = mark,
                          .fwmask = 0xffffffffu,
                          .table = table};
      if (auto a = nl.add_rule(rule); !a) return fail(a.error());
      policy_rules_.push_back(rule);
    }
    if (auto r = bpf_->set_cgroup_policy(*id, mark); !r) return r;
    policy_ids_.push_back(*id);
    if (std::find(attached_cgroups_.begin(), attached_cgroups_.end(), p.cgroup) ==
        attached_cgroups_.end()) {
      if (auto r = bpf_->attach_cgroup(p.cgroup); !r) return r;
      attached_cgroups_.push_back(p.cgroup);
    }
    IE_LOG_INFO("steering: sockets made in {} reach {} prefix(es) via {} (mark {})", p.cgroup,
                p.prefixes.size(), choice->requested, hex(mark));
  }
  IE_LOG_INFO("steering: {} rule(s), tables {}..{}", rules_.size() + policy_rules_.size(), table_,
              table_ + policies.size());
  return ok();
}

void SocketSteering::remove_policies(Netlink& nl) {
  for (const auto& r : policy_rules_)
    if (auto d = nl.del_rule(r); !d && d.error().code != Errc::not_found)
      IE_LOG_WARN("steering: {}", d.error().to_string());
  for (const auto& r : policy_routes_)
    (void)nl.del_route(r);  // gone with the TUN already is fine
  if (bpf_)
    for (const auto id : policy_ids_)
      (void)bpf_->remove_cgroup_policy(id);
  policy_rules_.clear();
  policy_routes_.clear();
  policy_ids_.clear();
  policies_.clear();
  policy_cgroups_.clear();
}

Result<void> SocketSteering::replace_policies(const std::vector<SteeringPolicy>& policies,
                                              Netlink& nl, int tun_ifindex,
                                              const std::vector<IpAddr>& addresses) {
  if (auto r = check_not_ours(policies); !r) return r;
  std::vector<SteeringPolicy> old;
  for (std::size_t i = 0; i < policy_cgroups_.size(); ++i) {
    SteeringPolicy p;
    p.cgroup = policy_cgroups_[i];
    p.service = policies_[i].requested;
    for (const auto& rs : policy_routes_)
      if (rs.table == table_ + 1 + i) p.prefixes.push_back(rs.dst.str());
    old.push_back(std::move(p));
  }
  remove_policies(nl);
  auto r = add_policies(policies, nl, tun_ifindex, addresses);
  if (!r) {
    remove_policies(nl);
    if (auto back = add_policies(old, nl, tun_ifindex, addresses); !back)
      IE_LOG_ERROR("steering: restoring the previous policies: {}", back.error().to_string());
  }
  return r;
}

void SocketSteering::stop(Netlink& nl) {
  remove_policies(nl);
  for (const auto& r : rules_)
    if (auto d = nl.del_rule(r); !d && d.error().code != Errc::not_found)
      IE_LOG_WARN("steering: {}", d.error().to_string());
  rules_.clear();
  for (const auto& r : routes_)
    (void)nl.del_route(r);  // gone with the TUN already is fine
  routes_.clear();
  bpf_.reset();  // closes the links: the programs detach
}

std::optional<ServiceChoice> SocketSteering::choice_of_mark(std::uint32_t mark) const {
  if (bpf::mark_is_explicit(mark)) {
    const std::uint32_t slot = mark & ~IE_MARK_EXPLICIT_MASK;
    if (slot < slots_.size()) return slots_[slot];
  } else if (bpf::mark_is_policy(mark)) {
    const std::uint32_t idx = mark - IE_MARK_POLICY_BASE;
    if (idx < policies_.size()) return policies_[idx];
  }
  return std::nullopt;
}

Result<ctl::Json> SocketSteering::set_service(int fd, const std::string& name,
                                              const ServiceOptions& options) {
  auto refuse = [this](Error e) -> Result<ctl::Json> {
    ++refused_;
    return fail(std::move(e));
  };
  if (auto r = check_socket(fd); !r) return refuse(r.error());
  auto choice = resolve_service(name, options);
  if (!choice) return refuse(choice.error());
  auto proto = sock_int(fd, SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL");
  if (!proto) return refuse(proto.error());
  if (*proto == IPPROTO_TCP) {
    tcp_info ti{};
    socklen_t len = sizeof ti;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state != TCP_CLOSE &&
        ti.tcpi_state != TCP_LISTEN)
      return refuse(Error{Errc::invalid_argument, EISCONN,
                          "the TCP socket is already connected: choose its service before "
                          "connect()"});
  }
  auto mark = sock_int(fd, SOL_SOCKET, SO_MARK, "SO_MARK");
  if (!mark) return refuse(mark.error());
  if (*mark != 0 && !bpf::mark_in_range(static_cast<std::uint32_t>(*mark)))
    return refuse(Error{Errc::busy, EBUSY,
                        "the socket carries mark " + hex(static_cast<std::uint32_t>(*mark)) +
                            " set by someone else; InterEdge leaves it alone"});
  std::size_t slot = 0;
  while (slot < slots_.size() && !(slots_[slot] == *choice))
    ++slot;
  if (slot == slots_.size()) {
    if (slots_.size() >= kMaxSlots)
      return refuse(Error{Errc::busy, EBUSY, "too many distinct service choices in use"});
    slots_.push_back(*choice);
  }
  const std::uint32_t m = bpf::explicit_mark(static_cast<std::uint32_t>(slot));
  if (::setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof m) != 0)
    return refuse(Error{errno == EPERM ? Errc::permission : Errc::io, errno,
                        "setsockopt SO_MARK (ied needs CAP_NET_ADMIN)"});
  std::uint64_t cookie = 0;
  socklen_t clen = sizeof cookie;
  (void)::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &clen);
  ++steered_;
  ctl::Json out = choice_json(*choice);
  out["mark"] = m;
  out["cookie"] = cookie;
  return out;
}

Result<ctl::Json> SocketSteering::get_service(int fd) const {
  if (auto r = check_socket(fd); !r) return fail(r.error());
  auto mark = sock_int(fd, SOL_SOCKET, SO_MARK, "SO_MARK");
  if (!mark) return fail(mark.error());
  const auto m = static_cast<std::uint32_t>(*mark);
  const auto c = choice_of_mark(m);
  if (!c) return ctl::Json{{"service", nullptr}};
  ctl::Json out = choice_json(*c);
  out["mark"] = m;
  out["via"] = bpf::mark_is_policy(m) ? "policy" : "socket";
  if (bpf::mark_is_policy(m)) out["cgroup"] = policy_cgroups_[m - IE_MARK_POLICY_BASE];
  return out;
}

Result<ctl::Json> SocketSteering::clear_service(int fd) {
  if (auto r = check_socket(fd); !r) return fail(r.error());
  auto mark = sock_int(fd, SOL_SOCKET, SO_MARK, "SO_MARK");
  if (!mark) return fail(mark.error());
  if (!bpf::mark_in_range(static_cast<std::uint32_t>(*mark))) return ctl::Json{{"cleared", false}};
  const int zero = 0;
  if (::setsockopt(fd, SOL_SOCKET, SO_MARK, &zero, sizeof zero) != 0)
    return fail(Errc::io, "setsockopt SO_MARK", errno);
  ++cleared_;
  return ctl::Json{{"cleared", true}};
}

std::optional<std::uint32_t> SocketSteering::flow_mark(const FlowKey& k) const {
  if (!bpf_ || k.fragment) return std::nullopt;
  bpf::FlowKey bk{};
  if (k.version == 4) {
    bk = bpf::flow_key_v4(k.proto, std::span<const std::uint8_t, 4>(k.src.data(), 4), k.src_port,
                          std::span<const std::uint8_t, 4>(k.dst.data(), 4), k.dst_port);
  } else {
    bk = bpf::flow_key_v6(k.proto, std::span<const std::uint8_t, 16>(k.src), k.src_port,
                          std::span<const std::uint8_t, 16>(k.dst), k.dst_port);
  }
  const auto mark = bpf_->flow_mark(bk);
  if (!mark || !choice_of_mark(*mark)) return std::nullopt;
  return mark;
}

ctl::Json SocketSteering::status_json() const {
  ctl::Json slots = ctl::Json::array();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    ctl::Json j = choice_json(slots_[i]);
    j["mark"] = bpf::explicit_mark(static_cast<std::uint32_t>(i));
    slots.push_back(j);
  }
  ctl::Json pols = ctl::Json::array();
  for (std::size_t i = 0; i < policies_.size(); ++i) {
    ctl::Json j = choice_json(policies_[i]);
    j["cgroup"] = policy_cgroups_[i];
    j["mark"] = bpf::policy_mark(static_cast<std::uint32_t>(i));
    j["table"] = table_ + 1 + i;
    pols.push_back(j);
  }
  ctl::Json bpf = ctl::Json::object();
  if (bpf_) {
    bpf_->stats().for_each([&](const char* name, const char*, std::uint64_t v) { bpf[name] = v; });
    const auto info = bpf_->info();
    bpf["verified_insns"] = {{"sock_create", info.sock_create.verified_insns},
                             {"tun_egress", info.tun_egress.verified_insns}};
  }
  return {{"enabled", true},
          {"ipv6", ipv6_},
          {"table", table_},
          {"rules", rules_.size() + policy_rules_.size()},
          {"slots", slots},
          {"policies", pols},
          {"sockets_steered", steered_},
          {"sockets_cleared", cleared_},
          {"requests_refused", refused_},
          {"bpf", bpf}};
}

}  // namespace ie::ied
