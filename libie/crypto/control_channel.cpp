// The control channel of an association (type-4 datagrams protected by the handshake's
// transport keys), the PSP key hand-out over it (KEY_OFFER / KEY_ACK), service messages,
// CLOSE, and the Node's timers: keepalives, dead-peer detection, re-key, KEY_OFFER
// retransmission, receive-SPI retirement after the overlap and master-key rotation.
// Handshakes and peers live in association.cpp; the shared state in association_state.hpp.
#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "association_state.hpp"
#include "ie/crypto/association.hpp"
#include "ie/wire/demux.hpp"
#include "ie/wire/handshake_msg.hpp"

namespace ie::crypto::assoc {

// ---- control channel -------------------------------------------------------------------

void Node::offer_rx_sa(Peer& p, Time now) {
  // Earlier SPIs (acked or not: an ack may have been lost) stay active until this offer is
  // acked; only then can no sender still be switching away from them.
  const std::uint32_t spi = ring_.allocate_spi();
  Event e;
  e.type = EventType::rx_sa_install;
  e.peer = p.id;
  e.spi = spi;
  e.key = ring_.key_for(spi, cfg_.psp_version);
  emit(std::move(e));
  p.rx_offered = spi;
  p.rx_active.push_back(spi);
  send_pending_control(p, now);
}

void Node::send_control(Peer& p, Session& s, ConstByteSpan items, Time now, bool wants_answer,
                        bool counts_as_sent) {
  Bytes d(wire::kControlHeaderLen + items.size() + noise::kTagLen);
  const std::uint64_t counter = s.send_counter++;
  wire::encode_control_header(s.remote_index, counter, d.data());
  auto n = s.send.encrypt_with_nonce(
      counter, ConstByteSpan(d.data(), wire::kControlHeaderLen), items,
      ByteSpan(d.data() + wire::kControlHeaderLen, d.size() - wire::kControlHeaderLen));
  if (!n) return;
  out_.push_back({p.addr, std::move(d)});
  if (counts_as_sent) sent(p, now, wants_answer);
}

bool Node::keeps_alive(const Peer& p) const {
  switch (cfg_.timers.idle_keepalive) {
    case IdleKeepalive::always:
      return true;
    case IdleKeepalive::kept_peers:
      return p.keep_connected;
    case IdleKeepalive::never:
      return false;
  }
  return true;
}

void Node::sent(Peer& p, Time now, bool wants_answer) {
  p.last_tx = now;
  p.owe_since.reset();  // whatever we sent answers the peer
  if (wants_answer && !p.awaiting) {
    p.awaiting = now;
    schedule(p);  // kept alive: a PROBE at now + keepalive; else dead at now + dead_after
  }
}

void Node::received(Peer& p, Time now, bool wants_answer) {
  p.last_rx = now;
  p.awaiting.reset();
  if (wants_answer && !p.owe_since && !keeps_alive(p)) {
    p.owe_since = now;
    schedule(p);  // a passive keepalive at now + keepalive unless we send something first
  }
}

// Ids count up in 31 bits (0 means "none outstanding"); bit 31 asks every peer to answer.
std::uint32_t Node::new_probe_id(bool answer_always) {
  std::uint32_t id = next_probe_id_++ & ~wire::kProbeAnswerAlways;
  if (id == 0) id = next_probe_id_++ & ~wire::kProbeAnswerAlways;
  return answer_always ? id | wire::kProbeAnswerAlways : id;
}

// Sends what the control channel owes the peer: the unacked KEY_OFFER, a PROBE if asked (for
// a peer that answers rather than keeping us alive itself), a KEEPALIVE if neither, so the
// call always produces a message; and for XX the message 3 until the session is confirmed.
void Node::send_pending_control(Peer& p, Time now, Probe probe) {
  if (!p.current) return;
  Session& s = *p.current;
  if (!s.final_msg.empty() && !s.confirmed) out_.push_back({p.addr, s.final_msg});
  std::uint8_t plain[kMaxControlPlain];
  wire::ControlItemWriter w(ByteSpan(plain, sizeof plain));
  if (p.rx_offered) {
    const psp::Key key = ring_.key_for(*p.rx_offered, cfg_.psp_version);
    wire::ControlItem item;
    item.type = wire::ControlItemType::key_offer;
    item.spi_or_id = *p.rx_offered;
    item.version = static_cast<std::uint8_t>(cfg_.psp_version);
    item.data = key.span();
    w.add(item);
    p.next_offer_retx = now + cfg_.timers.retry_initial;
  }
  if (probe != Probe::none) {
    wire::ControlItem item;
    item.type = wire::ControlItemType::probe;
    item.spi_or_id = new_probe_id(probe == Probe::measure);
    w.add(item);
    p.probe_id = item.spi_or_id;
    p.probe_sent = now;
    ++probes_sent_;
  } else if (!p.rx_offered) {
    wire::ControlItem keepalive;
    keepalive.type = wire::ControlItemType::keepalive;
    w.add(keepalive);
  }
  send_control(p, s, ConstByteSpan(plain, w.size()), now,
               p.rx_offered.has_value() || probe != Probe::none);
  sodium_memzero(plain, sizeof plain);
}

std::uint32_t Node::probe_padded(PeerId peer, std::size_t datagram_len, Time now) {
  Peer* p = find_peer(peer);
  if (p == nullptr || !p->current || datagram_len < kMinPaddedProbe ||
      datagram_len > wire::kMaxControlPlaneDatagram)
    return 0;
  std::uint8_t plain[wire::kMaxControlPlaneDatagram];
  wire::ControlItemWriter w(ByteSpan(plain, sizeof plain));
  wire::ControlItem probe;
  probe.type = wire::ControlItemType::probe;
  probe.spi_or_id = new_probe_id(true);  // every peer answers it
  w.add(probe);
  wire::ControlItem pad;
  pad.type = wire::ControlItemType::pad;
  pad.pad = datagram_len - kMinPaddedProbe;
  w.add(pad);
  if (p->padded.size() >= kMaxPaddedProbes) p->padded.erase(p->padded.begin());
  p->padded.emplace_back(probe.spi_or_id, false);
  ++padded_probes_sent_;
  // Nothing for liveness: a black hole that eats it must neither make a live peer look dead
  // nor stand in for the keepalive the peer expects.
  send_control(*p, *p->current, ConstByteSpan(plain, w.size()), now, false, false);
  return probe.spi_or_id;
}

bool Node::probe_answered(PeerId peer, std::uint32_t id) const {
  const Peer* p = find_peer(peer);
  if (p == nullptr || id == 0) return false;
  for (const auto& [pid, answered] : p->padded)
    if (pid == id) return answered;
  return false;
}

void Node::on_control(ConstByteSpan d, const Addr& from, Time now) {
  wire::ControlView v;
  if (const auto r = wire::parse_control(d, &v); r != wire::DropReason::none) return drop(r);
  auto it = index_to_peer_.find(v.receiver);
  Peer* p = it == index_to_peer_.end() ? nullptr : find_peer(it->second);
  Session* s = nullptr;
  if (p != nullptr && p->current && p->current->local_index == v.receiver) s = p->current.get();
  if (p != nullptr && p->previous && p->previous->local_index == v.receiver) s = p->previous.get();
  if (p != nullptr && p->next && p->next->local_index == v.receiver) s = p->next.get();
  if (s == nullptr) return drop(wire::DropReason::unknown_receiver);
  if (!s->window.check(v.counter)) return drop(wire::DropReason::control_replayed);
  std::uint8_t plain[wire::kMaxControlPlaneDatagram];
  auto n =
      s->recv.decrypt_with_nonce(v.counter, v.header, v.ciphertext, ByteSpan(plain, sizeof plain));
  if (!n) return drop(wire::DropReason::control_auth_failed);
  s->window.update(v.counter);
  const ConstByteSpan items(plain, *n);
  if (wire::validate_control_items(items) != wire::DropReason::none) {
    sodium_memzero(plain, sizeof plain);
    return drop(wire::DropReason::bad_control_message);
  }
  received(*p, now, false);
  p->addr = from;  // authenticated: follow the peer if its address changed
  if (s == p->next.get()) promote(*p, std::move(p->next), now);  // confirmed
  const bool is_current = s == p->current.get();
  if (is_current) s->confirmed = true;

  std::uint8_t reply[kMaxControlPlain];
  wire::ControlItemWriter w(ByteSpan(reply, sizeof reply));
  bool closed = false;
  bool wants_answer = false;  // an item the peer expects us to answer
  bool probed = false;
  std::uint32_t probe_id = 0;  // the last PROBE's id, echoed in the answer
  wire::ControlItemIterator iter(items);
  wire::ControlItem item;
  while (iter.next(&item)) {
    switch (item.type) {
      case wire::ControlItemType::key_offer: {
        wants_answer = true;
        // Offers on an old session, or older than one already taken, are stale.
        if (!is_current || (s->have_offer && v.counter < s->last_offer_counter)) break;
        if (p->tx_spi != item.spi_or_id) {
          Event e;
          e.type = EventType::tx_sa_install;
          e.peer = p->id;
          e.spi = item.spi_or_id;
          psp::Key key;
          key.version = static_cast<psp::Version>(item.version);
          std::memcpy(key.bytes.data(), item.data.data(), item.data.size());
          e.key = std::move(key);
          emit(std::move(e));
          p->tx_spi = item.spi_or_id;
          s->last_offer_counter = v.counter;
          s->have_offer = true;
        }
        wire::ControlItem ack;
        ack.type = wire::ControlItemType::key_ack;
        ack.spi_or_id = item.spi_or_id;
        w.add(ack);
        break;
      }
      case wire::ControlItemType::key_ack:
        // The peer now sends on the newest SPI; everything older retires after the overlap
        // (packets sent before the switch may still be in flight).
        if (p->rx_offered && *p->rx_offered == item.spi_or_id) {
          for (const std::uint32_t old : p->rx_active) {
            if (old != item.spi_or_id)
              p->rx_retiring.emplace_back(old, now + cfg_.timers.sa_overlap);
          }
          p->rx_active.assign(1, item.spi_or_id);
          p->rx_offered.reset();
        }
        break;
      case wire::ControlItemType::keepalive:
        break;
      case wire::ControlItemType::probe:
        wants_answer = probed = true;
        probe_id = item.spi_or_id;
        p->peer_probes = true;
        break;
      case wire::ControlItemType::probe_ack:
        if (p->probe_id != 0 && item.spi_or_id == p->probe_id) {
          p->rtt = now - p->probe_sent;
          ++p->rtt_samples;
          p->probe_id = 0;
        } else {
          for (auto& [id, answered] : p->padded)
            if (id == item.spi_or_id) answered = true;
        }
        break;
      case wire::ControlItemType::pad:
        break;
      case wire::ControlItemType::close:
        closed = true;
        break;
      case wire::ControlItemType::service_request:
      case wire::ControlItemType::service_response: {
        wants_answer = wants_answer || item.type == wire::ControlItemType::service_request;
        Event e;
        e.type = EventType::service_message;
        e.peer = p->id;
        e.request = item.type == wire::ControlItemType::service_request;
        e.id = item.spi_or_id;
        e.data.assign(item.data.begin(), item.data.end());
        emit(std::move(e));
        break;
      }
    }
  }
  sodium_memzero(plain, sizeof plain);
  if (closed) {
    Event e;
    e.type = EventType::closed;
    e.peer = p->id;
    emit(std::move(e));
    peer_dead(*p, now);
    return;
  }
  // A peer that does not keep us alive answers a PROBE at once, echoing its id (one that does
  // sends its own keepalives on time anyway, so two such peers never answer each other's
  // keepalive PROBEs). A measuring PROBE (Node::probe: an RTT) is answered by every peer.
  if (probed && (!keeps_alive(*p) || (probe_id & wire::kProbeAnswerAlways) != 0)) {
    ++probes_answered_;
    wire::ControlItem ack;
    ack.type = wire::ControlItemType::probe_ack;
    ack.spi_or_id = probe_id;
    w.add(ack);
  }
  if (wants_answer) received(*p, now, true);  // owed until something goes back
  if (w.size() > 0 && p->current)
    send_control(*p, *p->current, ConstByteSpan(reply, w.size()), now, false);
  sodium_memzero(reply, sizeof reply);
  schedule(*p);  // an ack may have started an SPI's retirement
}

void Node::on_datagram(ConstByteSpan d, const Addr& from, Time now) {
  switch (wire::classify(d)) {
    case wire::DatagramKind::handshake_init:
      return on_initiation(d, from, now);
    case wire::DatagramKind::handshake_resp:
      return on_response(d, from, now);
    case wire::DatagramKind::cookie_reply:
      return on_cookie_reply(d, now);
    case wire::DatagramKind::control:
      return on_control(d, from, now);
    case wire::DatagramKind::handshake_final:
      return on_final(d, from, now);
    case wire::DatagramKind::echo:
      return on_echo(d, from);
    case wire::DatagramKind::echo_reply:
      return on_echo_reply(d, from, now);
    case wire::DatagramKind::psp:
      return drop(wire::DropReason::unknown_message_type);  // datapath's
    case wire::DatagramKind::invalid:
      return drop(wire::DropReason::unknown_message_type);
  }
}

// ---- echo (docs/ilp.md "Echo") -----------------------------------------------------------

void Node::on_echo(ConstByteSpan d, const Addr& from) {
  // Nothing is created or looked up: one MAC and a reply no larger than the echo, so an echo
  // costs what a bad initiation costs and cannot amplify.
  if (!cfg_.answer_echoes) return drop(wire::DropReason::echo_not_answered);
  wire::EchoView v;
  if (const auto r = wire::parse_echo(d, &v); r != wire::DropReason::none) return drop(r);
  if (!checker_.mac1_ok(v.before_mac1, v.mac1, false)) return drop(wire::DropReason::bad_mac1);
  Bytes reply(wire::kEchoReplyLen);
  if (wire::encode_echo_reply(v.nonce, reply) == 0) return drop(wire::DropReason::too_large);
  out_.push_back({from, std::move(reply)});
  ++echoes_answered_;
}

void Node::on_echo_reply(ConstByteSpan d, const Addr& from, Time now) {
  wire::EchoView v;
  if (const auto r = wire::parse_echo_reply(d, &v); r != wire::DropReason::none) return drop(r);
  // Every outstanding echo is compared (constant time, at most kMaxEchoes): the nonce is what
  // keeps an off-path sender from answering for the node asked.
  EchoOut* match = nullptr;
  for (auto& e : echoes_) {
    const bool same = sodium_memcmp(e.nonce.data(), v.nonce.data(), e.nonce.size()) == 0;
    if (same && !e.rtt && e.to == from) match = &e;
  }
  if (match == nullptr) return drop(wire::DropReason::unexpected_echo_reply);
  match->rtt = now - match->sent;
}

std::uint64_t Node::send_echo(const noise::PublicKey& responder, const Addr& to, Time now) {
  if (echoes_.size() >= kMaxEchoes) echoes_.erase(echoes_.begin());
  EchoOut e;
  e.id = next_echo_id_++;
  randombytes_buf(e.nonce.data(), e.nonce.size());
  e.to = to;
  e.sent = now;
  Bytes msg(wire::kEchoLen);
  const std::size_t n = wire::encode_echo(ConstByteSpan(e.nonce.data(), e.nonce.size()), msg);
  const cookie::MacKey key = cookie::mac1_key(responder);
  const cookie::Mac mac1 = cookie::mac(key, ConstByteSpan(msg.data(), n - wire::kMacLen));
  std::memcpy(msg.data() + n - wire::kMacLen, mac1.data(), mac1.size());
  out_.push_back({to, std::move(msg)});
  echoes_.push_back(e);
  return e.id;
}

std::optional<Duration> Node::echo_rtt(std::uint64_t id) const {
  for (const auto& e : echoes_)
    if (e.id == id) return e.rtt;
  return std::nullopt;
}

void Node::forget_echo(std::uint64_t id) {
  std::erase_if(echoes_, [id](const EchoOut& e) { return e.id == id; });
}

bool Node::send_service_message(PeerId peer, bool request, std::uint32_t id, ConstByteSpan data,
                                Time now) {
  Peer* p = find_peer(peer);
  if (p == nullptr || !p->current || data.size() > kMaxControlPlain - 16) return false;
  Bytes plain(kMaxControlPlain);
  wire::ControlItemWriter w(plain);
  wire::ControlItem item;
  item.type =
      request ? wire::ControlItemType::service_request : wire::ControlItemType::service_response;
  item.spi_or_id = id;
  item.data = data;
  if (!w.add(item)) return false;
  send_control(*p, *p->current, ConstByteSpan(plain.data(), w.size()), now, request);
  return true;
}

void Node::close(PeerId peer, Time now) {
  Peer* p = find_peer(peer);
  if (p == nullptr) return;
  if (p->current) {
    std::uint8_t plain[8];
    wire::ControlItemWriter w(ByteSpan(plain, sizeof plain));
    wire::ControlItem item;
    item.type = wire::ControlItemType::close;
    w.add(item);
    send_control(*p, *p->current, ConstByteSpan(plain, w.size()), now, false);
  }
  p->keep_connected = false;
  peer_dead(*p, now);
}

void Node::note_data_rx(PeerId peer, Time now) {
  if (Peer* p = find_peer(peer)) received(*p, now, true);
}

void Node::note_data_tx(PeerId peer, std::uint64_t n, Time now) {
  if (Peer* p = find_peer(peer)) {
    sent(*p, now, true);
    p->tx_since_session += n;
    // The one deadline traffic makes earlier: a message-count rekey is due now.
    if (p->current && !p->pending && p->tx_since_session >= cfg_.timers.rekey_after_messages)
      schedule_at(*p, now);
  }
}

// Forget the sessions and SAs of a peer (dead or closed); reconnect if we keep it up.
void Node::peer_dead(Peer& p, Time now) {
  if (p.current) index_to_peer_.erase(p.current->local_index);
  if (p.previous) index_to_peer_.erase(p.previous->local_index);
  if (p.next) index_to_peer_.erase(p.next->local_index);
  if (p.pending) index_to_peer_.erase(p.pending->local_index);
  p.current.reset();
  p.previous.reset();
  p.next.reset();
  p.pending.reset();
  p.rx_offered.reset();
  p.rx_active.clear();
  p.rx_retiring.clear();
  p.tx_spi.reset();
  p.owe_since.reset();
  p.awaiting.reset();
  p.probe_id = 0;
  p.peer_probes = false;
  p.want_handshake = p.keep_connected;
  p.retry_interval = cfg_.timers.retry_initial;
  p.next_retry = now;
  schedule(p);
}

// ---- timers ----------------------------------------------------------------------------
//
// Each peer has one entry in a min-heap (sched_) at or before its earliest deadline, so
// on_timer visits only the peers that are due and next_deadline reads the top. Entries are
// invalidated lazily (a generation per peer): re-scheduling a peer earlier pushes a new entry
// and leaves the old one to be skipped; re-scheduling it later keeps the earlier entry, which
// then fires early, finds nothing due and re-queues the peer at its true deadline.

std::optional<Time> Node::peer_deadline(const Peer& p) const {
  // The deadlines peer_timers acts on (the message-count rekey is scheduled by note_data_tx).
  std::optional<Time> best;
  auto consider = [&](Time t) {
    if (!best || t < *best) best = t;
  };
  const Timers& t = cfg_.timers;
  for (const auto& r : p.rx_retiring)
    consider(r.second);
  if (p.previous) consider(p.previous_expires);
  if (p.next) consider(p.next_expires);
  if (p.want_handshake) consider(p.next_retry);
  if (!p.current) return best;
  const Session& s = *p.current;
  if (keeps_alive(p)) {
    consider(p.last_rx + t.dead_after);
    consider(p.last_tx + t.keepalive);
    if (p.awaiting) consider(std::max(*p.awaiting, p.probe_sent) + t.keepalive);
  } else {
    if (p.peer_probes) consider(p.last_rx + t.dead_after);
    if (p.awaiting) consider(*p.awaiting + t.dead_after);
    if (p.owe_since) consider(*p.owe_since + t.keepalive);
  }
  if (!p.pending) consider(s.born + s.rekey_after);
  if (p.rx_offered || (!s.final_msg.empty() && !s.confirmed)) consider(p.next_offer_retx);
  return best;
}

void Node::schedule(Peer& p) {
  if (const auto at = peer_deadline(p)) schedule_at(p, *at);
}

void Node::schedule_at(Peer& p, Time at) {
  if (p.scheduled && p.sched_at <= at) return;  // the entry it has fires first
  p.scheduled = true;
  p.sched_at = at;
  ++p.sched_gen;
  sched_.push_back({at, p.id, p.sched_gen});
  std::push_heap(sched_.begin(), sched_.end(), std::greater<>{});
  // Stale entries leave the heap when their time comes; rebuild it if they pile up (a peer
  // re-scheduled earlier many times before its entries fire).
  if (sched_.size() > 2 * peers_.size() + 1024) {
    std::erase_if(sched_, [this](const SchedEntry& e) {
      const Peer* q = find_peer(e.peer);
      return q == nullptr || !q->scheduled || q->sched_gen != e.gen;
    });
    std::make_heap(sched_.begin(), sched_.end(), std::greater<>{});
  }
}

void Node::on_timer(Time now) {
  if (!rotation_scheduled_) {
    next_rotation_ = now + cfg_.timers.master_rotation;
    rotation_scheduled_ = true;
  } else if (now >= next_rotation_) {
    ring_.rotate();
    next_rotation_ = now + cfg_.timers.master_rotation;
  }
  while (!xx_expiry_.empty() && xx_expiry_.begin()->first <= now) {
    xx_pending_.erase(xx_expiry_.begin()->second);
    xx_expiry_.erase(xx_expiry_.begin());
  }
  // Take every due entry first: a peer re-queued below for a time that has passed (a rekey
  // started, its offer retransmission waits) runs on the next call, as a walk would.
  due_.clear();
  while (!sched_.empty() && sched_.front().at <= now) {
    const SchedEntry e = sched_.front();
    std::pop_heap(sched_.begin(), sched_.end(), std::greater<>{});
    sched_.pop_back();
    Peer* p = find_peer(e.peer);
    if (p == nullptr || !p->scheduled || p->sched_gen != e.gen) continue;  // stale
    p->scheduled = false;
    due_.push_back(e.peer);
  }
  std::sort(due_.begin(), due_.end());
  for (const PeerId id : due_) {
    Peer* p = find_peer(id);
    if (p == nullptr) continue;
    ++timer_visits_;
    // While it runs, the peer counts as scheduled at the earliest time, so the schedule()
    // calls inside (start_handshake, peer_dead) queue nothing; it is queued once, after.
    p->scheduled = true;
    p->sched_at = Time::min();
    peer_timers(*p, now);
    p->scheduled = false;
    schedule(*p);
  }
  // Skip stale entries at the top so next_deadline does not report them.
  while (!sched_.empty()) {
    const SchedEntry& e = sched_.front();
    const Peer* p = find_peer(e.peer);
    if (p != nullptr && p->scheduled && p->sched_gen == e.gen) break;
    std::pop_heap(sched_.begin(), sched_.end(), std::greater<>{});
    sched_.pop_back();
  }
}

void Node::peer_timers(Peer& p, Time now) {
  const Timers& t = cfg_.timers;
  for (auto it = p.rx_retiring.begin(); it != p.rx_retiring.end();) {
    if (now >= it->second) {
      Event e;
      e.type = EventType::rx_sa_retire;
      e.peer = p.id;
      e.spi = it->first;
      emit(std::move(e));
      it = p.rx_retiring.erase(it);
    } else {
      ++it;
    }
  }
  if (p.previous && now >= p.previous_expires) {
    index_to_peer_.erase(p.previous->local_index);
    p.previous.reset();
  }
  if (p.next && now >= p.next_expires) {
    index_to_peer_.erase(p.next->local_index);
    p.next.reset();
  }
  const bool kept_alive = keeps_alive(p);
  const bool silent = now - p.last_rx >= t.dead_after;
  const bool dead =
      kept_alive || p.peer_probes ? silent : p.awaiting && now - *p.awaiting >= t.dead_after;
  if (p.current && dead) {
    Event e;
    e.type = EventType::dead;
    e.peer = p.id;
    emit(std::move(e));
    peer_dead(p, now);
  }
  if (p.want_handshake && now >= p.next_retry) {
    start_handshake(p, now);
    return;
  }
  if (!p.current) return;
  Session& s = *p.current;
  // Rekey: the session's initiator re-handshakes on time (s.rekey_after, jittered) or message
  // count; the responder steps in only if the initiator has not done so well after the
  // deadline (its s.rekey_after is that later time; Timers::rekey_jitter).
  const bool time_due = now - s.born >= s.rekey_after;
  const bool due = time_due || (s.we_initiated && p.tx_since_session >= t.rekey_after_messages);
  if (!p.pending && p.remote_static && due) {
    p.retry_interval = std::min(std::max(t.retry_initial, t.rekey_retry), t.retry_max);
    start_handshake(p, now);
    return;
  }
  if ((p.rx_offered || (!s.final_msg.empty() && !s.confirmed)) && now >= p.next_offer_retx) {
    send_pending_control(p, now);
    p.next_offer_retx = now + t.retry_initial;
  } else if (kept_alive &&
             (now - p.last_tx >= t.keepalive || (p.awaiting && now - *p.awaiting >= t.keepalive &&
                                                 now - p.probe_sent >= t.keepalive))) {
    // Idle, or what we sent went unanswered (one-way traffic): a peer that only answers must
    // answer this.
    send_pending_control(p, now, Probe::keepalive);
  } else if (!kept_alive && p.owe_since && now - *p.owe_since >= t.keepalive) {
    send_pending_control(p, now);  // the passive keepalive
  }
}

std::optional<Time> Node::next_deadline() const {
  std::optional<Time> best;
  auto consider = [&](Time t) {
    if (!best || t < *best) best = t;
  };
  if (rotation_scheduled_) consider(next_rotation_);
  if (!xx_expiry_.empty()) consider(xx_expiry_.begin()->first);
  if (!sched_.empty()) consider(sched_.front().at);
  return best;
}

std::vector<Datagram> Node::take_datagrams() {
  return std::exchange(out_, {});
}
std::vector<Event> Node::take_events() {
  return std::exchange(events_, {});
}

}  // namespace ie::crypto::assoc
