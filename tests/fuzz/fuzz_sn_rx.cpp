// Fuzzes the SN's receive path: one iesn Worker (real module runtime with the null and ip
// modules, real route table, cache and SA tables, no sockets) fed a batch of arbitrary
// datagrams through Worker::process_batch. Control-plane datagrams go to an association
// Node, as on the control worker.
//
// Input: up to 256 records {mode u8, len u16 BE, bytes[len]}, in batches of at most 64.
// Mode bit 0 clear: the bytes are sent as they are (any junk); set: they are an ILP header +
// inner packet that the harness seals for a pipe's receive SA first (bit 1 picks the pipe:
// host A or the SN peer), so the fuzzer reaches everything after authentication: ILP
// parsing, the cache, the modules, routing and re-sealing. Bit 2 re-sends the previous
// datagram (a replay), bit 3 starts a new batch first (so later batches hit the cache).
// Oracle: everything the worker sends must open, under the receiving peer's SA, into a
// well-formed ILP packet.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "ie/crypto/association.hpp"
#include "ie/crypto/psp_keyring.hpp"
#include "ie/crypto/sa_table.hpp"
#include "ie/sn/modules.hpp"
#include "ie/sn/routing.hpp"
#include "ie/sn/worker.hpp"
#include "ie/util/log.hpp"

namespace {

using namespace ie;
using namespace ie::sn;

sockaddr_storage v4(std::uint32_t addr, std::uint16_t port, socklen_t* len) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(addr);
  in.sin_port = htons(port);
  sockaddr_storage s{};
  std::memcpy(&s, &in, sizeof in);
  *len = sizeof in;
  return s;
}

// Takes whatever the worker sends and checks it is a sealed, well-formed ILP packet.
class CheckingPort final : public io::DatagramPort {
 public:
  crypto::RxSaTable peers;  // the receive SAs of the worker's peers (what it seals for)
  Result<std::size_t> recv_batch(std::span<io::Datagram>) override { return std::size_t{0}; }
  Result<std::size_t> send_batch(std::span<const io::Datagram> in) override {
    for (const auto& d : in) {
      Bytes copy(d.buf.begin(), d.buf.begin() + static_cast<std::ptrdiff_t>(d.len));
      crypto::OpenedIlp o;
      if (peers.open_ilp(copy, &o) != wire::DropReason::none) __builtin_trap();
    }
    return in.size();
  }
  int fd() const override { return -1; }
};

struct Keys {
  crypto::psp::RxKeyring ring;
  // The worker's receive SPIs (from host A and the SN peer) and its send SPIs (towards A, B
  // and the SN peer), each with its key.
  std::uint32_t rx_a = ring.allocate_spi(), rx_sn = ring.allocate_spi();
  std::uint32_t tx_a = ring.allocate_spi(), tx_b = ring.allocate_spi(), tx_sn = ring.allocate_spi();
  crypto::psp::Key key(std::uint32_t spi) {
    return ring.key_for(spi, crypto::psp::Version::aes_gcm_256);
  }
};

ModuleRuntime& runtime() {
  static std::unique_ptr<ModuleRuntime> rt = [] {
    log::Options lo;
    lo.level = spdlog::level::off;
    log::init(lo);
    auto r = ModuleRuntime::create({});
    if (!r) __builtin_trap();
    if (!(*r)->add_builtin(null_module()) || !(*r)->add_builtin(ip_module())) __builtin_trap();
    return std::move(*r);
  }();
  return *rt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Keys keys;
  ModuleRuntime& rt = runtime();

  RouteConfig rc;
  rc.self = "dom1.sn1";
  rc.gateway = "dom1.sn1";
  rc.peer_gateways["dom2"] = "dom2.sn1";
  rc.routes.push_back({*Prefix::parse("10.2.0.0/16"), "dom2.sn1"});
  WorkerOptions wo;
  wo.cache_capacity = 4;  // small: evictions happen
  wo.routes = rc;
  auto port = std::make_unique<CheckingPort>();
  CheckingPort* checker = port.get();
  auto wr = Worker::create(wo, std::move(port));
  if (!wr) __builtin_trap();
  Worker& w = **wr;
  if (!w.start_modules(rt)) __builtin_trap();

  // The control plane a control worker would have.
  crypto::psp::RxKeyring node_ring;
  crypto::assoc::Config nc;
  nc.static_key = crypto::noise::KeyPair::generate();
  nc.accept_unknown_ik = true;
  nc.wall_clock_ns = [] { return std::uint64_t{1} << 60; };
  crypto::assoc::Node node(std::move(nc), node_ring);
  Worker::Hooks hooks;
  hooks.control_datagram = [&](ConstByteSpan d, const sockaddr_storage& from, socklen_t len) {
    node.on_datagram(
        d,
        crypto::assoc::Addr::from(ConstByteSpan(reinterpret_cast<const std::uint8_t*>(&from), len)),
        std::chrono::steady_clock::time_point{});
  };
  w.set_hooks(std::move(hooks));

  // Pipes: 1 = host A (10.1.0.2), 2 = host B (10.1.0.3), 3 = SN dom2.sn1.
  socklen_t la = 0, lb = 0, ls = 0;
  const sockaddr_storage addr_a = v4(0x7f000002, 1000, &la), addr_b = v4(0x7f000003, 1000, &lb),
                         addr_sn = v4(0x7f000009, 1000, &ls);
  w.pipe_up(1, IE_SN_PIPE_HOST, "", addr_a, la);
  w.pipe_up(2, IE_SN_PIPE_HOST, "", addr_b, lb);
  w.pipe_up(3, IE_SN_PIPE_SN, "dom2.sn1", addr_sn, ls);
  auto iv = crypto::make_shared_iv_counter;
  if (!w.install_tx(1, keys.tx_a, keys.key(keys.tx_a), iv()) ||
      !w.install_tx(2, keys.tx_b, keys.key(keys.tx_b), iv()) ||
      !w.install_tx(3, keys.tx_sn, keys.key(keys.tx_sn), iv()) ||
      !w.install_rx(keys.rx_a, keys.key(keys.rx_a), 1) ||
      !w.install_rx(keys.rx_sn, keys.key(keys.rx_sn), 3))
    __builtin_trap();
  for (const auto spi : {keys.tx_a, keys.tx_b, keys.tx_sn}) {
    if (!checker->peers.install(spi, keys.key(spi), 0)) __builtin_trap();
  }
  RouteOp reg;
  reg.kind = RouteOp::Kind::register_host;
  reg.pipe = 1;
  reg.addrs = {mapped_v4(0x0a010002)};
  w.apply_route(reg);
  reg.pipe = 2;
  reg.addrs = {mapped_v4(0x0a010003)};
  w.apply_route(reg);

  // Senders: host A and the SN peer, sealing for the worker's receive SAs.
  auto from_a = crypto::TxSa::create(keys.rx_a, keys.key(keys.rx_a));
  auto from_sn = crypto::TxSa::create(keys.rx_sn, keys.key(keys.rx_sn));
  if (!from_a || !from_sn) __builtin_trap();

  std::vector<Bytes> bufs;
  std::vector<io::Datagram> batch;
  auto run_batch = [&] {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i].buf = ByteSpan(bufs[i]);
      batch[i].len = bufs[i].size();
    }
    w.process_batch(batch);  // opens and re-seals in place: bufs are spent
    batch.clear();
    bufs.clear();
  };
  Bytes last;  // the previous datagram as sent, for replays
  std::size_t pos = 0, records = 0;
  while (pos + 3 <= size && records++ < 256) {
    const std::uint8_t mode = data[pos];
    const std::size_t len = std::min<std::size_t>(load_be16(data + pos + 1), size - pos - 3);
    const ConstByteSpan body(data + pos + 3, len);
    pos += 3 + len;
    if ((mode & 8) != 0 || batch.size() == 64) run_batch();  // a batch boundary
    const bool to_sn = (mode & 2) != 0;
    Bytes b;
    if ((mode & 4) != 0 && !last.empty()) {
      b = last;
    } else if ((mode & 1) != 0) {
      b.resize(16 + len + 16);
      std::memcpy(b.data() + 16, body.data(), len);
      crypto::TxSa& tx = to_sn ? *from_sn : *from_a;
      if (tx.seal_in_place(b, len) == 0) continue;
    } else {
      b.assign(body.begin(), body.end());
    }
    last = b;
    bufs.push_back(std::move(b));
    io::Datagram d;
    d.peer = to_sn ? addr_sn : addr_a;
    d.peer_len = to_sn ? ls : la;
    batch.push_back(d);
  }
  run_batch();
  (void)node.take_datagrams();
  (void)node.take_events();
  w.release_modules();
  return 0;
}
