// HostLink (testhost_link.hpp): a test host's associations, SAs and registration.
#include "testhost_link.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ie/util/secret.hpp"
#include "ie/wire/demux.hpp"

namespace ie::tools {

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
  auto sock = io::UdpSocket::bind(options.bind);
  if (!sock) return fail(sock.error());
  return std::unique_ptr<HostLink>(new HostLink(std::move(options), std::move(*sock)));
}

HostLink::HostLink(LinkOptions options, io::UdpSocket socket)
    : opts_(std::move(options)),
      socket_(std::make_unique<io::UdpSocket>(std::move(socket))),
      rx_bufs_(kBatch * kBufSize),
      tx_bufs_(kBatch * kBufSize) {
  assoc::Config cfg;
  cfg.static_key = opts_.key.clone();
  cfg.timers = opts_.timers;
  cfg.accept_unknown_ik = opts_.listen;
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
  if (sn_peer_) return fail(Errc::exists, "one SN per test host");
  socklen_t len = 0;
  auto sa = io::parse_endpoint(endpoint, &len);
  if (!sa) return fail(sa.error());
  const auto now = Clock::now();
  const PeerId id = node_->add_peer(key, to_addr(*sa, len), /*connect=*/true, now);
  PeerState& p = peers_[id];
  p.addr = *sa;
  p.addr_len = len;
  sn_peer_ = id;
  addrs_ = std::move(addrs);
  flush(nullptr, 0);
  return id;
}

bool HostLink::can_send(PeerId peer) const {
  const auto it = peers_.find(peer);
  return it != peers_.end() && it->second.session && it->second.tx && it->second.addr_len != 0;
}

bool HostLink::sn_ready() const {
  return sn_peer_ && can_send(*sn_peer_) && (addrs_.empty() || registered_);
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
          if (e.peer == sn_peer_) registered_ = false;  // a new pipe on the SN
        }
        p.last_rx = now;
        // A peer learned from its handshake: reply where the handshake came from.
        if (p.addr_len == 0 && from != nullptr) {
          p.addr = *from;
          p.addr_len = from_len;
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
        if (e.peer == sn_peer_) {
          registered_ = false;
          register_id_ = 0;
        }
        break;
    }
  }
}

void HostLink::on_service_message(const assoc::Event& e, Clock::time_point now) {
  if (e.request) {
    // Listening role: answer register/unregister/info as a minimal SN would.
    std::string answer = R"({"ok":false,"error":"not served by a test host"})";
    if (opts_.listen && e.data.size() >= 2 && load_be16(e.data.data()) == kControlService) {
      auto j = nlohmann::json::parse(e.data.begin() + 2, e.data.end(), nullptr, false);
      const std::string op = j.is_object() ? j.value("op", "") : "";
      if (op == "register" || op == "unregister" || op == "info")
        answer = R"({"ok":true,"sn":"testhost"})";
    }
    node_->send_service_message(
        e.peer, /*request=*/false, e.id,
        ConstByteSpan(reinterpret_cast<const std::uint8_t*>(answer.data()), answer.size()), now);
    return;
  }
  if (e.peer != sn_peer_) return;
  peers_[e.peer].last_rx = now;
  if (e.id == register_id_ && register_id_ != 0) {
    register_id_ = 0;
    const auto j = parse_answer(e.data);
    if (j.is_object() && j.value("ok", false)) {
      registered_ = true;
      ++stats_.registrations;
      register_error_.clear();
    } else {
      ++stats_.register_refusals;
      register_error_ = j.is_object() && j.contains("error") && j["error"].is_string()
                            ? j["error"].get<std::string>()
                            : std::string(e.data.begin(), e.data.end());
    }
  }
  // Any other answer (a probe's) only proves the SN alive: the Node noted the message.
}

void HostLink::send_register(Clock::time_point now) {
  const nlohmann::json req = {{"op", "register"}, {"addrs", addrs_}};
  const Bytes data = service_request(kControlService, req.dump());
  const std::uint32_t id = next_id_++;
  if (node_->send_service_message(*sn_peer_, /*request=*/true, id, data, now)) {
    register_id_ = id;
    register_sent_ = now;
  }
}

void HostLink::send_probe(Clock::time_point now) {
  const Bytes data = service_request(kControlService, R"({"op":"info"})");
  const std::uint32_t id = next_id_++;
  if (node_->send_service_message(*sn_peer_, /*request=*/true, id, data, now)) {
    probe_id_ = id;
    probe_sent_ = now;
    ++stats_.probes;
  }
}

void HostLink::service() {
  auto now = Clock::now();
  if (auto dl = node_->next_deadline(); dl && *dl <= now) node_->on_timer(now);
  flush(nullptr, 0);
  if (sn_peer_ && node_->is_established(*sn_peer_)) {
    PeerState& p = peers_[*sn_peer_];
    now = Clock::now();
    // Registration: once per association, retried every second until answered.
    if (!addrs_.empty() && !registered_ &&
        (register_id_ == 0 || now - register_sent_ >= kRegisterRetry))
      send_register(now);
    // Liveness: the SN's keepalives may be far apart; an answered info request every
    // keepalive period keeps the Node's dead-peer timer honest.
    const auto period = opts_.timers.keepalive;
    if (now - p.last_rx >= period && now - probe_sent_ >= period) send_probe(now);
    flush(nullptr, 0);
  }
}

void HostLink::poll_once(std::chrono::milliseconds timeout, const DataHandler& on_data) {
  pollfd pfd{socket_->fd(), POLLIN, 0};
  ::poll(&pfd, 1, static_cast<int>(std::max<std::int64_t>(0, timeout.count())));
  io::Datagram dg[kBatch];
  for (std::size_t i = 0; i < kBatch; ++i) {
    dg[i].buf = ByteSpan(rx_bufs_.data() + i * kBufSize, kBufSize);
    dg[i].len = 0;
  }
  auto n = socket_->recv_batch(std::span<io::Datagram>(dg, kBatch));
  const std::size_t got = n ? *n : 0;
  const auto now = Clock::now();
  for (std::size_t i = 0; i < got; ++i) {
    const ByteSpan d(dg[i].buf.data(), dg[i].len);
    if (wire::classify(d) != wire::DatagramKind::psp) {
      node_->on_datagram(d, to_addr(dg[i].peer, dg[i].peer_len), now);
      flush(&dg[i].peer, dg[i].peer_len);
      continue;
    }
    crypto::OpenedIlp o;
    if (rx_.open_ilp(d, &o) != wire::DropReason::none) continue;  // counted by rx_
    const auto peer = static_cast<PeerId>(o.owner);
    node_->note_data_rx(peer, now);
    PeerState& p = peers_[peer];
    p.last_rx = now;
    InPacket in;
    in.peer = peer;
    in.header = o.ilp.header;
    in.tlvs = o.ilp.tlvs;
    // The inner packet lies in our own receive buffer: hand it out writable.
    const auto off = static_cast<std::size_t>(o.ilp.inner.data() - d.data());
    in.inner = d.subspan(off, o.ilp.inner.size());
    on_data(in);
  }
  service();
}

std::size_t HostLink::send(PeerId peer, std::span<const OutPacket> packets) {
  auto it = peers_.find(peer);
  if (it == peers_.end() || !it->second.tx || it->second.addr_len == 0) return 0;
  PeerState& p = it->second;
  io::Datagram dg[kBatch];
  const std::size_t n = std::min(packets.size(), kBatch);
  std::size_t sealed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const OutPacket& op = packets[i];
    const ByteSpan out(tx_bufs_.data() + sealed * kBufSize, kBufSize);
    const std::size_t len = p.tx->seal_ilp(op.header, op.tlvs, op.inner, out);
    if (len == 0) {  // cannot be encoded: a caller bug, count it as refused
      ++stats_.send_failures;
      continue;
    }
    dg[sealed].buf = out;
    dg[sealed].len = len;
    dg[sealed].peer = p.addr;
    dg[sealed].peer_len = p.addr_len;
    ++sealed;
  }
  auto r = socket_->send_batch(std::span<const io::Datagram>(dg, sealed));
  const std::size_t sent = r ? *r : 0;
  if (sent > 0) node_->note_data_tx(peer, sent, Clock::now());
  // Packets that could not be sealed count as consumed so the caller moves on.
  return sent + (n - sealed);
}

// ---- key files -------------------------------------------------------------------------

std::string key_to_base64(const crypto::noise::PublicKey& k) {
  char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(b64, sizeof b64, k.data(), k.size(), sodium_base64_VARIANT_ORIGINAL);
  return b64;
}

std::optional<crypto::noise::PublicKey> key_from_base64(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' '))
    t.pop_back();
  crypto::noise::PublicKey k{};
  std::size_t len = 0;
  if (sodium_base642bin(k.data(), k.size(), t.data(), t.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len != k.size())
    return std::nullopt;
  return k;
}

Result<crypto::noise::KeyPair> read_key_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(Errc::io, "open " + path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
    ::close(fd);
    return fail(Errc::permission, path + ": not a regular file of mode 0600 (or stricter)");
  }
  char buf[128] = {};
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n < 0) return fail(Errc::io, "read " + path, errno);
  std::size_t len = static_cast<std::size_t>(n);
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
    --len;
  Secret<32> priv;
  std::size_t got = 0;
  const int rc = sodium_base642bin(priv.data(), priv.size(), buf, len, nullptr, &got, nullptr,
                                   sodium_base64_VARIANT_ORIGINAL);
  sodium_memzero(buf, sizeof buf);
  if (rc != 0 || got != priv.size())
    return fail(Errc::parse, path + ": not the base64 of a 32-byte key");
  return crypto::noise::KeyPair::from_private(
      std::span<const std::uint8_t, 32>(priv.data(), priv.size()));
}

Result<void> write_key_file(const std::string& path, const crypto::noise::KeyPair& kp) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail(errno == EEXIST ? Errc::exists : Errc::io, "create " + path, errno);
  char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(b64, sizeof b64, kp.priv.data(), kp.priv.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  std::string line = std::string(b64) + "\n";
  const ssize_t n = ::write(fd, line.data(), line.size());
  sodium_memzero(b64, sizeof b64);
  sodium_memzero(line.data(), line.size());
  const bool ok = n == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return fail(Errc::io, "write " + path, errno);
  return {};
}

}  // namespace ie::tools
