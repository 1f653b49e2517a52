// The pipe-terminus packet path of one worker (ie/sn/worker.hpp, docs/sn.md "The packet
// path"). Per batch of up to 64 datagrams; buffers are the worker's receive ring (or the
// caller's, for process_batch), owned by the worker until the batch is sent:
//   1. classify: control-plane datagrams are kept for the control worker's Node (handled
//      after the data, so nothing changes pipes in the middle of a batch);
//   2. RxSaTable::open_ilp in place: the ILP header and inner packet overwrite the
//      ciphertext, every failure a counted DropReason;
//   3. decision-cache lookup by (outer source address, service id, connection id), in a
//      second pass over the batch so that the table's memory is prefetched for all of it:
//      forward -> re-sealed in place for one hop (the old PSP header is the new one's
//      headroom), copies from the pool for several, queued; drop -> counted; miss or
//      to_service -> the packet joins its service's group;
//   4. each group -> WorkerModules::on_packets -> one decision per packet: forward, default
//      (route by the inner destination), drop, consumed. A hop that no longer exists: its
//      cache entry is removed and the packet decided once more;
//   5. one send_batch of everything queued.
// The hit path (1, 2, 3, 5) allocates nothing; the pool only grows while warming up.
#include "ie/sn/worker.hpp"

#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <cstring>

#include "ie/io/udp.hpp"
#include "ie/util/log.hpp"
#include "ie/wire/demux.hpp"
#include "ie/wire/ilp.hpp"
#include "ie/wire/psp.hpp"

namespace ie::sn {
namespace {

using namespace std::chrono_literals;
using wire::DropReason;

constexpr std::size_t kBatch = io::UdpSocket::kMaxBatch;
constexpr std::size_t kMaxPool = kBatch * kMaxNextHops;  // copies in flight per batch
constexpr std::size_t kMaxQueue = kBatch * (kMaxNextHops + 1);
constexpr std::size_t kReadBudget = 16;  // batches per readable event before yielding
constexpr auto kActivityInterval = 250ms;
constexpr std::size_t kSealOverhead = wire::kPspHeaderLen + wire::kPspTagLen;

Addr16 outer_addr(const sockaddr_storage& s, std::uint16_t* port) {
  Addr16 a{};
  if (s.ss_family == AF_INET) {
    sockaddr_in in;
    std::memcpy(&in, &s, sizeof in);
    *port = ntohs(in.sin_port);
    return mapped_v4(ntohl(in.sin_addr.s_addr));
  }
  if (s.ss_family == AF_INET6) {
    sockaddr_in6 in6;
    std::memcpy(&in6, &s, sizeof in6);
    *port = ntohs(in6.sin6_port);
    std::memcpy(a.data(), &in6.sin6_addr, 16);
    return a;
  }
  *port = 0;
  return a;
}

}  // namespace

struct Worker::Pipe {
  PipeId id = 0;
  ie_sn_pipe_kind kind = IE_SN_PIPE_HOST;
  std::string sn_name;
  Endpoint addr;
  std::optional<crypto::TxSa> tx;
  Counter rx_packets, rx_bytes, tx_packets, tx_bytes;
  std::uint64_t reported_rx = 0, reported_tx = 0;
  bool active = false;  // listed in Worker::active_ (traffic since the last report)
  // Moves (to a fresh value of Worker::role_clock_) when the pipe comes up and at every
  // change of its host's role; never 0, never back: a sum of epochs only grows.
  std::uint32_t role_epoch = 0;
};

// A cache-missed packet waiting for its module: the opened datagram and its ABI view.
struct Worker::Pending {
  ByteSpan datagram;          // the whole datagram: [PSP header][ILP + inner][tag]
  std::size_t plain_len = 0;  // ILP header + inner, at datagram[16..)
  FlowKey key;
  ie_sn_packet pkt{};
  bool redecided = false;  // a stale hop already sent it back through its module once
};

Result<std::unique_ptr<Worker>> Worker::create(WorkerOptions options,
                                               std::unique_ptr<io::DatagramPort> port) {
  if (!port) return fail(Errc::invalid_argument, "worker: no port");
  auto reactor = io::Reactor::create();
  if (!reactor) return fail(reactor.error());
  return std::unique_ptr<Worker>(
      new Worker(std::move(options), std::move(port), std::move(*reactor)));
}

Worker::Worker(WorkerOptions options, std::unique_ptr<io::DatagramPort> port,
               std::unique_ptr<io::Reactor> reactor)
    : opts_(std::move(options)),
      port_(std::move(port)),
      reactor_(std::move(reactor)),
      cache_(std::max<std::size_t>(1, opts_.cache_capacity)),
      routes_(opts_.routes),
      ring_mem_(kBatch * kWorkerBufSize),
      ring_(kBatch),
      pending_(new Pending[kBatch]) {
  for (std::size_t i = 0; i < kBatch; ++i)
    ring_[i].buf = ByteSpan(ring_mem_.data() + i * kWorkerBufSize, kWorkerBufSize);
  udp_ = dynamic_cast<io::UdpSocket*>(port_.get());
  txq_.reserve(kMaxQueue);
  txq_pipes_.reserve(kMaxQueue);
  pool_.reserve(kMaxPool);
}

Worker::~Worker() {
  // Module instances may hold timers on the reactor: destroy them first.
  modules_.reset();
}

Result<void> Worker::start_modules(ModuleRuntime& runtime) {
  auto m = runtime.instantiate(*this);
  if (!m) return fail(m.error());
  modules_ = std::move(*m);
  return ok();
}

Result<void> Worker::run() {
  if (port_->fd() >= 0) {
    IE_TRY(reactor_->add_fd(port_->fd(), io::Reactor::kReadable,
                            [this](std::uint32_t) { on_readable(); }));
  }
  reactor_->add_timer(kActivityInterval, [this] { report_activity(); });
  auto r = reactor_->run();
  if (port_->fd() >= 0) reactor_->remove_fd(port_->fd());
  return r;
}

void Worker::on_readable() {
  for (std::size_t round = 0; round < kReadBudget; ++round) {
    for (auto& d : ring_) {
      d.len = 0;
      d.peer_len = 0;
      d.segment_size = 0;
    }
    auto n = port_->recv_batch(ring_);
    if (!n) {
      IE_LOG_RATELIMITED(spdlog::level::warn, "worker {}: receive failed: {}", opts_.index,
                         n.error().to_string());
      return;
    }
    if (*n == 0) break;
    process_batch(std::span<io::Datagram>(ring_.data(), *n));
  }
  // Between batches: configuration changes (config_set, reload) reach the modules.
  if (modules_) modules_->poll_config();
}

// Only the pipes that carried traffic since the last report are looked at (an SN may hold
// 100,000 pipes, most of them idle at any moment).
void Worker::report_activity() {
  std::vector<PipeActivity> v;
  v.reserve(active_.size());
  for (const PipeId id : active_) {
    const auto it = pipes_.find(id);
    if (it == pipes_.end()) continue;  // went down since
    Pipe& p = *it->second;
    p.active = false;
    const std::uint64_t rx = p.rx_packets.get(), tx = p.tx_packets.get();
    if (rx == p.reported_rx && tx == p.reported_tx) continue;
    v.push_back({id, rx - p.reported_rx, tx - p.reported_tx});
    p.reported_rx = rx;
    p.reported_tx = tx;
  }
  active_.clear();
  if (!v.empty() && hooks_.activity) hooks_.activity(std::move(v));
  if (modules_) modules_->poll_config();  // also when no traffic comes
  reactor_->add_timer(kActivityInterval, [this] { report_activity(); });
}

void Worker::mark_active(Pipe& p) {
  if (p.active) return;
  p.active = true;
  active_.push_back(p.id);
}

// ---- the batch ---------------------------------------------------------------------------

void Worker::process_batch(std::span<io::Datagram> batch) {
  batches_.add();
  in_batch_ = true;
  const std::uint64_t now = now_ns();
  std::size_t control[kBatch];
  std::size_t ncontrol = 0;
  Pending* misses[kBatch];
  std::size_t nmiss = 0;
  std::size_t npending = 0;

  for (std::size_t i = 0; i < batch.size(); ++i) {
    io::Datagram& d = batch[i];
    rx_datagrams_.add();
    const ByteSpan bytes = d.buf.first(std::min(d.len, d.buf.size()));
    const wire::DatagramKind kind = wire::classify(bytes);
    if (kind != wire::DatagramKind::psp) {
      if (hooks_.control_datagram && kind != wire::DatagramKind::invalid && ncontrol < kBatch) {
        control[ncontrol++] = i;
      } else {
        drop(bytes.size() < 4 ? DropReason::truncated : DropReason::unknown_message_type);
      }
      continue;
    }
    if (npending == kBatch) {  // only a caller's oversized batch gets here
      drop(DropReason::rate_limited);
      continue;
    }
    crypto::OpenedIlp o;
    if (rx_.open_ilp(bytes, &o) != DropReason::none) continue;  // counted by the table
    const PipeId from = static_cast<PipeId>(o.owner);
    if (auto it = pipes_.find(from); it != pipes_.end()) {
      it->second->rx_packets.add();
      it->second->rx_bytes.add(bytes.size());
      mark_active(*it->second);
    }
    Pending& p = pending_[npending++];
    p.datagram = bytes;
    p.plain_len = o.ilp.header_len + o.ilp.inner.size();
    p.redecided = false;
    std::uint16_t port = 0;
    const Addr16 src = outer_addr(d.peer, &port);
    p.pkt = ie_sn_packet{};
    p.pkt.struct_size = sizeof(ie_sn_packet);
    p.pkt.from_pipe = from;
    p.pkt.src = to_sn_addr(src);
    p.pkt.src_port = port;
    p.pkt.service_id = o.ilp.header.service_id;
    p.pkt.connection_id = o.ilp.header.connection_id;
    p.pkt.ilp_flags = o.ilp.header.flags;
    p.pkt.tlvs = o.ilp.tlvs.data();
    p.pkt.tlvs_len = static_cast<std::uint32_t>(o.ilp.tlvs.size());
    p.pkt.inner = o.ilp.inner.data();
    p.pkt.inner_len = static_cast<std::uint32_t>(o.ilp.inner.size());
    p.key.src = src;
    p.key.service_id = p.pkt.service_id;
    p.key.connection_id = p.pkt.connection_id;
    cache_.prefetch_slot(p.key);
  }

  // The index slots of the whole batch were prefetched above (while the PSP work of the
  // other packets ran); now their entries, then the lookups: a table far larger than the CPU
  // caches costs two DRAM misses per lookup, and this way a batch's misses overlap.
  for (std::size_t i = 0; i < npending; ++i)
    cache_.prefetch_entry(pending_[i].key);
  for (std::size_t i = 0; i < npending; ++i) {
    Pending& p = pending_[i];
    // Stages first, so that no cached decision bypasses them; one branch when there are none.
    if ((!opts_.imposed.empty() || routes_.invoking_pipes() > 0) && !run_stages(p)) continue;
    if (!opts_.upstream.empty()) {
      relay(p);
      continue;
    }

    if (const Decision* dec = cache_.lookup(p.key, now)) {
      if (dec->action == Action::drop) {
        drop(DropReason::dropped_by_service);
        continue;
      }
      if (dec->action == Action::forward) {
        Pipe* to[kMaxNextHops];
        std::size_t n = 0;
        std::uint32_t stamp = 0;
        for (const PipeId h : dec->next_hops()) {
          to[n] = sendable(h);
          if (to[n] == nullptr) break;
          stamp += to[n]->role_epoch;
          ++n;
        }
        if (n == dec->hop_count && stamp == dec->stamp) {
          forward(p, std::span<Pipe* const>(to, n));
          continue;
        }
        // A hop is gone, or its role changed since: forget the entry, decide again.
        cache_.remove_stale(p.key);
        p.redecided = true;
      }
    }
    misses[nmiss++] = &p;
  }

  if (nmiss > 0) decide(std::span<Pending*>(misses, nmiss), false);
  in_batch_ = false;
  flush();
  // Control plane last: it may change pipes, which nothing above may see half-done.
  for (std::size_t k = 0; k < ncontrol; ++k) {
    const io::Datagram& d = batch[control[k]];
    hooks_.control_datagram(d.buf.first(std::min(d.len, d.buf.size())), d.peer, d.peer_len);
  }
}

bool Worker::run_stages(Pending& p) {
  constexpr std::size_t kMaxStages = 8;
  const auto addrs = inner_addrs(p.pkt.inner, p.pkt.inner_len);
  if (!addrs) return true;  // not IP: the packet's own service decides (and counts it)
  const auto from = routes_.pipe_info(p.pkt.from_pipe);
  const bool from_host = from && from->kind == IE_SN_PIPE_HOST;
  const auto to_host = routes_.host_of(addrs->dst);
  std::uint16_t ids[kMaxStages];
  std::size_t n = 0;
  auto add = [&](std::uint16_t id) {
    if (n < kMaxStages && std::find(ids, ids + n, id) == ids + n) ids[n++] = id;
  };
  if (from_host || to_host) {
    for (const std::uint16_t id : opts_.imposed)
      add(id);
  }
  if (routes_.invoking_pipes() > 0) {
    if (from_host) {
      for (const Invocation& v : routes_.invocations(p.pkt.from_pipe))
        if (v.applies(Direction::out, addrs->dst)) add(v.service_id);
    }
    if (to_host) {
      for (const Invocation& v : routes_.invocations(*to_host))
        if (v.applies(Direction::in, addrs->src)) add(v.service_id);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    ie_sn_decision d{};
    if (!modules_ || !modules_->on_packets(ids[i], std::span<const ie_sn_packet>(&p.pkt, 1),
                                           std::span<ie_sn_decision>(&d, 1))) {
      drop(DropReason::unknown_service);
      return false;
    }
    if (d.action == IE_SN_DEFAULT) continue;  // let through
    if (d.action == IE_SN_FORWARD && d.hop_count >= 1 && d.hop_count <= kMaxNextHops) {
      Pipe* live[kMaxNextHops];
      std::size_t nlive = 0;
      for (std::uint32_t h = 0; h < d.hop_count; ++h) {
        if (Pipe* to = sendable(d.hops[h])) live[nlive++] = to;
      }
      if (nlive == 0) {
        drop(DropReason::no_route);
      } else {
        forward(p, std::span<Pipe* const>(live, nlive));
      }
      return false;
    }
    act(p, d);  // consumed, or dropped
    return false;
  }
  return true;
}

void Worker::relay(Pending& p) {
  const auto from = routes_.pipe_info(p.pkt.from_pipe);
  Pipe* hop = nullptr;
  if (from && from->kind == IE_SN_PIPE_HOST) {
    if (const auto up = routes_.sn_route(opts_.upstream)) hop = sendable(*up);
  } else {
    const auto addrs = inner_addrs(p.pkt.inner, p.pkt.inner_len);
    if (!addrs) return drop(DropReason::bad_inner_packet);
    const auto to = routes_.host_of(addrs->dst);
    if (to && *to != p.pkt.from_pipe) hop = sendable(*to);
  }
  if (hop == nullptr) return drop(DropReason::no_route);
  forward(p, std::span<Pipe* const>(&hop, 1));
}

void Worker::decide(std::span<Pending*> pending, bool second_round) {
  // Group by service id (stable insertion sort: at most 64 entries, no allocation).
  for (std::size_t i = 1; i < pending.size(); ++i) {
    Pending* x = pending[i];
    std::size_t j = i;
    for (; j > 0 && pending[j - 1]->pkt.service_id > x->pkt.service_id; --j)
      pending[j] = pending[j - 1];
    pending[j] = x;
  }
  Pending* retry_mem[kBatch];
  std::size_t nretry = 0;
  ie_sn_packet packets[kBatch];
  ie_sn_decision decisions[kBatch];
  for (std::size_t a = 0; a < pending.size();) {
    const std::uint16_t svc = pending[a]->pkt.service_id;
    std::size_t b = a;
    while (b < pending.size() && pending[b]->pkt.service_id == svc)
      ++b;
    const std::size_t n = b - a;
    for (std::size_t i = 0; i < n; ++i) {
      packets[i] = pending[a + i]->pkt;
      decisions[i] = ie_sn_decision{};
    }
    relayed_.clear();
    noting_ = sn_demand_on_ && hooks_.sn_demand;
    const bool decided =
        modules_ && modules_->on_packets(svc, std::span<const ie_sn_packet>(packets, n),
                                         std::span<ie_sn_decision>(decisions, n));
    noting_ = false;
    if (!relayed_.empty()) tell_relayed(pending.subspan(a, n));
    if (!decided) {
      sn_drops_.add(DropReason::unknown_service, n);
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        Pending& p = *pending[a + i];
        const ie_sn_decision& d = decisions[i];
        if (d.action == IE_SN_FORWARD && d.hop_count >= 1 && d.hop_count <= kMaxNextHops) {
          Pipe* live[kMaxNextHops];
          std::size_t nlive = 0;
          for (std::uint32_t h = 0; h < d.hop_count; ++h) {
            if (Pipe* to = sendable(d.hops[h])) live[nlive++] = to;
          }
          if (nlive < d.hop_count && !p.redecided && !second_round) {
            cache_.remove(p.key);  // the module may just have cached the stale hop
            p.redecided = true;
            retry_mem[nretry++] = &p;
            continue;
          }
          if (nlive == 0) {
            drop(DropReason::no_route);
            continue;
          }
          forward(p, std::span<Pipe* const>(live, nlive));
        } else {
          act(p, d);
        }
      }
    }
    a = b;
  }
  if (nretry > 0) decide(std::span<Pending*>(retry_mem, nretry), true);
}

void Worker::act(Pending& p, const ie_sn_decision& d) {
  switch (d.action) {
    case IE_SN_CONSUMED:
      return;
    case IE_SN_DEFAULT: {
      const auto addrs = inner_addrs(p.pkt.inner, p.pkt.inner_len);
      if (!addrs) return drop(DropReason::bad_inner_packet);
      const auto to = routes_.route(addrs->dst);
      // Back to where it came from only if a module says so (FORWARD), never by default.
      Pipe* hop = to && *to != p.pkt.from_pipe ? sendable(*to) : nullptr;
      if (hop == nullptr) return drop(DropReason::no_route);
      return forward(p, std::span<Pipe* const>(&hop, 1));
    }
    case IE_SN_DROP:
    default:  // includes a malformed FORWARD the runtime let through
      return drop(DropReason::dropped_by_service);
  }
}

// Re-seals p for every hop (sendable pipes, found just now: nothing ran in between that
// could remove one): copies first, since sealing in place destroys the plaintext, then the
// original in place for hops[0].
void Worker::forward(Pending& p, std::span<Pipe* const> hops) {
  const ConstByteSpan plain(p.datagram.data() + wire::kPspHeaderLen, p.plain_len);
  for (std::size_t k = 1; k < hops.size(); ++k) {
    Pipe* to = hops[k];
    if (p.plain_len + kSealOverhead > kWorkerBufSize) {
      drop(DropReason::too_large);
      continue;
    }
    const ByteSpan b = take_buffer();
    std::memcpy(b.data() + wire::kPspHeaderLen, plain.data(), plain.size());
    const std::size_t n = to->tx->seal_in_place(b, p.plain_len);
    if (n == 0) {
      drop(DropReason::send_failed);
      continue;
    }
    queue(*to, b, n);
  }
  Pipe* to = hops[0];
  const std::size_t n = to->tx->seal_in_place(p.datagram, p.plain_len);
  if (n == 0) return drop(DropReason::send_failed);
  queue(*to, p.datagram, n);
}

Worker::Pipe* Worker::sendable(PipeId id) {
  const auto it = pipes_.find(id);
  if (it == pipes_.end() || !it->second->tx) return nullptr;
  return it->second.get();
}

ByteSpan Worker::take_buffer() {
  if (pool_used_ == pool_.size()) {
    if (pool_.size() < kMaxPool) {
      pool_.push_back(std::make_unique<std::uint8_t[]>(kWorkerBufSize));
    } else {
      flush();  // everything queued is sealed already: send it and reuse the pool
    }
  }
  return ByteSpan(pool_[pool_used_++].get(), kWorkerBufSize);
}

void Worker::queue(Pipe& to, ByteSpan buf, std::size_t len) {
  if (txq_.size() == kMaxQueue) flush();
  io::Datagram d;
  d.buf = buf.first(len);
  d.len = len;
  d.peer_len = to.addr.to(&d.peer);
  txq_.push_back(d);
  txq_pipes_.push_back(&to);
}

void Worker::flush() {
  std::size_t off = 0;
  io::UdpSocket* udp = udp_;
  const std::uint64_t refused_before = udp != nullptr ? udp->send_dropped() : 0;
  for (int attempt = 0; off < txq_.size() && attempt < 3;) {
    auto r = port_->send_batch(std::span<const io::Datagram>(txq_).subspan(off));
    if (!r) break;
    for (std::size_t i = off; i < off + *r; ++i) {
      txq_pipes_[i]->tx_packets.add();
      txq_pipes_[i]->tx_bytes.add(txq_[i].len);
      mark_active(*txq_pipes_[i]);
    }
    tx_datagrams_.add(*r);
    off += *r;
    if (*r == 0) {
      // The socket buffer is full: wait briefly for room, then give up on the rest.
      ++attempt;
      if (port_->fd() < 0) break;
      pollfd pfd{port_->fd(), POLLOUT, 0};
      ::poll(&pfd, 1, 2);
    }
  }
  if (off < txq_.size()) sn_drops_.add(DropReason::send_failed, txq_.size() - off);
  if (udp != nullptr && udp->send_dropped() != refused_before)
    sn_drops_.add(DropReason::send_failed, udp->send_dropped() - refused_before);
  txq_.clear();
  txq_pipes_.clear();
  pool_used_ = 0;
}

// ---- state changes -----------------------------------------------------------------------

void Worker::pipe_up(PipeId pipe, ie_sn_pipe_kind kind, const std::string& sn_name,
                     const Endpoint& addr) {
  auto& slot = pipes_[pipe];
  if (!slot) {
    slot = std::make_unique<Pipe>();
    slot->role_epoch = ++role_clock_;
  }
  slot->id = pipe;
  slot->kind = kind;
  slot->sn_name = sn_name;
  slot->addr = addr;
  RouteOp op;
  op.kind = RouteOp::Kind::pipe_up;
  op.pipe = pipe;
  op.pipe_kind = kind;
  op.sn_name = sn_name;
  (void)routes_.apply(op);  // pipe_up never fails
}

Result<void> Worker::install_tx(PipeId pipe, std::uint32_t spi, const crypto::psp::Key& key,
                                crypto::SharedIvCounter iv) {
  const auto it = pipes_.find(pipe);
  if (it == pipes_.end()) return fail(Errc::not_found, "send SA for an unknown pipe");
  auto tx = crypto::TxSa::create(spi, key, std::move(iv));
  if (!tx) return fail(tx.error());
  it->second->tx.emplace(std::move(*tx));
  return ok();
}

Result<void> Worker::install_rx(std::uint32_t spi, const crypto::psp::Key& key, PipeId pipe) {
  return rx_.install(spi, key, pipe);
}

void Worker::retire_rx(std::uint32_t spi) {
  rx_.retire(spi);
}

void Worker::pipe_down(PipeId pipe) {
  rx_.retire_owner(pipe);
  pipes_.erase(pipe);
  RouteOp op;
  op.kind = RouteOp::Kind::pipe_down;
  op.pipe = pipe;
  (void)routes_.apply(op);
  // Cache entries naming the pipe stay until a packet hits them (then: decided again).
  if (modules_) modules_->on_pipe_down(pipe);
}

void Worker::apply_route(const RouteOp& op) {
  const bool was_standby = routes_.standby_of(op.pipe);
  if (auto r = routes_.apply(op); !r) {
    // The master accepted it; a copy can only disagree if the pipe went down meanwhile.
    IE_LOG_DEBUG("worker {}: route op not applied: {}", opts_.index, r.error().to_string());
    return;
  }
  if (op.kind == RouteOp::Kind::register_host && routes_.standby_of(op.pipe) != was_standby)
    role_changed(op.pipe);
}

void Worker::role_changed(PipeId pipe) {
  if (const auto it = pipes_.find(pipe); it != pipes_.end()) it->second->role_epoch = ++role_clock_;
}

std::uint32_t Worker::hop_stamp(std::span<const NextHop> hops) const {
  std::uint32_t sum = 0;
  for (const NextHop h : hops) {
    if (const auto it = pipes_.find(h); it != pipes_.end()) sum += it->second->role_epoch;
  }
  return sum;
}

// ---- counters ----------------------------------------------------------------------------

std::optional<PipeTraffic> Worker::pipe_traffic(PipeId pipe) const {
  const auto it = pipes_.find(pipe);
  if (it == pipes_.end()) return std::nullopt;
  const Pipe& p = *it->second;
  return PipeTraffic{p.rx_packets.get(), p.rx_bytes.get(), p.tx_packets.get(), p.tx_bytes.get()};
}

WorkerSnapshot Worker::snapshot() const {
  WorkerSnapshot s;
  s.index = opts_.index;
  for (std::size_t i = 0; i < wire::kDropReasonCount; ++i)
    s.drops[i] = rx_.drops().at(i) + sn_drops_.at(i);
  s.cache = cache_.stats();
  s.cache_size = cache_.size();
  s.cache_capacity = cache_.capacity();
  s.rx_sas = rx_.size();
  s.rx_datagrams = rx_datagrams_.get();
  s.tx_datagrams = tx_datagrams_.get();
  s.batches = batches_.get();
  for (const auto& [id, p] : pipes_) {
    PipeSnapshot ps;
    ps.id = id;
    ps.kind = p->kind;
    ps.sn_name = p->sn_name;
    ps.address = p->addr.str();
    ps.tx_spi = p->tx ? p->tx->spi() : 0;
    ps.traffic =
        PipeTraffic{p->rx_packets.get(), p->rx_bytes.get(), p->tx_packets.get(), p->tx_bytes.get()};
    ps.registered = routes_.registered(id);
    s.pipes.push_back(std::move(ps));
  }
  std::sort(s.pipes.begin(), s.pipes.end(),
            [](const PipeSnapshot& a, const PipeSnapshot& b) { return a.id < b.id; });
  return s;
}

// ---- WorkerServices ----------------------------------------------------------------------

std::uint64_t Worker::now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

bool Worker::cache_insert(const FlowKey& key, Decision d) {
  d.stamp = hop_stamp(d.next_hops());
  return cache_.insert(key, d, now_ns());
}

std::optional<PipeId> Worker::route(const ie_sn_addr& dst) {
  const Addr16 a = to_addr16(dst);
  const auto p = routes_.route(a);
  if (p && noting_ && !routes_.host_of(a)) {
    if (const std::string* sn = routes_.static_route_sn(a); sn && !routes_.has_sn_pipe(*sn))
      note_relayed(*sn);
  }
  return p;
}

std::optional<PipeId> Worker::sn_route(std::string_view sn_name) {
  const auto p = routes_.sn_route(sn_name);
  if (p && noting_ && !routes_.has_sn_pipe(sn_name)) note_relayed(sn_name);
  return p;
}

void Worker::note_relayed(std::string_view sn_name) {
  if (!noting_ || relayed_.size() >= 8) return;
  if (std::find(relayed_.begin(), relayed_.end(), sn_name) == relayed_.end())
    relayed_.emplace_back(sn_name);
}

void Worker::tell_relayed(std::span<Pending* const> group) {
  const bool from_host = std::any_of(group.begin(), group.end(), [this](const Pending* p) {
    const auto it = pipes_.find(p->pkt.from_pipe);
    return it != pipes_.end() && it->second->kind == IE_SN_PIPE_HOST;
  });
  if (!from_host) return;
  constexpr std::uint64_t kEvery = 1'000'000'000;  // ns
  const std::uint64_t now = now_ns();
  for (const auto& name : relayed_) {
    auto it = demand_told_.find(name);
    if (it != demand_told_.end() && now - it->second < kEvery) continue;
    if (it == demand_told_.end()) {
      if (demand_told_.size() >= 4096) demand_told_.clear();  // bounded; costs a re-tell
      it = demand_told_.emplace(name, now).first;
    }
    it->second = now;
    hooks_.sn_demand(it->first);
  }
}

std::optional<ie_sn_pipe_info> Worker::pipe_info(PipeId pipe) {
  return routes_.pipe_info(pipe);
}

bool Worker::send(PipeId pipe, const ie_sn_out_packet& p) {
  Pipe* to = sendable(pipe);
  if (to == nullptr) return false;
  if ((p.tlvs == nullptr && p.tlvs_len != 0) || (p.inner == nullptr && p.inner_len != 0))
    return false;
  const ConstByteSpan tlvs(p.tlvs, p.tlvs_len);
  if (wire::validate_tlvs(tlvs) != DropReason::none) return false;
  const std::size_t hlen = (wire::kIlpBaseLen + tlvs.size() + 3) & ~std::size_t{3};
  if (hlen > wire::kIlpMaxHeaderLen) return false;
  const std::size_t plain = hlen + p.inner_len;
  if (plain + kSealOverhead > kWorkerBufSize) return false;
  const ByteSpan b = take_buffer();
  std::uint8_t* h = b.data() + wire::kPspHeaderLen;
  wire::IlpWireHeader w;
  store_be16(w.service_id_be, p.service_id);
  store_be64(w.connection_id_be, p.connection_id);
  w.header_words = static_cast<std::uint8_t>(hlen / 4);
  w.version_flags =
      static_cast<std::uint8_t>((wire::kIlpVersion << 6) | (p.ilp_flags & wire::kIlpFlagsDefined));
  std::memcpy(h, &w, sizeof w);
  if (!tlvs.empty()) std::memcpy(h + wire::kIlpBaseLen, tlvs.data(), tlvs.size());
  std::memset(h + wire::kIlpBaseLen + tlvs.size(), 0, hlen - wire::kIlpBaseLen - tlvs.size());
  if (p.inner_len != 0) std::memcpy(h + hlen, p.inner, p.inner_len);
  const std::size_t n = to->tx->seal_in_place(b, plain);
  if (n == 0) return false;
  queue(*to, b, n);
  if (!in_batch_) flush();  // from a timer or a control message: send now
  return true;
}

bool Worker::control_reply(PipeId peer, std::uint32_t id, ConstByteSpan data) {
  return hooks_.control_reply ? hooks_.control_reply(peer, id, data) : false;
}

std::uint64_t Worker::add_timer(std::chrono::milliseconds delay, std::function<void()> fn) {
  const std::uint64_t id = next_timer_id_++;
  timers_[id] = reactor_->add_timer(delay, [this, id, fn = std::move(fn)] {
    timers_.erase(id);
    fn();
  });
  return id;
}

bool Worker::cancel_timer(std::uint64_t id) {
  const auto it = timers_.find(id);
  if (it == timers_.end()) return false;
  const bool cancelled = reactor_->cancel_timer(it->second);
  timers_.erase(it);
  return cancelled;
}

}  // namespace ie::sn
