// ie-testhost: a host simulated with libie only (the real daemon ied comes later), for the SN
// netns tests (tests/netns/) and by hand. It associates with its SN (Noise IK to the SN's
// published key), registers its inner address with the SN's control service, sends test
// packets (inner IPv4/UDP carrying a marker, a sequence number and the send time; see
// testhost_packet.hpp) and receives, checks, counts and optionally echoes them. A restarted
// SN is noticed (dead_after), the host re-associates and re-registers, traffic resumes.
//
//   ie-testhost --genkey FILE                        write a private key (0600), print public
//   ie-testhost --sn IP:PORT --sn-key B64 --addr A [--key FILE] [--bind IP:PORT]
//               [--to B --dest-sn DOM.SN --service ip|null|N --count N --rate PPS
//                --flows F --size BYTES --marker TEXT]
//               [--expect N] [--echo [--reply-sn DOM.SN]] [--duration S] [--linger S]
//               [--ready-file PATH] [--json]
//   ie-testhost --listen --bind IP:PORT --key FILE [...]   accept hosts directly (no SN):
//               they associate with this host's key and register with it
//   ie-testhost --replay PCAP --to-sn IP:PORT [--replay-kind all|data|control] [--rate PPS]
//               resend every UDP payload of a capture to the SN; prints the count
//
// Timers for tests: --keepalive-ms, --dead-after-ms, --retry-ms, --rekey-s.
// Ends when: everything was sent and --expect packets were received (then --linger more
// seconds of receiving), or after --duration, or on SIGINT/SIGTERM. With --json, one JSON
// summary line on stdout. Exit status: 0 ok; 1 not associated (or not registered), fewer
// than --expect packets received, or not everything sent before --duration; 2 usage.
#include <sodium.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ie/crypto/key_file.hpp"
#include "ie/link/host_link.hpp"
#include "ie/wire/demux.hpp"
#include "ie/wire/drop_reason.hpp"
#include "ie/wire/service_id.hpp"
#include "ie/wire/tlv.hpp"
#include "testhost_packet.hpp"
#include "testhost_pcap.hpp"

namespace {

using namespace ie::tools;
using namespace ie::link;
using ie::ByteSpan;
using ie::ConstByteSpan;
using ie::crypto::key_from_base64;
using ie::crypto::key_to_base64;
using nlohmann::json;

std::atomic<bool> g_stop{false};
void on_signal(int) {
  g_stop.store(true, std::memory_order_relaxed);
}

std::uint64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

struct Options {
  std::string genkey;
  std::string key_file;
  std::string sn;
  std::string sn_key;
  std::string addr;
  std::string bind = "0.0.0.0:0";
  bool listen = false;

  std::string to;
  std::string dest_sn;
  std::string service = "ip";
  std::uint64_t count = 0;
  double rate = 1000;
  unsigned flows = 1;
  std::size_t size = 64;
  std::string marker = "IE-TESTHOST";

  std::uint64_t expect = 0;
  bool echo = false;
  std::string reply_sn;
  double duration = 30;
  double linger = 0;
  std::string ready_file;
  bool json = false;

  unsigned keepalive_ms = 1000;
  unsigned dead_after_ms = 3000;
  unsigned retry_ms = 250;
  unsigned rekey_s = 120;

  std::string replay;
  std::string to_sn;
  std::string replay_kind = "all";
};

std::optional<std::uint16_t> parse_service(const std::string& s) {
  if (auto id = ie::wire::service_from_name(s)) return *id;
  try {
    std::size_t used = 0;
    const unsigned long v = std::stoul(s, &used, 0);
    if (used == s.size() && v <= 0xffff) return static_cast<std::uint16_t>(v);
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

json drops_json(const ie::crypto::SaDropCounters& c) {
  json j = json::object();
  for (std::size_t i = 1; i < ie::wire::kDropReasonCount; ++i) {
    const auto r = static_cast<ie::wire::DropReason>(i);
    if (c.get(r) != 0) j[std::string(ie::wire::drop_reason_name(r))] = c.get(r);
  }
  return j;
}

// ---- replay mode -------------------------------------------------------------------------

int run_replay(const Options& o) {
  auto pc = read_pcap(o.replay);
  if (!pc) {
    std::cerr << "ie-testhost: " << pc.error().to_string() << "\n";
    return 1;
  }
  socklen_t to_len = 0;
  auto to = ie::io::parse_endpoint(o.to_sn, &to_len);
  if (!to) {
    std::cerr << "ie-testhost: --to-sn: " << to.error().to_string() << "\n";
    return 2;
  }
  auto sock = ie::io::UdpSocket::bind(o.bind);
  if (!sock) {
    std::cerr << "ie-testhost: bind " << o.bind << ": " << sock.error().to_string() << "\n";
    return 1;
  }
  std::uint64_t sent = 0, data = 0, control = 0, left_out = 0, refused = 0;
  const auto start = Clock::now();
  for (const auto& u : pc->udp) {
    if (g_stop.load(std::memory_order_relaxed)) break;
    const bool is_data = ie::wire::classify(u.payload) == ie::wire::DatagramKind::psp;
    if ((o.replay_kind == "data" && !is_data) || (o.replay_kind == "control" && is_data)) {
      ++left_out;
      continue;
    }
    if (o.rate > 0) {  // pace, so the SN's socket buffer does not overflow
      const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(double(sent) / o.rate));
      std::this_thread::sleep_until(due);
    }
    ie::Bytes copy = u.payload;
    ie::io::Datagram g;
    g.buf = ByteSpan(copy.data(), copy.size());
    g.len = copy.size();
    g.peer = *to;
    g.peer_len = to_len;
    const auto before = sock->send_dropped();
    auto r = sock->send_batch(std::span<const ie::io::Datagram>(&g, 1));
    if (!r || *r != 1 || sock->send_dropped() != before) {
      ++refused;
      continue;
    }
    ++sent;
    (is_data ? data : control)++;
  }
  if (o.json) {
    std::cout << json{{"replayed", sent},       {"data", data},
                      {"control", control},     {"left_out", left_out},
                      {"refused", refused},     {"records", pc->records},
                      {"skipped", pc->skipped}, {"link_type", pc->link_type}}
                     .dump()
              << std::endl;
  } else {
    std::cout << "replayed " << sent << " UDP datagrams (" << data << " data, " << control
              << " control; " << left_out << " left out, " << refused << " refused) from "
              << o.replay << " (" << pc->records << " records, " << pc->skipped << " not UDP) to "
              << o.to_sn << "\n";
  }
  return refused == 0 ? 0 : 1;
}

// ---- host mode ---------------------------------------------------------------------------

struct SourceStats {
  SeqTracker seq;
  PayloadKind kind = PayloadKind::data;
};

class TestHost {
 public:
  explicit TestHost(const Options& o) : o_(o) {}
  int run();

 private:
  void on_data(InPacket& in);
  void send_due(Clock::time_point now);
  void flush_echoes();
  json summary(Clock::time_point now) const;

  const Options& o_;
  std::unique_ptr<HostLink> link_;
  std::uint32_t src_ = 0, dst_ = 0;
  std::uint16_t service_ = 1;
  std::vector<std::uint64_t> conn_ids_;
  std::vector<ie::wire::Tlv> data_tlvs_, echo_tlvs_;

  bool ready_ = false;
  Clock::time_point start_, ready_at_, send_start_;
  std::uint64_t next_seq_ = 0, sent_ = 0, unsent_ = 0;

  std::map<std::uint32_t, SourceStats> sources_;
  std::uint64_t not_test_ = 0, marker_mismatch_ = 0, echoed_ = 0, echo_failed_ = 0;
  std::optional<double> rtt_first_us_, rtt_last_us_;
  double rtt_max_us_ = 0;

  struct EchoSlot {
    PeerId peer = 0;
    OutPacket out;
  };
  std::vector<std::uint8_t> echo_bufs_ = std::vector<std::uint8_t>(HostLink::kBatch * 2048);
  std::vector<EchoSlot> echoes_;
  std::vector<std::uint8_t> tx_buf_ = std::vector<std::uint8_t>(HostLink::kBatch * 2048);
};

std::uint64_t unique_total(const std::map<std::uint32_t, SourceStats>& s) {
  std::uint64_t n = 0;
  for (const auto& [a, st] : s)
    n += st.seq.unique();
  return n;
}

void TestHost::on_data(InPacket& in) {
  auto t = parse_test_packet(in.inner);
  if (!t) {
    ++not_test_;
    return;
  }
  if (!o_.marker.empty() && t->payload.marker != o_.marker) ++marker_mismatch_;
  SourceStats& s = sources_[t->src];
  s.kind = t->payload.kind;
  const auto seen = s.seq.add(t->payload.seq);
  if (t->payload.kind == PayloadKind::echo) {
    const double rtt = double(mono_ns() - t->payload.sent_ns) / 1000.0;
    if (!rtt_first_us_) rtt_first_us_ = rtt;
    rtt_last_us_ = rtt;
    rtt_max_us_ = std::max(rtt_max_us_, rtt);
    return;
  }
  if (!o_.echo || seen == SeqTracker::Seen::out_of_range) return;
  if (echoes_.size() >= HostLink::kBatch) flush_echoes();
  const std::size_t slot = echoes_.size();
  const ByteSpan buf(echo_bufs_.data() + slot * 2048, in.inner.size());
  std::copy(in.inner.begin(), in.inner.end(), buf.begin());
  make_echo_in_place(buf);
  EchoSlot e;
  e.peer = in.peer;
  e.out.header = in.header;  // same service and connection id, back the other way
  e.out.header.flags = 0;
  e.out.tlvs = echo_tlvs_;
  e.out.inner = buf;
  echoes_.push_back(e);
}

void TestHost::flush_echoes() {
  std::size_t i = 0;
  while (i < echoes_.size()) {
    // Consecutive echoes for one peer go out as one batch.
    std::size_t j = i;
    OutPacket batch[HostLink::kBatch];
    while (j < echoes_.size() && echoes_[j].peer == echoes_[i].peer) {
      batch[j - i] = echoes_[j].out;
      ++j;
    }
    const std::size_t n = j - i;
    const std::size_t sent = link_->send(echoes_[i].peer, std::span<const OutPacket>(batch, n));
    echoed_ += sent;
    echo_failed_ += n - sent;
    i = j;
  }
  echoes_.clear();
}

void TestHost::send_due(Clock::time_point now) {
  if (o_.count == 0 || next_seq_ >= o_.count || !ready_) return;
  std::uint64_t due = o_.count;
  if (o_.rate > 0) {
    const double elapsed = std::chrono::duration<double>(now - send_start_).count();
    due = std::min<std::uint64_t>(o_.count, static_cast<std::uint64_t>(elapsed * o_.rate) + 1);
  }
  const PeerId peer = *link_->sn_peer();
  for (int round = 0; round < 4 && next_seq_ < due; ++round) {  // bounded per wake-up
    if (!link_->can_send(peer)) {
      // No session (the SN died; re-association pending): these packets are due now and
      // cannot go. They are skipped, not queued, so the receiver sees the outage as a gap.
      unsent_ += due - next_seq_;
      next_seq_ = due;
      return;
    }
    const std::size_t n = std::min<std::uint64_t>(HostLink::kBatch, due - next_seq_);
    OutPacket batch[HostLink::kBatch];
    const std::uint64_t ts = mono_ns();
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t seq = next_seq_ + i;
      const auto flow = static_cast<std::uint16_t>(seq % conn_ids_.size());
      TestPayload p;
      p.kind = PayloadKind::data;
      p.flow = flow;
      p.seq = seq;
      p.sent_ns = ts;
      p.marker = o_.marker;
      const ByteSpan buf(tx_buf_.data() + i * 2048, 2048);
      const std::size_t len = write_test_packet(buf, src_, dst_, p, o_.size);
      batch[i].header.service_id = service_;
      batch[i].header.connection_id = conn_ids_[flow];
      batch[i].tlvs = data_tlvs_;
      batch[i].inner = ConstByteSpan(buf.data(), len);
    }
    const std::size_t took = link_->send(peer, std::span<const OutPacket>(batch, n));
    next_seq_ += took;
    sent_ += took;
    if (took < n) return;  // socket buffer full: the rest next time
  }
}

json TestHost::summary(Clock::time_point now) const {
  json per = json::object();
  std::uint64_t received = 0, unique = 0, dups = 0, ooo = 0, lost = 0, runs = 0, longest = 0;
  for (const auto& [addr, s] : sources_) {
    const bool echo = s.kind == PayloadKind::echo;
    // Echoes: what we sent is known. Data: up to the highest number seen.
    const auto l = s.seq.losses(echo ? next_seq_ : s.seq.end());
    const std::uint64_t missing =
        echo ? (sent_ > s.seq.unique() ? sent_ - s.seq.unique() : 0) : l.missing;
    per[ipv4_str(addr)] = {{"kind", echo ? "echo" : "data"},
                           {"received", s.seq.received()},
                           {"unique", s.seq.unique()},
                           {"duplicates", s.seq.duplicates()},
                           {"out_of_order", s.seq.out_of_order()},
                           {"out_of_range", s.seq.out_of_range()},
                           {"highest", s.seq.end() == 0 ? json(nullptr) : json(s.seq.end() - 1)},
                           {"lost", missing},
                           {"loss_runs", l.runs},
                           {"longest_loss_run", l.longest},
                           {"first_missing", l.missing ? json(l.first) : json(nullptr)}};
    received += s.seq.received();
    unique += s.seq.unique();
    dups += s.seq.duplicates();
    ooo += s.seq.out_of_order();
    lost += missing;
    runs += l.runs;
    longest = std::max(longest, l.longest);
  }
  const auto& st = link_->stats();
  auto ms = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  json j = {{"associated", st.associations > 0},
            {"registered", o_.sn.empty() ? json(nullptr) : json(link_->sn_ready())},
            {"ready_ms", ready_ ? json(ms(ready_at_ - start_)) : json(nullptr)},
            {"sent", sent_},
            {"unsent", unsent_},
            {"received", received},
            {"unique", unique},
            {"duplicates", dups},
            {"out_of_order", ooo},
            {"lost", lost},
            {"loss_runs", runs},
            {"longest_loss_run", longest},
            {"per_source", per},
            {"echoed", echoed_},
            {"echo_failed", echo_failed_},
            {"not_test", not_test_},
            {"marker_mismatch", marker_mismatch_},
            {"associations", st.associations},
            {"reassociations", st.reassociations},
            {"rekeys", st.rekeys},
            {"dead", st.dead},
            {"registrations", st.registrations},
            {"register_refusals", st.register_refusals},
            {"probes", st.probes},
            {"rtt_first_us", rtt_first_us_ ? json(*rtt_first_us_) : json(nullptr)},
            {"rtt_last_us", rtt_last_us_ ? json(*rtt_last_us_) : json(nullptr)},
            {"rtt_max_us", rtt_first_us_ ? json(rtt_max_us_) : json(nullptr)},
            {"rx_drops", drops_json(link_->data_drops())},
            {"elapsed_ms", ms(now - start_)}};
  if (!link_->last_register_error().empty()) j["register_error"] = link_->last_register_error();
  return j;
}

int TestHost::run() {
  // Static key: from --key, else a fresh one for this run.
  ie::crypto::noise::KeyPair key = ie::crypto::noise::KeyPair::generate();
  if (!o_.key_file.empty()) {
    auto k = ie::crypto::load_private_key(o_.key_file);
    if (!k) {
      std::cerr << "ie-testhost: " << k.error().to_string() << "\n";
      return 1;
    }
    key = std::move(*k);
  }
  if (o_.sn.empty() && !o_.listen) {
    std::cerr << "ie-testhost: give --sn (and --sn-key), --listen, --replay or --genkey\n";
    return 2;
  }
  std::optional<ie::crypto::noise::PublicKey> sn_key;
  if (!o_.sn.empty()) {
    auto k = key_from_base64(o_.sn_key);
    if (k) sn_key = *k;
    if (!sn_key) {
      std::cerr << "ie-testhost: --sn-key: not the base64 of a 32-byte key\n";
      return 2;
    }
  }
  if (!o_.addr.empty()) {
    auto a = parse_ipv4(o_.addr);
    if (!a) {
      std::cerr << "ie-testhost: --addr: not an IPv4 address: " << o_.addr << "\n";
      return 2;
    }
    src_ = *a;
  }
  if (o_.count > 0) {
    auto d = parse_ipv4(o_.to);
    if (!d || o_.addr.empty() || o_.sn.empty()) {
      std::cerr << "ie-testhost: sending (--count) needs --sn, --addr and an IPv4 --to\n";
      return 2;
    }
    dst_ = *d;
  }
  auto svc = parse_service(o_.service);
  if (!svc) {
    std::cerr << "ie-testhost: --service: unknown service " << o_.service << "\n";
    return 2;
  }
  service_ = *svc;
  if (o_.marker.size() > kMaxMarkerLen || o_.size < min_payload_len(o_.marker) ||
      o_.size > kMaxPayloadLen) {
    std::cerr << "ie-testhost: --size must be " << min_payload_len(o_.marker) << ".."
              << kMaxPayloadLen << " for this marker (at most " << kMaxMarkerLen << " bytes)\n";
    return 2;
  }
  for (const std::string* sn : {&o_.dest_sn, &o_.reply_sn}) {
    if (!sn->empty() && (sn->size() < 3 || sn->size() > 64)) {
      std::cerr << "ie-testhost: an SN name is 3..64 bytes: " << *sn << "\n";
      return 2;
    }
  }
  auto tlv = [](const std::string& s) {
    ie::wire::Tlv t;
    t.type = static_cast<std::uint8_t>(ie::wire::TlvType::dest_sn);
    t.value = ConstByteSpan(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    return t;
  };
  if (!o_.dest_sn.empty()) data_tlvs_.push_back(tlv(o_.dest_sn));
  if (!o_.reply_sn.empty()) echo_tlvs_.push_back(tlv(o_.reply_sn));
  conn_ids_.resize(std::max(1u, o_.flows));
  for (auto& c : conn_ids_)
    randombytes_buf(&c, sizeof c);

  LinkOptions lo;
  lo.bind = o_.bind;
  lo.key = std::move(key);
  lo.listen = o_.listen;
  lo.timers.keepalive = std::chrono::milliseconds(o_.keepalive_ms);
  lo.timers.dead_after = std::chrono::milliseconds(o_.dead_after_ms);
  lo.timers.retry_initial = std::chrono::milliseconds(o_.retry_ms);
  lo.timers.retry_max = std::chrono::milliseconds(std::max(o_.retry_ms * 4, 1000u));
  lo.timers.rekey_after_time = std::chrono::seconds(o_.rekey_s);
  lo.timers.sa_overlap = std::max<ie::crypto::assoc::Duration>(
      std::chrono::seconds(2), std::chrono::milliseconds(o_.dead_after_ms));
  auto link = HostLink::create(std::move(lo));
  if (!link) {
    std::cerr << "ie-testhost: bind " << o_.bind << ": " << link.error().to_string() << "\n";
    return 1;
  }
  link_ = std::move(*link);
  if (!o_.sn.empty()) {
    std::vector<std::string> addrs;
    if (!o_.addr.empty()) addrs.push_back(o_.addr);
    if (auto r = link_->add_sn(o_.sn, *sn_key, std::move(addrs)); !r) {
      std::cerr << "ie-testhost: --sn " << o_.sn << ": " << r.error().to_string() << "\n";
      return 2;
    }
  }

  start_ = Clock::now();
  const auto hard_end = start_ + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(o_.duration));
  std::optional<Clock::time_point> finish_at;
  bool timed_out = false;
  const auto handler = [this](InPacket& in) { on_data(in); };
  while (!g_stop.load(std::memory_order_relaxed)) {
    auto now = Clock::now();
    if (finish_at && now >= *finish_at) break;
    if (now >= hard_end) {
      timed_out = true;
      break;
    }
    if (!ready_ && (o_.sn.empty() || link_->sn_ready())) {
      ready_ = true;
      ready_at_ = send_start_ = now;
      if (!o_.ready_file.empty()) {
        std::ofstream(o_.ready_file) << "ready\n";
      }
      if (!o_.json) std::cerr << "ie-testhost: ready\n";
    }
    send_due(now);
    const bool sending_done = o_.count == 0 || next_seq_ >= o_.count;
    const bool done =
        sending_done && (o_.expect > 0 ? unique_total(sources_) >= o_.expect : o_.count > 0);
    if (done && !finish_at)
      finish_at = now + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(o_.linger));
    // Sleep until the next packet is due (at most 10 ms, so timers run on time).
    auto wait = std::chrono::milliseconds(10);
    if (ready_ && !sending_done) {
      if (o_.rate <= 0) {
        wait = std::chrono::milliseconds(0);
      } else {
        const auto next = send_start_ + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(next_seq_ / o_.rate));
        wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(next - now),
                          std::chrono::milliseconds(0), wait);
      }
    }
    link_->poll_once(wait, handler);
    flush_echoes();
  }
  const auto now = Clock::now();
  const json j = summary(now);
  if (o_.json) {
    std::cout << j.dump() << std::endl;
  } else {
    std::cerr << "ie-testhost: sent " << sent_ << " (unsent " << unsent_ << "), received "
              << j["received"] << " (unique " << j["unique"] << ", duplicates " << j["duplicates"]
              << ", lost " << j["lost"] << "), echoed " << echoed_ << ", reassociations "
              << j["reassociations"] << "\n";
  }
  if (!ready_) {
    std::cerr << "ie-testhost: never ready: "
              << (link_->stats().associations == 0
                      ? "no association with " + o_.sn
                      : "registration not accepted: " + link_->last_register_error())
              << "\n";
    return 1;
  }
  if (o_.expect > 0 && unique_total(sources_) < o_.expect) {
    std::cerr << "ie-testhost: expected " << o_.expect << " packets, got " << unique_total(sources_)
              << "\n";
    return 1;
  }
  if (timed_out && o_.count > 0 && next_seq_ < o_.count) {
    std::cerr << "ie-testhost: --duration ended before all " << o_.count << " were sent\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"ie-testhost: a libie test host for the SN tests"};
  app.add_option("--genkey", o.genkey, "write a new private key file (0600), print public key");
  app.add_option("--key", o.key_file, "private key file (base64 of 32 bytes)");
  app.add_option("--sn", o.sn, "the SN's ILP endpoint IP:PORT");
  app.add_option("--sn-key", o.sn_key, "the SN's public key (base64)");
  app.add_option("--addr", o.addr, "inner IPv4 address to register and send from");
  app.add_option("--bind", o.bind, "local UDP endpoint")->capture_default_str();
  app.add_flag("--listen", o.listen, "accept hosts associating with this host's key");
  app.add_option("--to", o.to, "inner destination address");
  app.add_option("--dest-sn", o.dest_sn, "dest_sn TLV of sent packets (DOM.SN)");
  app.add_option("--service", o.service, "service: ip, null or a number")->capture_default_str();
  app.add_option("--count", o.count, "packets to send");
  app.add_option("--rate", o.rate, "packets per second (0: as fast as possible)")
      ->capture_default_str();
  app.add_option("--flows", o.flows, "distinct connection ids, round robin")
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--size", o.size, "inner UDP payload bytes")->capture_default_str();
  app.add_option("--marker", o.marker, "marker text in every payload")->capture_default_str();
  app.add_option("--expect", o.expect, "packets to receive before finishing");
  app.add_flag("--echo", o.echo, "send every received data packet back to its source");
  app.add_option("--reply-sn", o.reply_sn, "dest_sn TLV of echoes (DOM.SN)");
  app.add_option("--duration", o.duration, "hard time bound, seconds")->capture_default_str();
  app.add_option("--linger", o.linger, "seconds to keep receiving after finishing");
  app.add_option("--ready-file", o.ready_file, "created once associated and registered");
  app.add_flag("--json", o.json, "one JSON summary line on stdout");
  app.add_option("--keepalive-ms", o.keepalive_ms, "keepalive / liveness probe period")
      ->capture_default_str();
  app.add_option("--dead-after-ms", o.dead_after_ms, "silence before re-associating")
      ->capture_default_str();
  app.add_option("--retry-ms", o.retry_ms, "first handshake retransmission")->capture_default_str();
  app.add_option("--rekey-s", o.rekey_s, "session re-key period")->capture_default_str();
  app.add_option("--replay", o.replay, "pcap file whose UDP payloads to resend");
  app.add_option("--to-sn", o.to_sn, "where --replay sends, IP:PORT");
  app.add_option("--replay-kind", o.replay_kind, "all, data (PSP) or control")
      ->check(CLI::IsMember({"all", "data", "control"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return 2;
  }
  if (sodium_init() < 0) {
    std::cerr << "ie-testhost: libsodium failed to initialise\n";
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  if (!o.genkey.empty()) {
    const auto kp = ie::crypto::noise::KeyPair::generate();
    if (auto r = ie::crypto::write_private_key(o.genkey, kp); !r) {
      std::cerr << "ie-testhost: " << r.error().to_string() << "\n";
      return 1;
    }
    std::cout << key_to_base64(kp.pub) << "\n";
    return 0;
  }
  if (!o.replay.empty()) {
    if (o.to_sn.empty()) {
      std::cerr << "ie-testhost: --replay needs --to-sn\n";
      return 2;
    }
    return run_replay(o);
  }
  if (o.dead_after_ms <= o.keepalive_ms) {
    std::cerr << "ie-testhost: --dead-after-ms must exceed --keepalive-ms\n";
    return 2;
  }
  TestHost host(o);
  return host.run();
}
