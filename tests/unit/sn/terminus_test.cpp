// The pipe-terminus end to end, in one process: an Sn with two workers on 127.0.0.1 (real
// sockets, the steering program, the association Node on worker 0) and test hosts built from
// libie alone (Node + RxSaTable + TxSa + a UdpSocket each, on 127.0.0.x). They associate,
// register through the control service and exchange ILP packets through the SN: delivery
// intact, cache hits, unknown services, replays, a tiny cache under many flows, the null
// service, a pipe that goes away while cached, and two SNs peering.
//
// Every wait polls a condition with a deadline; nothing sleeps to synchronise.
#include "ie/sn/terminus.hpp"

#include <poll.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ie/crypto/association.hpp"
#include "ie/crypto/sa_table.hpp"
#include "ie/io/udp.hpp"
#include "ie/sn/routing.hpp"
#include "ie/wire/demux.hpp"
#include "ie/wire/service_id.hpp"
#include "ie/wire/tlv.hpp"

namespace ie::sn {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using wire::DropReason;
namespace assoc = crypto::assoc;

constexpr std::uint16_t kIp = static_cast<std::uint16_t>(wire::ServiceId::ip);
constexpr std::uint16_t kNull = static_cast<std::uint16_t>(wire::ServiceId::null);

// Polls cond every few ms, running `step` (e.g. the hosts' loops) in between.
bool eventually(const std::function<bool()>& cond, const std::function<void()>& step = {},
                std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    if (step) {
      step();
    } else {
      ::poll(nullptr, 0, 5);
    }
  }
  return cond();
}

// An IPv4/UDP packet from src to dst (host order addresses) carrying payload.
Bytes ipv4_udp(std::uint32_t src, std::uint32_t dst, const std::string& payload) {
  Bytes p(28 + payload.size(), 0);
  p[0] = 0x45;
  store_be16(p.data() + 2, static_cast<std::uint16_t>(p.size()));
  p[8] = 64;
  p[9] = 17;
  store_be32(p.data() + 12, src);
  store_be32(p.data() + 16, dst);
  std::uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2)
    sum += load_be16(p.data() + i);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  store_be16(p.data() + 10, static_cast<std::uint16_t>(~sum));
  store_be16(p.data() + 20, 40000);
  store_be16(p.data() + 22, 9);
  store_be16(p.data() + 24, static_cast<std::uint16_t>(8 + payload.size()));
  std::memcpy(p.data() + 28, payload.data(), payload.size());
  return p;
}

constexpr std::uint32_t kAddrA = 0x0a010002;  // 10.1.0.2
constexpr std::uint32_t kAddrB = 0x0a010003;  // 10.1.0.3

struct Received {
  std::uint16_t service;
  std::uint64_t conn;
  Bytes tlvs;
  Bytes inner;
};

// A host made of libie parts, associated with one SN.
class TestHost {
 public:
  TestHost(const std::string& bind, const std::string& sn_endpoint, const noise::PublicKey& sn_pub)
      : key_(noise::KeyPair::generate()) {
    auto s = io::UdpSocket::bind(bind);
    EXPECT_TRUE(s.ok()) << bind;
    sock_.emplace(std::move(*s));
    auto ep = io::parse_endpoint(sn_endpoint, &sn_len_);
    EXPECT_TRUE(ep.ok());
    sn_addr_ = *ep;
    assoc::Config cfg;
    cfg.static_key = key_.clone();
    node_ = std::make_unique<assoc::Node>(std::move(cfg), ring_);
    sn_peer_ = node_->add_peer(sn_pub, to_assoc(sn_addr_, sn_len_), true, Clock::now());
    flush();
  }

  // One round of the host's loop: receive what is there (waiting up to wait), timers, send.
  void step(std::chrono::milliseconds wait = 5ms) {
    pollfd p{sock_->fd(), POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(wait.count()));
    std::vector<std::uint8_t> mem(64 * 2048);
    std::vector<io::Datagram> batch(64);
    for (std::size_t i = 0; i < batch.size(); ++i)
      batch[i].buf = ByteSpan(mem.data() + i * 2048, 2048);
    for (int round = 0; round < 8; ++round) {
      auto n = sock_->recv_batch(batch);
      if (!n || *n == 0) break;
      for (std::size_t i = 0; i < *n; ++i)
        on_datagram(batch[i].buf.first(batch[i].len), batch[i].peer, batch[i].peer_len);
    }
    const auto now = Clock::now();
    if (auto dl = node_->next_deadline(); dl && *dl <= now) node_->on_timer(now);
    flush();
  }

  bool ready() const { return tx_.has_value() && rx_.size() > 0; }

  // Sends a control-service request; returns its id.
  std::uint32_t request(std::uint16_t service, const std::string& body) {
    const std::uint32_t id = next_id_++;
    const Bytes data = make_service_request(service, body);
    EXPECT_TRUE(node_->send_service_message(sn_peer_, true, id, data, Clock::now()));
    flush();
    return id;
  }
  std::optional<std::string> response(std::uint32_t id) const {
    auto it = responses_.find(id);
    if (it == responses_.end()) return std::nullopt;
    return it->second;
  }

  // Seals an ILP packet (optionally with a dest_sn TLV) and sends it; returns the datagram.
  Bytes send(std::uint16_t service, std::uint64_t conn, const Bytes& inner,
             const std::string& dest_sn = {}) {
    Bytes out(2048);
    std::vector<wire::Tlv> tlvs;
    if (!dest_sn.empty()) {
      tlvs.push_back(
          {static_cast<std::uint8_t>(wire::TlvType::dest_sn),
           ConstByteSpan(reinterpret_cast<const std::uint8_t*>(dest_sn.data()), dest_sn.size())});
    }
    const std::size_t n = tx_->seal_ilp({service, conn, 0}, tlvs, inner, out);
    EXPECT_GT(n, 0u);
    out.resize(n);
    send_raw(out);
    node_->note_data_tx(sn_peer_, 1, Clock::now());
    return out;
  }
  void send_raw(const Bytes& d) {
    io::Datagram dg;
    dg.buf = ByteSpan(const_cast<std::uint8_t*>(d.data()), d.size());
    dg.len = d.size();
    dg.peer = sn_addr_;
    dg.peer_len = sn_len_;
    auto r = sock_->send_batch(std::span<const io::Datagram>(&dg, 1));
    EXPECT_TRUE(r.ok() && *r == 1);
  }

  void close() {
    node_->close(sn_peer_, Clock::now());
    flush();
  }

  const std::vector<Received>& received() const { return received_; }
  std::uint64_t rx_drops() const { return rx_.drops().total(); }

 private:
  static assoc::Addr to_assoc(const sockaddr_storage& s, socklen_t len) {
    return assoc::Addr::from(ConstByteSpan(reinterpret_cast<const std::uint8_t*>(&s), len));
  }

  void on_datagram(ByteSpan d, const sockaddr_storage& from, socklen_t len) {
    if (wire::classify(d) != wire::DatagramKind::psp) {
      node_->on_datagram(d, to_assoc(from, len), Clock::now());
      return;
    }
    crypto::OpenedIlp o;
    if (rx_.open_ilp(d, &o) != DropReason::none) return;
    node_->note_data_rx(sn_peer_, Clock::now());
    received_.push_back({o.ilp.header.service_id, o.ilp.header.connection_id,
                         Bytes(o.ilp.tlvs.begin(), o.ilp.tlvs.end()),
                         Bytes(o.ilp.inner.begin(), o.ilp.inner.end())});
  }

  void flush() {
    for (auto& d : node_->take_datagrams()) {
      sockaddr_storage to{};
      std::memcpy(&to, d.to.bytes.data(), d.to.len);
      io::Datagram dg;
      dg.buf = ByteSpan(d.bytes);
      dg.len = d.bytes.size();
      dg.peer = to;
      dg.peer_len = d.to.len;
      (void)sock_->send_batch(std::span<const io::Datagram>(&dg, 1));
    }
    for (auto& e : node_->take_events()) {
      switch (e.type) {
        case assoc::EventType::tx_sa_install:
          tx_.emplace(std::move(crypto::TxSa::create(e.spi, *e.key).value()));
          break;
        case assoc::EventType::rx_sa_install:
          EXPECT_TRUE(rx_.install(e.spi, *e.key, e.peer).ok());
          break;
        case assoc::EventType::rx_sa_retire:
          rx_.retire(e.spi);
          break;
        case assoc::EventType::service_message:
          if (!e.request) responses_[e.id] = std::string(e.data.begin(), e.data.end());
          break;
        default:
          break;
      }
    }
  }

  noise::KeyPair key_;
  crypto::psp::RxKeyring ring_;
  std::unique_ptr<assoc::Node> node_;
  std::optional<io::UdpSocket> sock_;
  sockaddr_storage sn_addr_{};
  socklen_t sn_len_ = 0;
  assoc::PeerId sn_peer_ = 0;
  crypto::RxSaTable rx_;
  std::optional<crypto::TxSa> tx_;
  std::uint32_t next_id_ = 1;
  std::map<std::uint32_t, std::string> responses_;
  std::vector<Received> received_;
};

SnConfig sn_config(const std::string& name, std::size_t cache_capacity = 1000) {
  SnConfig c;
  c.name = name;
  c.edomain = std::string(edomain_of(name));
  c.gateway = name;
  c.listen = "127.0.0.1:0";
  c.workers = 2;
  c.cache_capacity = cache_capacity;
  c.control_socket = "";
  return c;
}

std::unique_ptr<Sn> start_sn(SnConfig cfg, noise::KeyPair key, unsigned workers = 2) {
  SnOptions o;
  o.workers = workers;
  o.serve_control_socket = false;
  o.socket_buffer_bytes = 1 << 20;
  auto sn = Sn::create(std::move(cfg), std::move(key), o);
  EXPECT_TRUE(sn.ok()) << (sn.ok() ? "" : sn.error().to_string());
  if (!sn) return nullptr;
  auto r = (*sn)->start();
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  return std::move(*sn);
}

// Every worker of the SN has a send SA for every one of `pipes` pipes.
bool sn_can_send(Sn& sn, std::size_t pipes) {
  for (unsigned i = 0; i < sn.worker_count(); ++i) {
    auto s = sn.worker_snapshot(i);
    if (!s) return false;
    std::size_t sendable = 0;
    for (const auto& p : s->pipes)
      sendable += p.tx_spi != 0;
    if (sendable < pipes) return false;
  }
  return true;
}

std::uint64_t drops(Sn& sn, DropReason r) {
  auto s = sn.status();
  EXPECT_TRUE(s.ok());
  return s ? s->drops()[static_cast<std::size_t>(r)] : 0;
}

CacheStatus cache(Sn& sn) {
  auto s = sn.status();
  EXPECT_TRUE(s.ok());
  return s ? s->cache() : CacheStatus{};
}

bool registered(TestHost& h, const std::function<void()>& step, const std::string& addr) {
  const auto id = h.request(7, R"({"op":"register","addrs":[")" + addr + R"("]})");
  if (!eventually([&] { return h.response(id).has_value(); }, step)) return false;
  const auto j = nlohmann::json::parse(*h.response(id), nullptr, false);
  EXPECT_TRUE(j.is_object() && j.value("ok", false)) << *h.response(id);
  return j.is_object() && j.value("ok", false);
}

// One SN, hosts A (127.0.0.2) and B (127.0.0.3), associated, registered, SAs everywhere.
struct OneSn : ::testing::Test {
  std::unique_ptr<Sn> sn;
  noise::PublicKey sn_pub{};
  std::unique_ptr<TestHost> a, b;
  std::string a_at = "127.0.0.2:0", b_at = "127.0.0.3:0";  // the hosts' sockets
  std::function<void()> step = [this] {
    a->step(1ms);
    b->step(1ms);
  };

  void up(std::size_t cache_capacity = 1000, const std::function<void(SnConfig&)>& tweak = {}) {
    auto key = noise::KeyPair::generate();
    sn_pub = key.pub;
    SnConfig cfg = sn_config("dom1.sn1", cache_capacity);
    if (tweak) tweak(cfg);
    sn = start_sn(std::move(cfg), std::move(key));
    ASSERT_TRUE(sn);
    a = std::make_unique<TestHost>(a_at, sn->endpoint(), sn_pub);
    b = std::make_unique<TestHost>(b_at, sn->endpoint(), sn_pub);
    ASSERT_TRUE(eventually([&] { return a->ready() && b->ready(); }, step));
    ASSERT_TRUE(registered(*a, step, "10.1.0.2"));
    ASSERT_TRUE(registered(*b, step, "10.1.0.3"));
    ASSERT_TRUE(eventually([&] { return sn_can_send(*sn, 2); }, step));
  }
};

TEST_F(OneSn, IpPacketsArriveIntactAndLaterOnesHitTheCache) {
  up();
  // The first packet of the flow goes through the ip module, which caches the decision;
  // the others, sent once it arrived, are hits. (Packets of a new flow that arrive in one
  // receive batch all miss: the module sees them together.)
  std::vector<Bytes> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back(ipv4_udp(kAddrA, kAddrB, "A to B #" + std::to_string(i)));
    a->send(kIp, 77, sent.back());
    if (i == 0) {
      ASSERT_TRUE(eventually([&] { return b->received().size() == 1; }, step));
    }
  }
  ASSERT_TRUE(eventually([&] { return b->received().size() >= 20; }, step));
  ASSERT_EQ(b->received().size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(b->received()[i].service, kIp);
    EXPECT_EQ(b->received()[i].conn, 77u);
    EXPECT_EQ(b->received()[i].inner, sent[i]) << i;
  }
  // The ip module decided the first packet and cached the flow; the rest were hits.
  const CacheStatus c = cache(*sn);
  EXPECT_EQ(c.misses, 1u);
  EXPECT_EQ(c.hits, 19u);
  EXPECT_EQ(c.inserts, 1u);
  auto st = sn->status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->module_counters["ip.forwarded"], 1u);
  EXPECT_EQ(st->total_drops(), 0u);

  // And back.
  const Bytes reply = ipv4_udp(kAddrB, kAddrA, "B to A");
  b->send(kIp, 78, reply);
  ASSERT_TRUE(eventually([&] { return a->received().size() == 1; }, step));
  EXPECT_EQ(a->received()[0].inner, reply);

  // Per-pipe counters: 21 packets in (20 from A, 1 from B) and out.
  StatusQuery q;
  q.pipes = true;
  st = sn->status(q);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->pipes.size(), 2u);
  std::uint64_t rx = 0, tx = 0;
  for (const auto& p : st->pipes) {
    EXPECT_EQ(p.kind, IE_SN_PIPE_HOST);
    EXPECT_TRUE(p.established);
    EXPECT_EQ(p.addrs.size(), 1u);
    rx += p.rx_packets;
    tx += p.tx_packets;
  }
  EXPECT_EQ(rx, 21u);
  EXPECT_EQ(tx, 21u);
  // The hosts' receive SPIs are consecutive, so steering gave each flow its own worker.
  ASSERT_EQ(st->per_worker.size(), 2u);
  EXPECT_EQ(st->per_worker[0].cache.inserts, 1u);
  EXPECT_EQ(st->per_worker[1].cache.inserts, 1u);

  // Pages come in ascending pipe ids after the cursor, whatever order the SN keeps them in.
  const PipeId lo = std::min(st->pipes[0].id, st->pipes[1].id);
  const PipeId hi = std::max(st->pipes[0].id, st->pipes[1].id);
  ASSERT_LT(lo, hi);
  q.pipe_limit = 1;
  for (const auto& [after, want] : {std::pair{PipeId{0}, lo}, std::pair{lo, hi}}) {
    q.pipes_after = after;
    auto page = sn->status(q);
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->pipes.size(), 1u);
    EXPECT_EQ(page->pipes[0].id, want);
  }
  q.pipes_after = hi;
  auto last = sn->status(q);
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->pipes.empty());
  EXPECT_EQ(last->pipe_summary.total, 2u);
}

// The same over IPv6: the SN and both hosts on [::1]; the pipes' endpoints (kept as 28-byte
// ie::sn::Endpoint, not sockaddr_storage) carry traffic both ways and show in the status.
TEST_F(OneSn, Ipv6HostsCarryTrafficBothWays) {
  a_at = b_at = "[::1]:0";
  up(1000, [](SnConfig& c) { c.listen = "[::1]:0"; });
  const Bytes there = ipv4_udp(kAddrA, kAddrB, "A to B over IPv6");
  a->send(kIp, 5, there);
  ASSERT_TRUE(eventually([&] { return b->received().size() == 1; }, step));
  EXPECT_EQ(b->received()[0].inner, there);
  const Bytes back = ipv4_udp(kAddrB, kAddrA, "B to A over IPv6");
  b->send(kIp, 6, back);
  ASSERT_TRUE(eventually([&] { return a->received().size() == 1; }, step));
  EXPECT_EQ(a->received()[0].inner, back);
  StatusQuery q;
  q.pipes = true;
  auto st = sn->status(q);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->pipes.size(), 2u);
  std::set<std::string> seen;
  for (const auto& p : st->pipes) {
    EXPECT_EQ(p.address.rfind("[::1]:", 0), 0u) << p.address;
    EXPECT_EQ(p.rx_packets, 1u);
    EXPECT_EQ(p.tx_packets, 1u);
    seen.insert(p.address);
  }
  EXPECT_EQ(seen.size(), 2u);  // two hosts, two ports
  EXPECT_EQ(st->total_drops(), 0u);
}

TEST_F(OneSn, UnknownServiceIsDroppedAndCounted) {
  up();
  a->send(0x8001, 1, ipv4_udp(kAddrA, kAddrB, "to nobody"));
  ASSERT_TRUE(eventually([&] { return drops(*sn, DropReason::unknown_service) == 1; }, step));
  // Counted on arrival, so it was never forwarded; a later packet overtakes nothing.
  a->send(kIp, 1, ipv4_udp(kAddrA, kAddrB, "marker"));
  ASSERT_TRUE(eventually([&] { return !b->received().empty(); }, step));
  ASSERT_EQ(b->received().size(), 1u);
  EXPECT_EQ(b->received()[0].service, kIp);
}

TEST_F(OneSn, ReplayedDatagramIsDropped) {
  up();
  const Bytes d = a->send(kIp, 5, ipv4_udp(kAddrA, kAddrB, "once"));
  ASSERT_TRUE(eventually([&] { return b->received().size() == 1; }, step));
  a->send_raw(d);
  a->send_raw(d);
  ASSERT_TRUE(eventually([&] { return drops(*sn, DropReason::replayed) == 2; }, step));
  a->send(kIp, 5, ipv4_udp(kAddrA, kAddrB, "twice?"));
  ASSERT_TRUE(eventually([&] { return b->received().size() >= 2; }, step));
  EXPECT_EQ(b->received().size(), 2u);
}

TEST_F(OneSn, ManyFlowsThroughATinyCacheAllArrive) {
  up(/*cache_capacity=*/16);  // 8 entries per worker
  constexpr int kFlows = 200;
  std::map<std::uint64_t, int> expected;
  for (int round = 0; round < 2; ++round) {
    for (int f = 1; f <= kFlows; ++f) {
      a->send(kIp, static_cast<std::uint64_t>(f),
              ipv4_udp(kAddrA, kAddrB, "flow " + std::to_string(f)));
      ++expected[static_cast<std::uint64_t>(f)];
      if (f % 25 == 0) step();  // let B drain its socket
    }
  }
  ASSERT_TRUE(eventually([&] { return b->received().size() >= 2 * kFlows; }, step, 10s))
      << b->received().size();
  std::map<std::uint64_t, int> got;
  for (const auto& r : b->received())
    ++got[r.conn];
  EXPECT_EQ(got, expected);
  const CacheStatus c = cache(*sn);
  EXPECT_GT(c.evictions, 0u);
  EXPECT_LE(c.size, 16u);
  EXPECT_EQ(drops(*sn, DropReason::no_route), 0u);
}

TEST_F(OneSn, NullServiceForwardsByInnerDestinationWithoutCaching) {
  up();
  for (int i = 0; i < 10; ++i)
    a->send(kNull, 9, ipv4_udp(kAddrA, kAddrB, "null " + std::to_string(i)));
  ASSERT_TRUE(eventually([&] { return b->received().size() >= 10; }, step));
  EXPECT_EQ(b->received().size(), 10u);
  for (const auto& r : b->received())
    EXPECT_EQ(r.service, kNull);
  const CacheStatus c = cache(*sn);
  EXPECT_EQ(c.hits, 0u);
  EXPECT_EQ(c.misses, 10u);
  EXPECT_EQ(c.inserts, 0u);
  auto st = sn->status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->module_counters["null.packets"], 10u);
  // A null packet to an address nobody registered: no route.
  a->send(kNull, 9, ipv4_udp(kAddrA, 0x0a0100ff, "nowhere"));
  ASSERT_TRUE(eventually([&] { return drops(*sn, DropReason::no_route) == 1; }, step));
  // Not IP at all: bad inner packet.
  a->send(kNull, 9, Bytes{1, 2, 3});
  ASSERT_TRUE(eventually([&] { return drops(*sn, DropReason::bad_inner_packet) == 1; }, step));
}

TEST_F(OneSn, CachedFlowToAPipeThatWentIsDecidedAgain) {
  up();
  b->send(kIp, 3, ipv4_udp(kAddrB, kAddrA, "first"));
  ASSERT_TRUE(eventually([&] { return a->received().size() == 1; }, step));
  ASSERT_EQ(cache(*sn).inserts, 1u);

  // A leaves (CLOSE): its pipe and registration go; a new host A2 takes its address. B's
  // flow is still cached, naming A's old pipe.
  a->close();
  ASSERT_TRUE(eventually(
      [&] {
        auto s = sn->status();
        return s.ok() && s->pipe_summary.total == 1;
      },
      step));
  TestHost a2("127.0.0.4:0", sn->endpoint(), sn_pub);
  auto step2 = [&] {
    step();
    a2.step(1ms);
  };
  ASSERT_TRUE(eventually([&] { return a2.ready(); }, step2));
  ASSERT_TRUE(registered(a2, step2, "10.1.0.2"));
  ASSERT_TRUE(eventually([&] { return sn_can_send(*sn, 2); }, step2));

  const Bytes again = ipv4_udp(kAddrB, kAddrA, "second");
  b->send(kIp, 3, again);
  ASSERT_TRUE(eventually([&] { return a2.received().size() == 1; }, step2));
  EXPECT_EQ(a2.received()[0].inner, again);
  EXPECT_EQ(a->received().size(), 1u);
  const CacheStatus c = cache(*sn);
  EXPECT_EQ(c.removes, 1u);  // the stale entry
  EXPECT_EQ(c.inserts, 2u);  // and its replacement
  EXPECT_EQ(drops(*sn, DropReason::no_route), 0u);
}

// The JSON answer of a control-service request (null if none came).
nlohmann::json control(TestHost& h, const std::function<void()>& step, const std::string& body) {
  const auto id = h.request(7, body);
  if (!eventually([&] { return h.response(id).has_value(); }, step)) return nullptr;
  return nlohmann::json::parse(*h.response(id), nullptr, false);
}

std::uint64_t module_counter(Sn& sn, const std::string& name) {
  auto s = sn.status();
  EXPECT_TRUE(s.ok());
  return s ? s->module_counters[name] : 0;
}

// A host that registers again as standby (or back as active) changes how the ip module
// decides packets to it: on every worker, the cached decisions that name its pipe are not
// used again (each is decided again at its next hit: removed, inserted anew), and only
// those. A and B send from different workers, so each worker holds the one flow to the
// other.
TEST_F(OneSn, ARoleChangeMakesTheCachedDecisionsNamingTheHostStaleOnEveryWorker) {
  up();
  // One packet each way (A's flow to B, B's to A); waits until both arrived.
  auto both_ways = [&](const std::string& tag) {
    const std::size_t na = a->received().size() + 1, nb = b->received().size() + 1;
    a->send(kIp, 3, ipv4_udp(kAddrA, kAddrB, "a to b " + tag));
    b->send(kIp, 4, ipv4_udp(kAddrB, kAddrA, "b to a " + tag));
    return eventually([&] { return a->received().size() == na && b->received().size() == nb; },
                      step);
  };
  ASSERT_TRUE(both_ways("1"));
  ASSERT_EQ(cache(*sn).inserts, 2u);
  ASSERT_EQ(cache(*sn).size, 2u);
  auto removes_per_worker = [&] {
    auto st = sn->status();
    EXPECT_TRUE(st.ok());
    std::vector<std::uint64_t> r;
    if (st.ok()) {
      for (const auto& w : st->per_worker)
        r.push_back(w.cache.removes);
    }
    return r;
  };
  // One more packet each way: hits, nothing decided again.
  ASSERT_TRUE(both_ways("2"));
  EXPECT_EQ(cache(*sn).inserts, 2u);
  EXPECT_EQ(cache(*sn).hits, 2u);

  // A turns standby (the reply comes once every worker applied it): B's next packet to A is
  // decided again, A's to B still hits.
  auto j = control(*a, step, R"({"op":"register","addrs":["10.1.0.2"],"standby":true})");
  ASSERT_EQ(j.value("ok", false), true) << j.dump();
  EXPECT_EQ(j["standby"], true);
  ASSERT_TRUE(both_ways("3"));
  EXPECT_EQ(cache(*sn).removes, 1u);
  EXPECT_EQ(cache(*sn).inserts, 3u);
  EXPECT_EQ(cache(*sn).hits, 3u);
  // The same role again changes nothing: both hit.
  j = control(*a, step, R"({"op":"register","addrs":["10.1.0.2"],"standby":true})");
  ASSERT_EQ(j.value("ok", false), true) << j.dump();
  ASSERT_TRUE(both_ways("4"));
  EXPECT_EQ(cache(*sn).removes, 1u);
  EXPECT_EQ(cache(*sn).hits, 5u);
  // B turns standby: A's flow to B is decided again, on the other worker.
  j = control(*b, step, R"({"op":"register","addrs":["10.1.0.3"],"standby":true})");
  ASSERT_EQ(j.value("ok", false), true) << j.dump();
  a->send(kIp, 3, ipv4_udp(kAddrA, kAddrB, "a to standby b"));
  ASSERT_TRUE(eventually([&] { return b->received().size() == 5; }, step));
  EXPECT_EQ(removes_per_worker(), (std::vector<std::uint64_t>{1, 1}));
  EXPECT_EQ(cache(*sn).inserts, 4u);

  // A is active again: its cached delivery is decided again too (a dest_sn naming an SN
  // this one does not reach: delivered here all the same).
  j = control(*a, step, R"({"op":"register","addrs":["10.1.0.2"]})");
  ASSERT_EQ(j.value("ok", false), true) << j.dump();
  EXPECT_EQ(j["standby"], false);
  b->send(kIp, 4, ipv4_udp(kAddrB, kAddrA, "b to active a"), "dom1.sn9");
  ASSERT_TRUE(eventually([&] { return a->received().size() == 5; }, step));
  EXPECT_EQ(cache(*sn).removes, 3u);
  EXPECT_EQ(cache(*sn).inserts, 5u);
  EXPECT_EQ(cache(*sn).size, 2u);
  EXPECT_EQ(module_counter(*sn, "ip.standby_bypass"), 0u);
}

// Out-of-band invocation of `block`: it applies before the decision cache (a cached flow is
// blocked from the next packet on), by direction and prefix, per host, and goes with [].
TEST_F(OneSn, OutOfBandBlockAppliesBeforeTheCacheByDirectionAndPrefix) {
  up(1000, [](SnConfig& c) { c.out_of_band = {"block"}; });
  b->send(kIp, 3, ipv4_udp(kAddrB, kAddrA, "before"));
  ASSERT_TRUE(eventually([&] { return a->received().size() == 1; }, step));
  ASSERT_EQ(cache(*sn).inserts, 1u);  // B -> A is cached

  // A blocks what comes from 10.1.0.0/24 (B among them), in.
  auto j = control(*a, step,
                   R"({"op":"service.set","invocations":[
                        {"service":"block","direction":"in","prefix":"10.1.0.9/24"}]})");
  ASSERT_EQ(j.value("ok", false), true) << j.dump();
  EXPECT_EQ(j["invocations"][0]["prefix"], "10.1.0.0/24");
  for (int i = 0; i < 5; ++i)
    b->send(kIp, 3, ipv4_udp(kAddrB, kAddrA, "blocked " + std::to_string(i)));
  ASSERT_TRUE(eventually([&] { return module_counter(*sn, "block.dropped") == 5; }, step));
  // A's own traffic out is untouched; B gets it.
  a->send(kIp, 4, ipv4_udp(kAddrA, kAddrB, "a to b"));
  ASSERT_TRUE(eventually([&] { return b->received().size() == 1; }, step));
  EXPECT_EQ(a->received().size(), 1u);
  EXPECT_EQ(drops(*sn, DropReason::dropped_by_service), 5u);

  // Out: B blocks its own traffic to A's /32; A clears its set, B's packets still stop.
  j = control(*b, step,
              R"({"op":"service.set","invocations":[
                   {"service":"block","direction":"out","prefix":"10.1.0.2/32"}]})");
  ASSERT_EQ(j.value("ok", false), true) << j.dump();
  j = control(*a, step, R"({"op":"service.set","invocations":[]})");
  ASSERT_EQ(j.value("ok", false), true) << j.dump();
  b->send(kIp, 3, ipv4_udp(kAddrB, kAddrA, "blocked out"));
  ASSERT_TRUE(eventually([&] { return module_counter(*sn, "block.dropped") == 6; }, step));
  j = control(*b, step, R"({"op":"service.list"})");
  EXPECT_EQ(j["invocations"].size(), 1u) << j.dump();
  EXPECT_EQ(j["offered"], nlohmann::json::array({"block"}));

  // Cleared: the cached flow carries on.
  j = control(*b, step, R"({"op":"service.set","invocations":[]})");
  ASSERT_EQ(j.value("ok", false), true);
  b->send(kIp, 3, ipv4_udp(kAddrB, kAddrA, "after"));
  ASSERT_TRUE(eventually([&] { return a->received().size() == 2; }, step));
  EXPECT_EQ(a->received()[1].inner, ipv4_udp(kAddrB, kAddrA, "after"));
  EXPECT_EQ(module_counter(*sn, "block.dropped"), 6u);
  // A service not offered is refused by name.
  j = control(*a, step,
              R"({"op":"service.set","invocations":[
                   {"service":"passthrough","direction":"in","prefix":"0.0.0.0/0"}]})");
  EXPECT_EQ(j.value("ok", true), false);
  EXPECT_NE(j.value("error", "").find("offered: block"), std::string::npos) << j.dump();
}

// An imposed passthrough: every packet from and to the SN's hosts is checked against the
// allow list (service + destination out, service + source in) before anything else.
TEST_F(OneSn, ImposedPassthroughAllowsOnlyTheListedServicesAndPrefixes) {
  up(1000, [](SnConfig& c) {
    c.imposed = {"passthrough"};
    c.module_config["passthrough"]["allow"] = "ip 10.1.0.3, null 10.1.0.2/32";
  });
  a->send(kIp, 1, ipv4_udp(kAddrA, kAddrB, "ip a->b"));      // allowed: ip to 10.1.0.3
  a->send(kNull, 2, ipv4_udp(kAddrA, kAddrB, "null a->b"));  // denied: null only to .2
  b->send(kIp, 3, ipv4_udp(kAddrB, kAddrA, "ip b->a"));      // denied: ip only to .3
  b->send(kNull, 4, ipv4_udp(kAddrB, kAddrA, "null b->a"));  // allowed
  ASSERT_TRUE(eventually(
      [&] {
        return a->received().size() == 1 && b->received().size() == 1 &&
               module_counter(*sn, "passthrough.denied") == 2;
      },
      step));
  EXPECT_EQ(b->received()[0].inner, ipv4_udp(kAddrA, kAddrB, "ip a->b"));
  EXPECT_EQ(a->received()[0].inner, ipv4_udp(kAddrB, kAddrA, "null b->a"));
  EXPECT_EQ(module_counter(*sn, "passthrough.allowed"), 2u);
  // Cached flows stay checked: the allowed ip flow is cached now; more packets still pass
  // the module (counted), the denied ones never get a cache entry to hide behind.
  a->send(kIp, 1, ipv4_udp(kAddrA, kAddrB, "ip a->b again"));
  ASSERT_TRUE(eventually([&] { return b->received().size() == 2; }, step));
  EXPECT_EQ(module_counter(*sn, "passthrough.allowed"), 3u);
}

TEST(SnServices, UnknownModulesAndBadAllowListsRefuseTheStart) {
  SnOptions o;
  o.workers = 1;
  o.serve_control_socket = false;
  SnConfig c = sn_config("dom1.sn1");
  c.imposed = {"firewall"};
  auto sn = Sn::create(c, noise::KeyPair::generate(), o);
  ASSERT_FALSE(sn.ok());
  EXPECT_NE(
      sn.error().context.find("[services] imposed names \"firewall\", which no loaded module"),
      std::string::npos)
      << sn.error().to_string();
  c.imposed = {"passthrough"};
  c.module_config["passthrough"]["allow"] = "ip 10.0.0.1/8";  // host bits: a typo
  sn = Sn::create(c, noise::KeyPair::generate(), o);
  ASSERT_TRUE(sn.ok());  // modules are created when the workers start
  const auto started = (*sn)->start();
  EXPECT_FALSE(started.ok());
}

// A host may send the moment its registration is confirmed, even if its packets reach
// another worker than the control worker that confirmed it: the reply leaves only once every
// worker's route table has the address. Worker 1 is held busy while the host registers;
// the host sends its first packet as soon as the reply arrives.
TEST_F(OneSn, RegistrationIsEverywhereBeforeItIsConfirmed) {
  auto key = noise::KeyPair::generate();
  sn_pub = key.pub;
  sn = start_sn(sn_config("dom1.sn1"), std::move(key));
  ASSERT_TRUE(sn);
  a = std::make_unique<TestHost>("127.0.0.2:0", sn->endpoint(), sn_pub);
  b = std::make_unique<TestHost>("127.0.0.3:0", sn->endpoint(), sn_pub);
  ASSERT_TRUE(eventually([&] { return a->ready() && b->ready(); }, step));
  ASSERT_TRUE(eventually([&] { return sn_can_send(*sn, 2); }, step));
  // Which host's packets does worker 1 receive? (Consecutive SPIs: one host each.)
  a->send(kNull, 1, ipv4_udp(kAddrA, 0x0a0100ff, "probe"));
  ASSERT_TRUE(eventually([&] { return drops(*sn, DropReason::no_route) == 1; }, step));
  auto w1 = sn->worker_snapshot(1);
  ASSERT_TRUE(w1.ok());
  bool a_on_w1 = false;
  for (const auto& p : w1->pipes)
    a_on_w1 |= p.traffic.rx_packets > 0;
  TestHost& x = a_on_w1 ? *a : *b;  // registers while worker 1 is held
  TestHost& y = a_on_w1 ? *b : *a;
  const std::uint32_t x_addr = a_on_w1 ? kAddrA : kAddrB, y_addr = a_on_w1 ? kAddrB : kAddrA;
  ASSERT_TRUE(registered(y, step, a_on_w1 ? "10.1.0.3" : "10.1.0.2"));

  std::promise<void> release;
  std::shared_future<void> held = release.get_future().share();
  (void)sn->run_on_worker(
      1, [held](Worker&) { held.wait(); }, 1ms);  // returns; w1 stays held
  const auto id = x.request(7, std::string(R"({"op":"register","addrs":[")") +
                                   (a_on_w1 ? "10.1.0.2" : "10.1.0.3") + R"("]})");
  bool sent = false;
  auto send_when_confirmed = [&] {
    step();
    if (!sent && x.response(id)) {
      x.send(kIp, 4, ipv4_udp(x_addr, y_addr, "right away"));
      sent = true;
    }
  };
  const auto until = Clock::now() + 200ms;
  while (Clock::now() < until)
    send_when_confirmed();
  release.set_value();
  ASSERT_TRUE(eventually([&] { return sent && !y.received().empty(); }, send_when_confirmed));
  EXPECT_EQ(y.received().size(), 1u);
  EXPECT_EQ(drops(*sn, DropReason::dropped_by_service), 0u);
}

// Two edomains, one gateway SN each, peering; host A behind dom1.sn1, host B behind
// dom2.sn1. dom2.sn1 starts without knowing dom1.sn1 and learns it by a reload (its pipe
// then turns from "host" into an SN pipe). SN pipes re-key every second under traffic.
TEST(TwoSns, PeeredGatewaysCarryTrafficAcrossEdomainsThroughRekeys) {
  auto k1 = noise::KeyPair::generate();
  auto k2 = noise::KeyPair::generate();
  const noise::PublicKey pub1 = k1.pub, pub2 = k2.pub;
  assoc::Timers fast;
  fast.rekey_after_time = 1s;

  SnConfig c2 = sn_config("dom2.sn1");
  SnOptions o;
  o.workers = 2;
  o.serve_control_socket = false;
  o.timers = fast;
  auto sn2r = Sn::create(c2, std::move(k2), o);
  ASSERT_TRUE(sn2r.ok());
  std::unique_ptr<Sn> sn2 = std::move(*sn2r);

  SnConfig c1 = sn_config("dom1.sn1");
  c1.peers.push_back({"dom2", SnRef{"dom2.sn1", sn2->endpoint(), pub2}});
  c1.routes.push_back({*Prefix::parse("10.2.0.0/16"), "dom2.sn1"});
  auto sn1r = Sn::create(c1, std::move(k1), o);
  ASSERT_TRUE(sn1r.ok());
  std::unique_ptr<Sn> sn1 = std::move(*sn1r);
  ASSERT_TRUE(sn2->start().ok());
  ASSERT_TRUE(sn1->start().ok());
  c2.peers.push_back({"dom1", SnRef{"dom1.sn1", sn1->endpoint(), pub1}});
  c2.routes.push_back({*Prefix::parse("10.1.0.0/16"), "dom1.sn1"});
  ASSERT_TRUE(sn2->apply_config(c2).ok());

  auto sn_pipe = [](Sn& sn, const std::string& name) -> std::optional<PipeStatus> {
    StatusQuery q;
    q.pipes = true;
    auto s = sn.status(q);
    if (!s) return std::nullopt;
    for (const auto& p : s->pipes) {
      if (p.kind == IE_SN_PIPE_SN && p.name == name && p.established) return p;
    }
    return std::nullopt;
  };
  ASSERT_TRUE(eventually([&] {
    return sn_pipe(*sn1, "dom2.sn1").has_value() && sn_pipe(*sn2, "dom1.sn1").has_value();
  }));

  TestHost a("127.0.0.2:0", sn1->endpoint(), pub1);
  TestHost b("127.0.0.3:0", sn2->endpoint(), pub2);
  auto step = [&] {
    a.step(1ms);
    b.step(1ms);
  };
  ASSERT_TRUE(eventually([&] { return a.ready() && b.ready(); }, step));
  ASSERT_TRUE(registered(a, step, "10.1.0.2"));
  ASSERT_TRUE(registered(b, step, "10.2.0.2"));
  ASSERT_TRUE(eventually([&] { return sn_can_send(*sn1, 2) && sn_can_send(*sn2, 2); }, step));

  // dest_sn names B's SN; the reply uses dom2.sn1's static route instead.
  const Bytes there = ipv4_udp(kAddrA, 0x0a020002, "A to B across edomains");
  a.send(kIp, 1, there, "dom2.sn1");
  ASSERT_TRUE(eventually([&] { return b.received().size() == 1; }, step));
  EXPECT_EQ(b.received()[0].inner, there);
  const Bytes back = ipv4_udp(0x0a020002, kAddrA, "B to A by static route");
  b.send(kIp, 2, back);
  ASSERT_TRUE(eventually([&] { return a.received().size() == 1; }, step));
  EXPECT_EQ(a.received()[0].inner, back);

  // Steady traffic for 3.5 s while the SN pipe re-keys every second: nothing lost.
  std::set<std::uint32_t> spis;
  auto note_spi = [&] {
    auto s = sn1->worker_snapshot(0);
    if (!s) return;
    for (const auto& p : s->pipes) {
      if (p.kind == IE_SN_PIPE_SN && p.tx_spi != 0) spis.insert(p.tx_spi);
    }
  };
  int sent = 0;
  const auto until = Clock::now() + 3500ms;
  while (Clock::now() < until) {
    a.send(kIp, 1, ipv4_udp(kAddrA, 0x0a020002, "seq " + std::to_string(sent)), "dom2.sn1");
    ++sent;
    const auto next = Clock::now() + 10ms;
    while (Clock::now() < next)
      step();
    if (sent % 20 == 0) note_spi();
  }
  ASSERT_TRUE(eventually([&] { return b.received().size() >= 1u + sent; }, step));
  EXPECT_EQ(b.received().size(), 1u + sent);
  std::set<std::string> seen;
  for (std::size_t i = 1; i < b.received().size(); ++i) {
    const auto& in = b.received()[i].inner;
    seen.insert(std::string(in.begin() + 28, in.end()));
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(sent));
  EXPECT_GE(spis.size(), 3u) << "the SN pipe's send SA should have changed with each rekey";
  EXPECT_EQ(drops(*sn1, DropReason::unknown_spi) + drops(*sn2, DropReason::unknown_spi), 0u);
  // Each side of the SN pipe's re-keys took the static-static DH kept from the first
  // handshake (iesn status "association.static_dh_reused").
  for (Sn* sn : {sn1.get(), sn2.get()}) {
    auto st = sn->status();
    ASSERT_TRUE(st.ok());
    EXPECT_GE(st->association.static_dh_reused, 2u) << st->name;
  }
}

// The handshake budget: from the configuration, changed by a reload, and pinned by the
// --max-handshakes override (SnOptions) across reloads.
TEST(SnHandshakeBudget, ConfigReloadAndOverride) {
  SnConfig c = sn_config("dom1.sn1");
  c.max_handshakes_per_second = 300;
  SnOptions o;
  o.workers = 1;
  o.serve_control_socket = false;
  auto sn = Sn::create(c, noise::KeyPair::generate(), o);
  ASSERT_TRUE(sn.ok());
  ASSERT_TRUE((*sn)->start().ok());
  EXPECT_EQ((*sn)->handshake_budget(), std::optional<std::uint32_t>(300));
  c.max_handshakes_per_second = 1200;
  ASSERT_TRUE((*sn)->apply_config(c).ok());
  EXPECT_EQ((*sn)->handshake_budget(), std::optional<std::uint32_t>(1200));
  c.max_handshakes_per_second = 0;
  ASSERT_TRUE((*sn)->apply_config(c).ok());
  EXPECT_EQ((*sn)->handshake_budget(), std::optional<std::uint32_t>(0));

  o.max_handshakes_per_second = 50;  // `iesn run --max-handshakes 50`
  c.max_handshakes_per_second = 300;
  auto pinned = Sn::create(c, noise::KeyPair::generate(), o);
  ASSERT_TRUE(pinned.ok());
  ASSERT_TRUE((*pinned)->start().ok());
  EXPECT_EQ((*pinned)->handshake_budget(), std::optional<std::uint32_t>(50));
  c.max_handshakes_per_second = 900;
  ASSERT_TRUE((*pinned)->apply_config(c).ok());
  EXPECT_EQ((*pinned)->handshake_budget(), std::optional<std::uint32_t>(50));
}

// [sn] psp_contexts_per_worker: every worker thread sizes its PSP context cache with it
// before it handles a packet, the status shows each worker's cache, and a reload resizes
// them (shrinking frees contexts). One packet at a time, so each is a batch of its own and
// the worker opens and then seals it: with room for both SAs' contexts the packets hit the
// cache; with one slot, the open and the seal evict each other and every one expands a key.
TEST_F(OneSn, PspContextsPerWorkerSizeEachWorkersCacheAndReloadResizesThem) {
  up(1000, [](SnConfig& c) { c.psp_contexts_per_worker = 64; });
  auto psp = [&] {
    auto st = sn->status();
    EXPECT_TRUE(st.ok());
    return st ? st->per_worker : std::vector<WorkerStatus>{};
  };
  auto one_by_one = [&](int n, const std::string& tag) {
    const std::size_t before = b->received().size();
    for (int i = 0; i < n; ++i) {
      a->send(kIp, 41, ipv4_udp(kAddrA, kAddrB, tag + std::to_string(i)));
      ASSERT_TRUE(eventually([&] { return b->received().size() == before + i + 1; }, step));
    }
  };
  auto sum = [](const std::vector<WorkerStatus>& ws) {
    PspContextStatus s;
    for (const auto& w : ws)
      s += w.psp_contexts;
    return s;
  };

  std::vector<WorkerStatus> ws = psp();
  ASSERT_EQ(ws.size(), 2u);
  for (const auto& w : ws)
    EXPECT_EQ(w.psp_contexts.capacity, 64u) << "worker " << w.index;
  one_by_one(3, "warm ");  // the first one expands A's receive and B's send SA
  const PspContextStatus warm = sum(psp());
  EXPECT_GE(warm.misses, 2u);
  one_by_one(10, "cached ");
  const PspContextStatus cached = sum(psp());
  EXPECT_GE(cached.hits - warm.hits, 20u);  // an open and a seal per packet
  EXPECT_GE(cached.in_use, 2u);
  for (const auto& w : psp())
    EXPECT_LE(w.psp_contexts.in_use, 64u) << "worker " << w.index;

  // A reload shrinks every worker's cache to one context.
  SnConfig c = sn_config("dom1.sn1");
  c.psp_contexts_per_worker = 1;
  ASSERT_TRUE(sn->apply_config(c).ok());
  ws = psp();
  ASSERT_EQ(ws.size(), 2u);
  for (const auto& w : ws) {
    EXPECT_EQ(w.psp_contexts.capacity, 1u) << "worker " << w.index;
    EXPECT_LE(w.psp_contexts.in_use, 1u) << "worker " << w.index;
  }
  const PspContextStatus shrunk = sum(ws);
  one_by_one(10, "thrash ");  // still delivered, at a key expansion per open and seal
  const PspContextStatus thrash = sum(psp());
  // An open and a seal per packet, each a miss but perhaps the first (the one context the
  // shrink kept may be that SA's).
  EXPECT_GE(thrash.misses - shrunk.misses, 2u * 10 - 1);
  EXPECT_EQ(thrash.capacity, 2u);

  // And back up: the next packets hit again.
  c.psp_contexts_per_worker = 4096;
  ASSERT_TRUE(sn->apply_config(c).ok());
  one_by_one(2, "rewarm ");
  const PspContextStatus rewarm = sum(psp());
  EXPECT_EQ(rewarm.capacity, 2u * 4096u);
  one_by_one(10, "again ");
  EXPECT_GE(sum(psp()).hits - rewarm.hits, 20u);
  auto st = sn->status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->total_drops(), 0u);
}

}  // namespace
}  // namespace ie::sn
