// peer.resolve (docs/control-protocol.md): what ied knows about one peer address, for
// ie_resolve() in libinteredge and `iectl resolve`. ied resolves no names (the caller's
// getaddrinfo does); it answers, per address, whether the host is an InterEdge host (its key
// is known) and which first-hop SN(s) serve it: the SN the host named in its latest packets
// (source_sn, learned_sn), then the SN of the record ied routes by (a static [[peer]]
// prefix, else a DNS peer record). When only DNS can answer and no record is cached, the
// lookup is started as the packet path starts it (start_peer_lookup) and the answer says
// pending: the caller asks again.
#include "daemon_impl.hpp"

namespace ie::ied {

namespace {

using ctl::Json;

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address ied routes by.
IpAddr unmapped(const IpAddr& a) {
  if (!a.is_v6()) return a;
  const auto b = a.bytes();
  for (std::size_t i = 0; i < 10; ++i)
    if (b[i] != 0) return a;
  if (b[10] != 0xff || b[11] != 0xff) return a;
  return *IpAddr::from_bytes(b.subspan(12, 4));
}

}  // namespace

Result<Json> Daemon::Impl::peer_resolve(const Json& params) {
  const auto p = params.find("address");
  if (p == params.end()) return fail(Errc::invalid_argument, "address: required (an IP address)");
  if (!p->is_string()) return fail(Errc::invalid_argument, "address: not a string");
  const std::string& text = p->get_ref<const std::string&>();
  // IpAddr::parse copies into a C string for inet_pton: an embedded NUL would cut it short.
  const auto parsed = text.find('\0') == std::string::npos ? IpAddr::parse(text) : std::nullopt;
  if (!parsed)
    return fail(Errc::invalid_argument,
                "address: not a numeric IPv4 or IPv6 address (resolve names first)");
  const IpAddr addr = unmapped(*parsed);
  const auto now = Clock::now();

  // The record ied routes by, as peer_route finds it.
  const PeerRoute* route = nullptr;
  const char* source = "none";
  for (const auto& [prefix, r] : static_peers)
    if (prefix.contains(addr)) {
      route = &r;
      source = "static";
      break;
    }
  if (route == nullptr) {
    route = dns_peers.find(addr, now);
    if (route != nullptr) source = "dns";
  }
  const bool pending = route == nullptr && start_peer_lookup(addr);

  Json first_hops = Json::array();
  const auto learned = learned_sn.find(addr);
  if (learned != learned_sn.end()) first_hops.push_back(learned->second);
  if (route != nullptr && !route->sn.empty() &&
      (learned == learned_sn.end() || learned->second != route->sn))
    first_hops.push_back(route->sn);
  if (route == nullptr && learned != learned_sn.end()) source = "learned";

  // An InterEdge host: its key is known (its record's, its handshake's, or a direct path's).
  const bool interedge =
      (route != nullptr && route->key) || (e2e && e2e->peer(addr)) || direct_keys.count(addr) != 0;

  Json j;
  j["address"] = addr.str();
  j["interedge"] = interedge;
  j["sns"] = std::move(first_hops);
  j["source"] = source;
  j["expires_in_s"] =
      route != nullptr && route->expires
          ? Json(std::chrono::duration_cast<std::chrono::seconds>(*route->expires - now).count())
          : Json(nullptr);
  j["pending"] = pending;
  return j;
}

}  // namespace ie::ied
