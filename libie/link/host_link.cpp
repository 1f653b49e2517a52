// HostLink (host_link.hpp): a host's associations, SAs, registration and out-of-band
// invocations with its SNs.
#include "ie/link/host_link.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "ie/util/secret.hpp"
#include "ie/wire/demux.hpp"

namespace ie::link {

namespace assoc = crypto::assoc;

namespace {

assoc::Addr to_addr(const sockaddr_storage& s, socklen_t len) {
  return assoc::Addr::from(ConstByteSpan(reinterpret_cast<const std::uint8_t*>(&s),
                                         std::min<std::size_t>(len, sizeof(assoc::Addr::bytes))));
}

Bytes service_request(std::uint16_t service, const std::string& body) {
  Bytes b(2 + body.size());
  store_be16(b.data(), service);
  std::memcpy(b.data() + 2, body.data(), body.size());
  return b;
}

// A control-service answer: a JSON object (tolerating a service-id prefix before it).
nlohmann::json parse_answer(const Bytes& data) {
  const std::string body(data.begin(), data.end());
  const auto brace = body.find('{');
  if (brace == std::string::npos) return nlohmann::json();
  return nlohmann::json::parse(body.substr(brace), nullptr, /*allow_exceptions=*/false);
}

constexpr auto kRegisterRetry = std::chrono::seconds(1);

}  // namespace

Result<std::unique_ptr<HostLink>> HostLink::create(LinkOptions options) {
  io::UdpOptions uo;
  uo.recv_buffer = options.socket_buffer;
  uo.send_buffer = options.socket_buffer;
  uo.gro = options.gro;
  auto sock = io::UdpSocket::bind(options.bind, uo);
  if (!sock) return fail(sock.error());
  return std::unique_ptr<HostLink>(new HostLink(std::move(options), std::move(*sock)));
}

HostLink::HostLink(LinkOptions options, io::UdpSocket socket)
    : opts_(std::move(options)),
      socket_(std::make_unique<io::UdpSocket>(std::move(socket))),
      rx_slot_(socket_->gro_enabled() ? std::size_t{65536} : kBufSize),
      rx_bufs_(new std::uint8_t[kBatch * rx_slot_]),
      tx_bufs_(kBatch * kBufSize) {
  assoc::Config cfg;
  cfg.static_key = opts_.key.clone();
  cfg.timers = opts_.timers;
  cfg.accept_unknown_ik = opts_.listen;
  cfg.accept_first_contact = opts_.accept_first_contact;
  node_ = std::make_unique<assoc::Node>(std::move(cfg), ring_);
}

HostLink::~HostLink() {
  if (!opts_.close_on_exit) return;
  const auto now = Clock::now();
  for (auto& [id, p] : peers_)
    if (node_->is_established(id)) node_->close(id, now);
  flush(nullptr, 0);
}

Result<PeerId> HostLink::add_sn(const std::string& endpoint, const crypto::noise::PublicKey& key,
                                std::vector<std::string> addrs) {
  if (tracked(key)) return fail(Errc::exists, "SN " + endpoint + " already added");
  socklen_t len = 0;
  auto sa = io::parse_endpoint(endpoint, &len);
  if (!sa) return fail(sa.error());
  const auto now = Clock::now();
  const PeerId id = node_->add_peer(key, to_addr(*sa, len), /*connect=*/true, now);
  PeerState& p = peers_[id];
  p.addr = *sa;
  p.addr_len = len;
  p.is_sn = true;
  p.addrs = std::move(addrs);
  sns_.push_back(id);
  flush(nullptr, 0);
  return id;
}

Result<PeerId> HostLink::add_sn_for_rtt(const std::string& endpoint,
                                        const crypto::noise::PublicKey& key) {
  auto id = add_sn(endpoint, key, {});
  if (id) peers_[*id].rtt_only = true;
  return id;
}

Result<std::uint64_t> HostLink::echo(const std::string& endpoint,
                                     const crypto::noise::PublicKey& key) {
  socklen_t len = 0;
  auto sa = io::parse_endpoint(endpoint, &len);
  if (!sa) return fail(sa.error());
  const std::uint64_t id = node_->send_echo(key, to_addr(*sa, len), Clock::now());
  flush(nullptr, 0);
  return id;
}

std::optional<double> HostLink::echo_rtt_ms(std::uint64_t id) const {
  const auto rtt = node_->echo_rtt(id);
  if (!rtt) return std::nullopt;
  return std::chrono::duration<double, std::milli>(*rtt).count();
}

void HostLink::forget_echo(std::uint64_t id) {
  node_->forget_echo(id);
}

Result<PeerId> HostLink::add_first_contact(const std::string& endpoint) {
  socklen_t len = 0;
  auto sa = io::parse_endpoint(endpoint, &len);
  if (!sa) return fail(sa.error());
  const PeerId id = node_->add_first_contact(to_addr(*sa, len), Clock::now());
  PeerState& p = peers_[id];
  p.addr = *sa;
  p.addr_len = len;
  p.is_sn = true;
  p.first_contact = true;
  sns_.push_back(id);
  flush(nullptr, 0);
  return id;
}

Result<PeerId> HostLink::add_host(const std::string& endpoint,
                                  const crypto::noise::PublicKey& key) {
  if (tracked(key)) return fail(Errc::exists, "host " + endpoint + " already added");
  socklen_t len = 0;
  auto sa = io::parse_endpoint(endpoint, &len);
  if (!sa) return fail(sa.error());
  const PeerId id = node_->add_peer(key, to_addr(*sa, len), /*connect=*/true, Clock::now());
  PeerState& p = peers_[id];
  p.addr = *sa;
  p.addr_len = len;
  flush(nullptr, 0);
  return id;
}

bool HostLink::tracked(const crypto::noise::PublicKey& key) const {
  // The Node keeps a peer it closed (remove_sn) and reconnects it on add_peer: only a peer
  // this link still tracks is a duplicate.
  const auto id = node_->peer_by_static(key);
  return id && peers_.contains(*id);
}

std::optional<crypto::noise::PublicKey> HostLink::peer_key(PeerId peer) const {
  const auto it = peers_.find(peer);
  if (it == peers_.end()) return std::nullopt;
  return it->second.remote_static;
}

bool HostLink::is_sn(PeerId peer) const {
  const auto it = peers_.find(peer);
  return it != peers_.end() && it->second.is_sn;
}

void HostLink::remove_sn(PeerId sn) {
  const auto it = std::find(sns_.begin(), sns_.end(), sn);
  if (it == sns_.end()) return;
  sns_.erase(it);
  forget(sn);
}

void HostLink::remove_host(PeerId host) {
  const auto it = peers_.find(host);
  if (it == peers_.end() || it->second.is_sn) return;
  forget(host);
}

void HostLink::forget(PeerId peer) {
  node_->close(peer, Clock::now());
  flush(nullptr, 0);
  rx_.retire_owner(peer);
  peers_.erase(peer);
}

bool HostLink::can_send(PeerId peer) const {
  const auto it = peers_.find(peer);
  return it != peers_.end() && it->second.session && it->second.tx && it->second.addr_len != 0;
}

bool HostLink::sn_ready(PeerId sn) const {
  const auto it = peers_.find(sn);
  return it != peers_.end() && it->second.is_sn && can_send(sn) &&
         (it->second.addrs.empty() || it->second.registered);
}

std::optional<HostLink::SnState> HostLink::sn_state(PeerId sn) const {
  const auto it = peers_.find(sn);
  if (it == peers_.end() || !it->second.is_sn) return std::nullopt;
  const PeerState& p = it->second;
  SnState st;
  st.established = p.session;
  st.registered = p.registered;
  if (const auto rtt = node_->rtt(sn))
    st.rtt_ms = std::chrono::duration<double, std::milli>(*rtt).count();
  st.rtt_samples = node_->rtt_samples(sn);
  st.last_rx = node_->last_received(sn);
  st.register_error = p.register_error;
  st.standby = p.standby_registered;
  st.associations = p.associations;
  st.oob_acked = p.oob_acked;
  st.oob_refused = p.oob_refused;
  st.oob_applied = p.oob_applied;
  st.oob_error = p.oob_error;
  st.info = p.info;
  return st;
}

std::string HostLink::last_register_error() const {
  const auto st = sn_peer() ? sn_state(*sn_peer()) : std::nullopt;
  return st ? st->register_error : std::string();
}

void HostLink::flush(const sockaddr_storage* from, socklen_t from_len) {
  for (auto& d : node_->take_datagrams()) {
    io::Datagram g;
    g.buf = ByteSpan(d.bytes.data(), d.bytes.size());
    g.len = d.bytes.size();
    std::memcpy(&g.peer, d.to.bytes.data(), std::min<std::size_t>(d.to.len, sizeof g.peer));
    g.peer_len = d.to.len;
    // Control traffic is small and rare; a full socket buffer loses it like the network
    // would, and the Node retransmits.
    (void)socket_->send_batch(std::span<const io::Datagram>(&g, 1));
  }
  const auto now = Clock::now();
  for (auto& e : node_->take_events()) {
    ++events_;
    PeerState& p = peers_[e.peer];
    switch (e.type) {
      case assoc::EventType::established:
        if (p.session) {
          ++stats_.rekeys;
        } else {
          ++stats_.associations;
          if (p.ever) ++stats_.reassociations;
          p.session = true;
          p.ever = true;
          ++p.associations;
          p.registered = false;  // a new pipe on the SN: register again
          p.register_id = 0;
          // ... and send the invocations again; an old refusal gets another chance.
          p.oob_id = 0;
          p.oob_acked = 0;
          p.oob_refused = 0;
          p.oob_applied.clear();
          p.oob_error.clear();
        }
        p.remote_static = e.remote_static;
        // A peer learned from its handshake: reply where the handshake came from, also when
        // a later one comes from elsewhere (the peer restarted on another port, or moved).
        if ((p.addr_len == 0 || p.learned_addr) && from != nullptr) {
          p.addr = *from;
          p.addr_len = from_len;
          p.learned_addr = true;
        }
        break;
      case assoc::EventType::tx_sa_install: {
        auto t = crypto::TxSa::create(e.spi, *e.key);
        if (t) p.tx.emplace(std::move(*t));
        break;
      }
      case assoc::EventType::rx_sa_install:
        (void)rx_.install(e.spi, *e.key, e.peer);
        break;
      case assoc::EventType::rx_sa_retire:
        rx_.retire(e.spi);
        break;
      case assoc::EventType::service_message:
        on_service_message(e, now);
        break;
      case assoc::EventType::dead:
      case assoc::EventType::closed:
        ++stats_.dead;
        p.session = false;
        p.tx.reset();
        rx_.retire_owner(e.peer);
        p.registered = false;
        p.register_id = 0;
        p.info_id = 0;
        // The SN forgets the pipe's invocations with the pipe (a refusal stays reported).
        p.oob_id = 0;
        p.oob_acked = 0;
        p.oob_applied.clear();
        break;
    }
  }
}

void HostLink::on_service_message(const assoc::Event& e, Clock::time_point now) {
  if (e.request) {
    // Listening role: answer register/unregister/info as a minimal SN would; out-of-band
    // services are an SN's (a host has none to offer).
    std::string answer = R"({"ok":false,"error":"not served by a test host"})";
    if (opts_.listen && e.data.size() >= 2 && load_be16(e.data.data()) == kControlService) {
      const std::string_view body(reinterpret_cast<const char*>(e.data.data()) + 2,
                                  e.data.size() - 2);
      auto j = nlohmann::json::parse(body, nullptr, false);
      const std::string op = j.is_object() && j.contains("op") && j["op"].is_string()
                                 ? j["op"].get<std::string>()
                                 : std::string();
      if (op == "register" || op == "unregister" || op == "info")
        answer = R"({"ok":true,"sn":"testhost"})";
      else if (op.rfind("service.", 0) == 0)
        answer = R"({"ok":false,"error":"out-of-band services are not served by a host"})";
      if (request_handler_)
        if (auto a = request_handler_(e.peer, body)) answer = std::move(*a);
    }
    node_->send_service_message(
        e.peer, /*request=*/false, e.id,
        ConstByteSpan(reinterpret_cast<const std::uint8_t*>(answer.data()), answer.size()), now);
    return;
  }
  const auto it = peers_.find(e.peer);
  if (it == peers_.end() || !it->second.is_sn) return;
  PeerState& p = it->second;
  if (e.id == p.register_id && p.register_id != 0) {
    p.register_id = 0;
    const auto j = parse_answer(e.data);
    if (j.is_object() && j.value("ok", false)) {
      p.registered = true;
      p.standby_registered = p.standby_sent;
      ++stats_.registrations;
      p.register_error.clear();
    } else {
      ++stats_.register_refusals;
      p.register_error = j.is_object() && j.contains("error") && j["error"].is_string()
                             ? j["error"].get<std::string>()
                             : std::string(e.data.begin(), e.data.end());
    }
  } else if (e.id == p.oob_id && p.oob_id != 0) {
    p.oob_id = 0;
    on_oob_answer(p, e.data);
  } else if (e.id == p.info_id && p.info_id != 0) {
    p.info_id = 0;
    if (const auto j = parse_answer(e.data); j.is_object() && j.value("ok", false))
      p.info = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  // Any answer proves the SN alive: the Node noted the message.
}

void HostLink::send_register(PeerId sn, PeerState& p, Clock::time_point now) {
  const nlohmann::json req = {{"op", "register"}, {"addrs", p.addrs}, {"standby", p.standby}};
  const Bytes data = service_request(kControlService, req.dump());
  const std::uint32_t id = next_id_++;
  if (node_->send_service_message(sn, /*request=*/true, id, data, now)) {
    p.register_id = id;
    p.register_sent = now;
    p.standby_sent = p.standby;
  }
}

void HostLink::set_standby(PeerId sn, bool standby) {
  const auto it = peers_.find(sn);
  if (it == peers_.end() || !it->second.is_sn) return;
  PeerState& p = it->second;
  if (p.standby == standby) return;
  p.standby = standby;
  // Registered: tell the SN now (an answer still due is for the other role and is taken as
  // such; the retry below follows). Not yet: the first registration carries the role.
  if (!p.registered || !node_->is_established(sn) || !register_wanted(p)) return;
  send_register(sn, p, Clock::now());
  flush(nullptr, 0);
}

void HostLink::on_oob_answer(PeerState& p, const Bytes& data) {
  const auto j = parse_answer(data);
  if (j.is_object() && j.contains("ok") && j["ok"].is_boolean() && j["ok"].get<bool>()) {
    ++stats_.oob_applied;
    p.oob_acked = p.oob_sent_generation;
    p.oob_error.clear();
    p.oob_applied.clear();
    if (j.contains("invocations") && j["invocations"].is_array())
      for (const auto& v : j["invocations"])
        if (auto inv = Invocation::from_json(v)) p.oob_applied.push_back(std::move(*inv));
    return;
  }
  ++stats_.oob_refusals;
  p.oob_refused = p.oob_sent_generation;
  p.oob_error = j.is_object() && j.contains("error") && j["error"].is_string()
                    ? j["error"].get<std::string>()
                    : std::string(data.begin(), data.end());
  if (p.oob_error.empty()) p.oob_error = "refused without a reason";
}

bool HostLink::oob_wanted(const PeerState& p) const {
  return generation_ != 0 && !p.rtt_only && p.session && (p.addrs.empty() || p.registered) &&
         p.oob_acked != generation_ && p.oob_refused != generation_;
}

bool HostLink::oob_due(const PeerState& p, Clock::time_point now) const {
  return oob_wanted(p) && (p.oob_id == 0 || now - p.oob_sent >= kRegisterRetry);
}

void HostLink::send_invocations(PeerId sn, PeerState& p, Clock::time_point now) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& inv : invocations_)
    list.push_back(inv.to_json());
  const nlohmann::json req = {{"op", "service.set"}, {"invocations", std::move(list)}};
  const Bytes data = service_request(kControlService, req.dump());
  const std::uint32_t id = next_id_++;
  if (node_->send_service_message(sn, /*request=*/true, id, data, now)) {
    p.oob_id = id;
    p.oob_sent = now;
    p.oob_sent_generation = generation_;
    ++stats_.oob_requests;
  }
}

void HostLink::set_invocations(std::vector<Invocation> invocations) {
  invocations_ = std::move(invocations);
  ++generation_;
  const auto now = Clock::now();
  for (const PeerId sn : sns_) {
    PeerState& p = peers_[sn];
    p.oob_id = 0;  // an answer still due is for an older set: ignored when it comes
    if (node_->is_established(sn) && oob_due(p, now)) send_invocations(sn, p, now);
  }
  flush(nullptr, 0);
}

void HostLink::send_info_request(PeerId sn, PeerState& p, Clock::time_point now) {
  const Bytes data = service_request(kControlService, R"({"op":"info"})");
  const std::uint32_t id = next_id_++;
  if (node_->send_service_message(sn, /*request=*/true, id, data, now)) {
    p.info_id = id;
    p.info_sent = now;
  }
}

void HostLink::probe(PeerId peer) {
  if (!peers_.count(peer)) return;
  if (node_->probe(peer, Clock::now())) flush(nullptr, 0);
}

std::uint32_t HostLink::probe_size(PeerId peer, std::size_t datagram_len) {
  if (!peers_.count(peer) || datagram_len > kBufSize) return 0;
  const std::uint32_t id = node_->probe_padded(peer, datagram_len, Clock::now());
  if (id != 0) flush(nullptr, 0);
  return id;
}

bool HostLink::probe_size_answered(PeerId peer, std::uint32_t id) const {
  return peers_.count(peer) != 0 && node_->probe_answered(peer, id);
}

std::optional<double> HostLink::rtt_ms(PeerId peer) const {
  if (!peers_.count(peer)) return std::nullopt;
  const auto rtt = node_->rtt(peer);
  if (!rtt) return std::nullopt;
  return std::chrono::duration<double, std::milli>(*rtt).count();
}

std::uint64_t HostLink::rtt_samples(PeerId peer) const {
  return peers_.count(peer) ? node_->rtt_samples(peer) : 0;
}

void HostLink::service() {
  auto now = Clock::now();
  if (auto dl = node_->next_deadline(); dl && *dl <= now) node_->on_timer(now);
  flush(nullptr, 0);
  now = Clock::now();
  for (const PeerId sn : sns_) {
    if (!node_->is_established(sn)) continue;
    PeerState& p = peers_[sn];
    // Registration: once per association (and again when the role changes), retried every
    // second until answered.
    if (register_wanted(p) && (p.register_id == 0 || now - p.register_sent >= kRegisterRetry))
      send_register(sn, p, now);
    // Out-of-band invocations: after registration, once per association and set change,
    // retried like registration.
    if (oob_due(p, now)) send_invocations(sn, p, now);
    // First contact: info at once (what the caller is waiting for), retried like
    // registration. (Liveness is the Node's: its PROBEs, which an SN answers at once.)
    if (p.first_contact && p.info.empty() &&
        (p.info_id == 0 || now - p.info_sent >= kRegisterRetry))
      send_info_request(sn, p, now);
  }
  flush(nullptr, 0);
}

Clock::time_point HostLink::next_deadline() const {
  const auto now = Clock::now();
  Clock::time_point t = now + opts_.timers.keepalive;
  if (auto dl = node_->next_deadline()) t = std::min(t, *dl);
  for (const PeerId sn : sns_) {
    const auto it = peers_.find(sn);
    if (it == peers_.end() || !it->second.session) continue;
    const PeerState& p = it->second;
    if (register_wanted(p))
      t = std::min(t, p.register_id == 0 ? now : p.register_sent + kRegisterRetry);
    if (oob_wanted(p)) t = std::min(t, p.oob_id == 0 ? now : p.oob_sent + kRegisterRetry);
    if (p.first_contact && p.info.empty())
      t = std::min(t, p.info_id == 0 ? now : p.info_sent + kRegisterRetry);
  }
  return t;
}

void HostLink::poll_once(std::chrono::milliseconds timeout, const DataHandler& on_data) {
  pollfd pfd{socket_->fd(), POLLIN, 0};
  ::poll(&pfd, 1, static_cast<int>(std::max<std::int64_t>(0, timeout.count())));
  receive(on_data);
  service();
}

std::size_t HostLink::receive(const DataHandler& on_data) {
  io::Datagram dg[kBatch];
  for (std::size_t i = 0; i < kBatch; ++i) {
    dg[i].buf = ByteSpan(rx_bufs_.get() + i * rx_slot_, rx_slot_);
    dg[i].len = 0;
    dg[i].segment_size = 0;
  }
  auto n = socket_->recv_batch(std::span<io::Datagram>(dg, kBatch));
  const std::size_t got = n ? *n : 0;
  const auto now = Clock::now();
  for (std::size_t i = 0; i < got; ++i) {
    const ByteSpan d(dg[i].buf.data(), dg[i].len);
    const std::size_t seg = dg[i].segment_size;
    if (seg == 0 || d.size() <= seg) {
      receive_one(d, dg[i].peer, dg[i].peer_len, now, on_data);
      continue;
    }
    for (std::size_t off = 0; off < d.size(); off += seg, ++stats_.gro_packets)  // GRO: split
      receive_one(d.subspan(off, std::min(seg, d.size() - off)), dg[i].peer, dg[i].peer_len, now,
                  on_data);
  }
  return got;
}

void HostLink::receive_one(ByteSpan d, const sockaddr_storage& from, socklen_t from_len,
                           Clock::time_point now, const DataHandler& on_data) {
  if (wire::classify(d) != wire::DatagramKind::psp) {
    node_->on_datagram(d, to_addr(from, from_len), now);
    flush(&from, from_len);
    return;
  }
  crypto::OpenedIlp o;
  if (rx_.open_ilp(d, &o) != wire::DropReason::none) return;  // counted by rx_
  const auto peer = static_cast<PeerId>(o.owner);
  node_->note_data_rx(peer, now);
  InPacket in;
  in.peer = peer;
  in.header = o.ilp.header;
  in.tlvs = o.ilp.tlvs;
  // The inner packet lies in our own receive buffer: hand it out writable.
  const auto off = static_cast<std::size_t>(o.ilp.inner.data() - d.data());
  in.inner = d.subspan(off, o.ilp.inner.size());
  on_data(in);
}

std::size_t HostLink::send(PeerId peer, std::span<const OutPacket> packets) {
  auto it = peers_.find(peer);
  if (it == peers_.end() || !it->second.tx || it->second.addr_len == 0) return 0;
  PeerState& p = it->second;
  // Sealed packets lie back to back in tx_bufs_. Where the socket can segment (UDP GSO),
  // consecutive packets of one length (a run may end with one shorter packet) go out as one
  // GSO datagram: one trip through the kernel's UDP/IP output and the route for the run (a
  // TCP super packet's segments, a burst of equal-sized datagrams) instead of one per packet.
  const bool gso = socket_->gso_supported();
  io::Datagram dg[kBatch];
  std::size_t count[kBatch];  // packets per Datagram
  bool closed[kBatch];        // takes no more: it ended with a shorter packet, or is a probe
  const std::size_t n = std::min(packets.size(), kBatch);
  std::size_t ndg = 0, sealed = 0, off = 0;
  bool probed = false;  // a packet above kPmtuProbeAbove went alone
  for (std::size_t i = 0; i < n; ++i) {
    const OutPacket& op = packets[i];
    const ByteSpan out(tx_bufs_.data() + off, std::min(kBufSize, tx_bufs_.size() - off));
    const std::size_t len = p.tx->seal_ilp(op.header, op.tlvs, op.inner, out);
    if (len == 0) {  // cannot be encoded: a caller bug, count it as refused
      ++stats_.send_failures;
      continue;
    }
    ++sealed;
    off += len;
    // The call's first packet that could exceed a path's MTU goes alone: the kernel sets DF
    // on a datagram (IP_PMTUDISC_WANT) only if the whole of it fits the known path MTU, so a
    // GSO run never has DF and a smaller router on the way would fragment it in silence; the
    // lone packet has DF and draws the ICMP that teaches the kernel (and so ied, docs/ied.md
    // "Path MTU") the path MTU. Afterwards the kernel refuses runs whose segments exceed it
    // (EINVAL) and send_batch sends those packet by packet. Smaller packets never need it,
    // and no run before the probe can take it (their segments are smaller still).
    const bool probe = !probed && len > kPmtuProbeAbove;
    probed = probed || probe;
    // Packets lie back to back in tx_bufs_, so a run grows by extending its span.
    if (gso && ndg > 0 && !probe) {
      io::Datagram& run = dg[ndg - 1];
      const std::size_t seg = count[ndg - 1] == 1 ? run.len : run.segment_size;
      if (!closed[ndg - 1] && len <= seg && count[ndg - 1] < io::UdpSocket::kMaxSegments &&
          run.len + len <= kMaxGsoBytes) {
        run.segment_size = static_cast<std::uint16_t>(seg);
        run.len += len;
        run.buf = ByteSpan(run.buf.data(), run.len);
        ++count[ndg - 1];
        closed[ndg - 1] = len < seg;
        continue;
      }
    }
    io::Datagram& d = dg[ndg];
    d.buf = ByteSpan(out.data(), len);
    d.len = len;
    d.segment_size = 0;
    d.peer = p.addr;
    d.peer_len = p.addr_len;
    count[ndg] = 1;
    closed[ndg] = probe;
    ++ndg;
  }
  auto r = socket_->send_batch(std::span<const io::Datagram>(dg, ndg));
  const std::size_t taken = r ? *r : 0;
  std::size_t sent = 0;
  for (std::size_t k = 0; k < taken; ++k) {
    sent += count[k];
    if (count[k] > 1) stats_.gso_packets += count[k];
  }
  if (sent > 0) node_->note_data_tx(peer, sent, Clock::now());
  // Packets that could not be sealed count as consumed so the caller moves on.
  return sent + (n - sealed);
}

}  // namespace ie::link
