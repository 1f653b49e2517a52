// The control worker: the association Node and what its events do to the workers
// (control_plane.hpp). Everything here runs on worker 0's thread.
#include "control_plane.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "ie/io/udp.hpp"
#include "ie/util/log.hpp"
#include "ie/wire/service_id.hpp"

namespace ie::sn {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kTick{100};

assoc::Addr to_assoc(const sockaddr_storage& s, socklen_t len) {
  const std::size_t n = std::min<std::size_t>(len, sizeof(assoc::Addr::bytes));
  return assoc::Addr::from(ConstByteSpan(reinterpret_cast<const std::uint8_t*>(&s), n));
}

socklen_t from_assoc(const assoc::Addr& a, sockaddr_storage* out) {
  *out = sockaddr_storage{};
  const std::size_t n = std::min<std::size_t>(a.len, sizeof *out);
  std::memcpy(out, a.bytes.data(), n);
  return static_cast<socklen_t>(n);
}

std::string error_json(const std::string& what) {
  return nlohmann::json{{"ok", false}, {"error", what}}.dump();
}

ConstByteSpan as_bytes(const std::string& s) {
  return ConstByteSpan(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

}  // namespace

ControlPlane::ControlPlane(Options options, std::vector<Worker*> workers)
    : workers_(std::move(workers)), ring_(std::make_unique<crypto::psp::RxKeyring>()) {
  // A restarted SN does not offer the SPIs of its previous life again: a peer that did not
  // notice the restart (it came back within dead_after) and runs a libie older than the fix
  // in Node::promote would take an offer of the SPI it already sends on for a
  // retransmission and keep sealing with the old key. RxKeyring counts from 1, so start at
  // a random point of the epoch (spi % N still spreads pipes evenly over the workers).
  for (std::uint32_t skip = randombytes_uniform(1u << 20); skip > 0; --skip)
    (void)ring_->allocate_spi();
  const SnConfig& cfg = *options.config;
  self_name_ = cfg.name;
  info_.sn_name = cfg.name;
  info_.endpoint = cfg.advertise;
  info_.services = std::move(options.services);
  info_.out_of_band = std::move(options.out_of_band);
  set_direct_config(cfg);
  self_key_ = options.key.pub;
  info_.public_key = self_key_;
  assoc::Config nc;
  nc.static_key = std::move(options.key);
  nc.timers = options.timers;
  nc.accept_unknown_ik = true;  // hosts associate with IK to our published key
  nc.answer_echoes = true;      // would-be hosts measure our round trip before associating
  // XX first contact: hosts that found us at an anycast address learn our key from the
  // handshake (docs/discovery.md "Anycast"). It grants nothing IK from an unknown key does
  // not already grant, and XX initiations shorter than the response are dropped (no
  // amplification); cookies under load and the half-open cap apply as for IK.
  nc.accept_first_contact = true;
  nc.max_learned_peers = options.max_learned_peers;
  nc.max_handshakes_per_second = options.max_handshakes_per_second;
  node_ = std::make_unique<assoc::Node>(std::move(nc), *ring_);
  sns_ = configured_sns(cfg);
}

ControlPlane::~ControlPlane() = default;

std::vector<ControlPlane::SnPeer> ControlPlane::configured_sns(const SnConfig& cfg) const {
  std::vector<SnPeer> out;
  auto add = [&](const SnRef& r) {
    if (r.name == cfg.name) return;
    SnPeer p;
    p.name = r.name;
    p.key = r.public_key;
    auto ep = io::parse_endpoint(r.address, &p.addr_len);
    if (!ep) {
      IE_LOG_ERROR("sn {}: bad address {}: {}", r.name, r.address, ep.error().to_string());
      return;
    }
    p.addr = *ep;
    out.push_back(std::move(p));
  };
  for (const auto& s : cfg.domain_sns)
    add(s);
  if (cfg.is_gateway()) {
    for (const auto& d : cfg.peers)
      add(d.gateway);
  }
  return out;
}

void ControlPlane::start() {
  Worker& w0 = *workers_[0];
  Worker::Hooks hooks;
  hooks.control_datagram = [this](ConstByteSpan d, const sockaddr_storage& from, socklen_t len) {
    on_datagram(d, from, len);
  };
  hooks.control_reply = [this](PipeId peer, std::uint32_t id, ConstByteSpan data) {
    return reply(peer, id, data);
  };
  hooks.activity = [this](std::vector<PipeActivity> a) { on_activity(a); };
  hooks.sn_demand = [this](const std::string& name) { want_direct(name); };
  w0.set_hooks(std::move(hooks));
  // The other workers' reports come to this thread.
  for (std::size_t i = 1; i < workers_.size(); ++i) {
    Worker::Hooks h;
    h.activity = [this, &w0](std::vector<PipeActivity> a) {
      w0.post([this, a = std::move(a)] { on_activity(a); });
    };
    h.sn_demand = [this, &w0](const std::string& name) {
      w0.post([this, name] { want_direct(name); });
    };
    const auto apply = [h](Worker& w) { w.set_hooks(h); };
    on_worker(static_cast<unsigned>(i), apply);
  }
  broadcast([on = direct_on_](Worker& w) { w.set_sn_demand(on); });
  const auto now = Clock::now();
  connect_sns(sns_, now);
  pump(now);
  on_tick();
}

void ControlPlane::connect_sns(std::vector<SnPeer> wanted, crypto::Time now) {
  for (auto& s : wanted) {
    s.peer = node_->add_peer(s.key, to_assoc(s.addr, s.addr_len), /*connect=*/true, now);
    IE_LOG_INFO("peering with {} at {} (pipe {})", s.name, io::endpoint_str(s.addr), s.peer);
    // Already associated (it connected before a reload named it): it is an SN pipe now.
    auto it = pipes_.find(s.peer);
    if (it != pipes_.end() && (it->second.kind != IE_SN_PIPE_SN || it->second.sn_name != s.name)) {
      it->second.kind = IE_SN_PIPE_SN;
      it->second.sn_name = s.name;
      const PipeId id = s.peer;
      const std::string name = s.name;
      const Endpoint addr = it->second.addr;
      broadcast([=](Worker& w) { w.pipe_up(id, IE_SN_PIPE_SN, name, addr); });
    }
  }
  sns_ = std::move(wanted);
}

void ControlPlane::reload(const SnConfig& cfg) {
  const auto now = Clock::now();
  info_.endpoint = cfg.advertise;
  std::vector<SnPeer> wanted = configured_sns(cfg);
  for (const auto& old : sns_) {
    const bool kept = std::any_of(wanted.begin(), wanted.end(), [&](const SnPeer& w) {
      return w.key == old.key && w.name == old.name;
    });
    if (kept) continue;
    IE_LOG_INFO("reload: no longer peering with {} (pipe {})", old.name, old.peer);
    node_->close(old.peer, now);  // forgets the session; no event follows
    pipe_gone(old.peer);
  }
  connect_sns(std::move(wanted), now);
  set_direct_config(cfg);
  broadcast([on = direct_on_](Worker& w) { w.set_sn_demand(on); });
  if (!direct_on_) {  // turned off: close the direct pipes we have and stop opening them
    auto was = std::move(direct_);
    direct_.clear();
    for (const auto& [name, d] : was) {
      if (d.peer == 0) continue;
      IE_LOG_INFO("reload: direct pipes off: closing the one to {} (pipe {})", name, d.peer);
      if (d.stage == Direct::Stage::up) {
        close_direct(d.peer, now);
      } else {
        node_->close(d.peer, now);
        if (pipes_.count(d.peer) != 0) pipe_gone(d.peer);
      }
    }
  }
  const RouteConfig rc = route_config(cfg);
  broadcast([rc](Worker& w) { w.set_route_config(rc); });
  pump(now);
}

void ControlPlane::close_all() {
  stopped_ = true;
  if (timer_) workers_[0]->reactor().cancel_timer(*timer_);
  timer_.reset();
  const auto now = Clock::now();
  for (const auto& [id, meta] : pipes_) {
    if (meta.established) node_->close(id, now);
  }
  pending_acks_ = 0;  // going away: nothing to wait for
  send_datagrams();
  (void)node_->take_events();
}

// ---- datagrams, events, timers -------------------------------------------------------------

void ControlPlane::on_datagram(ConstByteSpan d, const sockaddr_storage& from, socklen_t len) {
  const auto now = Clock::now();
  current_from_ = &from;
  current_from_len_ = len;
  node_->on_datagram(d, to_assoc(from, len), now);
  pump(now);
  current_from_ = nullptr;
}

void ControlPlane::on_activity(const std::vector<PipeActivity>& activity) {
  const auto now = Clock::now();
  for (const auto& a : activity) {
    if (a.rx_packets > 0) {
      node_->note_data_rx(a.pipe, now);
      if (auto it = pipes_.find(a.pipe); it != pipes_.end()) it->second.last_rx = now;
    }
    if (const auto it = pipes_.find(a.pipe); it != pipes_.end() && it->second.on_demand) {
      for (auto& [name, d] : direct_) {
        if (d.peer == a.pipe) d.last_used = now;
      }
    }
    if (a.tx_packets > 0) node_->note_data_tx(a.pipe, a.tx_packets, now);
  }
}

bool ControlPlane::reply(PipeId peer, std::uint32_t id, ConstByteSpan data) {
  const bool sent = node_->send_service_message(peer, /*request=*/false, id, data, Clock::now());
  send_datagrams();
  return sent;
}

void ControlPlane::pump(crypto::Time now) {
  // Events may produce datagrams (service replies), and handling them never feeds the Node
  // new input, so one pass drains both.
  auto events = node_->take_events();
  for (auto& e : events)
    handle(e, now);
  send_datagrams();
}

void ControlPlane::send_datagrams() {
  // Held back while another worker has not applied a change this datagram announces (a
  // KEY_OFFER whose receive SA is being installed there, a registration reply): the peer
  // would otherwise race its first packet against the change.
  if (pending_acks_ > 0) {
    send_deferred_ = true;
    return;
  }
  auto out = node_->take_datagrams();
  if (out.empty()) return;
  std::vector<io::Datagram> batch(out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    batch[i].buf = ByteSpan(out[i].bytes);
    batch[i].len = out[i].bytes.size();
    batch[i].peer_len = from_assoc(out[i].to, &batch[i].peer);
  }
  io::DatagramPort& port = workers_[0]->port();
  std::size_t off = 0;
  for (int attempt = 0; off < batch.size() && attempt < 3; ++attempt) {
    auto r = port.send_batch(std::span<const io::Datagram>(batch).subspan(off));
    if (!r) break;
    off += *r;
  }
  if (off < batch.size())
    IE_LOG_RATELIMITED(spdlog::level::warn, "control plane: {} datagrams not sent",
                       batch.size() - off);
}

// The Node's timers run from one timer chain armed for next_deadline(), at most kTick
// ahead. Both calls cost only what is due (the Node keeps its peers in a deadline heap), so
// the bound is a safety net, not a poll of every peer; it also batches deadlines that fall
// close together into one on_timer call (timer-driven work is at least a second apart, so
// up to kTick of lateness changes nothing).
void ControlPlane::on_tick() {
  timer_.reset();
  const auto now = Clock::now();
  if (const auto dl = node_->next_deadline(); dl && *dl <= now) {
    node_->on_timer(now);
    pump(now);
  }
  if (!requests_.empty() || !direct_.empty() || !closing_.empty()) {
    direct_tick(now);
    pump(now);
  }
  auto delay = kTick;
  if (const auto dl = node_->next_deadline()) {
    const auto until = std::chrono::ceil<std::chrono::milliseconds>(*dl - Clock::now());
    delay = std::clamp(until, std::chrono::milliseconds(0), kTick);
  }
  if (!stopped_) timer_ = workers_[0]->reactor().add_timer(delay, [this] { on_tick(); });
}

void ControlPlane::handle(assoc::Event& e, crypto::Time now) {
  // Anything an authentic datagram caused tells us where the peer is now (it may roam).
  if (current_from_ != nullptr) {
    auto it = pipes_.find(e.peer);
    if (it != pipes_.end() && it->second.established &&
        it->second.addr != Endpoint::from(*current_from_, current_from_len_)) {
      PipeMeta& m = it->second;
      m.addr = Endpoint::from(*current_from_, current_from_len_);
      IE_LOG_INFO("pipe {} moved to {}", e.peer, m.addr.str());
      const PipeId id = e.peer;
      const auto kind = m.kind;
      const std::string name = m.sn_name;
      const Endpoint addr = m.addr;
      broadcast([=](Worker& w) { w.pipe_up(id, kind, name, addr); });
    }
  }
  switch (e.type) {
    case assoc::EventType::established: {
      PipeMeta& m = pipes_[e.peer];
      const bool was_closing = closing_.erase(e.peer) != 0;
      const bool fresh = !m.established || was_closing;
      m.kind = IE_SN_PIPE_HOST;
      m.sn_name.clear();
      m.key = e.remote_static;
      m.on_demand = false;
      const SnPeer* sn = nullptr;
      for (const auto& s : sns_) {
        if (s.key == e.remote_static) sn = &s;
      }
      if (sn != nullptr) {
        m.kind = IE_SN_PIPE_SN;
        m.sn_name = sn->name;
      } else if (auto name = verified_name(e.remote_static)) {  // a direct pipe re-keyed
        m.kind = IE_SN_PIPE_SN;
        m.sn_name = std::move(*name);
        m.on_demand = true;
      } else if (was_closing || saying_hello(e.peer, e.remote_static)) {
        // The SN of a direct pipe we are closing came back at once, or one we are saying
        // hello to re-keyed: it stays an SN pipe nothing routes to, so what it sends is still
        // taken (before our CLOSE reached it; after it verified our hello); a hello names it.
        m.kind = IE_SN_PIPE_SN;
      }
      if (current_from_ != nullptr) {
        m.addr = Endpoint::from(*current_from_, current_from_len_);
      } else if (sn != nullptr && m.addr.empty()) {
        m.addr = Endpoint::from(sn->addr, sn->addr_len);
      }
      m.established = true;
      if (!m.last_rx) m.last_rx = now;
      if (fresh) {
        IE_LOG_INFO("pipe {} up: {} at {}", e.peer,
                    m.kind == IE_SN_PIPE_SN ? "sn " + m.sn_name : std::string("host"),
                    m.addr.str());
      } else {
        IE_LOG_DEBUG("pipe {} rekeyed", e.peer);
      }
      const PipeId id = e.peer;
      const auto kind = m.kind;
      const std::string name = m.sn_name;
      const Endpoint addr = m.addr;
      broadcast([=](Worker& w) { w.pipe_up(id, kind, name, addr); });
      if (fresh) direct_established(e.peer, now);
      return;
    }
    case assoc::EventType::tx_sa_install: {
      if (!e.key) return;
      // One IV counter for the SA, shared by every worker's copy.
      auto key = std::make_shared<crypto::psp::Key>(e.key->clone());
      auto iv = crypto::make_shared_iv_counter();
      const PipeId id = e.peer;
      const std::uint32_t spi = e.spi;
      broadcast([=](Worker& w) {
        if (auto r = w.install_tx(id, spi, *key, iv); !r)
          IE_LOG_WARN("worker {}: send SA for pipe {}: {}", w.worker_index(), id,
                      r.error().to_string());
      });
      return;
    }
    case assoc::EventType::rx_sa_install: {
      if (!e.key) return;
      auto key = std::make_shared<crypto::psp::Key>(e.key->clone());
      const PipeId id = e.peer;
      const std::uint32_t spi = e.spi;
      on_worker_acked(spi % workers_.size(), [=](Worker& w) {
        if (auto r = w.install_rx(spi, *key, id); !r)
          IE_LOG_WARN("worker {}: receive SA {:#x}: {}", w.worker_index(), spi,
                      r.error().to_string());
      });
      return;
    }
    case assoc::EventType::rx_sa_retire: {
      const std::uint32_t spi = e.spi;
      on_worker(spi % workers_.size(), [spi](Worker& w) { w.retire_rx(spi); });
      return;
    }
    case assoc::EventType::dead:
    case assoc::EventType::closed:
      IE_LOG_INFO("pipe {} {}", e.peer, e.type == assoc::EventType::dead ? "dead" : "closed");
      direct_gone(e.peer, now);
      closing_.erase(e.peer);
      pipe_gone(e.peer);
      return;
    case assoc::EventType::service_message:
      if (e.request) {
        on_service_request(e, now);
      } else {
        on_answer(e, now);  // to a request of ours (sn.locate, sn.hello), else ignored
      }
      return;
  }
}

void ControlPlane::on_service_request(const assoc::Event& e, crypto::Time now) {
  const auto req = split_service_request(e.data);
  if (!req) {
    node_->send_service_message(e.peer, false, e.id, as_bytes(error_json("request too short")),
                                now);
    return;
  }
  const auto [service, body] = *req;
  if (service == static_cast<std::uint16_t>(wire::ServiceId::control)) {
    // The master table is worker 0's: a register that changed the host's role makes its
    // cached decisions naming the pipe stale here; the other workers' in apply_route.
    const bool was_standby = workers_[0]->routes().standby_of(e.peer);
    ControlResult r = handle_control_request(workers_[0]->routes(), e.peer, body, info_);
    if (workers_[0]->routes().standby_of(e.peer) != was_standby) workers_[0]->role_changed(e.peer);
    for (auto& op : r.applied) {
      auto shared = std::make_shared<RouteOp>(std::move(op));
      for (unsigned i = 1; i < workers_.size(); ++i)
        on_worker_acked(i, [shared](Worker& w) { w.apply_route(*shared); });
    }
    // Answered later: an sn.locate relayed further, an sn.hello being verified.
    if (!r.relay_name.empty()) return relay_locate(e, r, now);
    if (!r.hello_name.empty()) return verify_hello(e, r.hello_name, now);
    node_->send_service_message(e.peer, false, e.id, as_bytes(r.response), now);
    return;
  }
  WorkerModules* m = workers_[0]->modules();
  const ConstByteSpan data(reinterpret_cast<const std::uint8_t*>(body.data()), body.size());
  if (m == nullptr || !m->on_control(service, e.peer, e.id, data)) {
    node_->send_service_message(
        e.peer, false, e.id,
        as_bytes(error_json("service " + std::to_string(service) + " takes no requests here")),
        now);
  }
}

void ControlPlane::pipe_gone(PipeId peer) {
  pipes_.erase(peer);
  broadcast([peer](Worker& w) { w.pipe_down(peer); });
}

void ControlPlane::broadcast(const std::function<void(Worker&)>& fn) {
  for (unsigned i = 0; i < workers_.size(); ++i)
    on_worker(i, fn);
}

void ControlPlane::on_worker_acked(unsigned index, std::function<void(Worker&)> fn) {
  if (index == 0) {
    fn(*workers_[0]);
    return;
  }
  ++pending_acks_;
  Worker* w = workers_[index];
  Worker* w0 = workers_[0];
  w->post([this, w, w0, fn = std::move(fn)] {
    fn(*w);
    w0->post([this] { acked(); });
  });
}

void ControlPlane::acked() {
  if (pending_acks_ > 0) --pending_acks_;
  if (pending_acks_ == 0 && send_deferred_) {
    send_deferred_ = false;
    send_datagrams();
  }
}

void ControlPlane::on_worker(unsigned index, std::function<void(Worker&)> fn) {
  Worker* w = workers_[index];
  if (index == 0) {
    fn(*w);
    return;
  }
  w->post([w, fn = std::move(fn)] { fn(*w); });
}

}  // namespace ie::sn
