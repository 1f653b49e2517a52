// The Sn composition root (ie/sn/terminus.hpp): builds the runtime, sockets, workers and
// control plane in dependency order, runs the worker threads, answers status queries by
// asking each worker on its own thread, and applies reloads.
#include "ie/sn/terminus.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <map>

#include "control_plane.hpp"
#include "ie/crypto/psp.hpp"
#include "ie/io/udp.hpp"
#include "ie/util/log.hpp"

#ifndef IE_SN_VERSION
#define IE_SN_VERSION "0.0.0"
#endif

namespace ie::sn {
namespace {

using Clock = std::chrono::steady_clock;

// Runs fn on w's reactor and waits up to timeout; the result lives in shared state, so a
// late answer after a timeout writes nowhere it should not.
template <typename T>
std::optional<T> ask(Worker& w, std::function<T(Worker&)> fn, std::chrono::milliseconds timeout) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  w.post([&w, fn = std::move(fn), p] { p->set_value(fn(w)); });
  if (f.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  return f.get();
}

unsigned default_workers() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

}  // namespace

Result<std::unique_ptr<Sn>> Sn::create(SnConfig config, noise::KeyPair key, SnOptions options) {
  std::unique_ptr<Sn> sn(new Sn());
  sn->options_ = std::move(options);
  sn->public_key_ = key.pub;
  unsigned n = sn->options_.workers.value_or(config.workers);
  if (n == 0) n = default_workers();
  n = std::min(n, kMaxWorkers);

  // Modules: built-ins first, then the configured shared objects.
  RuntimeOptions ro;
  ro.state_db = config.state_db.empty() ? ":memory:" : config.state_db;
  ro.module_config = config.module_config;
  auto rt = ModuleRuntime::create(std::move(ro));
  if (!rt) return fail(rt.error());
  sn->runtime_ = std::move(*rt);
  IE_TRY(sn->runtime_->add_builtin(null_module()));
  IE_TRY(sn->runtime_->add_builtin(ip_module()));
  IE_TRY(sn->runtime_->add_builtin(block_module()));
  IE_TRY(sn->runtime_->add_builtin(passthrough_module()));
  for (const auto& path : config.module_paths) {
    if (auto r = sn->runtime_->load(path); !r)
      return fail(r.error().code, "module " + path + ": " + r.error().context);
  }
  // [services] names modules: every one must be loaded.
  std::map<std::string, std::uint16_t, std::less<>> module_ids;
  for (const auto& m : sn->runtime_->modules())
    module_ids[m.name] = m.service_id;
  auto resolve = [&](const std::vector<std::string>& names,
                     const char* what) -> Result<std::vector<std::uint16_t>> {
    std::vector<std::uint16_t> ids;
    for (const auto& name : names) {
      const auto it = module_ids.find(name);
      if (it == module_ids.end())
        return fail(Errc::invalid_argument, std::string("[services] ") + what + " names \"" + name +
                                                "\", which no loaded module serves");
      ids.push_back(it->second);
    }
    return ids;
  };
  auto imposed = resolve(config.imposed, "imposed");
  if (!imposed) return fail(imposed.error());
  if (auto oob = resolve(config.out_of_band, "out_of_band"); !oob) return fail(oob.error());

  // Sockets: the first binds the configured endpoint (port 0 picks one), the others the
  // endpoint it got, in worker order (the steering program's socket numbering).
  io::UdpOptions uo;
  uo.reuse_port = true;
  uo.recv_buffer = sn->options_.socket_buffer_bytes;
  uo.send_buffer = sn->options_.socket_buffer_bytes;
  uo.gro = false;
  const std::string listen = sn->options_.listen.value_or(config.listen);
  std::vector<std::unique_ptr<io::UdpSocket>> sockets;
  auto first = io::UdpSocket::bind(listen, uo);
  if (!first) return fail(first.error().code, "bind " + listen + ": " + first.error().to_string());
  socklen_t len = 0;
  auto local = first->local_address(&len);
  if (!local) return fail(local.error());
  sn->endpoint_ = io::endpoint_str(*local);
  if (local->ss_family == AF_INET6) {
    sockaddr_in6 a;
    std::memcpy(&a, &*local, sizeof a);
    sn->port_ = ntohs(a.sin6_port);
  } else {
    sockaddr_in a;
    std::memcpy(&a, &*local, sizeof a);
    sn->port_ = ntohs(a.sin_port);
  }
  sockets.push_back(std::make_unique<io::UdpSocket>(std::move(*first)));
  for (unsigned i = 1; i < n; ++i) {
    auto s = io::UdpSocket::bind(sn->endpoint_, uo);
    if (!s) return fail(s.error().code, "bind " + sn->endpoint_ + ": " + s.error().to_string());
    sockets.push_back(std::make_unique<io::UdpSocket>(std::move(*s)));
  }
  if (n > 1) IE_TRY(attach_reuseport_steering(sockets[0]->fd(), n));

  for (unsigned i = 0; i < n; ++i) {
    WorkerOptions wo;
    wo.index = i;
    wo.workers = n;
    wo.cache_capacity = std::max<std::size_t>(1, config.cache_capacity / n);
    wo.routes = route_config(config);
    wo.imposed = *imposed;
    wo.upstream = config.upstream;
    auto w = Worker::create(std::move(wo), std::move(sockets[i]));
    if (!w) return fail(w.error());
    sn->workers_.push_back(std::move(*w));
  }

  ControlPlane::Options co;
  co.config = &config;
  co.key = std::move(key);
  if (sn->options_.timers) {
    co.timers = *sn->options_.timers;
  } else {
    co.timers.rekey_after_time = std::chrono::seconds(config.rekey_seconds);
  }
  // An SN keeps its SN peers alive and answers its hosts (a host's PROBE at once, its data
  // with a passive keepalive) without sending keepalives of its own: an idle host pipe then
  // costs nothing between re-keys (docs/ilp.md "Timers").
  co.timers.idle_keepalive = crypto::assoc::IdleKeepalive::kept_peers;
  co.max_learned_peers = sn->options_.max_learned_peers;
  co.max_handshakes_per_second =
      sn->options_.max_handshakes_per_second.value_or(config.max_handshakes_per_second);
  co.services.push_back("control");
  for (const auto& m : sn->runtime_->modules())
    co.services.push_back(m.name);
  for (const auto& name : config.out_of_band)
    co.out_of_band[name] = module_ids.at(name);
  std::vector<Worker*> ws;
  for (auto& w : sn->workers_)
    ws.push_back(w.get());
  sn->control_ = std::make_unique<ControlPlane>(std::move(co), std::move(ws));
  sn->name_ = config.name;
  sn->edomain_ = config.edomain;
  sn->control_socket_ = config.control_socket;
  sn->psp_contexts_ = config.psp_contexts_per_worker;
  sn->config_ = std::move(config);
  sn->thread_ids_.resize(n);
  return sn;
}

Sn::~Sn() {
  stop();
  wait();
  control_.reset();
  workers_.clear();
  runtime_.reset();
}

Result<void> Sn::start() {
  if (!threads_.empty()) return fail(Errc::busy, "sn: already started");
  started_at_ = Clock::now();
  for (unsigned i = 0; i < workers_.size(); ++i)
    threads_.emplace_back([this, i] { worker_main(i); });
  std::unique_lock<std::mutex> lock(start_mu_);
  const bool all = start_cv_.wait_for(lock, std::chrono::seconds(10), [this] {
    return started_ == workers_.size() || start_error_.has_value();
  });
  if (start_error_) return fail(*start_error_);
  if (!all) return fail(Errc::timeout, "sn: workers did not start");
  IE_LOG_INFO("{} (edomain {}) listening on {} with {} workers; public key {}", name_, edomain_,
              endpoint_, workers_.size(), key_to_base64(public_key_));
  return ok();
}

void Sn::worker_main(unsigned index) {
  // This thread's PSP context cache (per thread): sized before it seals or opens anything.
  crypto::psp::set_context_cache_capacity(psp_contexts_);
  Worker& w = *workers_[index];
  Result<void> r = w.start_modules(*runtime_);
  if (r && index == 0) {
    control_->start();
    if (options_.serve_control_socket && !control_socket_.empty()) {
      ctl::Dispatcher d;
      auto added = add_status_methods(
          d,
          [this](const StatusQuery& q) { return build_status(q, std::chrono::milliseconds(1000)); },
          [this]() { return reload(); }, "iesn");
      if (!added) {
        r = fail(added.error());
      } else {
        auto server = ctl::Server::start(w.reactor(), control_socket_, std::move(d),
                                         ctl::ServerOptions{kControlSocketMode, std::nullopt});
        if (!server) {
          r = fail(server.error().code,
                   "control socket " + control_socket_ + ": " + server.error().to_string());
        } else {
          control_server_ = std::move(*server);
        }
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(start_mu_);
    thread_ids_[index] = std::this_thread::get_id();
    if (!r) {
      if (!start_error_) start_error_ = r.error();
    } else {
      ++started_;
    }
  }
  start_cv_.notify_all();
  if (r) {
    if (auto run = w.run(); !run)
      IE_LOG_ERROR("worker {} stopped: {}", index, run.error().to_string());
  }
  if (index == 0) control_server_.reset();  // on the reactor's thread, before the reactor
  w.release_modules();
}

void Sn::stop() {
  if (stopping_.exchange(true)) return;
  if (workers_.empty()) return;
  // Worker 0 says goodbye to its peers before its loop ends; the others stop at once.
  Worker* w0 = workers_[0].get();
  ControlPlane* cp = control_.get();
  w0->post([w0, cp] {
    cp->close_all();
    w0->stop();
  });
  for (std::size_t i = 1; i < workers_.size(); ++i)
    workers_[i]->stop();
}

void Sn::wait() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

bool Sn::on_worker_thread(unsigned index) const {
  return index < thread_ids_.size() && thread_ids_[index] == std::this_thread::get_id();
}

std::optional<std::uint32_t> Sn::handshake_budget() {
  ControlPlane* cp = control_.get();
  if (on_worker_thread(0)) return cp->handshake_budget();
  return ask<std::uint32_t>(
      *workers_[0], [cp](Worker&) { return cp->handshake_budget(); }, std::chrono::seconds(2));
}

bool Sn::run_on_worker(unsigned index, std::function<void(Worker&)> fn,
                       std::chrono::milliseconds timeout) {
  if (index >= workers_.size()) return false;
  if (on_worker_thread(index)) {
    fn(*workers_[index]);
    return true;
  }
  return ask<bool>(
             *workers_[index],
             [fn = std::move(fn)](Worker& w) {
               fn(w);
               return true;
             },
             timeout)
      .has_value();
}

Result<WorkerSnapshot> Sn::worker_snapshot(unsigned index, std::chrono::milliseconds timeout) {
  if (index >= workers_.size()) return fail(Errc::invalid_argument, "no such worker");
  if (on_worker_thread(index)) return workers_[index]->snapshot();
  auto s = ask<WorkerSnapshot>(
      *workers_[index], [](Worker& w) { return w.snapshot(); }, timeout);
  if (!s) return fail(Errc::timeout, "worker " + std::to_string(index) + " did not answer");
  return std::move(*s);
}

Result<SnStatus> Sn::status(const StatusQuery& query, std::chrono::milliseconds timeout) {
  if (on_worker_thread(0)) return build_status(query, timeout);
  auto s = ask<Result<SnStatus>>(
      *workers_[0], [this, query, timeout](Worker&) { return build_status(query, timeout / 2); },
      timeout);
  if (!s) return fail(Errc::timeout, "worker 0 did not answer");
  return std::move(*s);
}

// On worker 0's thread.
Result<SnStatus> Sn::build_status(const StatusQuery& q, std::chrono::milliseconds timeout) {
  SnStatus s;
  s.name = name_;
  s.edomain = edomain_;
  s.version = IE_SN_VERSION;
  s.uptime_s = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_at_).count());
  s.workers = worker_count();

  // The page of pipes asked for (ids ascending after the cursor).
  std::vector<PipeId> page;
  if (q.pipes) {
    for (const auto& entry : control_->pipes())
      if (entry.first > q.pipes_after) page.push_back(entry.first);
    const std::size_t n = std::min<std::size_t>(page.size(), q.pipe_limit);
    std::partial_sort(page.begin(), page.begin() + static_cast<std::ptrdiff_t>(n), page.end());
    page.resize(n);
  }

  struct Part {
    WorkerStatus ws;
    std::vector<PipeTraffic> traffic;  // for `page`
  };
  auto collect = [page](Worker& w) {
    Part p;
    p.ws.index = w.worker_index();
    for (std::size_t i = 0; i < wire::kDropReasonCount; ++i)
      p.ws.drops[i] = w.drops(static_cast<wire::DropReason>(i));
    p.ws.cache = CacheStatus::of(w.cache());
    // The PSP context cache of this thread, i.e. of w (collect runs on w's thread).
    const crypto::psp::ContextCacheStats pc = crypto::psp::context_cache_stats();
    p.ws.psp_contexts = {pc.hits, pc.misses, pc.in_use, pc.capacity};
    for (const PipeId id : page)
      p.traffic.push_back(w.pipe_traffic(id).value_or(PipeTraffic{}));
    return p;
  };
  std::vector<Part> parts;
  for (unsigned i = 0; i < workers_.size(); ++i) {
    if (i == 0) {
      parts.push_back(collect(*workers_[0]));
      continue;
    }
    auto p = ask<Part>(*workers_[i], collect, timeout);
    if (!p) return fail(Errc::timeout, "worker " + std::to_string(i) + " did not answer");
    parts.push_back(std::move(*p));
  }
  // The association Node's own drops (handshakes, control channel) belong to worker 0.
  for (std::size_t i = 0; i < wire::kDropReasonCount; ++i)
    parts[0].ws.drops[i] += control_->node_drops().at(i);
  for (auto& p : parts)
    s.per_worker.push_back(p.ws);

  const auto now = Clock::now();
  std::vector<PipeStatus> all;
  for (const auto& [id, m] : control_->pipes()) {
    PipeStatus ps;
    ps.id = id;
    ps.kind = m.kind;
    ps.established = m.established;
    all.push_back(ps);
  }
  s.pipe_summary = summarize(all);
  for (std::size_t k = 0; k < page.size(); ++k) {
    const auto& m = control_->pipes().at(page[k]);
    PipeStatus ps;
    ps.id = page[k];
    ps.kind = m.kind;
    ps.name = m.sn_name;
    ps.address = m.addr.str();
    ps.established = m.established;
    ps.on_demand = m.on_demand;
    for (const auto& p : parts) {
      ps.rx_packets += p.traffic[k].rx_packets;
      ps.rx_bytes += p.traffic[k].rx_bytes;
      ps.tx_packets += p.traffic[k].tx_packets;
      ps.tx_bytes += p.traffic[k].tx_bytes;
    }
    for (const auto& a : workers_[0]->routes().registered(page[k]))
      ps.addrs.push_back(addr_str(a));
    ps.standby = workers_[0]->routes().standby_of(page[k]);
    for (const auto& v : workers_[0]->routes().invocations(page[k]))
      ps.invocations.push_back(v.service + " " + std::string(direction_name(v.direction)) + " " +
                               v.prefix.str());
    if (m.last_rx) {
      ps.last_rx_age_ms = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(now - *m.last_rx).count());
    }
    s.pipes.push_back(std::move(ps));
  }

  for (const auto& m : runtime_->modules())
    s.modules.push_back(ModuleStatus{m.name, m.service_id, m.origin});
  s.module_counters = runtime_->counters();
  s.association.peers = control_->peer_count();
  s.association.handshakes = control_->handshakes();
  s.association.handshake_budget = control_->handshake_budget();
  s.association.static_dh_reused = control_->static_dh_reused();
  s.association.probes_answered = control_->probes_answered();
  s.association.echoes_answered = control_->echoes_answered();
  s.association.crossed_initiations_kept = control_->crossed_initiations_kept();
  const auto& ds = control_->direct_stats();
  s.association.direct_pipes = control_->direct_pipe_count();
  s.association.direct_opened = ds.opened;
  s.association.direct_failed = ds.failed;
  s.association.direct_idle_closed = ds.idle_closed;
  s.association.locates_relayed = ds.locates_relayed;
  s.association.hellos_refused = ds.hellos_refused;
  return s;
}

// ---- reload --------------------------------------------------------------------------------

Result<void> Sn::reload() {
  if (options_.config_path.empty())
    return fail(Errc::unsupported, "no configuration file to reload");
  auto cfg = load_config(options_.config_path);
  if (!cfg) {
    IE_LOG_ERROR("reload refused, keeping the running configuration: {}", cfg.error().to_string());
    return fail(cfg.error());
  }
  return apply_config(std::move(*cfg));
}

Result<void> Sn::apply_config(SnConfig cfg) {
  std::unique_lock<std::mutex> lock(reload_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return fail(Errc::busy, "reload: another reload is running");
  const SnConfig& old = config_;
  auto restart = [](const char* what) {
    IE_LOG_WARN("reload: {} changed; it takes effect at the next restart", what);
  };
  if (cfg.name != old.name)
    return fail(Errc::invalid_argument, "reload: the SN's name cannot change");
  if (cfg.listen != old.listen) restart("listen");
  if (cfg.workers != old.workers) restart("workers");
  if (cfg.private_key_file != old.private_key_file) restart("private_key_file");
  if (cfg.state_db != old.state_db) restart("state_db");
  if (cfg.control_socket != old.control_socket) restart("control_socket");
  if (cfg.cache_capacity != old.cache_capacity) restart("cache_capacity");
  if (cfg.rekey_seconds != old.rekey_seconds) restart("rekey_seconds");
  if (cfg.module_paths != old.module_paths) restart("[modules] load");
  if (cfg.out_of_band != old.out_of_band || cfg.imposed != old.imposed ||
      cfg.upstream != old.upstream)
    restart("[services]");

  if (cfg.max_handshakes_per_second != old.max_handshakes_per_second) {
    if (options_.max_handshakes_per_second) {
      IE_LOG_WARN(
          "reload: max_handshakes_per_second changed to {}, but --max-handshakes {} "
          "overrides it",
          cfg.max_handshakes_per_second, *options_.max_handshakes_per_second);
    } else {
      IE_LOG_INFO("reload: handshake budget {} per second (0: no limit)",
                  cfg.max_handshakes_per_second);
    }
  }
  const std::uint32_t budget =
      options_.max_handshakes_per_second.value_or(cfg.max_handshakes_per_second);

  if (cfg.psp_contexts_per_worker != old.psp_contexts_per_worker) {
    IE_LOG_INFO("reload: {} PSP contexts per worker (was {})", cfg.psp_contexts_per_worker,
                old.psp_contexts_per_worker);
  }

  runtime_->set_module_config(cfg.module_config);
  auto shared = std::make_shared<SnConfig>(cfg);
  ControlPlane* cp = control_.get();
  const bool applied = run_on_worker(0, [cp, shared, budget](Worker&) {
    cp->reload(*shared);
    cp->set_handshake_budget(budget);
  });
  if (!applied) return fail(Errc::timeout, "reload: the control worker did not answer");
  // Each worker resizes its own thread's PSP context cache between batches (a smaller one
  // frees the contexts beyond it at once; SAs whose context went expand their key again).
  const bool resize_psp = cfg.psp_contexts_per_worker != old.psp_contexts_per_worker;
  const std::size_t psp_contexts = cfg.psp_contexts_per_worker;
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->post([wp, resize_psp, psp_contexts] {
      if (resize_psp) crypto::psp::set_context_cache_capacity(psp_contexts);
      if (wp->modules() != nullptr) wp->modules()->poll_config();
    });
  }
  // Keep the values that need a restart as they run, take the rest.
  const SnConfig keep = config_;
  config_ = std::move(cfg);
  config_.listen = keep.listen;
  config_.workers = keep.workers;
  config_.private_key_file = keep.private_key_file;
  config_.state_db = keep.state_db;
  config_.control_socket = keep.control_socket;
  config_.cache_capacity = keep.cache_capacity;
  config_.rekey_seconds = keep.rekey_seconds;
  config_.module_paths = keep.module_paths;
  config_.out_of_band = keep.out_of_band;
  config_.imposed = keep.imposed;
  config_.upstream = keep.upstream;
  IE_LOG_INFO("configuration reloaded");
  return ok();
}

}  // namespace ie::sn
