// The association protocol state machine (ie/crypto/association.hpp).
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

#include "ie/crypto/replay_window.hpp"
#include "ie/wire/demux.hpp"
#include "ie/wire/handshake_msg.hpp"

namespace ie::crypto::assoc {
namespace {

constexpr char kIkName[] = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
constexpr char kXxName[] = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
constexpr char kPrologue[] = "InterEdge ILP v1";
constexpr std::size_t kTimestampLen = 12;
constexpr std::size_t kMaxXxPending = 1024;
constexpr auto kXxPendingLifetime = std::chrono::seconds(10);
constexpr std::size_t kMaxControlPlain = 1200;

using Timestamp = std::array<std::uint8_t, kTimestampLen>;

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

}  // namespace

Addr Addr::from(ConstByteSpan b) {
  Addr a;
  a.len = static_cast<std::uint8_t>(std::min(b.size(), a.bytes.size()));
  std::memcpy(a.bytes.data(), b.data(), a.len);
  return a;
}

struct Node::Session {
  std::uint32_t local_index = 0;
  std::uint32_t remote_index = 0;
  noise::CipherState send, recv;
  std::uint64_t send_counter = 0;
  ReplayWindow window;
  Time born{};
  bool we_initiated = false;
  bool confirmed = false;  // an authentic control message arrived on it
  std::uint64_t last_offer_counter = 0;
  bool have_offer = false;
  Bytes final_msg;  // XX initiator: message 3, resent until confirmed
};

struct Node::Pending {
  std::uint32_t local_index = 0;
  noise::HandshakeState hs;
  bool xx = false;
};

// A responder's XX handshake waiting for message 3 (the peer is not known yet).
struct Node::XxPending {
  noise::HandshakeState hs;
  std::uint32_t remote_index;
  Addr from;
  Time started;
};

struct Node::Peer {
  PeerId id = 0;
  Addr addr;
  std::optional<noise::PublicKey> remote_static;
  bool keep_connected = false;
  bool first_contact = false;  // we initiated with XX and have not learned the key yet
  cookie::Maker maker{std::nullopt};

  std::optional<Pending> pending;
  bool want_handshake = false;  // a (re)connect is due at next_retry
  Time next_retry{};
  Duration retry_interval{};

  std::unique_ptr<Session> current, previous;
  Time previous_expires{};
  // A responder's new session waits here until the initiator confirms it (its first control
  // message arrives on it); until then the current session keeps carrying the control channel,
  // so a stale or abandoned initiation can never replace a working session.
  std::unique_ptr<Session> next;
  Time next_expires{};

  Timestamp last_timestamp{};
  bool have_timestamp = false;

  std::optional<std::uint32_t> rx_offered;  // the newest offer, not acked yet
  std::vector<std::uint32_t> rx_active;     // installed, not retiring (incl. rx_offered)
  std::vector<std::pair<std::uint32_t, Time>> rx_retiring;
  Time next_offer_retx{};
  std::optional<std::uint32_t> tx_spi;
  std::uint64_t tx_since_session = 0;

  Time last_rx{}, last_tx{};
};

Node::Node(Config cfg, psp::RxKeyring& ring)
    : cfg_(std::move(cfg)), ring_(ring), checker_(cfg_.static_key.pub) {
  if (!cfg_.wall_clock_ns) cfg_.wall_clock_ns = default_wall_clock_ns;
}

Node::~Node() = default;

Node::Peer* Node::find_peer(PeerId id) {
  auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : it->second.get();
}
const Node::Peer* Node::find_peer(PeerId id) const {
  auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : it->second.get();
}

std::optional<PeerId> Node::peer_by_static(const noise::PublicKey& pub) const {
  for (const auto& [id, p] : peers_) {
    if (p->remote_static && *p->remote_static == pub) return id;
  }
  return std::nullopt;
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
    p->remote_static = remote_static;
    p->maker = cookie::Maker(remote_static);
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

// ---- handshakes ------------------------------------------------------------------------

void Node::start_handshake(Peer& p, Time now) {
  const bool xx = !p.remote_static.has_value();
  auto hs = noise::HandshakeState::create(handshake_config(cfg_, true, xx, p.remote_static));
  if (!hs) return;  // cannot happen with our fixed protocol names and keys
  Bytes payload;
  if (!xx) {
    const Timestamp ts = make_timestamp(cfg_.wall_clock_ns());
    payload.assign(ts.begin(), ts.end());
  }
  std::uint8_t noise_msg[256];
  auto n = hs->write_message(payload, noise_msg);
  if (!n) return;
  if (p.pending) index_to_peer_.erase(p.pending->local_index);
  const std::uint32_t index = new_index();
  Bytes d(wire::kMaxControlPlaneDatagram);
  const std::size_t len =
      wire::encode_initiation(xx ? wire::HandshakePattern::xx : wire::HandshakePattern::ik, index,
                              ConstByteSpan(noise_msg, *n), d);
  d.resize(len);
  p.maker.add_macs(d, now);
  out_.push_back({p.addr, std::move(d)});
  p.last_tx = now;
  p.pending.emplace(Pending{index, std::move(*hs), xx});
  index_to_peer_[index] = p.id;
  p.want_handshake = true;
  p.next_retry = now + jittered(p.retry_interval);
  p.retry_interval = std::min(p.retry_interval * 2, cfg_.timers.retry_max);
}

void Node::on_initiation(ConstByteSpan d, const Addr& from, Time now) {
  wire::InitiationView v;
  if (const auto r = wire::parse_initiation(d, &v); r != wire::DropReason::none) return drop(r);
  const bool xx = v.pattern == wire::HandshakePattern::xx;
  if (!checker_.mac1_ok(v.before_mac1, v.mac1, xx)) return drop(wire::DropReason::bad_mac1);
  if (xx && !cfg_.accept_first_contact) return drop(wire::DropReason::peer_not_allowed);
  if (under_load_ && !checker_.mac2_ok(v.before_mac2, v.mac2, from.span(), now)) {
    Bytes reply(64);
    const std::size_t n = checker_.make_reply(v.sender, v.mac1, from.span(), xx, now, reply);
    reply.resize(n);
    if (n != 0) out_.push_back({from, std::move(reply)});
    return drop(wire::DropReason::cookie_required);
  }
  if (xx && xx_pending_.size() >= kMaxXxPending) return drop(wire::DropReason::rate_limited);

  ++responder_handshakes_;
  auto hs = noise::HandshakeState::create(handshake_config(cfg_, false, xx, std::nullopt));
  if (!hs) return drop(wire::DropReason::handshake_failed);
  std::uint8_t payload[256];
  auto pn = hs->read_message(v.noise, payload);
  if (!pn) return drop(wire::DropReason::handshake_failed);

  std::uint8_t noise_msg[256];
  if (xx) {
    auto n = hs->write_message({}, noise_msg);
    if (!n) return drop(wire::DropReason::handshake_failed);
    const std::uint32_t index = new_index();
    Bytes resp(wire::kMaxControlPlaneDatagram);
    resp.resize(wire::encode_response(index, v.sender, ConstByteSpan(noise_msg, *n), resp));
    const auto m1 = cookie::mac(cookie::mac1_key(noise::PublicKey{}),
                                ConstByteSpan(resp.data(), resp.size() - 2 * wire::kMacLen));
    std::memcpy(resp.data() + resp.size() - 2 * wire::kMacLen, m1.data(), m1.size());
    out_.push_back({from, std::move(resp)});
    xx_pending_.emplace(
        index, std::make_unique<XxPending>(XxPending{std::move(*hs), v.sender, from, now}));
    return;
  }

  // IK: the initiator's static key and timestamp are now authenticated.
  const auto rs = hs->remote_static();
  if (!rs || *pn < kTimestampLen) return drop(wire::DropReason::handshake_failed);
  Peer* p = nullptr;
  if (auto id = peer_by_static(*rs)) p = find_peer(*id);
  if (p == nullptr) {
    if (!cfg_.accept_unknown_ik) return drop(wire::DropReason::peer_not_allowed);
    p = &new_peer(from);
    p->remote_static = *rs;
    p->maker = cookie::Maker(*rs);
  }
  Timestamp ts;
  std::memcpy(ts.data(), payload, kTimestampLen);
  if (p->have_timestamp && std::memcmp(ts.data(), p->last_timestamp.data(), kTimestampLen) <= 0) {
    return drop(wire::DropReason::stale_handshake);
  }
  // Simultaneous initiation: the side with the lower static key keeps the initiator role.
  if (p->pending && !p->pending->xx &&
      std::memcmp(cfg_.static_key.pub.data(), rs->data(), rs->size()) < 0) {
    return;  // ours wins; they will answer our initiation
  }
  p->last_timestamp = ts;
  p->have_timestamp = true;
  if (p->pending) {
    index_to_peer_.erase(p->pending->local_index);
    p->pending.reset();
  }
  auto n = hs->write_message({}, noise_msg);
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
  p->last_tx = now;
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
    p->remote_static = *rs;
    p->maker = cookie::Maker(*rs);
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
  if (!p->maker.consume_reply(v, now)) return drop(wire::DropReason::bad_mac1);
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
  std::uint8_t payload[256];
  auto pn = x->hs.read_message(v.noise, payload);
  if (!pn || *pn < kTimestampLen) return drop(wire::DropReason::handshake_failed);
  const auto rs = x->hs.remote_static();
  if (!rs) return drop(wire::DropReason::handshake_failed);
  Peer* p = nullptr;
  if (auto id = peer_by_static(*rs)) p = find_peer(*id);
  if (p == nullptr) {
    p = &new_peer(from);
    p->remote_static = *rs;
    p->maker = cookie::Maker(*rs);
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

void Node::session_up(Peer& p, std::unique_ptr<Session> s, Time now) {
  index_to_peer_[s->local_index] = p.id;
  if (!s->we_initiated) {
    if (p.next) index_to_peer_.erase(p.next->local_index);
    p.next = std::move(s);
    p.next_expires = now + 3 * cfg_.timers.retry_max + cfg_.timers.sa_overlap;
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
  p.retry_interval = cfg_.timers.retry_initial;
  p.tx_since_session = 0;
  p.last_rx = now;
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
}

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

void Node::send_control(Peer& p, Session& s, ConstByteSpan items, Time now) {
  Bytes d(wire::kControlHeaderLen + items.size() + noise::kTagLen);
  const std::uint64_t counter = s.send_counter++;
  wire::encode_control_header(s.remote_index, counter, d.data());
  auto n = s.send.encrypt_with_nonce(
      counter, ConstByteSpan(d.data(), wire::kControlHeaderLen), items,
      ByteSpan(d.data() + wire::kControlHeaderLen, d.size() - wire::kControlHeaderLen));
  if (!n) return;
  out_.push_back({p.addr, std::move(d)});
  p.last_tx = now;
}

// Sends what the control channel owes the peer: the unacked KEY_OFFER (with a keepalive
// otherwise, so the call always produces a message), and for XX the message 3 until the
// session is confirmed.
void Node::send_pending_control(Peer& p, Time now) {
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
  } else {
    wire::ControlItem keepalive;
    keepalive.type = wire::ControlItemType::keepalive;
    w.add(keepalive);
  }
  send_control(p, s, ConstByteSpan(plain, w.size()), now);
  sodium_memzero(plain, sizeof plain);
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
  p->last_rx = now;
  p->addr = from;  // authenticated: follow the peer if its address changed
  if (s == p->next.get()) promote(*p, std::move(p->next), now);  // confirmed
  const bool is_current = s == p->current.get();
  if (is_current) s->confirmed = true;

  std::uint8_t reply[kMaxControlPlain];
  wire::ControlItemWriter w(ByteSpan(reply, sizeof reply));
  bool closed = false;
  wire::ControlItemIterator iter(items);
  wire::ControlItem item;
  while (iter.next(&item)) {
    switch (item.type) {
      case wire::ControlItemType::key_offer: {
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
      case wire::ControlItemType::close:
        closed = true;
        break;
      case wire::ControlItemType::service_request:
      case wire::ControlItemType::service_response: {
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
  if (w.size() > 0 && p->current)
    send_control(*p, *p->current, ConstByteSpan(reply, w.size()), now);
  sodium_memzero(reply, sizeof reply);
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
    case wire::DatagramKind::psp:
      return drop(wire::DropReason::unknown_message_type);  // datapath's
    case wire::DatagramKind::invalid:
      return drop(wire::DropReason::unknown_message_type);
  }
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
  send_control(*p, *p->current, ConstByteSpan(plain.data(), w.size()), now);
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
    send_control(*p, *p->current, ConstByteSpan(plain, w.size()), now);
  }
  p->keep_connected = false;
  peer_dead(*p, now);
}

void Node::note_data_rx(PeerId peer, Time now) {
  if (Peer* p = find_peer(peer)) p->last_rx = now;
}

void Node::note_data_tx(PeerId peer, std::uint64_t n, Time now) {
  if (Peer* p = find_peer(peer)) {
    p->last_tx = now;
    p->tx_since_session += n;
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
  p.want_handshake = p.keep_connected;
  p.retry_interval = cfg_.timers.retry_initial;
  p.next_retry = now;
}

// ---- timers ----------------------------------------------------------------------------

void Node::on_timer(Time now) {
  if (!rotation_scheduled_) {
    next_rotation_ = now + cfg_.timers.master_rotation;
    rotation_scheduled_ = true;
  } else if (now >= next_rotation_) {
    ring_.rotate();
    next_rotation_ = now + cfg_.timers.master_rotation;
  }
  for (auto it = xx_pending_.begin(); it != xx_pending_.end();) {
    it = now - it->second->started >= kXxPendingLifetime ? xx_pending_.erase(it) : std::next(it);
  }
  const Timers& t = cfg_.timers;
  for (auto& [id, pp] : peers_) {
    Peer& p = *pp;
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
    if (p.current && now - p.last_rx >= t.dead_after) {
      Event e;
      e.type = EventType::dead;
      e.peer = p.id;
      emit(std::move(e));
      peer_dead(p, now);
    }
    if (p.want_handshake && now >= p.next_retry) {
      start_handshake(p, now);
      continue;
    }
    if (!p.current) continue;
    Session& s = *p.current;
    // Rekey: the session's initiator re-handshakes on time or message count; the responder
    // steps in if the initiator has not done so well after the deadline.
    const Duration age = now - s.born;
    const bool due = age >= t.rekey_after_time || p.tx_since_session >= t.rekey_after_messages;
    if (!p.pending && p.remote_static && due &&
        (s.we_initiated || age >= t.rekey_after_time + 3 * t.retry_max)) {
      p.retry_interval = t.retry_initial;
      start_handshake(p, now);
      continue;
    }
    if ((p.rx_offered || (!s.final_msg.empty() && !s.confirmed)) && now >= p.next_offer_retx) {
      send_pending_control(p, now);
      p.next_offer_retx = now + t.retry_initial;
    } else if (now - p.last_tx >= t.keepalive) {
      send_pending_control(p, now);
    }
  }
}

std::optional<Time> Node::next_deadline() const {
  std::optional<Time> best;
  auto consider = [&](Time t) {
    if (!best || t < *best) best = t;
  };
  if (rotation_scheduled_) consider(next_rotation_);
  for (const auto& [id, x] : xx_pending_)
    consider(x->started + kXxPendingLifetime);
  const Timers& t = cfg_.timers;
  for (const auto& [id, pp] : peers_) {
    const Peer& p = *pp;
    for (const auto& r : p.rx_retiring)
      consider(r.second);
    if (p.previous) consider(p.previous_expires);
    if (p.next) consider(p.next_expires);
    if (p.want_handshake) consider(p.next_retry);
    if (!p.current) continue;
    const Session& s = *p.current;
    consider(p.last_rx + t.dead_after);
    consider(p.last_tx + t.keepalive);
    if (!p.pending) {
      consider(s.born +
               (s.we_initiated ? t.rekey_after_time : t.rekey_after_time + 3 * t.retry_max));
    }
    if (p.rx_offered || (!s.final_msg.empty() && !s.confirmed)) consider(p.next_offer_retx);
  }
  return best;
}

std::vector<Datagram> Node::take_datagrams() {
  return std::exchange(out_, {});
}
std::vector<Event> Node::take_events() {
  return std::exchange(events_, {});
}

}  // namespace ie::crypto::assoc
