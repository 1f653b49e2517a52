// ie-blast: the load program of the SN benchmarks (tests/bench/sn_forwarding.sh). A sender
// and a receiver in one program, in two encodings:
//   --plain  raw UDP datagrams (for the plain forwarder ie-udpfwd, or sender -> receiver);
//   --ilp    a host towards an SN, built from libie like a real host (ie-testhost's
//            HostLink, ie/link/host_link.hpp): Noise IK to the SN's key, registration of an inner
//            address with the SN's control service, then every packet an inner IPv4/UDP
//            packet sealed as PSP/ILP (service ip or null or any id, optional dest_sn TLV);
//            the receiver opens it and checks the inner header and destination.
//
//   ie-blast send --plain --to IP:PORT [--bind IP:PORT] [common]
//   ie-blast send --ilp --sn IP:PORT --sn-key B64 --addr A --dst B [--service ip|null|N]
//                 [--dest-sn DOM.SN] [--flows F] [--prefill N --prefill-rate PPS] [common]
//   ie-blast recv --plain --listen IP:PORT [common]
//   ie-blast recv --ilp --sn IP:PORT --sn-key B64 --addr A [--listen IP:PORT] [common]
//   common: --size BYTES (payload, default 64) --duration SEC --count N
//   send:   --rate PPS (0: as fast as possible) --batch N --sync-file PATH
//   recv:   --idle SEC --ready-file PATH --any-dst
//
// The payload (--size bytes, >= 32) carries a marker, a sequence number and the send time
// (CLOCK_MONOTONIC, shared by every process of the machine), so the receiver counts loss,
// duplicates and one-way latency (p50/p90/p99 from a log-linear histogram, ~3% buckets). In
// ILP mode --size is the inner UDP payload; the inner packet adds 28 bytes of IPv4/UDP
// header. Prefill packets (one per connection id, sent before the measured phase to fill an
// SN's decision cache) are flagged and counted apart.
//
// Output: one JSON line on stdout when done; progress and errors on stderr.
// Exit status: 0 ok, 1 failure (bind, association, registration), 2 usage.
#include <poll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ie/crypto/key_file.hpp"
#include "ie/io/udp.hpp"
#include "ie/link/host_link.hpp"
#include "ie/wire/ilp.hpp"
#include "ie/wire/service_id.hpp"
#include "ie/wire/tlv.hpp"
#include "testhost_packet.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using ie::ByteSpan;
using ie::ConstByteSpan;

constexpr std::size_t kBatchMax = ie::io::UdpSocket::kMaxBatch;
constexpr std::size_t kBufSize = 2048;
constexpr std::size_t kMinPayload = 32;
constexpr std::size_t kMaxPayload = 1400;
constexpr std::size_t kInnerHeaders = 20 + 8;  // IPv4 + UDP
constexpr std::uint8_t kMagic[4] = {'I', 'E', 'B', 'L'};
constexpr std::uint32_t kFlagPrefill = 1;

std::atomic<bool> g_stop{false};
void on_signal(int) {
  g_stop.store(true, std::memory_order_relaxed);
}

std::uint64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Options {
  bool send = false;
  bool ilp = false;
  std::string to, bind, listen, sn, sn_key, addr, dst, service = "ip", dest_sn, ready_file;
  std::string sync_file;
  bool any_dst = false;
  std::size_t size = 64;
  double rate = 0, duration = 0, idle = 1.0, prefill_rate = 200000;
  std::uint64_t count = 0, flows = 1, prefill = 0;
  std::size_t batch = kBatchMax;
};

// ---- payload and inner packet ------------------------------------------------------------

void write_payload(std::uint8_t* p, std::uint32_t flags, std::uint64_t seq, std::uint64_t ts) {
  std::memcpy(p, kMagic, 4);
  ie::store_le32(p + 4, flags);
  ie::store_le64(p + 8, seq);
  ie::store_le64(p + 16, ts);
}

// IPv4 (checksummed, proto UDP) + UDP (checksum 0) + payload of `size` filler bytes.
std::vector<std::uint8_t> inner_template(std::uint32_t src, std::uint32_t dst, std::size_t size) {
  std::vector<std::uint8_t> p(kInnerHeaders + size, 0);
  p[0] = 0x45;
  ie::store_be16(p.data() + 2, static_cast<std::uint16_t>(p.size()));
  p[8] = 64;
  p[9] = 17;
  ie::store_be32(p.data() + 12, src);
  ie::store_be32(p.data() + 16, dst);
  ie::store_be16(p.data() + 10, ie::tools::ipv4_header_checksum(p.data()));
  ie::store_be16(p.data() + 20, 40000);
  ie::store_be16(p.data() + 22, 40001);
  ie::store_be16(p.data() + 24, static_cast<std::uint16_t>(8 + size));
  for (std::size_t i = kInnerHeaders + kMinPayload; i < p.size(); ++i)
    p[i] = static_cast<std::uint8_t>(i);
  return p;
}

// ---- receive statistics ----------------------------------------------------------------

// Log-linear latency histogram: exact below 64 ns, then 32 buckets per power of two.
class Histogram {
 public:
  void add(std::uint64_t v) {
    ++counts_[index(v)];
    ++n_;
    max_ = std::max(max_, v);
  }
  std::uint64_t count() const { return n_; }
  std::uint64_t max() const { return max_; }
  // The value at quantile q (bucket midpoint).
  std::uint64_t quantile(double q) const {
    if (n_ == 0) return 0;
    const auto target = static_cast<std::uint64_t>(q * static_cast<double>(n_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= target) return std::min(midpoint(i), max_);
    }
    return max_;
  }

 private:
  static constexpr std::size_t kSub = 32;
  static std::size_t index(std::uint64_t v) {
    if (v < 64) return static_cast<std::size_t>(v);
    const unsigned e = 63u - static_cast<unsigned>(std::countl_zero(v));  // >= 6
    return 64 + (e - 6) * kSub + static_cast<std::size_t>((v >> (e - 5)) & (kSub - 1));
  }
  static std::uint64_t midpoint(std::size_t i) {
    if (i < 64) return i;
    const std::size_t e = (i - 64) / kSub + 6, sub = (i - 64) % kSub;
    const std::uint64_t lo = (std::uint64_t{1} << e) + (std::uint64_t{sub} << (e - 5));
    return lo + (std::uint64_t{1} << (e - 6));
  }
  std::array<std::uint64_t, 64 + 58 * kSub> counts_{};
  std::uint64_t n_ = 0, max_ = 0;
};

struct RecvStats {
  std::uint64_t measured = 0, prefill = 0, bad = 0, duplicates = 0, out_of_order = 0;
  std::uint64_t first_ns = 0, last_ns = 0, min_seq = UINT64_MAX, max_seq = 0;
  Histogram latency;
  std::vector<std::uint64_t> seen;  // bitmap of measured sequence numbers (bounded)
  static constexpr std::uint64_t kMaxTrackedSeq = std::uint64_t{1} << 28;

  void packet(ConstByteSpan payload, std::uint64_t t) {
    if (payload.size() < kMinPayload || std::memcmp(payload.data(), kMagic, 4) != 0) {
      ++bad;
      return;
    }
    const std::uint32_t flags = ie::load_le32(payload.data() + 4);
    const std::uint64_t seq = ie::load_le64(payload.data() + 8);
    const std::uint64_t sent = ie::load_le64(payload.data() + 16);
    if (flags & kFlagPrefill) {
      ++prefill;
      return;
    }
    if (seq < kMaxTrackedSeq) {
      const std::size_t word = static_cast<std::size_t>(seq / 64);
      if (word >= seen.size()) seen.resize(std::max(word + 1, seen.size() * 2), 0);
      const std::uint64_t bit = std::uint64_t{1} << (seq % 64);
      if (seen[word] & bit) {
        ++duplicates;
        return;
      }
      seen[word] |= bit;
    }
    if (measured > 0 && seq < max_seq) ++out_of_order;
    ++measured;
    if (first_ns == 0) first_ns = t;
    last_ns = t;
    min_seq = std::min(min_seq, seq);
    max_seq = std::max(max_seq, seq);
    latency.add(t > sent ? t - sent : 0);
  }

  nlohmann::json json() const {
    nlohmann::json j;
    j["received"] = measured;
    j["prefill_received"] = prefill;
    j["bad"] = bad;
    j["duplicates"] = duplicates;
    j["out_of_order"] = out_of_order;
    // Gaps inside the received range; packets lost after the last one received show up only
    // against the sender's count.
    j["lost_inside"] = measured == 0 ? 0 : (max_seq - min_seq + 1) - measured;
    j["max_seq"] = measured == 0 ? 0 : max_seq;
    j["first_ns"] = first_ns;
    j["last_ns"] = last_ns;
    const double span = static_cast<double>(last_ns - first_ns) / 1e9;
    j["rate_pps"] = measured > 1 && span > 0 ? static_cast<double>(measured - 1) / span : 0.0;
    j["latency_ns"] = {{"p50", latency.quantile(0.50)},
                       {"p90", latency.quantile(0.90)},
                       {"p99", latency.quantile(0.99)},
                       {"max", latency.max()}};
    return j;
  }
};

// ---- the two modes -----------------------------------------------------------------------

// A host associated with the SN and registered (bounded wait); nullptr after printing why.
std::unique_ptr<ie::link::HostLink> connect_host(const Options& o, const std::string& bind,
                                                 ie::link::PeerId* sn) {
  ie::link::LinkOptions lo;
  lo.bind = bind;
  lo.key = ie::crypto::noise::KeyPair::generate();
  // Frequent keepalives: a forwarder saturated by a benchmark drops some of them in its full
  // receive queue, and a host that only receives must not be declared dead for that.
  lo.timers.keepalive = std::chrono::seconds(2);
  auto link = ie::link::HostLink::create(std::move(lo));
  if (!link) {
    std::fprintf(stderr, "ie-blast: %s\n", link.error().to_string().c_str());
    return nullptr;
  }
  // Benchmark rates need deep socket queues (capped by net.core.[rw]mem_max).
  const int bytes = 4 << 20;
  ::setsockopt((*link)->socket().fd(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  ::setsockopt((*link)->socket().fd(), SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  auto peer = (*link)->add_sn(o.sn, *ie::crypto::key_from_base64(o.sn_key), {o.addr});
  if (!peer) {
    std::fprintf(stderr, "ie-blast: %s\n", peer.error().to_string().c_str());
    return nullptr;
  }
  *sn = *peer;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!(*link)->sn_ready()) {
    if (!(*link)->last_register_error().empty()) {
      std::fprintf(stderr, "ie-blast: register %s with %s: %s\n", o.addr.c_str(), o.sn.c_str(),
                   (*link)->last_register_error().c_str());
      return nullptr;
    }
    if (Clock::now() >= deadline || g_stop.load()) {
      std::fprintf(stderr, "ie-blast: no association with %s within 10 s\n", o.sn.c_str());
      return nullptr;
    }
    (*link)->poll_once(std::chrono::milliseconds(20), [](ie::link::InPacket&) {});
  }
  return std::move(*link);
}

// Control-plane traffic (keepalives, key offers) and timers, without blocking.
void service_host(ie::link::HostLink& link) {
  link.poll_once(std::chrono::milliseconds(0), [](ie::link::InPacket&) {});
}

int run_send(const Options& o) {
  std::unique_ptr<ie::link::HostLink> host;
  ie::link::PeerId sn = 0;
  std::optional<ie::io::UdpSocket> plain;
  sockaddr_storage to{};
  socklen_t to_len = 0;
  std::uint32_t src_v4 = 0, dst_v4 = 0;
  std::uint16_t service = 0;
  if (o.ilp) {
    host = connect_host(o, o.bind.empty() ? "0.0.0.0:0" : o.bind, &sn);
    if (!host) return 1;
    src_v4 = *ie::tools::parse_ipv4(o.addr);
    dst_v4 = *ie::tools::parse_ipv4(o.dst);
    service = ie::wire::service_from_name(o.service).value_or(
        static_cast<std::uint16_t>(std::strtoul(o.service.c_str(), nullptr, 0)));
  } else {
    ie::io::UdpOptions uo;
    uo.send_buffer = 4 << 20;
    auto s = ie::io::UdpSocket::bind(o.bind.empty() ? "0.0.0.0:0" : o.bind, uo);
    auto dst = ie::io::parse_endpoint(o.to, &to_len);
    if (!s || !dst) {
      std::fprintf(stderr, "ie-blast: %s\n", (!s ? s.error() : dst.error()).to_string().c_str());
      return 1;
    }
    plain.emplace(std::move(*s));
    to = *dst;
  }
  ie::io::UdpSocket& sock = o.ilp ? host->socket() : *plain;

  // Plain: datagrams built in mem. ILP: inner packets built in mem, sealed by the HostLink.
  std::vector<std::uint8_t> mem(kBatchMax * kBufSize);
  std::vector<ie::io::Datagram> batch(kBatchMax);
  std::vector<ie::link::OutPacket> out(kBatchMax);
  const std::vector<std::uint8_t> inner =
      o.ilp ? inner_template(src_v4, dst_v4, o.size) : std::vector<std::uint8_t>();
  std::vector<std::uint8_t> plain_payload(o.size);
  for (std::size_t i = kMinPayload; i < o.size; ++i)
    plain_payload[i] = static_cast<std::uint8_t>(i);
  ie::wire::Tlv dest_sn_tlv{
      static_cast<std::uint8_t>(ie::wire::TlvType::dest_sn),
      ConstByteSpan(reinterpret_cast<const std::uint8_t*>(o.dest_sn.data()), o.dest_sn.size())};
  const std::span<const ie::wire::Tlv> tlvs(&dest_sn_tlv, o.dest_sn.empty() ? 0 : 1);

  std::uint64_t send_failed = 0;
  // Builds packet `seq` of the phase into slot i (plain: the datagram; ILP: the inner packet
  // and its header, sealed at send time).
  auto build = [&](std::size_t i, std::uint64_t seq, std::uint64_t conn, std::uint32_t flags) {
    std::uint8_t* buf = mem.data() + i * kBufSize;
    const std::uint64_t t = now_ns();
    if (!o.ilp) {
      std::memcpy(buf, plain_payload.data(), o.size);
      write_payload(buf, flags, seq, t);
      ie::io::Datagram& g = batch[i];
      g.buf = ByteSpan(buf, kBufSize);
      g.len = o.size;
      g.peer = to;
      g.peer_len = to_len;
      g.segment_size = 0;
      return;
    }
    std::memcpy(buf, inner.data(), inner.size());
    write_payload(buf + kInnerHeaders, flags, seq, t);
    out[i].header = {service, conn, 0};
    out[i].tlvs = tlvs;
    out[i].inner = ConstByteSpan(buf, inner.size());
  };
  // Sends slots [0, n); returns how many the kernel took (a full socket buffer: wait and
  // retry, bounded; ILP packets not taken are sealed again with new IVs on the retry).
  auto send = [&](std::size_t n) {
    std::size_t done = 0;
    for (int attempt = 0; done < n && attempt < 1000 && !g_stop.load(); ++attempt) {
      std::size_t took = 0;
      if (o.ilp) {
        took = host->send(sn, std::span<const ie::link::OutPacket>(out.data() + done, n - done));
      } else {
        auto s = sock.send_batch(std::span<const ie::io::Datagram>(batch.data() + done, n - done));
        if (!s) break;
        took = *s;
      }
      done += took;
      if (done < n) {
        if (o.ilp && !host->can_send(sn)) break;  // association lost: count as failed
        pollfd w{sock.fd(), POLLOUT, 0};
        ::poll(&w, 1, 1);
      }
    }
    send_failed += n - done;
    return done;
  };

  // One phase: `total` packets (0: unbounded) for at most `seconds` (0: unbounded) at `rate`
  // (0: max), connection id of packet k = conn(k).
  auto phase = [&](std::uint64_t total, double seconds, double rate, std::uint32_t flags,
                   auto conn) {
    const std::uint64_t start = now_ns();
    const std::uint64_t end =
        seconds > 0 ? start + static_cast<std::uint64_t>(seconds * 1e9) : UINT64_MAX;
    std::uint64_t sent = 0, next_service = start;
    while (!g_stop.load(std::memory_order_relaxed) && (total == 0 || sent < total)) {
      const std::uint64_t t = now_ns();
      if (t >= end) break;
      if (host && t >= next_service) {  // keepalives, key offers: every 10 ms
        service_host(*host);
        next_service = t + 10000000;
      }
      std::size_t n = o.batch;
      if (rate > 0) {
        const auto due = static_cast<std::uint64_t>(static_cast<double>(t - start) * rate / 1e9);
        if (due <= sent) {
          const auto next =
              start + static_cast<std::uint64_t>(static_cast<double>(sent + 1) * 1e9 / rate);
          timespec ts{static_cast<time_t>(next / 1000000000ull),
                      static_cast<long>(next % 1000000000ull)};
          ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
          continue;
        }
        n = static_cast<std::size_t>(std::min<std::uint64_t>(n, due - sent));
      }
      if (total != 0) n = static_cast<std::size_t>(std::min<std::uint64_t>(n, total - sent));
      for (std::size_t i = 0; i < n; ++i)
        build(i, sent + i, conn(sent + i), flags);
      send(n);
      sent += n;
    }
    return std::pair<std::uint64_t, std::uint64_t>{sent, now_ns() - start};
  };

  std::uint64_t prefill_sent = 0;
  if (o.prefill > 0) {
    prefill_sent =
        phase(o.prefill, 0, o.prefill_rate, kFlagPrefill, [&](std::uint64_t k) { return k; }).first;
    prefill_sent -= std::min(prefill_sent, send_failed);
    send_failed = 0;
    // Let the SN and the receiver drain their queues before the measured phase.
    const auto settle_end = now_ns() + 300000000ull;
    while (now_ns() < settle_end && !g_stop.load()) {
      if (host) service_host(*host);
      ::usleep(10000);
    }
  }
  if (!o.sync_file.empty() && (o.count > 0 || o.duration > 0)) {
    // Hand-shake with the benchmark script: it snapshots the forwarder's counters while
    // nothing is in flight, then removes the file (bounded wait).
    std::ofstream(o.sync_file) << "measure\n";
    const auto sync_end = now_ns() + 30000000000ull;
    while (::access(o.sync_file.c_str(), F_OK) == 0 && now_ns() < sync_end && !g_stop.load()) {
      if (host) service_host(*host);
      ::usleep(5000);
    }
  }
  const double cpu0 = cpu_seconds();
  const std::uint64_t flows = std::max<std::uint64_t>(1, o.flows);
  // Without --count and --duration the run is the prefill alone.
  const bool measure = o.count > 0 || o.duration > 0;
  const auto [sent, elapsed] =
      measure ? phase(o.count, o.duration, o.rate, 0, [&](std::uint64_t k) { return k % flows; })
              : std::pair<std::uint64_t, std::uint64_t>{0, 0};
  const double cpu = cpu_seconds() - cpu0;
  if (host) {
    // A forwarder behind us may still hold a full queue: give it time to drain before the
    // CLOSE (sent when `host` goes away), which would otherwise be lost in that queue.
    const auto drain_end = now_ns() + 200000000ull;
    while (now_ns() < drain_end && !g_stop.load()) {
      service_host(*host);
      ::usleep(10000);
    }
  }

  nlohmann::json j;
  j["mode"] = "send";
  j["encoding"] = o.ilp ? "ilp" : "plain";
  j["sent"] = sent - send_failed;
  j["send_failed"] = send_failed;
  j["prefill_sent"] = prefill_sent;
  j["seconds"] = static_cast<double>(elapsed) / 1e9;
  j["rate_pps"] = elapsed > 0 ? static_cast<double>(sent) * 1e9 / static_cast<double>(elapsed) : 0;
  j["cpu_seconds"] = cpu;  // measured phase only
  j["payload_bytes"] = o.size;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

int run_recv(const Options& o) {
  std::unique_ptr<ie::link::HostLink> host;
  ie::link::PeerId sn = 0;
  std::optional<ie::io::UdpSocket> plain;
  std::uint32_t my_v4 = 0;
  if (o.ilp) {
    host = connect_host(o, o.listen.empty() ? "0.0.0.0:0" : o.listen, &sn);
    if (!host) return 1;
    my_v4 = *ie::tools::parse_ipv4(o.addr);
  } else {
    ie::io::UdpOptions uo;
    uo.recv_buffer = 4 << 20;
    auto s = ie::io::UdpSocket::bind(o.listen, uo);
    if (!s) {
      std::fprintf(stderr, "ie-blast: %s\n", s.error().to_string().c_str());
      return 1;
    }
    plain.emplace(std::move(*s));
  }
  if (!o.ready_file.empty()) std::ofstream(o.ready_file) << "ready\n";

  std::vector<std::uint8_t> mem(kBatchMax * kBufSize);
  std::vector<ie::io::Datagram> batch(kBatchMax);
  RecvStats st;
  std::uint64_t wrong_dest = 0, datagrams = 0, t = 0;
  // ILP: HostLink opens and authenticates; we check the inner packet and count it.
  const ie::link::HostLink::DataHandler on_data = [&](ie::link::InPacket& in) {
    if (t == 0) t = now_ns();  // the batch's receive time, as in plain mode
    ++datagrams;
    const ConstByteSpan p = in.inner;
    const std::size_t ihl = p.empty() ? 0 : (p[0] & 0x0f) * 4u;
    if (p.size() < 20 || (p[0] >> 4) != 4 || ihl < 20 || p.size() < ihl + 8) {
      ++st.bad;
      return;
    }
    if (!o.any_dst && ie::load_be32(p.data() + 16) != my_v4) {
      ++wrong_dest;
      return;
    }
    st.packet(p.subspan(ihl + 8), t);
  };
  const std::uint64_t start = now_ns();
  const std::uint64_t end =
      o.duration > 0 ? start + static_cast<std::uint64_t>(o.duration * 1e9) : UINT64_MAX;
  const auto idle = static_cast<std::uint64_t>(o.idle * 1e9);
  std::uint64_t last_rx = 0;
  const double cpu0 = cpu_seconds();
  while (!g_stop.load(std::memory_order_relaxed)) {
    const std::uint64_t t0 = now_ns();
    if (t0 >= end) break;
    if (o.count > 0 && st.measured >= o.count) break;
    // Idle counts from the last measured packet, or the last unreadable one (a sealing
    // forwarder's copies, which a plain receiver cannot open: ie-udpfwd --seal).
    if ((st.measured > 0 || st.bad > 0) && idle > 0 && t0 - last_rx > idle) break;
    if (o.ilp) {
      // One batch (or a 10 ms wait), timestamped when it was read; timers serviced.
      t = 0;
      host->poll_once(std::chrono::milliseconds(10), on_data);
      if (t != 0) last_rx = t;
      continue;
    }
    pollfd p{plain->fd(), POLLIN, 0};
    if (::poll(&p, 1, 10) <= 0) continue;
    for (std::size_t i = 0; i < kBatchMax; ++i) {
      batch[i].buf = ByteSpan(mem.data() + i * kBufSize, kBufSize);
      batch[i].len = 0;
    }
    auto n = plain->recv_batch(batch);
    if (!n || *n == 0) continue;
    t = now_ns();
    last_rx = t;
    datagrams += *n;
    for (std::size_t i = 0; i < *n; ++i)
      st.packet(ConstByteSpan(batch[i].buf.data(), batch[i].len), t);
  }
  const double cpu = cpu_seconds() - cpu0;

  nlohmann::json j = st.json();
  j["mode"] = "recv";
  j["encoding"] = o.ilp ? "ilp" : "plain";
  j["datagrams"] = datagrams;
  j["cpu_seconds"] = cpu;
  if (o.ilp) {
    j["wrong_destination"] = wrong_dest;
    j["sa_drops"] = host->data_drops().total();
    j["control_drops"] = host->control_drops().total();
    j["reassociations"] = host->stats().reassociations;
  }
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ie-blast: load program for the SN benchmarks (plain UDP or ILP via an SN)"};
  app.require_subcommand(1);
  Options o;
  bool plain_set = false;
  auto* send = app.add_subcommand("send", "send fixed-size payloads in batches");
  auto* recv = app.add_subcommand("recv", "receive, count, measure loss and latency");
  for (auto* c : {send, recv}) {
    auto* plain_flag = c->add_flag("--plain", plain_set, "raw UDP datagrams (the default)");
    auto* ilp_flag = c->add_flag("--ilp", o.ilp, "ILP through an SN (associate, register, seal)");
    plain_flag->excludes(ilp_flag);
    c->add_option("--size", o.size, "payload bytes")->check(CLI::Range(kMinPayload, kMaxPayload));
    c->add_option("--duration", o.duration, "seconds (send: measured phase; recv: hard bound)")
        ->check(CLI::Range(0.0, 3600.0));
    c->add_option("--count", o.count, "packets (send: measured phase; recv: stop after)");
    c->add_option("--sn", o.sn, "ILP: the SN's endpoint IP:PORT");
    c->add_option("--sn-key", o.sn_key, "ILP: the SN's public key (base64, `iesn pubkey`)");
    c->add_option("--addr", o.addr, "ILP: this host's inner IPv4 address (registered)");
    c->add_option("--ready-file", o.ready_file, "recv: written once ready to receive");
  }
  send->add_option("--to", o.to, "plain: destination IP:PORT");
  send->add_option("--bind", o.bind, "local endpoint (default 0.0.0.0:0)");
  send->add_option("--rate", o.rate, "packets per second (0: as fast as possible)")
      ->check(CLI::Range(0.0, 1e8));
  send->add_option("--batch", o.batch, "datagrams per sendmmsg")
      ->check(CLI::Range(std::size_t{1}, kBatchMax));
  send->add_option("--dst", o.dst, "ILP: inner destination IPv4 address");
  send->add_option("--service", o.service, "ILP: service name or number (default ip)");
  send->add_option("--dest-sn", o.dest_sn, "ILP: dest_sn TLV (DOM.SN)");
  send->add_option("--flows", o.flows, "ILP: connection ids 0..F-1, round robin")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 32));
  send->add_option("--prefill", o.prefill,
                   "ILP: first send one flagged packet per connection id 0..N-1");
  send->add_option("--prefill-rate", o.prefill_rate, "packets per second during prefill")
      ->check(CLI::Range(1.0, 1e8));
  send->add_option("--sync-file", o.sync_file,
                   "before the measured phase: create this file, wait until it is removed");
  recv->add_option("--listen", o.listen, "local endpoint (plain: required)");
  recv->add_flag("--any-dst", o.any_dst, "ILP: accept any inner destination (multicast copies)");
  recv->add_option("--idle", o.idle, "stop this many seconds after the last packet (0: never)")
      ->check(CLI::Range(0.0, 3600.0));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  o.send = send->parsed();
  auto usage = [](const char* what) {
    std::fprintf(stderr, "ie-blast: %s\n", what);
    return 2;
  };
  if (o.ilp) {
    if (o.sn.empty() || !ie::crypto::key_from_base64(o.sn_key))
      return usage("--ilp needs --sn and --sn-key (base64 of 32 bytes)");
    if (!ie::tools::parse_ipv4(o.addr)) return usage("--ilp needs --addr (an IPv4 address)");
    if (o.send && !ie::tools::parse_ipv4(o.dst))
      return usage("send --ilp needs --dst (an IPv4 address)");
    if (o.send && !ie::wire::service_from_name(o.service) &&
        (o.service.empty() || o.service.find_first_not_of("0123456789") != std::string::npos ||
         std::strtoul(o.service.c_str(), nullptr, 10) > 0xffff))
      return usage("--service: a service name (ip, null, ...) or a number 0-65535");
  } else {
    if (o.send && o.to.empty()) return usage("send --plain needs --to");
    if (!o.send && o.listen.empty()) return usage("recv --plain needs --listen");
    if (o.prefill > 0 || o.flows > 1) return usage("--prefill and --flows are ILP options");
  }
  if (o.send && o.count == 0 && o.duration == 0 && o.prefill == 0)
    return usage("send needs --count, --duration or --prefill (every run is bounded)");
  if (!o.send && o.duration == 0)
    return usage("recv needs --duration (the hard bound of every run)");

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  return o.send ? run_send(o) : run_recv(o);
}
