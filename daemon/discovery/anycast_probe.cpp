// AnycastProber (anycast_probe.hpp): XX first contact to an anycast address on a throwaway
// link, the responder's info answer, then CLOSE.
#include "ie/ied/anycast_probe.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "ie/conf/names.hpp"
#include "ie/crypto/key_file.hpp"
#include "ie/io/udp.hpp"
#include "ie/link/host_link.hpp"

namespace ie::ied {

namespace {

using Clock = std::chrono::steady_clock;

// A numeric endpoint someone can be sent to: not a wildcard address, not port 0.
bool sendable_endpoint(const std::string& text, sockaddr_storage* out) {
  socklen_t len = 0;
  const auto sa = io::parse_endpoint(text, &len);
  if (!sa) return false;
  *out = *sa;
  if (sa->ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&*sa);
    return v4->sin_port != 0 && v4->sin_addr.s_addr != htonl(INADDR_ANY);
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&*sa);
  return v6->sin6_port != 0 && !IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
}

}  // namespace

Result<SnInfo> parse_sn_info(std::string_view text) {
  const auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(Errc::protocol, "info answer is not a JSON object");
  const auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean() || !ok->get<bool>())
    return fail(Errc::protocol, "info answer is not \"ok\":true");
  const auto sn = j.find("sn");
  if (sn == j.end() || !sn->is_string())
    return fail(Errc::protocol, "info answer has no \"sn\" (a string)");
  SnInfo out;
  out.name = sn->get<std::string>();
  if (!conf::valid_sn_name(out.name))
    return fail(Errc::protocol, "info answer: \"sn\" " + out.name.substr(0, 64) + " is not DOM.SN");
  const auto ep = j.find("endpoint");
  if (ep == j.end())
    return fail(Errc::protocol, "SN " + out.name +
                                    " advertises no unicast endpoint (its [sn] advertise is "
                                    "unset and it listens on a wildcard address)");
  if (!ep->is_string()) return fail(Errc::protocol, "info answer: \"endpoint\" is not a string");
  out.endpoint = ep->get<std::string>();
  sockaddr_storage ss{};
  if (!sendable_endpoint(out.endpoint, &ss))
    return fail(Errc::protocol, "SN " + out.name + " advertises \"" + out.endpoint.substr(0, 64) +
                                    "\", not a numeric IP:PORT to associate with");
  return out;
}

struct AnycastProber::Probe {
  std::string endpoint;
  std::unique_ptr<link::HostLink> link;
  link::PeerId peer = 0;
  Clock::time_point deadline;
  std::optional<io::Reactor::TimerId> timer;
  Done done;
};

AnycastProber::AnycastProber(io::Reactor& reactor, AnycastOptions options)
    : reactor_(reactor), opts_(options) {}

AnycastProber::~AnycastProber() {
  *alive_ = false;
  for (auto& [id, p] : probes_) {
    if (p->timer) reactor_.cancel_timer(*p->timer);
    reactor_.remove_fd(p->link->fd());
  }
  probes_.clear();  // each link's destructor sends CLOSE
}

void AnycastProber::probe(const std::string& endpoint, Done done) {
  auto post_error = [this, &done](Error e) {
    reactor_.post([alive = std::weak_ptr<bool>(alive_), done = std::move(done), e]() mutable {
      if (auto a = alive.lock(); a && *a) done(fail(e));
    });
  };
  sockaddr_storage ss{};
  if (!sendable_endpoint(endpoint, &ss))
    return post_error(
        Error{Errc::invalid_argument, 0, "anycast " + endpoint + ": not a numeric IP:PORT"});
  link::LinkOptions lo;
  lo.bind = ss.ss_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0";
  // A key of its own, made for this probe: an unauthenticated responder learns nothing about
  // the host, and the probe session can never be confused with the host's association with
  // the same SN (the SN keys its peers by static key).
  lo.key = crypto::noise::KeyPair::generate();
  lo.timers = opts_.timers;
  auto l = link::HostLink::create(std::move(lo));
  if (!l) return post_error(l.error());
  auto p = std::make_unique<Probe>();
  p->endpoint = endpoint;
  p->link = std::move(*l);
  p->deadline = Clock::now() + opts_.timeout;
  p->done = std::move(done);
  auto peer = p->link->add_first_contact(endpoint);
  if (!peer) {
    done = std::move(p->done);
    return post_error(peer.error());
  }
  p->peer = *peer;
  const std::uint64_t id = next_id_++;
  const int fd = p->link->fd();
  if (auto r =
          reactor_.add_fd(fd, io::Reactor::kReadable, [this, id](std::uint32_t) { drive(id); });
      !r) {
    done = std::move(p->done);
    return post_error(r.error());
  }
  probes_.emplace(id, std::move(p));
  drive(id);
}

void AnycastProber::drive(std::uint64_t id) {
  const auto it = probes_.find(id);
  if (it == probes_.end()) return;
  Probe& p = *it->second;
  // Bounded: a probe link carries a handful of control datagrams, never a flood we must
  // drain in one go (what is left stays readable and comes back through the reactor).
  for (int i = 0; i < 4 && p.link->receive([](link::InPacket&) {}) > 0; ++i) {
  }
  p.link->service();
  const auto st = p.link->sn_state(p.peer);
  if (st && !st->info.empty()) {
    const auto key = p.link->peer_key(p.peer);
    if (!key) return finish(id, fail(Errc::protocol, p.endpoint + ": no key after handshake"));
    auto info = parse_sn_info(st->info);
    if (!info)
      return finish(
          id, fail(Errc::protocol, p.endpoint + ": responder with key " +
                                       crypto::key_to_base64(*key) + ": " + info.error().context));
    AnycastAnswer a;
    a.anycast = p.endpoint;
    a.info = std::move(*info);
    a.key = *key;
    return finish(id, std::move(a));
  }
  const auto now = Clock::now();
  if (now >= p.deadline) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(opts_.timeout).count();
    return finish(
        id, fail(Errc::timeout, st && st->established
                                    ? p.endpoint + ": handshake done but no info answer within " +
                                          std::to_string(ms) + " ms"
                                    : "no SN answered at " + p.endpoint + " within " +
                                          std::to_string(ms) + " ms"));
  }
  if (p.timer) reactor_.cancel_timer(*p.timer);
  const auto next = std::min(p.deadline, p.link->next_deadline());
  const auto delay = std::clamp(std::chrono::ceil<std::chrono::milliseconds>(next - now),
                                std::chrono::milliseconds(1), std::chrono::milliseconds(1000));
  p.timer = reactor_.add_timer(delay, [this, id] {
    if (auto f = probes_.find(id); f != probes_.end()) f->second->timer.reset();
    drive(id);
  });
}

void AnycastProber::finish(std::uint64_t id, Result<AnycastAnswer> r) {
  const auto it = probes_.find(id);
  if (it == probes_.end()) return;
  std::unique_ptr<Probe> p = std::move(it->second);
  probes_.erase(it);
  if (p->timer) reactor_.cancel_timer(*p->timer);
  reactor_.remove_fd(p->link->fd());
  p->link.reset();  // CLOSE: the SN forgets the probe session at once
  reactor_.post(
      [alive = std::weak_ptr<bool>(alive_), done = std::move(p->done), r = std::move(r)]() mutable {
        if (auto a = alive.lock(); a && *a) done(std::move(r));
      });
}

}  // namespace ie::ied
