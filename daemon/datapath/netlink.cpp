// Netlink (ie/ied/netlink.hpp): requests are built into a byte vector (nlmsghdr, the family
// header, then 4-byte-aligned attributes); replies are walked message by message and
// attribute by attribute, every length checked against what was received.
#include "ie/ied/netlink.hpp"

#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <span>

namespace ie::ied {
namespace {

constexpr std::size_t kRxBufSize = 64 * 1024;  // the kernel caps a dump message at 32 KiB
constexpr int kRecvTimeoutSec = 5;
constexpr std::size_t kAttrHdr = 4;  // sizeof(rtattr)

constexpr std::size_t align4(std::size_t n) {
  return (n + 3) & ~std::size_t{3};
}

// A request under construction: nlmsghdr, then the family header, then attributes.
class Request {
 public:
  Request(std::uint16_t type, std::uint16_t flags) {
    buf_.reserve(256);
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = static_cast<std::uint16_t>(flags | NLM_F_REQUEST | NLM_F_ACK);
    append(&h, sizeof h);
  }
  template <typename T>
  void header(const T& t) {
    append(&t, sizeof t);
  }
  void attr(std::uint16_t type, const void* data, std::size_t len) {
    rtattr a{};
    a.rta_len = static_cast<unsigned short>(kAttrHdr + len);
    a.rta_type = type;
    append(&a, sizeof a);
    append(data, len);
  }
  void attr_u32(std::uint16_t type, std::uint32_t v) { attr(type, &v, sizeof v); }
  void attr_addr(std::uint16_t type, const IpAddr& a) { attr(type, a.bytes().data(), a.size()); }
  std::size_t nest_begin(std::uint16_t type) {
    const std::size_t off = buf_.size();
    attr(type, nullptr, 0);
    return off;
  }
  void nest_end(std::size_t off) {
    const auto len = static_cast<unsigned short>(buf_.size() - off);
    std::memcpy(buf_.data() + off, &len, sizeof len);  // rta_len is the first field
  }
  std::vector<std::uint8_t>& finish() {
    const auto len = static_cast<std::uint32_t>(buf_.size());
    std::memcpy(buf_.data(), &len, sizeof len);  // nlmsg_len is the first field
    return buf_;
  }

 private:
  void append(const void* p, std::size_t n) {
    const std::size_t off = buf_.size();
    buf_.resize(off + align4(n), 0);
    if (n) std::memcpy(buf_.data() + off, p, n);
  }
  std::vector<std::uint8_t> buf_;
};

// One attribute of a reply.
struct Attr {
  std::uint16_t type = 0;
  ConstByteSpan value;
};

// Walks the attributes in area; stops at the first one whose length is out of bounds.
template <typename F>
void for_each_attr(ConstByteSpan area, F&& f) {
  std::size_t off = 0;
  while (area.size() - off >= kAttrHdr) {
    rtattr a;
    std::memcpy(&a, area.data() + off, sizeof a);
    if (a.rta_len < kAttrHdr || a.rta_len > area.size() - off) return;
    f(Attr{static_cast<std::uint16_t>(a.rta_type & NLA_TYPE_MASK),
           area.subspan(off + kAttrHdr, a.rta_len - kAttrHdr)});
    off += align4(a.rta_len);
    if (off > area.size()) return;
  }
}

std::optional<std::uint32_t> attr_u32(const Attr& a) {
  if (a.value.size() < 4) return std::nullopt;
  std::uint32_t v;
  std::memcpy(&v, a.value.data(), 4);
  return v;
}

std::optional<IpAddr> attr_addr(const Attr& a, int family) {
  const std::size_t want = family == AF_INET ? 4 : 16;
  if (a.value.size() != want) return std::nullopt;
  return IpAddr::from_bytes(a.value);
}

// The MTU inside a nested RTA_METRICS.
std::optional<std::uint32_t> metrics_mtu(const Attr& metrics) {
  std::optional<std::uint32_t> mtu;
  for_each_attr(metrics.value, [&](const Attr& m) {
    if (m.type == RTAX_MTU) mtu = attr_u32(m);
  });
  return mtu;
}

Errc errc_of(int e) {
  switch (e) {
    case EEXIST:
      return Errc::exists;
    case ESRCH:
    case ENOENT:
    case ENODEV:
    case ENETUNREACH:
    case EHOSTUNREACH:
      return Errc::not_found;
    case EPERM:
    case EACCES:
      return Errc::permission;
    case EINVAL:
    case ERANGE:
      return Errc::invalid_argument;
    case EAGAIN:
      return Errc::timeout;
    default:
      return Errc::io;
  }
}

// The extended-ack message string of an NLMSG_ERROR, if the kernel sent one.
std::string ext_ack_message(const nlmsghdr& h, ConstByteSpan payload) {
  if ((h.nlmsg_flags & NLM_F_ACK_TLVS) == 0 || payload.size() < sizeof(nlmsgerr)) return {};
  nlmsgerr err;
  std::memcpy(&err, payload.data(), sizeof err);
  std::size_t off = sizeof err;
  if ((h.nlmsg_flags & NLM_F_CAPPED) == 0) {
    // The whole request follows the error: skip its payload.
    if (err.msg.nlmsg_len < sizeof(nlmsghdr)) return {};
    off = sizeof(int) + align4(err.msg.nlmsg_len);
  }
  if (off > payload.size()) return {};
  std::string msg;
  for_each_attr(payload.subspan(off), [&](const Attr& a) {
    if (a.type == NLMSGERR_ATTR_MSG && !a.value.empty()) {
      const auto* s = reinterpret_cast<const char*>(a.value.data());
      msg.assign(s, ::strnlen(s, a.value.size()));
    }
  });
  return msg;
}

Unexpected kernel_error(int e, const std::string& what, const std::string& ext) {
  return fail(errc_of(e), ext.empty() ? what : what + ": " + ext, e);
}

std::uint8_t family_of(const IpAddr& a) {
  return static_cast<std::uint8_t>(a.family());
}

// rtmsg and attributes common to add and delete.
Request route_request(std::uint16_t type, std::uint16_t flags, const RouteSpec& r, bool add) {
  Request req(type, flags);
  rtmsg rt{};
  rt.rtm_family = family_of(r.dst.addr);
  rt.rtm_dst_len = static_cast<std::uint8_t>(r.dst.len);
  rt.rtm_table =
      static_cast<std::uint8_t>(r.table < 256 ? r.table : std::uint32_t{RT_TABLE_UNSPEC});
  rt.rtm_protocol = r.protocol;
  if (add) {
    rt.rtm_type = RTN_UNICAST;
    rt.rtm_scope = (r.gateway || r.dst.addr.is_v6()) ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  } else {
    // Delete matches any type and scope (iproute2 does the same).
    rt.rtm_type = RTN_UNSPEC;
    rt.rtm_scope = RT_SCOPE_NOWHERE;
  }
  req.header(rt);
  req.attr_u32(RTA_TABLE, r.table);
  if (r.dst.len > 0) req.attr_addr(RTA_DST, r.dst.addr);
  if (r.ifindex > 0) req.attr_u32(RTA_OIF, static_cast<std::uint32_t>(r.ifindex));
  if (r.gateway) req.attr_addr(RTA_GATEWAY, *r.gateway);
  if (r.metric) req.attr_u32(RTA_PRIORITY, r.metric);
  if (add) {
    if (r.src) req.attr_addr(RTA_PREFSRC, *r.src);
    if (r.mtu) {
      const std::size_t nest = req.nest_begin(RTA_METRICS);
      req.attr_u32(RTAX_MTU, *r.mtu);
      req.nest_end(nest);
    }
  }
  return req;
}

std::string route_what(const char* verb, const RouteSpec& r) {
  std::string s = std::string(verb) + " route " + r.dst.str();
  if (r.gateway) s += " via " + r.gateway->str();
  if (r.ifindex > 0) s += " dev " + std::to_string(r.ifindex);
  if (r.table != kMainTable) s += " table " + std::to_string(r.table);
  return s;
}

bool family_matches(const RouteSpec& r) {
  const int f = r.dst.addr.family();
  return (!r.gateway || r.gateway->family() == f) && (!r.src || r.src->family() == f);
}

}  // namespace

Result<Netlink> Netlink::open() {
  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return fail(Errc::io, "socket NETLINK_ROUTE", errno);
  Netlink nl(fd);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0)
    return fail(Errc::io, "bind NETLINK_ROUTE", errno);
  // Error messages from the kernel, and acks that do not echo the whole request. Best
  // effort: old kernels without them still ack.
  const int one = 1;
  (void)::setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  (void)::setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  timeval tv{kRecvTimeoutSec, 0};
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
    return fail(Errc::io, "SO_RCVTIMEO netlink", errno);
  nl.rx_.resize(kRxBufSize);
  return nl;
}

Netlink::Netlink(Netlink&& o) noexcept : fd_(o.fd_), seq_(o.seq_), rx_(std::move(o.rx_)) {
  o.fd_ = -1;
}

Netlink& Netlink::operator=(Netlink&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    seq_ = o.seq_;
    rx_ = std::move(o.rx_);
    o.fd_ = -1;
  }
  return *this;
}

Netlink::~Netlink() {
  if (fd_ >= 0) ::close(fd_);
}

template <typename F>
Result<void> Netlink::transact(std::vector<std::uint8_t>& msg, const std::string& what,
                               F&& on_msg) {
  if (fd_ < 0) return fail(Errc::closed, what);
  const std::uint32_t seq = ++seq_;
  nlmsghdr h;
  std::memcpy(&h, msg.data(), sizeof h);
  h.nlmsg_seq = seq;
  std::memcpy(msg.data(), &h, sizeof h);
  const bool dump = (h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;

  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = ::sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                    sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return fail(errc_of(errno), what + ": send", errno);
  if (static_cast<std::size_t>(sent) != msg.size()) return fail(Errc::io, what + ": short send");

  // Bounded: every datagram either advances towards the ack/DONE or times out.
  for (;;) {
    iovec iov{rx_.data(), rx_.size()};
    sockaddr_nl from{};
    msghdr mh{};
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(fd_, &mh, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return fail(Errc::timeout, what + ": no answer from the kernel", errno);
      return fail(errc_of(errno), what + ": recv", errno);
    }
    if (mh.msg_flags & MSG_TRUNC) return fail(Errc::too_large, what + ": reply truncated");
    if (from.nl_pid != 0) continue;  // not from the kernel
    ConstByteSpan buf(rx_.data(), static_cast<std::size_t>(n));
    std::size_t off = 0;
    while (buf.size() - off >= sizeof(nlmsghdr)) {
      nlmsghdr rh;
      std::memcpy(&rh, buf.data() + off, sizeof rh);
      if (rh.nlmsg_len < sizeof rh || rh.nlmsg_len > buf.size() - off)
        return fail(Errc::protocol, what + ": malformed netlink reply");
      const ConstByteSpan payload = buf.subspan(off + sizeof rh, rh.nlmsg_len - sizeof rh);
      off += std::min<std::size_t>(align4(rh.nlmsg_len), buf.size() - off);
      if (rh.nlmsg_seq != seq) continue;  // a late answer to an earlier (timed-out) request
      if (rh.nlmsg_type == NLMSG_ERROR) {
        if (payload.size() < sizeof(int)) return fail(Errc::protocol, what + ": short ack");
        int err;
        std::memcpy(&err, payload.data(), sizeof err);
        if (err == 0) return ok();
        return kernel_error(-err, what, ext_ack_message(rh, payload));
      }
      if (rh.nlmsg_type == NLMSG_DONE) {
        // A dump ends here; it may carry an error code.
        int err = 0;
        if (payload.size() >= sizeof err) std::memcpy(&err, payload.data(), sizeof err);
        if (err < 0) return kernel_error(-err, what, {});
        if (dump) return ok();
        continue;
      }
      if (rh.nlmsg_type == NLMSG_NOOP || rh.nlmsg_type == NLMSG_OVERRUN) continue;
      on_msg(rh, payload);
    }
  }
}

namespace {

// Parses one RTM_NEWROUTE message; nullopt for families other than IPv4/IPv6 or a short one.
std::optional<Route> parse_route(ConstByteSpan payload) {
  if (payload.size() < sizeof(rtmsg)) return std::nullopt;
  rtmsg rt;
  std::memcpy(&rt, payload.data(), sizeof rt);
  if (rt.rtm_family != AF_INET && rt.rtm_family != AF_INET6) return std::nullopt;
  const unsigned width = rt.rtm_family == AF_INET ? 32 : 128;
  if (rt.rtm_dst_len > width) return std::nullopt;
  Route r;
  r.table = rt.rtm_table;
  r.protocol = rt.rtm_protocol;
  r.type = rt.rtm_type;
  IpAddr dst = rt.rtm_family == AF_INET ? IpAddr::v4(0u) : IpAddr::v6({});
  for_each_attr(payload.subspan(align4(sizeof rt)), [&](const Attr& a) {
    switch (a.type) {
      case RTA_DST:
        if (auto d = attr_addr(a, rt.rtm_family)) dst = *d;
        break;
      case RTA_OIF:
        if (auto v = attr_u32(a)) r.ifindex = static_cast<int>(*v);
        break;
      case RTA_GATEWAY:
        r.gateway = attr_addr(a, rt.rtm_family);
        break;
      case RTA_PREFSRC:
        r.src = attr_addr(a, rt.rtm_family);
        break;
      case RTA_TABLE:
        if (auto v = attr_u32(a)) r.table = *v;
        break;
      case RTA_PRIORITY:
        if (auto v = attr_u32(a)) r.metric = *v;
        break;
      case RTA_METRICS:
        r.mtu = metrics_mtu(a);
        break;
      default:
        break;
    }
  });
  r.dst = IpPrefix::covering(dst, rt.rtm_dst_len);
  return r;
}

}  // namespace

Result<void> Netlink::add_route(const RouteSpec& r) {
  const std::string what = route_what("add", r);
  if (r.ifindex <= 0) return fail(Errc::invalid_argument, what + ": no device");
  if (!family_matches(r)) return fail(Errc::invalid_argument, what + ": mixed address families");
  auto req = route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, r, true);
  return transact(req.finish(), what, [](const nlmsghdr&, ConstByteSpan) {});
}

Result<void> Netlink::del_route(const RouteSpec& r) {
  const std::string what = route_what("delete", r);
  if (!family_matches(r)) return fail(Errc::invalid_argument, what + ": mixed address families");
  auto req = route_request(RTM_DELROUTE, 0, r, false);
  return transact(req.finish(), what, [](const nlmsghdr&, ConstByteSpan) {});
}

Result<std::vector<Route>> Netlink::list_routes(std::uint8_t protocol) {
  Request req(RTM_GETROUTE, NLM_F_DUMP);
  rtmsg rt{};
  rt.rtm_family = AF_UNSPEC;  // every family; others than IPv4/IPv6 are skipped
  req.header(rt);
  std::vector<Route> out;
  auto r = transact(req.finish(), "list routes", [&](const nlmsghdr& h, ConstByteSpan p) {
    if (h.nlmsg_type != RTM_NEWROUTE) return;
    auto route = parse_route(p);
    if (route && route->protocol == protocol) out.push_back(*route);
  });
  if (!r) return fail(r.error());
  return out;
}

Result<std::size_t> Netlink::flush_routes(std::uint8_t protocol) {
  auto routes = list_routes(protocol);
  if (!routes) return fail(routes.error());
  std::size_t n = 0;
  for (const Route& rt : *routes) {
    RouteSpec spec;
    spec.dst = rt.dst;
    spec.ifindex = rt.ifindex;
    spec.gateway = rt.gateway;
    spec.table = rt.table;
    spec.protocol = rt.protocol;
    spec.metric = rt.metric;
    auto d = del_route(spec);
    // Gone in between (e.g. its device vanished) is what we wanted anyway.
    if (!d && d.error().code != Errc::not_found) return fail(d.error());
    if (d) ++n;
  }
  return n;
}

namespace {

Request rule_request(std::uint16_t type, std::uint16_t flags, const RuleSpec& r) {
  Request req(type, flags);
  fib_rule_hdr h{};
  h.family = static_cast<std::uint8_t>(r.family);
  h.table = static_cast<std::uint8_t>(r.table < 256 ? r.table : std::uint32_t{RT_TABLE_UNSPEC});
  h.action = FR_ACT_TO_TBL;
  req.header(h);
  req.attr_u32(FRA_TABLE, r.table);
  req.attr_u32(FRA_PRIORITY, r.priority);
  req.attr_u32(FRA_FWMARK, r.fwmark);
  req.attr_u32(FRA_FWMASK, r.fwmask);
  req.attr(FRA_PROTOCOL, &r.protocol, 1);
  return req;
}

std::string rule_what(const char* verb, const RuleSpec& r) {
  char mark[40];
  std::snprintf(mark, sizeof mark, "0x%x/0x%x", r.fwmark, r.fwmask);
  return std::string(verb) + (r.family == AF_INET6 ? " IPv6" : " IPv4") + " rule pref " +
         std::to_string(r.priority) + " fwmark " + mark + " table " + std::to_string(r.table);
}

bool rule_family_ok(const RuleSpec& r) {
  return r.family == AF_INET || r.family == AF_INET6;
}

std::optional<RuleSpec> parse_rule(ConstByteSpan payload) {
  if (payload.size() < sizeof(fib_rule_hdr)) return std::nullopt;
  fib_rule_hdr h;
  std::memcpy(&h, payload.data(), sizeof h);
  if (h.family != AF_INET && h.family != AF_INET6) return std::nullopt;
  RuleSpec r;
  r.family = h.family;
  r.table = h.table;
  r.fwmask = 0;
  r.protocol = 0;
  for_each_attr(payload.subspan(align4(sizeof h)), [&](const Attr& a) {
    switch (a.type) {
      case FRA_TABLE:
        if (auto v = attr_u32(a)) r.table = *v;
        break;
      case FRA_PRIORITY:
        if (auto v = attr_u32(a)) r.priority = *v;
        break;
      case FRA_FWMARK:
        if (auto v = attr_u32(a)) r.fwmark = *v;
        break;
      case FRA_FWMASK:
        if (auto v = attr_u32(a)) r.fwmask = *v;
        break;
      case FRA_PROTOCOL:
        if (!a.value.empty()) r.protocol = a.value[0];
        break;
      default:
        break;
    }
  });
  return r;
}

}  // namespace

Result<void> Netlink::add_rule(const RuleSpec& r) {
  const std::string what = rule_what("add", r);
  if (!rule_family_ok(r)) return fail(Errc::invalid_argument, what + ": bad family");
  auto req = rule_request(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, r);
  return transact(req.finish(), what, [](const nlmsghdr&, ConstByteSpan) {});
}

Result<void> Netlink::del_rule(const RuleSpec& r) {
  const std::string what = rule_what("delete", r);
  if (!rule_family_ok(r)) return fail(Errc::invalid_argument, what + ": bad family");
  auto req = rule_request(RTM_DELRULE, 0, r);
  return transact(req.finish(), what, [](const nlmsghdr&, ConstByteSpan) {});
}

Result<std::vector<RuleSpec>> Netlink::list_rules(std::uint8_t protocol) {
  std::vector<RuleSpec> out;
  // One dump per family: AF_UNSPEC dumps are refused for rules on some kernels.
  for (const int family : {AF_INET, AF_INET6}) {
    Request req(RTM_GETRULE, NLM_F_DUMP);
    fib_rule_hdr h{};
    h.family = static_cast<std::uint8_t>(family);
    req.header(h);
    auto r = transact(req.finish(), "list rules", [&](const nlmsghdr& m, ConstByteSpan p) {
      if (m.nlmsg_type != RTM_NEWRULE) return;
      auto rule = parse_rule(p);
      if (rule && rule->protocol == protocol) out.push_back(*rule);
    });
    if (!r) return fail(r.error());
  }
  return out;
}

Result<std::size_t> Netlink::flush_rules(std::uint8_t protocol) {
  auto rules = list_rules(protocol);
  if (!rules) return fail(rules.error());
  std::size_t n = 0;
  for (const RuleSpec& r : *rules) {
    auto d = del_rule(r);
    if (!d && d.error().code != Errc::not_found) return fail(d.error());
    if (d) ++n;
  }
  return n;
}

Result<void> Netlink::add_address(int ifindex, const IpAddr& addr, unsigned prefix_len) {
  const std::string what = "add address " + addr.str() + "/" + std::to_string(prefix_len) +
                           " dev " + std::to_string(ifindex);
  if (prefix_len > (addr.is_v4() ? 32u : 128u) || ifindex <= 0)
    return fail(Errc::invalid_argument, what);
  Request req(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg ifa{};
  ifa.ifa_family = family_of(addr);
  ifa.ifa_prefixlen = static_cast<std::uint8_t>(prefix_len);
  ifa.ifa_flags = addr.is_v6() ? IFA_F_NODAD : 0;
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<std::uint32_t>(ifindex);
  req.header(ifa);
  req.attr_addr(IFA_LOCAL, addr);
  req.attr_addr(IFA_ADDRESS, addr);
  return transact(req.finish(), what, [](const nlmsghdr&, ConstByteSpan) {});
}

Result<void> Netlink::set_link(int ifindex, bool up, std::optional<std::uint32_t> mtu) {
  std::string what = "set link " + std::to_string(ifindex) + (up ? " up" : " down");
  if (mtu) what += " mtu " + std::to_string(*mtu);
  if (ifindex <= 0) return fail(Errc::invalid_argument, what);
  Request req(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  ifi.ifi_flags = up ? IFF_UP : 0;
  ifi.ifi_change = IFF_UP;
  req.header(ifi);
  if (mtu) req.attr_u32(IFLA_MTU, *mtu);
  return transact(req.finish(), what, [](const nlmsghdr&, ConstByteSpan) {});
}

Result<int> Netlink::ifindex(const std::string& name) {
  const std::string what = "look up device " + name;
  if (name.empty() || name.size() >= IFNAMSIZ) return fail(Errc::invalid_argument, what);
  Request req(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  req.header(ifi);
  req.attr(IFLA_IFNAME, name.c_str(), name.size() + 1);
  int index = 0;
  auto r = transact(req.finish(), what, [&](const nlmsghdr& h, ConstByteSpan p) {
    if (h.nlmsg_type != RTM_NEWLINK || p.size() < sizeof(ifinfomsg)) return;
    ifinfomsg got;
    std::memcpy(&got, p.data(), sizeof got);
    index = got.ifi_index;
  });
  if (!r) return fail(r.error());
  if (index <= 0) return fail(Errc::not_found, what);
  return index;
}

Result<std::uint32_t> Netlink::link_mtu(int ifindex) {
  const std::string what = "look up device " + std::to_string(ifindex);
  if (ifindex <= 0) return fail(Errc::invalid_argument, what);
  Request req(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  req.header(ifi);
  std::optional<std::uint32_t> mtu;
  auto r = transact(req.finish(), what, [&](const nlmsghdr& h, ConstByteSpan p) {
    if (h.nlmsg_type != RTM_NEWLINK || p.size() < sizeof(ifinfomsg)) return;
    for_each_attr(p.subspan(align4(sizeof(ifinfomsg))), [&](const Attr& a) {
      if (a.type == IFLA_MTU) mtu = attr_u32(a);
    });
  });
  if (!r) return fail(r.error());
  if (!mtu) return fail(Errc::protocol, what + ": no MTU in the reply");
  return *mtu;
}

Result<RouteLookup> Netlink::route_get(const IpAddr& dst) {
  const std::string what = "route get " + dst.str();
  Request req(RTM_GETROUTE, 0);
  rtmsg rt{};
  rt.rtm_family = family_of(dst);
  rt.rtm_dst_len = static_cast<std::uint8_t>(dst.size() * 8);
  req.header(rt);
  req.attr_addr(RTA_DST, dst);
  std::optional<Route> got;
  auto r = transact(req.finish(), what, [&](const nlmsghdr& h, ConstByteSpan p) {
    if (h.nlmsg_type == RTM_NEWROUTE) got = parse_route(p);
  });
  if (!r) return fail(r.error());
  if (!got || got->ifindex <= 0) return fail(Errc::not_found, what + ": no device in the reply");
  RouteLookup out;
  out.ifindex = got->ifindex;
  out.gateway = got->gateway;
  out.src = got->src;
  out.route_mtu = got->mtu;
  auto mtu = link_mtu(out.ifindex);
  if (!mtu) return fail(mtu.error());
  out.link_mtu = *mtu;
  return out;
}

}  // namespace ie::ied
