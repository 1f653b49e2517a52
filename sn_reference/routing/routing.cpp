// The SN's route table (ie/sn/routing.hpp).
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "ie/sn/routing.hpp"

namespace ie::sn {

std::optional<InnerAddrs> inner_addrs(const std::uint8_t* p, std::size_t len) {
  if (p == nullptr || len < 1) return std::nullopt;
  const unsigned version = p[0] >> 4;
  InnerAddrs r{};
  if (version == 4) {
    const std::size_t ihl = (p[0] & 0x0f) * 4u;
    if (len < 20 || ihl < 20 || ihl > len) return std::nullopt;
    r.src = mapped_v4(load_be32(p + 12));
    r.dst = mapped_v4(load_be32(p + 16));
    return r;
  }
  if (version == 6) {
    if (len < 40) return std::nullopt;
    std::memcpy(r.src.data(), p + 8, 16);
    std::memcpy(r.dst.data(), p + 24, 16);
    return r;
  }
  return std::nullopt;
}

std::string_view edomain_of(std::string_view sn_name) {
  const auto dot = sn_name.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == sn_name.size()) return {};
  return sn_name.substr(0, dot);
}

RouteConfig route_config(const SnConfig& c) {
  RouteConfig r;
  r.self = c.name;
  r.gateway = c.gateway.empty() ? c.name : c.gateway;
  for (const auto& p : c.peers)
    r.peer_gateways[p.edomain] = p.gateway.name;
  r.routes = c.routes;
  r.host_prefixes = c.host_prefixes;
  return r;
}

std::size_t RouteTable::AddrHash::operator()(const Addr16& a) const {
  std::uint64_t x, y;
  std::memcpy(&x, a.data(), 8);
  std::memcpy(&y, a.data() + 8, 8);
  std::uint64_t h = x * 0x9e3779b97f4a7c15ull ^ (y + 0x632be59bd9b4e019ull + (x << 6));
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  return static_cast<std::size_t>(h ^ (h >> 32));
}

RouteTable::RouteTable(RouteConfig cfg) : cfg_(std::move(cfg)) {}

void RouteTable::set_config(RouteConfig cfg) {
  cfg_ = std::move(cfg);
}

Result<void> RouteTable::apply(const RouteOp& op) {
  switch (op.kind) {
    case RouteOp::Kind::pipe_up: {
      Pipe& p = pipes_[op.pipe];
      p.kind = op.pipe_kind;
      if (op.pipe_kind == IE_SN_PIPE_SN) {
        if (!p.sn_name.empty() && p.sn_name != op.sn_name) {
          const auto it = sn_pipes_.find(p.sn_name);
          if (it != sn_pipes_.end() && it->second == op.pipe) sn_pipes_.erase(it);
        }
        p.sn_name = op.sn_name;
        // The newest pipe to an SN wins. Without a name it is an SN pipe nothing routes to
        // (an on-demand direct pipe being closed: what still arrives on it is taken).
        if (!op.sn_name.empty()) sn_pipes_[op.sn_name] = op.pipe;
      }
      return ok();
    }
    case RouteOp::Kind::pipe_down: {
      const auto it = pipes_.find(op.pipe);
      if (it == pipes_.end()) return ok();
      for (const auto& a : it->second.addrs)
        hosts_.erase(a);
      if (!it->second.invocations.empty()) --invoking_pipes_;
      if (!it->second.sn_name.empty()) {
        const auto s = sn_pipes_.find(it->second.sn_name);
        if (s != sn_pipes_.end() && s->second == op.pipe) sn_pipes_.erase(s);
      }
      pipes_.erase(it);
      return ok();
    }
    case RouteOp::Kind::register_host: {
      const auto it = pipes_.find(op.pipe);
      if (it == pipes_.end()) return fail(Errc::not_found, "no such pipe");
      Pipe& p = it->second;
      if (p.kind != IE_SN_PIPE_HOST) return fail(Errc::invalid_argument, "only hosts register");
      if (op.addrs.empty()) return fail(Errc::invalid_argument, "no addresses given");
      std::size_t fresh = 0;
      for (const auto& a : op.addrs) {
        if (!cfg_.host_prefixes.empty() &&
            std::none_of(cfg_.host_prefixes.begin(), cfg_.host_prefixes.end(),
                         [&](const Prefix& pre) { return pre.contains(a); }))
          return fail(Errc::permission, "address " + addr_str(a) + " is not served here");
        const auto h = hosts_.find(a);
        if (h != hosts_.end() && h->second != op.pipe)
          return fail(Errc::exists, "address " + addr_str(a) + " is registered by another host");
        if (h == hosts_.end()) ++fresh;
      }
      if (p.addrs.size() + fresh > cfg_.max_addrs_per_host)
        return fail(Errc::too_large, "more than " + std::to_string(cfg_.max_addrs_per_host) +
                                         " addresses for one host");
      for (const auto& a : op.addrs) {
        p.addrs.insert(a);
        hosts_[a] = op.pipe;
      }
      p.standby = op.standby;
      return ok();
    }
    case RouteOp::Kind::set_invocations: {
      const auto it = pipes_.find(op.pipe);
      if (it == pipes_.end()) return fail(Errc::not_found, "no such pipe");
      Pipe& p = it->second;
      if (p.kind != IE_SN_PIPE_HOST)
        return fail(Errc::invalid_argument, "only hosts invoke services out of band");
      if (op.invocations.size() > kMaxInvocationsPerHost)
        return fail(Errc::too_large,
                    "more than " + std::to_string(kMaxInvocationsPerHost) + " invocations");
      const bool had = !p.invocations.empty();
      p.invocations = op.invocations;
      invoking_pipes_ = invoking_pipes_ - (had ? 1 : 0) + (p.invocations.empty() ? 0 : 1);
      return ok();
    }
    case RouteOp::Kind::unregister_host: {
      const auto it = pipes_.find(op.pipe);
      if (it == pipes_.end()) return ok();
      for (const auto& a : op.addrs) {
        const auto h = hosts_.find(a);
        if (h != hosts_.end() && h->second == op.pipe) hosts_.erase(h);
        it->second.addrs.erase(a);
      }
      return ok();
    }
  }
  return ok();
}

std::optional<PipeId> RouteTable::host_of(const Addr16& addr) const {
  const auto h = hosts_.find(addr);
  if (h == hosts_.end()) return std::nullopt;
  return h->second;
}

std::optional<PipeId> RouteTable::route(const Addr16& dst) const {
  if (auto h = host_of(dst)) return h;
  const std::string* sn = static_route_sn(dst);
  if (sn == nullptr) return std::nullopt;
  return sn_route(*sn);
}

const std::string* RouteTable::static_route_sn(const Addr16& dst) const {
  const StaticRoute* best = nullptr;
  for (const auto& r : cfg_.routes) {
    if (r.prefix.contains(dst) && (best == nullptr || r.prefix.bits > best->prefix.bits)) best = &r;
  }
  return best == nullptr ? nullptr : &best->sn;
}

std::optional<PipeId> RouteTable::sn_pipe(std::string_view name) const {
  const auto it = sn_pipes_.find(name);
  if (it == sn_pipes_.end()) return std::nullopt;
  return it->second;
}

std::optional<PipeId> RouteTable::sn_route(std::string_view name) const {
  const std::string_view dom = edomain_of(name);
  if (dom.empty() || name == cfg_.self) return std::nullopt;
  if (auto p = sn_pipe(name)) return p;
  const bool gateway = cfg_.gateway == cfg_.self;
  if (dom == edomain_of(cfg_.self)) {
    // An SN of our edomain we have no pipe to: the gateway knows every SN of its edomain.
    if (gateway) return std::nullopt;
    return sn_pipe(cfg_.gateway);
  }
  if (!gateway) return sn_pipe(cfg_.gateway);
  const auto g = cfg_.peer_gateways.find(std::string(dom));
  if (g == cfg_.peer_gateways.end()) return std::nullopt;
  return sn_pipe(g->second);
}

std::optional<ie_sn_pipe_info> RouteTable::pipe_info(PipeId pipe) const {
  const auto it = pipes_.find(pipe);
  if (it == pipes_.end()) return std::nullopt;
  ie_sn_pipe_info info{};
  info.struct_size = sizeof info;
  info.kind = it->second.kind;
  const std::size_t n = std::min(it->second.sn_name.size(), sizeof info.sn_name - 1);
  std::memcpy(info.sn_name, it->second.sn_name.data(), n);
  info.sn_name[n] = '\0';
  info.flags = it->second.standby ? IE_SN_PIPE_F_STANDBY : 0u;
  return info;
}

bool RouteTable::standby_of(PipeId pipe) const {
  const auto it = pipes_.find(pipe);
  return it != pipes_.end() && it->second.standby;
}

std::vector<Addr16> RouteTable::registered(PipeId pipe) const {
  const auto it = pipes_.find(pipe);
  if (it == pipes_.end()) return {};
  return {it->second.addrs.begin(), it->second.addrs.end()};
}

const std::vector<Invocation>& RouteTable::invocations(PipeId pipe) const {
  static const std::vector<Invocation> kNone;
  const auto it = pipes_.find(pipe);
  return it == pipes_.end() ? kNone : it->second.invocations;
}

std::string_view direction_name(Direction d) {
  switch (d) {
    case Direction::in:
      return "in";
    case Direction::out:
      return "out";
    case Direction::both:
      return "both";
  }
  return "?";
}

std::optional<Direction> parse_direction(std::string_view s) {
  if (s == "in") return Direction::in;
  if (s == "out") return Direction::out;
  if (s == "both") return Direction::both;
  return std::nullopt;
}

std::optional<std::pair<std::uint16_t, std::string_view>> split_service_request(
    ConstByteSpan data) {
  if (data.size() < 2) return std::nullopt;
  const std::uint16_t svc = load_be16(data.data());
  return std::make_pair(
      svc, std::string_view(reinterpret_cast<const char*>(data.data()) + 2, data.size() - 2));
}

Bytes make_service_request(std::uint16_t service_id, std::string_view body) {
  Bytes b(2 + body.size());
  store_be16(b.data(), service_id);
  std::memcpy(b.data() + 2, body.data(), body.size());
  return b;
}

}  // namespace ie::sn
