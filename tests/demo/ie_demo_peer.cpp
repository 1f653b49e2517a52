// ie-demo-peer: one end of the loopback demo (tests/demo.sh). Two of these processes run
// the real association protocol over UDP: a Noise IK handshake (with MAC1), PSP SPI and key
// hand-out over the encrypted control channel, then ILP data packets (PSP v1, AES-256-GCM)
// that the responder echoes back. Every step is printed as it happens.
//
//   ie-demo-peer genkey FILE                 write a new static private key (mode 0600),
//                                            print its public key (hex)
//   ie-demo-peer responder --key FILE --listen IP:PORT --peer-pub HEX
//   ie-demo-peer initiator --key FILE --connect IP:PORT --peer-pub HEX [--packets N]
//
// Exit status: 0 when the exchange completed (initiator: every packet echoed back), 1 on a
// protocol failure or timeout, 2 on usage errors.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ie/crypto/association.hpp"
#include "ie/crypto/sa_table.hpp"
#include "ie/wire/demux.hpp"
#include "ie/wire/ilp.hpp"
#include "ie/wire/psp.hpp"
#include "ie/wire/service_id.hpp"

namespace {

using namespace ie;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace assoc = ie::crypto::assoc;
namespace psp = ie::crypto::psp;

Clock::time_point g_start = Clock::now();
std::string g_role;

void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) {
  const double t = std::chrono::duration<double>(Clock::now() - g_start).count();
  std::printf("[%7.3f %-9s] ", t, g_role.c_str());
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
  std::printf("\n");
  std::fflush(stdout);
}

int usage() {
  std::fprintf(stderr,
               "usage: ie-demo-peer genkey FILE\n"
               "       ie-demo-peer responder --key FILE --listen IP:PORT --peer-pub HEX\n"
               "       ie-demo-peer initiator --key FILE --connect IP:PORT --peer-pub HEX "
               "[--packets N]\n");
  return 2;
}

std::optional<sockaddr_in> parse_addr(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (inet_pton(AF_INET, s.substr(0, colon).c_str(), &a.sin_addr) != 1) return std::nullopt;
  char* end = nullptr;
  const long port = std::strtol(s.c_str() + colon + 1, &end, 10);
  if (*end != 0 || port < 0 || port > 65535) return std::nullopt;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  return a;
}

std::string addr_str(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
}

assoc::Addr to_addr(const sockaddr_in& a) {
  return assoc::Addr::from(ConstByteSpan(reinterpret_cast<const std::uint8_t*>(&a), sizeof a));
}

sockaddr_in from_addr(const assoc::Addr& a) {
  sockaddr_in s{};
  std::memcpy(&s, a.bytes.data(), std::min<std::size_t>(a.len, sizeof s));
  return s;
}

int genkey(const std::string& file) {
  const auto kp = crypto::noise::KeyPair::generate();
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "ie-demo-peer: cannot create %s: %s\n", file.c_str(),
                 std::strerror(errno));
    return 1;
  }
  const std::string hex = to_hex(kp.priv.span()) + "\n";
  const bool ok = ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size());
  ::close(fd);
  if (!ok) return 1;
  std::printf("%s\n", to_hex(kp.pub).c_str());
  return 0;
}

std::optional<crypto::noise::KeyPair> load_key(const std::string& file) {
  FILE* f = std::fopen(file.c_str(), "r");
  if (f == nullptr) return std::nullopt;
  char buf[80] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  auto bytes = from_hex(std::string_view(buf, n).substr(0, 64));
  secure_wipe(buf, sizeof buf);
  if (!bytes || bytes->size() != 32) return std::nullopt;
  auto kp =
      crypto::noise::KeyPair::from_private(std::span<const std::uint8_t, 32>(bytes->data(), 32));
  secure_wipe(bytes->data(), bytes->size());
  return kp;
}

// The demo's datapath: libie's SA table (receive SAs with replay windows) and send SA.
struct Datapath {
  crypto::RxSaTable rx;
  std::optional<crypto::TxSa> tx;

  // Seals an ILP packet (service ip, connection id, inner bytes) into out; 0 if no SA.
  std::size_t seal(std::uint64_t conn, ConstByteSpan inner, ByteSpan out) {
    if (!tx) return 0;
    return tx->seal_ilp({static_cast<std::uint16_t>(wire::ServiceId::ip), conn, 0}, {}, inner, out);
  }
};

int run(bool initiator, const crypto::noise::KeyPair& key, const sockaddr_in& local,
        std::optional<sockaddr_in> remote, const crypto::noise::PublicKey& peer_pub, int packets) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
    say("cannot bind %s: %s", addr_str(local).c_str(), std::strerror(errno));
    return 1;
  }
  sockaddr_in bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  say("UDP socket on %s; my static key %s", addr_str(bound).c_str(),
      to_hex(key.pub).substr(0, 16).c_str());

  psp::RxKeyring ring;
  assoc::Config cfg;
  cfg.static_key = key.clone();
  assoc::Node node(std::move(cfg), ring);
  Datapath dp;
  const auto now0 = Clock::now();
  assoc::PeerId peer = 0;
  if (initiator) {
    peer = node.add_peer(peer_pub, to_addr(*remote), /*connect=*/true, now0);
    say("-> handshake initiation (Noise_IK_25519_ChaChaPoly_BLAKE2b) to %s",
        addr_str(*remote).c_str());
  } else {
    peer = node.add_peer(peer_pub, assoc::Addr{}, /*connect=*/false, now0);
    say("waiting for peer %s...", to_hex(peer_pub).substr(0, 16).c_str());
  }

  int sent = 0, echoed = 0, received = 0;
  bool done = false, failed = false;
  const auto deadline = now0 + 15s;
  std::vector<std::uint8_t> buf(2048);
  auto flush = [&] {
    for (auto& d : node.take_datagrams()) {
      const sockaddr_in to = from_addr(d.to);
      const char* what = "datagram";
      switch (wire::classify(d.bytes)) {
        case wire::DatagramKind::handshake_init:
          what = "handshake initiation";
          break;
        case wire::DatagramKind::handshake_resp:
          what = "handshake response";
          break;
        case wire::DatagramKind::cookie_reply:
          what = "cookie reply";
          break;
        case wire::DatagramKind::control:
          what = "control message (encrypted)";
          break;
        default:
          break;
      }
      if (wire::classify(d.bytes) != wire::DatagramKind::control)
        say("-> %s, %zu bytes", what, d.bytes.size());
      ::sendto(fd, d.bytes.data(), d.bytes.size(), 0, reinterpret_cast<const sockaddr*>(&to),
               sizeof to);
    }
    for (auto& e : node.take_events()) {
      switch (e.type) {
        case assoc::EventType::established:
          say("handshake complete: peer %s authenticated",
              to_hex(e.remote_static).substr(0, 16).c_str());
          break;
        case assoc::EventType::rx_sa_install:
          if (!dp.rx.install(e.spi, *e.key, e.peer)) failed = true;
          say("receive SA installed: SPI 0x%08x (key derived from my PSP master key, %s)", e.spi,
              e.key->bytes.fingerprint().c_str());
          break;
        case assoc::EventType::rx_sa_retire:
          dp.rx.retire(e.spi);
          say("receive SA retired: SPI 0x%08x", e.spi);
          break;
        case assoc::EventType::tx_sa_install:
          dp.tx.emplace(std::move(crypto::TxSa::create(e.spi, *e.key).value()));
          say("send SA installed: SPI 0x%08x, key %s handed out by the peer", e.spi,
              e.key->bytes.fingerprint().c_str());
          break;
        case assoc::EventType::closed:
          say("peer closed the association");
          done = true;
          break;
        case assoc::EventType::dead:
          say("peer is dead (no keepalives)");
          failed = true;
          break;
        case assoc::EventType::service_message:
          break;
      }
    }
  };
  flush();

  while (!done && !failed) {
    const auto now = Clock::now();
    if (now > deadline) {
      say("timed out");
      failed = true;
      break;
    }
    if (auto dl = node.next_deadline(); dl && *dl <= now) node.on_timer(now);
    // Initiator: once it can send, send the ILP packets (a few per loop).
    if (initiator && dp.tx && sent < packets) {
      for (int i = 0; i < 8 && sent < packets; ++i) {
        const std::string text = "hello #" + std::to_string(sent + 1) + " over ILP";
        std::uint8_t pkt[256];
        const std::size_t n =
            dp.seal(static_cast<std::uint64_t>(sent + 1),
                    ConstByteSpan(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()),
                    ByteSpan(pkt, sizeof pkt));
        if (n == 0) break;
        if (sent < 3 || sent + 1 == packets) {
          say("-> ILP packet: SPI 0x%08x IV %llu, service ip, connection %d, \"%s\" (%zu bytes "
              "sealed)",
              dp.tx->spi(), static_cast<unsigned long long>(dp.tx->packets_sealed()), sent + 1,
              text.c_str(), n);
        } else if (sent == 3) {
          say("   ... (printing only the first and last packets)");
        }
        ::sendto(fd, pkt, n, 0, reinterpret_cast<const sockaddr*>(&*remote), sizeof *remote);
        node.note_data_tx(peer, 1, now);
        ++sent;
      }
    }
    flush();
    pollfd pfd{fd, POLLIN, 0};
    ::poll(&pfd, 1, 20);
    for (;;) {
      sockaddr_in from{};
      socklen_t flen = sizeof from;
      const ssize_t n =
          ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (n <= 0) break;
      const ByteSpan d(buf.data(), static_cast<std::size_t>(n));
      const auto t = Clock::now();
      if (wire::classify(d) != wire::DatagramKind::psp) {
        switch (wire::classify(d)) {
          case wire::DatagramKind::handshake_init:
            say("<- handshake initiation from %s", addr_str(from).c_str());
            break;
          case wire::DatagramKind::handshake_resp:
            say("<- handshake response from %s", addr_str(from).c_str());
            break;
          default:
            break;
        }
        node.on_datagram(d, to_addr(from), t);
        continue;
      }
      crypto::OpenedIlp opened;
      const auto r = dp.rx.open_ilp(d, &opened);
      if (r != wire::DropReason::none) {
        say("dropped a PSP packet: %s", std::string(wire::drop_reason_name(r)).c_str());
        continue;
      }
      node.note_data_rx(peer, t);
      const wire::IlpView& v = opened.ilp;
      const std::uint32_t spi = opened.spi;
      const std::string inner(reinterpret_cast<const char*>(v.inner.data()), v.inner.size());
      if (initiator) {
        ++echoed;
        if (echoed <= 3 || echoed == packets) {
          say("<- ILP echo: SPI 0x%08x, connection %llu, \"%s\"", spi,
              static_cast<unsigned long long>(v.header.connection_id), inner.c_str());
        }
        if (echoed == packets) {
          say("all %d packets echoed back; closing the association", packets);
          node.close(peer, t);
          flush();
          done = true;
        }
      } else {
        ++received;
        if (received <= 3) {
          say("<- ILP packet: SPI 0x%08x, service %s, connection %llu, \"%s\" -> echo", spi,
              std::string(wire::service_name(v.header.service_id).value_or("?")).c_str(),
              static_cast<unsigned long long>(v.header.connection_id), inner.c_str());
        }
        std::uint8_t pkt[256];
        const std::size_t m = dp.seal(v.header.connection_id, v.inner, ByteSpan(pkt, sizeof pkt));
        if (m != 0) ::sendto(fd, pkt, m, 0, reinterpret_cast<const sockaddr*>(&from), sizeof from);
        node.note_data_tx(peer, 1, t);
      }
    }
  }
  ::close(fd);
  std::uint64_t node_drops = node.drops().total();
  if (initiator) {
    say("summary: %d ILP packets sent, %d echoed back, %llu control-plane drops, %llu data "
        "drops",
        sent, echoed, static_cast<unsigned long long>(node_drops),
        static_cast<unsigned long long>(dp.rx.drops().total()));
    return !failed && echoed == packets ? 0 : 1;
  }
  say("summary: %d ILP packets received and echoed, %llu control-plane drops", received,
      static_cast<unsigned long long>(node_drops));
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage();
  if (args[0] == "genkey") {
    if (args.size() != 2) return usage();
    return genkey(args[1]);
  }
  if (args[0] != "initiator" && args[0] != "responder") return usage();
  const bool initiator = args[0] == "initiator";
  g_role = args[0];
  std::string key_file, listen = initiator ? "127.0.0.1:0" : "", connect, peer_hex;
  int packets = 20;
  for (std::size_t i = 1; i < args.size(); i += 2) {
    if (i + 1 >= args.size()) return usage();
    const std::string& k = args[i];
    const std::string& v = args[i + 1];
    if (k == "--key")
      key_file = v;
    else if (k == "--listen")
      listen = v;
    else if (k == "--connect")
      connect = v;
    else if (k == "--peer-pub")
      peer_hex = v;
    else if (k == "--packets")
      packets = std::atoi(v.c_str());
    else
      return usage();
  }
  auto key = load_key(key_file);
  if (!key) {
    std::fprintf(stderr, "ie-demo-peer: cannot read a private key from '%s'\n", key_file.c_str());
    return 2;
  }
  auto peer = from_hex(peer_hex);
  if (!peer || peer->size() != 32) {
    std::fprintf(stderr, "ie-demo-peer: --peer-pub must be 64 hex digits\n");
    return 2;
  }
  crypto::noise::PublicKey peer_pub;
  std::copy(peer->begin(), peer->end(), peer_pub.begin());
  auto local = parse_addr(listen);
  std::optional<sockaddr_in> remote;
  if (initiator) remote = parse_addr(connect);
  if (!local || (initiator && !remote) || packets < 1 || packets > 100000) {
    std::fprintf(stderr, "ie-demo-peer: bad --listen/--connect address or --packets count\n");
    return 2;
  }
  return run(initiator, *key, *local, remote, peer_pub, packets);
}
