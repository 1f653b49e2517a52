// E2e (e2e.hpp): end-to-end sessions over protocol-253 packets, built on the association
// Node and PSP SAs of libie. The packet path is drawn in e2e.hpp; docs/e2e.md has the design.
#include "ie/ied/e2e.hpp"

#include <cstring>
#include <utility>

#include "ie/wire/demux.hpp"
#include "ie/wire/service_id.hpp"

namespace ie::ied {

namespace assoc = crypto::assoc;
using wire::DropReason;

namespace {

// Events are applied after the datagrams that caused them; applying one may make the Node
// produce more (a CLOSE when a peer is replaced), so flush loops, but never unboundedly.
constexpr int kMaxFlushRounds = 8;

assoc::Addr node_addr(const IpAddr& a) {
  return assoc::Addr::from(a.bytes());
}

}  // namespace

Result<std::unique_ptr<E2e>> E2e::create(E2eOptions o) {
  if (o.max_queued_per_peer == 0)
    return fail(Errc::invalid_argument, "e2e: max_queued_per_peer must be at least 1");
  if (o.key.pub == crypto::noise::PublicKey{})
    return fail(Errc::invalid_argument, "e2e: no static key");
  return std::unique_ptr<E2e>(new E2e(std::move(o)));
}

E2e::E2e(E2eOptions o) : opts_(std::move(o)) {
  assoc::Config cfg;
  cfg.static_key = opts_.key.clone();
  cfg.timers = opts_.timers;
  // Any InterEdge host may open a session to us (by IK to our published key); first contact
  // (XX) is not needed: a host always learns its peer's key with the peer's address.
  cfg.accept_unknown_ik = true;
  cfg.accept_first_contact = false;
  cfg.max_learned_peers = opts_.max_learned_peers;
  cfg.wall_clock_ns = opts_.wall_clock_ns;
  node_ = std::make_unique<assoc::Node>(std::move(cfg), ring_);
}

E2e::~E2e() = default;

E2e::Peer* E2e::find(assoc::PeerId id) {
  auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : &it->second;
}

E2e::Peer* E2e::find(const IpAddr& addr) {
  auto it = by_addr_.find(addr);
  return it == by_addr_.end() ? nullptr : find(it->second);
}

// ---- send ---------------------------------------------------------------------------------

void E2e::send(const IpAddr& local, const IpAddr& peer, const crypto::noise::PublicKey& peer_key,
               ConstByteSpan ip_packet, Time now, E2eOutput& out, std::uint32_t tag) {
  send_impl(local, peer, peer_key, ip_packet, /*check_addrs=*/true, now, out, tag);
}

void E2e::send_unchecked_for_test(const IpAddr& local, const IpAddr& peer,
                                  const crypto::noise::PublicKey& peer_key, ConstByteSpan ip_packet,
                                  Time now, E2eOutput& out) {
  send_impl(local, peer, peer_key, ip_packet, /*check_addrs=*/false, now, out, 0);
}

void E2e::send_impl(const IpAddr& local, const IpAddr& peer,
                    const crypto::noise::PublicKey& peer_key, ConstByteSpan ip_packet,
                    bool check_addrs, Time now, E2eOutput& out, std::uint32_t tag) {
  IpView v;
  if (const auto r = parse_ip(ip_packet, /*check_v4_checksum=*/false, &v); r != DropReason::none)
    return drop(r);
  if (local.size() != peer.size() || (!local.is_v4() && !local.is_v6()))
    return drop(DropReason::bad_inner_packet);
  // The receiver insists on these too; refusing here keeps a local bug off the network.
  if (check_addrs && v.src != local) return drop(DropReason::spoofed_source);
  if (check_addrs && v.dst != peer) return drop(DropReason::bad_inner_packet);
  if (v.packet.size() + overhead(peer.is_v6()) > kMaxIpPacket) return drop(DropReason::too_large);

  Peer* p = find(peer);
  std::deque<Peer::Queued> carried;
  if (p != nullptr && p->key != peer_key) {
    // Another host (or the same host with a new key) now has this address: the old session
    // must not carry its traffic. Packets waiting for the old key are for the address, so
    // they wait for the new session instead.
    ++stats_.key_changes;
    carried = std::move(p->queue);
    p->queue.clear();
    forget(*p, now, out);
    p = nullptr;
  }
  if (p == nullptr || !p->initiated) {
    // Slow path (first packet to this peer): the Node keeps the session up from now on.
    const assoc::PeerId id = node_->add_peer(peer_key, node_addr(peer), /*connect=*/true, now);
    p = &bind(id, peer, local, now, out);
    p->key = peer_key;
    p->initiated = true;
    for (auto& b : carried)
      p->queue.push_back(std::move(b));
  }
  p->local = local;
  p->last_data = now;
  if (p->tx && p->queue.empty()) {
    seal(*p, v.packet, now, out, tag);
  } else {
    if (p->queue.size() >= opts_.max_queued_per_peer) {
      p->queue.pop_front();
      ++p->queue_dropped;
      ++stats_.queue_dropped;
    }
    p->queue.push_back(Peer::Queued{Bytes(v.packet.begin(), v.packet.end()), tag});
    if (p->tx) drain_queue(*p, now, out);
  }
  flush(now, out);
}

void E2e::seal(Peer& p, ConstByteSpan ip_packet, Time now, E2eOutput& out, std::uint32_t tag) {
  const std::size_t hlen = ip_header_len(p.addr.is_v6());
  const std::size_t body =
      wire::kPspHeaderLen + wire::kIlpBaseLen + ip_packet.size() + wire::kPspTagLen;
  const ByteSpan room = out.to_net.reserve(hlen + body);
  if (write_e2e_header(p.local, p.addr, body, room) != hlen) return drop(DropReason::too_large);
  wire::IlpHeader h;
  h.service_id = static_cast<std::uint16_t>(wire::ServiceId::ip);
  if (p.tx->seal_ilp(h, {}, ip_packet, room.subspan(hlen)) != body)
    return drop(DropReason::too_large);
  out.to_net.commit(hlen + body, tag);
  ++p.tx_packets;
  p.last_data = now;
  node_->note_data_tx(p.id, 1, now);
}

void E2e::drain_queue(Peer& p, Time now, E2eOutput& out) {
  while (p.tx && !p.queue.empty()) {
    seal(p, p.queue.front().packet, now, out, p.queue.front().tag);
    p.queue.pop_front();
  }
}

// ---- receive ------------------------------------------------------------------------------

bool E2e::receive(ConstByteSpan ip_packet, Time now, E2eOutput& out) {
  IpView v;
  if (const auto r = parse_ip(ip_packet, /*check_v4_checksum=*/true, &v); r != DropReason::none) {
    drop(r);
    return false;
  }
  if (v.protocol != kE2eProto || v.fragment) {
    drop(DropReason::bad_inner_packet);
    return false;
  }
  if (wire::classify(v.payload) == wire::DatagramKind::psp) return receive_data(v, now, out);
  // Handshake, cookie or control: the Node parses and counts; events it raises while
  // handling this packet bind learned peers to this packet's addresses.
  ctx_from_ = v.src;
  ctx_local_ = v.dst;
  ctx_authentic_ = false;
  node_->on_datagram(v.payload, node_addr(v.src), now);
  flush(now, out);
  ctx_from_.reset();
  ctx_local_.reset();
  return ctx_authentic_;
}

bool E2e::receive_data(const IpView& outer, Time now, E2eOutput& out) {
  // Open in the output's reservation: the input is the caller's (const), and the plaintext
  // ends up where the TUN writer reads it, after one move of the inner packet to the front.
  // The session is bound to the address it was established with, in both directions:
  // checked before opening, so a re-addressed packet costs no decryption and does not use
  // up its sequence number (the genuine packet, if it also arrives, is still accepted).
  if (outer.payload.size() >= wire::kPspHeaderLen) {
    const auto owner = spi_owner_.find(load_be32(outer.payload.data() + 4));
    if (owner != spi_owner_.end()) {
      if (const Peer* p = find(owner->second)) {
        if (outer.src != p->addr) return dropped(DropReason::spoofed_source);
        if (outer.dst != p->local) return dropped(DropReason::bad_inner_packet);
      }
    }
  }
  const ByteSpan room = out.to_tun.reserve(outer.payload.size());
  std::memcpy(room.data(), outer.payload.data(), outer.payload.size());
  crypto::OpenedIlp o;
  if (rx_.open_ilp(room, &o) != DropReason::none) return false;  // counted by rx_
  Peer* p = find(static_cast<assoc::PeerId>(o.owner));
  if (p == nullptr) return dropped(DropReason::unknown_spi);
  if (outer.src != p->addr) return dropped(DropReason::spoofed_source);
  if (outer.dst != p->local) return dropped(DropReason::bad_inner_packet);
  if (o.ilp.header.service_id != static_cast<std::uint16_t>(wire::ServiceId::ip))
    return dropped(DropReason::unknown_service);
  IpView in;
  if (parse_ip(o.ilp.inner, /*check_v4_checksum=*/false, &in) != DropReason::none)
    return dropped(DropReason::bad_inner_packet);
  // What the SNs routed and checked (the outer addresses) must be what the host gets.
  if (in.src != outer.src) return dropped(DropReason::spoofed_source);
  if (in.dst != outer.dst) return dropped(DropReason::bad_inner_packet);
  std::memmove(room.data(), in.packet.data(), in.packet.size());
  out.to_tun.commit(in.packet.size());
  ++p->rx_packets;
  p->last_data = now;
  node_->note_data_rx(p->id, now);
  return true;
}

// ---- association events -------------------------------------------------------------------

void E2e::flush(Time now, E2eOutput& out) {
  for (int round = 0; round < kMaxFlushRounds; ++round) {
    auto datagrams = node_->take_datagrams();
    auto events = node_->take_events();
    if (datagrams.empty() && events.empty()) return;
    for (const auto& d : datagrams)
      emit_datagram(d, out);
    for (const auto& e : events) {
      on_event(e, now, out);
      // Raised by the packet being received, about a session bound to its source address.
      if (ctx_from_ && e.type != assoc::EventType::dead && e.type != assoc::EventType::closed)
        if (const Peer* p = find(e.peer); p != nullptr && p->addr == *ctx_from_)
          ctx_authentic_ = true;
    }
  }
}

void E2e::emit_datagram(const assoc::Datagram& d, E2eOutput& out) {
  const auto dst = IpAddr::from_bytes(d.to.span());
  if (!dst) return drop(DropReason::send_failed);
  // An answer to the packet's source: the Node answers only what it authenticated (an IK
  // initiation whose sender proved its key, with a fresh timestamp: no first contact here; a
  // control message under the session's keys, e.g. a PROBE), except a cookie reply, which
  // it sends before any authentication.
  if (ctx_from_ && *dst == *ctx_from_ &&
      wire::classify(ConstByteSpan(d.bytes.data(), d.bytes.size())) !=
          wire::DatagramKind::cookie_reply)
    ctx_authentic_ = true;
  IpAddr local;
  if (const Peer* p = find(*dst)) {
    local = p->local;
  } else if (ctx_local_ && ctx_local_->size() == dst->size()) {
    // An answer to the packet being received (handshake response, cookie reply) before
    // the peer is known: from the address it was sent to.
    local = *ctx_local_;
  } else {
    return drop(DropReason::send_failed);
  }
  const std::size_t hlen = ip_header_len(dst->is_v6());
  const ByteSpan room = out.to_net.reserve(hlen + d.bytes.size());
  if (write_e2e_header(local, *dst, d.bytes.size(), room) != hlen)
    return drop(DropReason::send_failed);
  std::memcpy(room.data() + hlen, d.bytes.data(), d.bytes.size());
  out.to_net.commit(hlen + d.bytes.size());
}

E2e::Peer* E2e::event_peer(const assoc::Event& e, Time now, E2eOutput& out) {
  Peer* p = find(e.peer);
  const bool moved = p != nullptr && !p->initiated && ctx_from_ && *ctx_from_ != p->addr;
  if (e.type != assoc::EventType::established || !ctx_from_ || !ctx_local_ ||
      (p != nullptr && !moved))
    return p;
  // A peer learned from its handshake, new or established again from another address
  // (only the established event carries the key, and it comes first). Whoever holds that
  // address keeps it: a peer we opened a session to with the key configuration or DNS
  // gave us, or one that established first. (send() with a new key is how an address
  // changes hands; a learned peer that died or closed no longer holds it.)
  if (find(*ctx_from_) != nullptr) return nullptr;
  if (opts_.accept_peer && !opts_.accept_peer(*ctx_from_, e.remote_static)) return nullptr;
  p = &bind(e.peer, *ctx_from_, *ctx_local_, now, out);
  p->key = e.remote_static;
  return p;
}

void E2e::on_event(const assoc::Event& e, Time now, E2eOutput& out) {
  switch (e.type) {
    case assoc::EventType::established: {
      Peer* p = event_peer(e, now, out);
      if (p == nullptr) {
        // A session we will not use (from an address held by another key, refused by
        // accept_peer, or for a peer forgotten in this very flush): end it rather than keep
        // it (and its keepalives).
        drop(DropReason::peer_not_allowed);
        node_->close(e.peer, now);
        retire_rx(e.peer);
        return;
      }
      if (p->initiated && ctx_from_ && *ctx_from_ != p->addr) {
        // The answer came from elsewhere (the Node follows it): keep the Node talking to the
        // address we opened the session to, the only one data is accepted from.
        node_->add_peer(p->key, node_addr(p->addr), /*connect=*/true, now);
      }
      if (p->session) {
        ++stats_.rekeys;
      } else {
        ++stats_.sessions;
        p->session = true;
      }
      p->key = e.remote_static;
      break;
    }
    case assoc::EventType::tx_sa_install: {
      Peer* p = event_peer(e, now, out);
      if (p == nullptr || !e.key) return;
      auto t = crypto::TxSa::create(e.spi, *e.key);
      if (!t) return drop(DropReason::send_failed);  // OpenSSL could not set up AES-GCM
      p->tx.emplace(std::move(*t));
      drain_queue(*p, now, out);
      break;
    }
    case assoc::EventType::rx_sa_install:
      // Not for a session refused (closed) earlier in this flush.
      if (e.key && node_->is_established(e.peer) && rx_.install(e.spi, *e.key, e.peer))
        spi_owner_[e.spi] = e.peer;
      break;
    case assoc::EventType::rx_sa_retire:
      rx_.retire(e.spi);
      spi_owner_.erase(e.spi);
      break;
    case assoc::EventType::service_message:
      break;  // no service requests between hosts (yet); the Node already authenticated it
    case assoc::EventType::dead:
    case assoc::EventType::closed: {
      ++stats_.dead;
      retire_rx(e.peer);
      Peer* p = find(e.peer);
      if (p == nullptr) return;
      if (!p->initiated) {
        // The peer opened it; if it wants us again, it handshakes again.
        by_addr_.erase(p->addr);
        peers_.erase(e.peer);
        return;
      }
      // Ours: the Node re-handshakes (keep_connected); packets queue until then.
      p->session = false;
      p->tx.reset();
      break;
    }
  }
}

void E2e::retire_rx(assoc::PeerId id) {
  rx_.retire_owner(id);
  std::erase_if(spi_owner_, [id](const auto& kv) { return kv.second == id; });
}

// ---- peers --------------------------------------------------------------------------------

E2e::Peer& E2e::bind(assoc::PeerId id, const IpAddr& addr, const IpAddr& local, Time now,
                     E2eOutput& out) {
  if (auto it = by_addr_.find(addr); it != by_addr_.end() && it->second != id) {
    // One session per address: whoever held it before is replaced.
    if (Peer* other = find(it->second)) forget(*other, now, out);
    by_addr_.erase(addr);
  }
  auto [it, fresh] = peers_.try_emplace(id);
  Peer& p = it->second;
  if (fresh) {
    p.id = id;
    p.last_data = now;
  } else if (p.addr != addr) {
    if (auto old = by_addr_.find(p.addr); old != by_addr_.end() && old->second == id)
      by_addr_.erase(old);
  }
  p.addr = addr;
  p.local = local;
  by_addr_[addr] = id;
  return p;
}

void E2e::forget(Peer& p, Time now, E2eOutput& out) {
  const assoc::PeerId id = p.id;
  // CLOSE goes out while the peer's local address is still known.
  node_->close(id, now);
  for (const auto& d : node_->take_datagrams())
    emit_datagram(d, out);
  retire_rx(id);
  stats_.queue_dropped += p.queue.size();
  if (auto it = by_addr_.find(p.addr); it != by_addr_.end() && it->second == id) by_addr_.erase(it);
  peers_.erase(id);
}

void E2e::close_all(Time now, E2eOutput& out) {
  while (!peers_.empty())
    forget(peers_.begin()->second, now, out);
  flush(now, out);
}

// ---- timers -------------------------------------------------------------------------------

void E2e::on_timer(Time now, E2eOutput& out) {
  node_->on_timer(now);
  flush(now, out);
  if (opts_.idle_after.count() <= 0) return;
  std::vector<assoc::PeerId> idle;
  for (const auto& [id, p] : peers_)
    if (now - p.last_data >= opts_.idle_after) idle.push_back(id);
  for (const auto id : idle) {
    if (Peer* p = find(id)) {
      ++stats_.idle_closed;
      forget(*p, now, out);
    }
  }
  flush(now, out);
}

std::optional<Time> E2e::next_deadline() const {
  std::optional<Time> best = node_->next_deadline();
  if (opts_.idle_after.count() > 0) {
    for (const auto& [id, p] : peers_) {
      const Time t = p.last_data + opts_.idle_after;
      if (!best || t < *best) best = t;
    }
  }
  return best;
}

E2e::PeerInfo E2e::info(const Peer& p) const {
  PeerInfo i;
  i.addr = p.addr;
  i.local = p.local;
  i.key = p.key;
  i.established = p.session && p.tx.has_value();
  i.initiated = p.initiated;
  i.queued = p.queue.size();
  i.tx_packets = p.tx_packets;
  i.rx_packets = p.rx_packets;
  i.queue_dropped = p.queue_dropped;
  return i;
}

std::vector<E2e::PeerInfo> E2e::peers() const {
  std::vector<PeerInfo> v;
  v.reserve(peers_.size());
  for (const auto& [id, p] : peers_)
    v.push_back(info(p));
  return v;
}

std::optional<E2e::PeerInfo> E2e::peer(const IpAddr& addr) const {
  auto it = by_addr_.find(addr);
  if (it == by_addr_.end()) return std::nullopt;
  auto p = peers_.find(it->second);
  if (p == peers_.end()) return std::nullopt;
  return info(p->second);
}

bool E2e::probe(const IpAddr& peer, Time now, E2eOutput& out) {
  const Peer* p = find(peer);
  if (p == nullptr || !p->session) return false;
  if (!node_->probe(p->id, now)) return false;
  flush(now, out);
  return true;
}

std::optional<Duration> E2e::rtt(const IpAddr& peer) const {
  const auto it = by_addr_.find(peer);
  return it == by_addr_.end() ? std::nullopt : node_->rtt(it->second);
}

std::uint64_t E2e::rtt_samples(const IpAddr& peer) const {
  const auto it = by_addr_.find(peer);
  return it == by_addr_.end() ? 0 : node_->rtt_samples(it->second);
}

std::uint64_t E2e::drops(DropReason r) const {
  return drops_.get(r) + rx_.drops().get(r) + node_->drops().get(r);
}

std::uint64_t E2e::drops_total() const {
  return drops_.total() + rx_.drops().total() + node_->drops().total();
}

}  // namespace ie::ied
