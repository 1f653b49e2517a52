// On-demand direct pipes (docs/sn.md "On-demand direct pipes"): the control plane's part.
// Everything here runs on worker 0's thread.
//
//   want_direct(N)   a worker routed traffic for SN N through another SN
//     -> locating     sn.locate N to the next SN on the route (it answers from its
//                     configuration or relays, ttl-bounded); the answer: N's endpoint and key
//     -> connecting   Noise IK to that key (add_peer, kept connected)
//     -> hello        sn.hello "we are <self>": the other side locates us the same way and
//                     compares the key with the pipe's before it takes the pipe as an SN pipe
//     -> up           the pipe becomes N's SN pipe on every worker (before our next datagram);
//                     the decisions cached through the old route are re-decided
//   any step failing or timing out -> failed (traffic keeps the gateway route; retried after
//   kRetryAfter); up and unused for direct_idle_seconds -> closed.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "control_plane.hpp"
#include "ie/io/udp.hpp"
#include "ie/util/log.hpp"
#include "ie/wire/service_id.hpp"

namespace ie::sn {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kRequestTimeout{5};
constexpr std::chrono::seconds kConnectTimeout{10};
constexpr std::chrono::seconds kRetryAfter{30};
constexpr std::chrono::seconds kCloseGrace{2};
constexpr std::size_t kMaxDirect = 1024;  // SNs with a direct pipe (or an attempt) at once
// Requests of ours waiting for an answer: bounds what hellos from unknown peers (each makes
// us locate the SN they claim to be) can make us send.
constexpr std::size_t kMaxPending = 256;

std::string error_json(const std::string& what) {
  return nlohmann::json{{"ok", false}, {"error", what}}.dump();
}

ConstByteSpan as_bytes(const std::string& s) {
  return ConstByteSpan(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

assoc::Addr to_assoc(const sockaddr_storage& s, socklen_t len) {
  const std::size_t n = std::min<std::size_t>(len, sizeof(assoc::Addr::bytes));
  return assoc::Addr::from(ConstByteSpan(reinterpret_cast<const std::uint8_t*>(&s), n));
}

}  // namespace

void ControlPlane::set_direct_config(const SnConfig& cfg) {
  direct_on_ = cfg.direct_pipes;
  direct_idle_ = std::chrono::seconds(cfg.direct_idle_seconds);
  info_.direct_pipes = cfg.direct_pipes;
  info_.known_sns.clear();
  for (const auto& s : cfg.domain_sns)
    info_.known_sns.push_back(s);
  for (const auto& d : cfg.peers)
    info_.known_sns.push_back(d.gateway);
}

std::size_t ControlPlane::direct_pipe_count() const {
  return static_cast<std::size_t>(std::count_if(direct_.begin(), direct_.end(), [](const auto& kv) {
    return kv.second.stage == Direct::Stage::up;
  }));
}

std::optional<std::string> ControlPlane::verified_name(const noise::PublicKey& key) const {
  for (const auto& [name, d] : direct_) {
    if (d.stage == Direct::Stage::up && d.contact.public_key == key) return name;
  }
  return std::nullopt;
}

void ControlPlane::want_direct(const std::string& name) {
  if (!direct_on_ || stopped_ || name == self_name_) return;
  for (const auto& s : sns_) {
    if (s.name == name) return;  // configured: connect_sns keeps that pipe
  }
  const auto now = Clock::now();
  if (const auto it = direct_.find(name); it != direct_.end()) {
    if (it->second.stage != Direct::Stage::failed || now < it->second.deadline) return;
    direct_.erase(it);
  }
  if (direct_.size() >= kMaxDirect) return;
  Direct& d = direct_[name];
  d.stage = Direct::Stage::locating;
  d.deadline = now + kRequestTimeout;
  IE_LOG_DEBUG("direct pipe to {}: locating it", name);
  locate(
      name,
      [this, name](Result<SnRef> c, crypto::Time t) {
        const auto it = direct_.find(name);
        if (it == direct_.end() || it->second.stage != Direct::Stage::locating) return;
        if (!c) return direct_fail(name, c.error().context, t);
        if (c->public_key == self_key_) return direct_fail(name, "the answer is our own key", t);
        socklen_t len = 0;
        const auto ep = io::parse_endpoint(c->address, &len);
        if (!ep) return direct_fail(name, "bad address " + c->address, t);
        Direct& e = it->second;
        e.contact = *c;
        e.peer = node_->add_peer(c->public_key, to_assoc(*ep, len), /*connect=*/true, t);
        e.we_connect = true;
        e.stage = Direct::Stage::connecting;
        e.deadline = t + kConnectTimeout;
        IE_LOG_INFO("direct pipe to {}: associating with {} (pipe {})", name, c->address, e.peer);
        // It connected to us first (its own demand): the session is there already.
        if (const auto m = pipes_.find(e.peer); m != pipes_.end() && m->second.established)
          direct_established(e.peer, t);
      },
      now);
  pump(now);
}

void ControlPlane::locate(const std::string& name,
                          std::function<void(Result<SnRef>, crypto::Time)> done, crypto::Time now) {
  const auto via = workers_[0]->routes().sn_route(name);
  if (!via) return done(fail(Errc::not_found, "no SN to ask where " + name + " is"), now);
  const bool sent = send_request(
      *via, locate_request(name, kMaxLocateTtl),
      [done, name](std::optional<std::string> a, crypto::Time t) {
        if (!a) return done(fail(Errc::timeout, "no answer to sn.locate " + name), t);
        done(parse_locate_answer(*a, name), t);
      },
      now);
  if (!sent) done(fail(Errc::busy, "cannot ask where " + name + " is now"), now);
}

bool ControlPlane::send_request(assoc::PeerId peer, const std::string& body, AnswerFn done,
                                crypto::Time now) {
  if (requests_.size() >= kMaxPending) return false;
  std::uint32_t id = next_request_id_++;
  if (id == 0) id = next_request_id_++;
  const Bytes b = make_service_request(static_cast<std::uint16_t>(wire::ServiceId::control), body);
  if (!node_->send_service_message(peer, /*request=*/true, id, b, now)) return false;
  requests_[id] = Pending{peer, now + kRequestTimeout, std::move(done)};
  return true;
}

void ControlPlane::give_up_requests(const std::function<bool(const Pending&)>& which,
                                    crypto::Time now) {
  std::vector<std::uint32_t> ids;
  for (const auto& [id, p] : requests_) {
    if (which(p)) ids.push_back(id);
  }
  for (const auto id : ids) {  // a handler may send (and so add) requests: look each up again
    const auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    AnswerFn done = std::move(it->second.done);
    requests_.erase(it);
    done(std::nullopt, now);
  }
}

void ControlPlane::on_answer(const assoc::Event& e, crypto::Time now) {
  const auto it = requests_.find(e.id);
  if (it == requests_.end() || it->second.peer != e.peer) return;  // not ours, or late
  AnswerFn done = std::move(it->second.done);
  requests_.erase(it);
  done(std::string(reinterpret_cast<const char*>(e.data.data()), e.data.size()), now);
}

void ControlPlane::relay_locate(const assoc::Event& e, const ControlResult& r, crypto::Time now) {
  const assoc::PeerId from = e.peer;
  const std::uint32_t id = e.id;
  const std::string name = r.relay_name;
  ++direct_stats_.locates_relayed;
  const bool sent = send_request(
      r.relay_via, locate_request(name, r.relay_ttl),
      [this, from, id, name](std::optional<std::string> a, crypto::Time t) {
        const std::string body =
            a ? *a : error_json(self_name_ + ": no answer from the next SN about " + name);
        node_->send_service_message(from, false, id, as_bytes(body), t);
      },
      now);
  if (!sent)
    node_->send_service_message(
        from, false, id, as_bytes(error_json(self_name_ + " cannot ask about " + name)), now);
}

void ControlPlane::verify_hello(const assoc::Event& e, const std::string& name, crypto::Time now) {
  const auto mit = pipes_.find(e.peer);
  if (mit == pipes_.end()) return;
  const assoc::PeerId peer = e.peer;
  const std::uint32_t id = e.id;
  const noise::PublicKey key = mit->second.key;
  auto finish = [this, peer, id, name, key](Result<SnRef> c, crypto::Time t) {
    if (pipes_.find(peer) == pipes_.end()) return;  // gone meanwhile
    std::string err;
    if (!c) {
      err = "cannot verify that this is " + name + ": " + c.error().context;
    } else if (c->public_key != key) {
      err = name + "'s key is not this pipe's";
    }
    if (!err.empty()) {
      ++direct_stats_.hellos_refused;
      IE_LOG_WARN("pipe {} says it is SN {}: refused ({})", peer, name, err);
      node_->send_service_message(peer, false, id, as_bytes(error_json(err)), t);
      return;
    }
    Direct& d = direct_[name];
    if (d.stage == Direct::Stage::up && d.peer == peer) {  // verified before (a repeated hello)
      node_->send_service_message(
          peer, false, id, as_bytes(nlohmann::json{{"ok", true}, {"sn", self_name_}}.dump()), t);
      return;
    }
    d.stage = Direct::Stage::up;
    d.contact = *c;
    if (d.peer != peer) d.we_connect = false;
    d.peer = peer;
    d.last_used = t;
    ++direct_stats_.opened;
    IE_LOG_INFO("direct pipe from {} up (pipe {})", name, peer);
    make_sn_pipe(peer, name);
    node_->send_service_message(
        peer, false, id, as_bytes(nlohmann::json{{"ok", true}, {"sn", self_name_}}.dump()), t);
  };
  // Known already: configured, or located by our own attempt at a pipe to it.
  for (const auto& s : sns_) {
    if (s.name == name) return finish(SnRef{name, io::endpoint_str(s.addr), s.key}, now);
  }
  if (const auto it = direct_.find(name); it != direct_.end() &&
                                          it->second.stage != Direct::Stage::locating &&
                                          it->second.stage != Direct::Stage::failed)
    return finish(it->second.contact, now);
  locate(name, finish, now);
}

void ControlPlane::direct_established(assoc::PeerId peer, crypto::Time now) {
  for (auto& [name, d] : direct_) {
    if (d.peer != peer || d.stage != Direct::Stage::connecting) continue;
    d.stage = Direct::Stage::hello;
    d.deadline = now + kRequestTimeout;
    // We associated with the key the gateways gave for this SN, so what arrives on the pipe
    // is that SN's: take it as an SN pipe at once (nothing routes to it yet, it has no name).
    // The peer may route over it as soon as it verified our hello, before its answer reaches
    // us; the hello leaves only after every worker accepts the pipe.
    accept_as_sn(peer);
    const std::string n = name;
    const bool sent = send_request(
        peer, hello_request(self_name_),
        [this, n, peer](std::optional<std::string> a, crypto::Time t) {
          const auto it = direct_.find(n);
          if (it == direct_.end() || it->second.peer != peer) return;
          if (it->second.stage == Direct::Stage::up) return;  // its own hello made it up meanwhile
          if (it->second.stage != Direct::Stage::hello) return;
          if (!a) return direct_fail(n, "no answer to sn.hello", t);
          const auto j = nlohmann::json::parse(*a, nullptr, false);
          if (j.is_discarded() || !j.is_object() || j.value("ok", false) != true) {
            const std::string why = j.is_object() && j.contains("error") && j["error"].is_string()
                                        ? j["error"].get<std::string>().substr(0, 200)
                                        : std::string("sn.hello refused");
            return direct_fail(n, why, t);
          }
          Direct& e = it->second;
          e.stage = Direct::Stage::up;
          e.last_used = t;
          ++direct_stats_.opened;
          IE_LOG_INFO("direct pipe to {} up (pipe {})", n, peer);
          make_sn_pipe(peer, n);
        },
        now);
    if (!sent) direct_fail(n, "cannot send sn.hello", now);
    return;
  }
}

void ControlPlane::accept_as_sn(assoc::PeerId peer) {
  const auto mit = pipes_.find(peer);
  if (mit == pipes_.end() || mit->second.kind == IE_SN_PIPE_SN) return;
  mit->second.kind = IE_SN_PIPE_SN;
  const PipeId id = peer;
  const Endpoint addr = mit->second.addr;
  for (unsigned i = 0; i < workers_.size(); ++i)
    on_worker_acked(i, [=](Worker& w) { w.pipe_up(id, IE_SN_PIPE_SN, std::string(), addr); });
}

bool ControlPlane::saying_hello(assoc::PeerId peer, const noise::PublicKey& key) const {
  return std::any_of(direct_.begin(), direct_.end(), [&](const auto& kv) {
    const Direct& d = kv.second;
    return d.peer == peer && d.stage == Direct::Stage::hello && d.contact.public_key == key;
  });
}

void ControlPlane::make_sn_pipe(assoc::PeerId peer, const std::string& name) {
  const auto mit = pipes_.find(peer);
  if (mit == pipes_.end()) return;
  PipeMeta& m = mit->second;
  // The decisions cached on the route traffic to `name` took so far are decided again: they
  // go straight now.
  const auto relay = workers_[0]->routes().sn_route(name);
  m.kind = IE_SN_PIPE_SN;
  m.sn_name = name;
  m.on_demand = true;
  const PipeId id = peer;
  const Endpoint addr = m.addr;
  for (unsigned i = 0; i < workers_.size(); ++i) {
    on_worker_acked(i, [=](Worker& w) {
      w.pipe_up(id, IE_SN_PIPE_SN, name, addr);
      if (relay && *relay != id) w.role_changed(*relay);
    });
  }
}

void ControlPlane::direct_fail(const std::string& name, const std::string& why, crypto::Time now) {
  const auto it = direct_.find(name);
  if (it == direct_.end()) return;
  Direct& d = it->second;
  if (d.peer != 0 && d.we_connect) {
    node_->close(d.peer, now);  // stops connecting; no event follows
    if (pipes_.count(d.peer) != 0) pipe_gone(d.peer);
  }
  ++direct_stats_.failed;
  IE_LOG_WARN(
      "direct pipe to {}: {} (traffic keeps its route through the gateway; retried "
      "in {} s)",
      name, why, kRetryAfter.count());
  d = Direct{};
  d.stage = Direct::Stage::failed;
  d.deadline = now + kRetryAfter;
}

void ControlPlane::direct_gone(assoc::PeerId peer, crypto::Time now) {
  // Requests waiting on that peer will not be answered.
  give_up_requests([peer](const Pending& p) { return p.peer == peer; }, now);
  for (auto it = direct_.begin(); it != direct_.end(); ++it) {
    Direct& d = it->second;
    if (d.peer != peer) continue;
    if (d.we_connect) node_->close(peer, now);  // no reconnecting: demand opens it again
    if (d.stage == Direct::Stage::up) {
      IE_LOG_INFO("direct pipe to {} gone (pipe {}); its traffic takes the gateway route",
                  it->first, peer);
      direct_.erase(it);
    } else {
      d.we_connect = false;  // closed already
      direct_fail(it->first, "the pipe went down", now);
    }
    return;
  }
}

void ControlPlane::direct_tick(crypto::Time now) {
  give_up_requests([now](const Pending& p) { return p.deadline <= now; }, now);
  std::vector<std::string> stuck, idle, retry;
  for (const auto& [name, d] : direct_) {
    switch (d.stage) {
      case Direct::Stage::locating:
      case Direct::Stage::connecting:
      case Direct::Stage::hello:
        if (d.deadline <= now) stuck.push_back(name);
        break;
      case Direct::Stage::up:
        if (now - d.last_used >= direct_idle_) idle.push_back(name);
        break;
      case Direct::Stage::failed:
        if (d.deadline <= now) retry.push_back(name);
        break;
    }
  }
  for (const auto& n : stuck)
    direct_fail(n, "timed out", now);
  for (const auto& n : idle) {
    const auto it = direct_.find(n);
    if (it == direct_.end()) continue;
    const assoc::PeerId peer = it->second.peer;
    IE_LOG_INFO("direct pipe to {} unused for {} s: closing it (pipe {})", n, direct_idle_.count(),
                peer);
    ++direct_stats_.idle_closed;
    direct_.erase(it);
    close_direct(peer, now);
  }
  for (const auto& n : retry)
    direct_.erase(n);
  for (auto it = closing_.begin(); it != closing_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    const assoc::PeerId peer = it->first;
    it = closing_.erase(it);
    if (pipes_.count(peer) != 0) pipe_gone(peer);
  }
}

void ControlPlane::close_direct(assoc::PeerId peer, crypto::Time now) {
  const auto mit = pipes_.find(peer);
  if (mit == pipes_.end()) {
    node_->close(peer, now);
    return;
  }
  PipeMeta& m = mit->second;
  m.sn_name.clear();  // an SN pipe with no name: nothing routes to it
  m.on_demand = false;
  const PipeId id = peer;
  const Endpoint addr = m.addr;
  for (unsigned i = 0; i < workers_.size(); ++i) {
    on_worker_acked(i, [=](Worker& w) {
      w.pipe_up(id, IE_SN_PIPE_SN, std::string(), addr);
      w.role_changed(id);  // its cached decisions go elsewhere now
    });
  }
  node_->close(peer, now);  // the CLOSE waits for the workers above
  closing_[peer] = now + kCloseGrace;
}

}  // namespace ie::sn
