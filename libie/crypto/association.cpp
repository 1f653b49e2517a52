// The association protocol state machine (ie/crypto/association.hpp): peers, handshakes
// (IK, XX, cookies, anti-replay, simultaneous initiation). The control channel, key
// hand-out and timers are in control_channel.cpp; shared state in association_state.hpp.
//
// Message flow (IK; XX adds a third handshake message, type 5):
//   1. initiator -> responder  initiation (Noise msg 1: e, es, s, ss + timestamp)
//   2. responder -> initiator  response   (Noise msg 2: e, ee, se); both sides now have a
//                                           session, the responder's is unconfirmed
//   3. initiator -> responder  control: KEY_OFFER(spi_i)         (confirms the session)
//   4. responder -> initiator  control: KEY_ACK(spi_i), KEY_OFFER(spi_r)
//   5. initiator -> responder  control: KEY_ACK(spi_r)
// A KEY_OFFER comes from the side that will RECEIVE on that SPI: it installed the SPI in
// its datapath before offering. The other side switches its sender to the SPI when the
// offer arrives and acks; the offering side then keeps its previous receive SPI for
// `sa_overlap` and retires it. KEY_OFFERs are retransmitted until acked; handshakes are
// retried with exponential backoff; under load the responder answers with a cookie first.
#include "ie/crypto/association.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "association_state.hpp"
#include "ie/wire/demux.hpp"
#include "ie/wire/handshake_msg.hpp"

namespace ie::crypto::assoc {
namespace {

constexpr char kIkName[] = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
constexpr char kXxName[] = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
constexpr char kPrologue[] = "InterEdge ILP v1";

// An empty payload with a non-null pointer: some code below memmove()s it, and a null
// source is undefined behaviour even for zero bytes.
const std::uint8_t kNoPayloadByte = 0;
const ConstByteSpan kNoPayload(&kNoPayloadByte, 0);

// First contact must not amplify: an XX initiation (unauthenticated, its source may be
// spoofed) is answered with a 140-byte response (12 header + e 32 + enc(s) 48 + tag 16 +
// MACs 32), so the initiator pads Noise message 1's plaintext payload with zeros to make the
// initiation 148 bytes (8 + e 32 + 76 + MACs 32), and a responder drops shorter ones.
constexpr std::size_t kXxResponseLen = 12 + 32 + 48 + 16 + 2 * wire::kMacLen;
constexpr std::size_t kXxPadding = 76;
const std::uint8_t kXxPad[kXxPadding] = {};

// TAI64N: 8 bytes 2^62 + seconds, 4 bytes nanoseconds (big-endian), as WireGuard.
Timestamp make_timestamp(std::uint64_t wall_ns) {
  Timestamp t;
  store_be64(t.data(), (std::uint64_t{1} << 62) + wall_ns / 1'000'000'000u);
  store_be32(t.data() + 8, static_cast<std::uint32_t>(wall_ns % 1'000'000'000u));
  return t;
}

std::uint64_t default_wall_clock_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

noise::HandshakeConfig handshake_config(const Config& cfg, bool initiator, bool xx,
                                        const std::optional<noise::PublicKey>& rs) {
  noise::HandshakeConfig hc;
  hc.protocol_name = xx ? kXxName : kIkName;
  hc.initiator = initiator;
  hc.prologue.assign(kPrologue, kPrologue + sizeof kPrologue - 1);
  hc.s = cfg.static_key.clone();
  if (!xx && initiator) hc.rs = rs;
  return hc;
}

Duration jittered(Duration d) {
  // +-12.5% so that many peers that failed together do not retry together.
  const auto span = d / 4;
  if (span.count() <= 0) return d;
  const auto r = static_cast<Duration::rep>(randombytes_uniform(
      static_cast<std::uint32_t>(std::min<Duration::rep>(span.count(), UINT32_MAX))));
  return d - d / 8 + Duration(r);
}

// When a session is re-keyed (Timers::rekey_jitter): the initiator somewhat before
// rekey_after_time, the responder only if the initiator has not.
Duration rekey_after(const Timers& t, bool we_initiated, bool keep_connected) {
  if (!we_initiated) {
    const Duration grace = 3 * t.retry_max;
    return t.rekey_after_time + (keep_connected ? grace : std::max(grace, t.rekey_after_time));
  }
  const Duration j = std::clamp(t.rekey_jitter.value_or(t.rekey_after_time / 6), Duration::zero(),
                                t.rekey_after_time);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(j).count();
  if (ms <= 0) return t.rekey_after_time;
  const auto r =
      randombytes_uniform(static_cast<std::uint32_t>(std::min<long long>(ms, UINT32_MAX - 1)) + 1);
  return t.rekey_after_time - std::chrono::milliseconds(r);
}

}  // namespace

Addr Addr::from(ConstByteSpan b) {
  Addr a;
  a.len = static_cast<std::uint8_t>(std::min(b.size(), a.bytes.size()));
  std::memcpy(a.bytes.data(), b.data(), a.len);
  return a;
}

Node::Node(Config cfg, psp::RxKeyring& ring)
    : cfg_(std::move(cfg)), ring_(ring), checker_(cfg_.static_key.pub) {
  if (!cfg_.wall_clock_ns) cfg_.wall_clock_ns = default_wall_clock_ns;
}

Node::~Node() = default;

Node::StaticKeyHash::StaticKeyHash() {
  randombytes_buf(key.data(), key.size());
}

std::size_t Node::StaticKeyHash::operator()(const noise::PublicKey& k) const noexcept {
  static_assert(crypto_shorthash_KEYBYTES == 16 && crypto_shorthash_BYTES == 8);
  std::array<unsigned char, crypto_shorthash_BYTES> h;
  crypto_shorthash(h.data(), k.data(), k.size(), key.data());
  std::uint64_t v = 0;
  std::memcpy(&v, h.data(), sizeof v);
  return static_cast<std::size_t>(v);
}

Node::Peer* Node::find_peer(PeerId id) {
  auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : it->second.get();
}
const Node::Peer* Node::find_peer(PeerId id) const {
  auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : it->second.get();
}

std::optional<PeerId> Node::peer_by_static(const noise::PublicKey& pub) const {
  // An index, not a walk: every incoming initiation asks, and an SN holds 100,000 peers.
  const auto it = by_static_.find(pub);
  if (it == by_static_.end()) return std::nullopt;
  return it->second;
}

void Node::set_remote_static(Peer& p, const noise::PublicKey& pub) {
  if (p.remote_static && *p.remote_static != pub) {
    const auto old = by_static_.find(*p.remote_static);
    if (old != by_static_.end() && old->second == p.id) by_static_.erase(old);
  }
  if (p.remote_static != pub) p.static_dh.reset();  // derived from the old key
  p.remote_static = pub;
  by_static_.emplace(pub, p.id);  // the first peer with a key keeps it, as before
  p.maker.reset();                // its MAC keys derive from the peer's static key
}

Node::Peer& Node::new_peer(const Addr& addr) {
  auto p = std::make_unique<Peer>();
  p->id = next_peer_id_++;
  p->addr = addr;
  p->retry_interval = cfg_.timers.retry_initial;
  Peer& ref = *p;
  peers_.emplace(ref.id, std::move(p));
  return ref;
}

Node::Peer* Node::new_learned_peer(const Addr& addr, const noise::PublicKey& remote_static) {
  if (learned_peers_ >= cfg_.max_learned_peers) {
    // Make room by forgetting a learned peer that has no session at all (dead or never
    // confirmed). Its replay timestamp goes with it: a replay of its old initiation could
    // then only create an unconfirmed session, which expires.
    auto idle = std::find_if(peers_.begin(), peers_.end(), [](const auto& kv) {
      const Peer& q = *kv.second;
      return q.learned && !q.current && !q.next && !q.pending && !q.previous;
    });
    if (idle == peers_.end()) return nullptr;
    if (const auto& rs = idle->second->remote_static) {
      const auto k = by_static_.find(*rs);
      if (k != by_static_.end() && k->second == idle->first) by_static_.erase(k);
    }
    peers_.erase(idle);
    --learned_peers_;
  }
  Peer& p = new_peer(addr);
  set_remote_static(p, remote_static);
  p.learned = true;
  ++learned_peers_;
  return &p;
}

std::uint32_t Node::new_index() {
  for (;;) {
    const std::uint32_t i = randombytes_random();
    if (i != 0 && index_to_peer_.count(i) == 0 && xx_pending_.count(i) == 0) return i;
  }
}

PeerId Node::add_peer(const noise::PublicKey& remote_static, const Addr& addr, bool connect,
                      Time now) {
  Peer* p = nullptr;
  if (auto id = peer_by_static(remote_static)) p = find_peer(*id);
  if (p == nullptr) {
    p = &new_peer(addr);
    set_remote_static(*p, remote_static);
  }
  p->addr = addr;
  if (connect && !p->keep_connected) {
    p->keep_connected = true;
    if (!p->current) start_handshake(*p, now);
  }
  return p->id;
}

PeerId Node::add_first_contact(const Addr& addr, Time now) {
  Peer& p = new_peer(addr);
  p.first_contact = true;
  p.keep_connected = true;
  start_handshake(p, now);
  return p.id;
}

bool Node::is_established(PeerId peer) const {
  const Peer* p = find_peer(peer);
  return p != nullptr && p->current != nullptr;
}

bool Node::probe(PeerId peer, Time now) {
  Peer* p = find_peer(peer);
  if (p == nullptr || !p->current) return false;
  send_pending_control(*p, now, Probe::measure);
  schedule(*p);
  return true;
}

std::optional<Duration> Node::rtt(PeerId peer) const {
  const Peer* p = find_peer(peer);
  return p == nullptr ? std::nullopt : p->rtt;
}

std::uint64_t Node::rtt_samples(PeerId peer) const {
  const Peer* p = find_peer(peer);
  return p == nullptr ? 0 : p->rtt_samples;
}

std::optional<Time> Node::last_received(PeerId peer) const {
  const Peer* p = find_peer(peer);
  if (p == nullptr || p->last_rx == Time{}) return std::nullopt;
  return p->last_rx;
}

// ---- handshakes ------------------------------------------------------------------------

void Node::start_handshake(Peer& p, Time now) {
  const bool xx = !p.remote_static.has_value();
  noise::HandshakeConfig hc = handshake_config(cfg_, true, xx, p.remote_static);
  hc.precomputed_ss = [this, &p](const noise::PublicKey& rs) -> const Key32* {
    if (!p.static_dh || p.remote_static != rs) return nullptr;
    ++static_dh_reused_;
    return &*p.static_dh;
  };
  auto hs = noise::HandshakeState::create(std::move(hc));
  if (!hs) return;  // cannot happen with our fixed protocol names and keys
  // IK carries the timestamp in message 1; XX in message 3 (message 1 is not encrypted).
  const Timestamp ts = make_timestamp(cfg_.wall_clock_ns());
  std::uint8_t noise_msg[256];
  auto n = hs->write_message(xx ? ConstByteSpan(kXxPad, kXxPadding) : ConstByteSpan(ts), noise_msg);
  if (!n) return;
  if (const Key32* ss = hs->computed_ss(); ss != nullptr && !p.static_dh) p.static_dh = ss->clone();
  if (p.pending) index_to_peer_.erase(p.pending->local_index);
  const std::uint32_t index = new_index();
  Bytes d(wire::kMaxControlPlaneDatagram);
  const std::size_t len =
      wire::encode_initiation(xx ? wire::HandshakePattern::xx : wire::HandshakePattern::ik, index,
                              ConstByteSpan(noise_msg, *n), d);
  d.resize(len);
  if (!p.maker) p.maker = std::make_unique<cookie::Maker>(p.remote_static);
  p.maker->add_macs(d, now);
  out_.push_back({p.addr, std::move(d)});
  sent(p, now, true);
  p.pending.emplace(Pending{index, std::move(*hs), xx});
  index_to_peer_[index] = p.id;
  p.want_handshake = true;
  p.next_retry = now + jittered(p.retry_interval);
  p.retry_interval = std::min(p.retry_interval * 2, cfg_.timers.retry_max);
  schedule(p);
}

void Node::on_initiation(ConstByteSpan d, const Addr& from, Time now) {
  wire::InitiationView v;
  if (const auto r = wire::parse_initiation(d, &v); r != wire::DropReason::none) return drop(r);
  const bool xx = v.pattern == wire::HandshakePattern::xx;
  if (!checker_.mac1_ok(v.before_mac1, v.mac1, xx)) return drop(wire::DropReason::bad_mac1);
  if (xx && !cfg_.accept_first_contact) return drop(wire::DropReason::peer_not_allowed);
  if (xx && d.size() < kXxResponseLen) return drop(wire::DropReason::truncated);  // no amplifying
  if (under_load_ && !checker_.mac2_ok(v.before_mac2, v.mac2, from.span(), now)) {
    Bytes reply(64);
    const std::size_t n = checker_.make_reply(v.sender, v.mac1, from.span(), xx, now, reply);
    reply.resize(n);
    if (n != 0) out_.push_back({from, std::move(reply)});
    return drop(wire::DropReason::cookie_required);
  }
  if (xx && xx_pending_.size() >= kMaxXxPending) return drop(wire::DropReason::rate_limited);
  if (!handshake_budget(now)) return drop(wire::DropReason::rate_limited);  // before any DH

  ++responder_handshakes_;
  noise::HandshakeConfig hc = handshake_config(cfg_, false, xx, std::nullopt);
  hc.precomputed_ss = [this](const noise::PublicKey& rs) -> const Key32* {
    const auto id = peer_by_static(rs);
    const Peer* known = id ? find_peer(*id) : nullptr;
    if (known == nullptr || !known->static_dh) return nullptr;
    ++static_dh_reused_;
    return &*known->static_dh;
  };
  auto hs = noise::HandshakeState::create(std::move(hc));
  if (!hs) return drop(wire::DropReason::handshake_failed);
  std::uint8_t payload[256];
  auto pn = hs->read_message(v.noise, payload);
  if (!pn) return drop(wire::DropReason::handshake_failed);

  std::uint8_t noise_msg[256];
  if (xx) {
    auto n = hs->write_message(kNoPayload, noise_msg);
    if (!n) return drop(wire::DropReason::handshake_failed);
    const std::uint32_t index = new_index();
    Bytes resp(wire::kMaxControlPlaneDatagram);
    resp.resize(wire::encode_response(index, v.sender, ConstByteSpan(noise_msg, *n), resp));
    const auto m1 = cookie::mac(cookie::mac1_key(noise::PublicKey{}),
                                ConstByteSpan(resp.data(), resp.size() - 2 * wire::kMacLen));
    std::memcpy(resp.data() + resp.size() - 2 * wire::kMacLen, m1.data(), m1.size());
    out_.push_back({from, std::move(resp)});
    const auto expiry = xx_expiry_.emplace(now + kXxPendingLifetime, index);
    xx_pending_.emplace(
        index, std::make_unique<XxPending>(XxPending{std::move(*hs), v.sender, from, expiry}));
    return;
  }

  // IK: the initiator's static key and timestamp are now authenticated.
  const auto rs = hs->remote_static();
  if (!rs || *pn < kTimestampLen) return drop(wire::DropReason::handshake_failed);
  Peer* p = nullptr;
  if (auto id = peer_by_static(*rs)) p = find_peer(*id);
  if (p == nullptr) {
    if (!cfg_.accept_unknown_ik) return drop(wire::DropReason::peer_not_allowed);
    p = new_learned_peer(from, *rs);
    if (p == nullptr) return drop(wire::DropReason::rate_limited);
  }
  // Kept only once the initiator is authenticated (the message decrypted under es and ss).
  if (const Key32* ss = hs->computed_ss(); ss != nullptr && !p->static_dh)
    p->static_dh = ss->clone();
  Timestamp ts;
  std::memcpy(ts.data(), payload, kTimestampLen);
  if (p->have_timestamp && std::memcmp(ts.data(), p->last_timestamp.data(), kTimestampLen) <= 0) {
    return drop(wire::DropReason::stale_handshake);
  }
  // Simultaneous initiation: the side with the lower static key keeps the initiator role.
  if (p->pending && !p->pending->xx &&
      std::memcmp(cfg_.static_key.pub.data(), rs->data(), rs->size()) < 0) {
    ++crossed_initiations_kept_;
    return;  // ours wins; they will answer our initiation
  }
  p->last_timestamp = ts;
  p->have_timestamp = true;
  if (p->pending) {
    index_to_peer_.erase(p->pending->local_index);
    p->pending.reset();
    schedule(*p);  // no handshake in flight: a rekey may be due sooner
  }
  auto n = hs->write_message(kNoPayload, noise_msg);
  if (!n) return drop(wire::DropReason::handshake_failed);
  auto keys = hs->split();
  if (!keys) return drop(wire::DropReason::handshake_failed);
  auto s = std::make_unique<Session>();
  s->local_index = new_index();
  s->remote_index = v.sender;
  s->send = std::move(keys->second);
  s->recv = std::move(keys->first);
  s->born = now;
  s->we_initiated = false;
  Bytes resp(wire::kMaxControlPlaneDatagram);
  resp.resize(wire::encode_response(s->local_index, v.sender, ConstByteSpan(noise_msg, *n), resp));
  const auto m1 = cookie::mac(cookie::mac1_key(*rs),
                              ConstByteSpan(resp.data(), resp.size() - 2 * wire::kMacLen));
  std::memcpy(resp.data() + resp.size() - 2 * wire::kMacLen, m1.data(), m1.size());
  p->addr = from;
  out_.push_back({from, std::move(resp)});
  received(*p, now, false);  // an authenticated initiation: the peer is alive
  sent(*p, now, true);       // its first control message on the new session confirms it
  session_up(*p, std::move(s), now);
}

void Node::on_response(ConstByteSpan d, const Addr& from, Time now) {
  wire::ResponseView v;
  if (const auto r = wire::parse_response(d, &v); r != wire::DropReason::none) return drop(r);
  auto it = index_to_peer_.find(v.receiver);
  Peer* p = it == index_to_peer_.end() ? nullptr : find_peer(it->second);
  if (p == nullptr || !p->pending || p->pending->local_index != v.receiver) {
    return drop(wire::DropReason::unknown_receiver);
  }
  const bool xx = p->pending->xx;
  if (!checker_.mac1_ok(v.before_mac1, v.mac1, xx)) return drop(wire::DropReason::bad_mac1);
  noise::HandshakeState& hs = p->pending->hs;
  std::uint8_t payload[256];
  if (!hs.read_message(v.noise, payload)) {
    // The state is spent; the retry timer starts a fresh handshake.
    index_to_peer_.erase(p->pending->local_index);
    p->pending.reset();
    schedule(*p);
    return drop(wire::DropReason::handshake_failed);
  }
  auto s = std::make_unique<Session>();
  if (xx) {
    const auto rs = hs.remote_static();
    if (!rs) return drop(wire::DropReason::handshake_failed);
    const Timestamp ts = make_timestamp(cfg_.wall_clock_ns());
    std::uint8_t noise_msg[256];
    auto n = hs.write_message(ts, noise_msg);
    if (!n) return drop(wire::DropReason::handshake_failed);
    Bytes fin(wire::kMaxControlPlaneDatagram);
    fin.resize(wire::encode_final(v.sender, ConstByteSpan(noise_msg, *n), fin));
    s->final_msg = std::move(fin);  // sent (and resent) by send_pending_control
    set_remote_static(*p, *rs);
  }
  auto keys = hs.split();
  if (!keys) return drop(wire::DropReason::handshake_failed);
  s->local_index = p->pending->local_index;
  s->remote_index = v.sender;
  s->send = std::move(keys->first);
  s->recv = std::move(keys->second);
  s->born = now;
  s->we_initiated = true;
  p->pending.reset();  // its index now belongs to the session
  p->addr = from;
  session_up(*p, std::move(s), now);
}

void Node::on_cookie_reply(ConstByteSpan d, Time now) {
  wire::CookieReplyView v;
  if (const auto r = wire::parse_cookie_reply(d, &v); r != wire::DropReason::none) return drop(r);
  auto it = index_to_peer_.find(v.receiver);
  Peer* p = it == index_to_peer_.end() ? nullptr : find_peer(it->second);
  if (p == nullptr || !p->pending || p->pending->local_index != v.receiver) {
    return drop(wire::DropReason::unknown_receiver);
  }
  if (!p->maker || !p->maker->consume_reply(v, now)) return drop(wire::DropReason::bad_mac1);
  // Retry at once with the cookie (a new handshake: the old state may not be reused).
  start_handshake(*p, now);
}

void Node::on_final(ConstByteSpan d, const Addr& from, Time now) {
  wire::FinalView v;
  if (const auto r = wire::parse_final(d, &v); r != wire::DropReason::none) return drop(r);
  auto it = xx_pending_.find(v.receiver);
  if (it == xx_pending_.end()) {
    // A retransmitted message 3 of a session we already have is expected; anything else not.
    if (index_to_peer_.count(v.receiver) == 0) drop(wire::DropReason::unknown_receiver);
    return;
  }
  const std::unique_ptr<XxPending> x = std::move(it->second);
  xx_pending_.erase(it);
  xx_expiry_.erase(x->expiry);
  std::uint8_t payload[256];
  auto pn = x->hs.read_message(v.noise, payload);
  if (!pn || *pn < kTimestampLen) return drop(wire::DropReason::handshake_failed);
  const auto rs = x->hs.remote_static();
  if (!rs) return drop(wire::DropReason::handshake_failed);
  Peer* p = nullptr;
  if (auto id = peer_by_static(*rs)) p = find_peer(*id);
  if (p == nullptr) {
    p = new_learned_peer(from, *rs);
    if (p == nullptr) return drop(wire::DropReason::rate_limited);
    p->first_contact = true;  // reported in the established event so the caller can pin it
  }
  Timestamp ts;
  std::memcpy(ts.data(), payload, kTimestampLen);
  if (p->have_timestamp && std::memcmp(ts.data(), p->last_timestamp.data(), kTimestampLen) <= 0) {
    return drop(wire::DropReason::stale_handshake);
  }
  p->last_timestamp = ts;
  p->have_timestamp = true;
  auto keys = x->hs.split();
  if (!keys) return drop(wire::DropReason::handshake_failed);
  auto s = std::make_unique<Session>();
  s->local_index = v.receiver;
  s->remote_index = x->remote_index;
  s->send = std::move(keys->second);
  s->recv = std::move(keys->first);
  s->born = now;
  p->addr = from;
  session_up(*p, std::move(s), now);
}

bool Node::handshake_budget(Time now) {
  const std::uint32_t rate = cfg_.max_handshakes_per_second;
  if (rate == 0) return true;
  const double burst = std::max(1.0, rate / 4.0);
  if (!hs_bucket_started_) {
    hs_bucket_started_ = true;
    hs_tokens_ = burst;
    hs_refilled_ = now;
  } else if (now > hs_refilled_) {
    const double dt = std::chrono::duration<double>(now - hs_refilled_).count();
    hs_tokens_ = std::min(burst, hs_tokens_ + rate * dt);
    hs_refilled_ = now;
  }
  if (hs_tokens_ < 1.0) return false;
  hs_tokens_ -= 1.0;
  return true;
}

void Node::session_up(Peer& p, std::unique_ptr<Session> s, Time now) {
  s->rekey_after = rekey_after(cfg_.timers, s->we_initiated, p.keep_connected);
  index_to_peer_[s->local_index] = p.id;
  if (!s->we_initiated) {
    if (p.next) index_to_peer_.erase(p.next->local_index);
    p.next = std::move(s);
    p.next_expires = now + 3 * cfg_.timers.retry_max + cfg_.timers.sa_overlap;
    schedule(p);
    return;
  }
  promote(p, std::move(s), now);
}

void Node::promote(Peer& p, std::unique_ptr<Session> s, Time now) {
  if (p.previous) index_to_peer_.erase(p.previous->local_index);
  p.previous = std::move(p.current);
  p.previous_expires = now + cfg_.timers.sa_overlap;
  p.current = std::move(s);
  p.want_handshake = false;
  // A new session takes the first KEY_OFFER made on it even if its SPI equals the one we
  // send on: a restarted peer's fresh keyring hands out the same SPI numbers again, with
  // new keys. (Within a session, retransmitted offers of the same SPI are still ignored.)
  p.tx_spi.reset();
  p.retry_interval = cfg_.timers.retry_initial;
  p.tx_since_session = 0;
  p.peer_probes = false;  // learned again from its next PROBE (a restarted peer may not send any)
  received(p, now, false);
  Event e;
  e.type = EventType::established;
  e.peer = p.id;
  e.remote_static = *p.remote_static;
  e.first_contact = p.first_contact;
  p.first_contact = false;
  emit(std::move(e));
  // The initiator offers at once (its first control message confirms the session to the
  // responder); the responder gets here when that confirmation arrived, and offers too.
  offer_rx_sa(p, now);
  schedule(p);
}

}  // namespace ie::crypto::assoc
