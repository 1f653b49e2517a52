// The IP-like service's packet path in ied (ARCHITECTURE.md "Host datapath"). The endpoints
// keep their own addresses; every packet is protected end to end (e2e.hpp) and hop by hop.
//
// Send (TUN -> SN), per batch of up to 64 packets in tun_bufs (ours until step 4 returns):
//   1. read_batch from the TUN. ie0 has offloads (tcp_offload.hpp): frames of up to 64 KiB
//      land in tun_frames; a TCP super packet is cut into MSS-sized segments in tun_bufs,
//      any other packet is copied there with its partial checksum completed; every 64
//      packets go on as a batch (send_tun_packets). Parse the flow key (drop:
//      bad_inner_packet)
//   2. the destination's peer route: static [[peer]] prefix, else a DNS peer record (looked
//      up on first use; packets meanwhile are dropped as no_route and TCP retransmits)
//   2a. path MTU (check_hop_mtu, path_mtu.hpp): a packet that would not fit the path to
//      its next hop (the first-hop SN, or the direct peer) once ILP and e2e bytes are added
//      is answered with an ICMP "fragmentation needed" / ICMPv6 "packet too big" into the
//      TUN (in eout.to_tun) and dropped, if it has DF or is IPv6 (rate-limited)
//   3. E2e::send seals the packet for the peer host (or queues it behind a handshake) into
//      eout.to_net: proto-253 IP packets, with headroom for ILP
//   4. flush_e2e_output: each to_net packet becomes an ILP service-ip packet with a dest_sn
//      TLV naming the peer's SN, sealed by HostLink for the first-hop SN and sent in batches:
//      the active SN of the IESP the [[policy]] table picks for its destination and service
//      (flow_iesp; none usable: dropped, counted as iesp_no_sn)
// Direct (host -> host, no SN): when the peer's route names its ied's endpoint and that is
// on one of our links, step 3 instead hands the packet as is to HostLink for the direct
// association (its keys are the two hosts' own: no second end-to-end layer), batched per
// peer; while that association is down (never up, or dead after timers.dead_after_ms) the
// packet takes the SN path, so a broken direct path falls back within about 2 s.
// Receive (SN -> TUN): HostLink opens the hop layer in its receive buffer; service-ip inner
// packets of protocol 253 go to E2e::receive, which writes the original packets into
// eout.to_tun (and handshake answers into eout.to_net); to_tun is written to the TUN in one
// batch (write_tun): consecutive in-order segments of one TCP flow as one super packet with a
// GSO header, the rest one by one behind an all-zero virtio-net header.
#include <cstring>

#include "daemon_impl.hpp"
#include "ie/conf/names.hpp"
#include "ie/ied/flow_key.hpp"
#include "ie/ied/icmp_ptb.hpp"
#include "ie/ied/ip_fragment.hpp"
#include "ie/ied/ip_header.hpp"
#include "ie/ied/path_mtu.hpp"
#include "ie/ied/tcp_offload.hpp"
#include "ie/util/log.hpp"
#include "ie/wire/demux.hpp"
#include "ie/wire/ilp.hpp"
#include "ie/wire/service_id.hpp"
#include "ie/wire/tlv.hpp"

namespace ie::ied {

namespace {
constexpr std::size_t kBatch = 64;
constexpr std::size_t kBufSize = 2048;
// Offloading TUN: frames read per read_batch (each buffer 64 KiB + header), and per wakeup.
constexpr std::size_t kReadFrames = 8;
constexpr std::size_t kMaxReads = 64;
constexpr auto kPeerLookupRetry = std::chrono::seconds(2);
constexpr std::size_t kMaxLearned = 65536;
// How often a direct peer that is not on-link is PROBEd (its distance; direct_tick).
constexpr auto kDirectProbeEvery = std::chrono::seconds(1);
// Bounds on DNS peer lookups (peer.resolve lets any local user start them): at most this
// many at once, and failed ones remembered until their retry time once there are this many.
constexpr std::size_t kMaxPeerLookupsInFlight = 256;
constexpr std::size_t kMaxPeerLookups = 4096;

// The connection id of a peer's flows whose socket chose options the SNs must see (tag: the
// socket mark): its own per (peer, options), so SN decision caches keep them apart; derived
// from the peer's id (splitmix64 of the mark), so it changes whenever the peer's id does.
std::uint64_t tagged_cid(std::uint64_t cid, std::uint32_t tag) {
  if (tag == 0) return cid;
  std::uint64_t z = tag + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  const std::uint64_t r = cid ^ z ^ (z >> 31);
  return r == 0 ? cid : r;
}

// The destination address of an IPv4/IPv6 packet.
std::optional<IpAddr> ip_dst(ConstByteSpan p) {
  if (p.empty()) return std::nullopt;
  const unsigned v = p[0] >> 4;
  if (v == 4 && p.size() >= 20) return IpAddr::from_bytes(p.subspan(16, 4));
  if (v == 6 && p.size() >= 40) return IpAddr::from_bytes(p.subspan(24, 16));
  return std::nullopt;
}
}  // namespace

const PeerRoute* Daemon::Impl::peer_route(const IpAddr& addr) {
  for (auto& [prefix, route] : static_peers)
    if (prefix.contains(addr)) return &route;
  if (const PeerRoute* r = dns_peers.find(addr, Clock::now())) return r;
  start_peer_lookup(addr);  // the caller drops this packet
  return nullptr;
}

bool Daemon::Impl::start_peer_lookup(const IpAddr& addr) {
  if (!cfg.peer_dns || !dns) return false;
  if (peer_lookups_pending.count(addr) != 0) return true;
  const auto now = Clock::now();
  // Once per retry period (a failed lookup keeps its entry until then).
  if (auto it = peer_lookups.find(addr); it != peer_lookups.end() && it->second > now) return false;
  if (peer_lookups_pending.size() >= kMaxPeerLookupsInFlight) return true;  // ask again
  if (peer_lookups.size() >= kMaxPeerLookups)
    std::erase_if(peer_lookups, [&](const auto& e) {
      return e.second <= now && peer_lookups_pending.count(e.first) == 0;
    });
  peer_lookups[addr] = now + kPeerLookupRetry;
  peer_lookups_pending.insert(addr);
  counters.add(Ctr::peer_lookups);
  dns->lookup_peer(addr.str(), [this, addr](Result<PeerRecord> r) {
    peer_lookups_pending.erase(addr);
    if (!r) {
      IE_LOG_WARN("peer record for {}: {}", addr.str(), r.error().to_string());
      return;
    }
    PeerRoute route;
    route.sn = r->sn;
    route.key = r->key;
    route.expires = r->expires;
    route.endpoint = r->endpoint;  // a direct path (ep=), as a [[peer]] endpoint
    dns_peers.put(addr, std::move(route), Clock::now());
    peer_lookups.erase(addr);
    route_changed(addr, dns_peers.find(addr, Clock::now()));
  });
  return true;
}

void Daemon::Impl::on_tun_readable() {
  if (stopping) return;
  // 1. Reads, up to kMaxReads frames per wakeup, handed on in batches of kBatch packets.
  ConstByteSpan batch[kBatch];
  std::size_t nb = 0;
  auto slot = [&](std::size_t i) { return ByteSpan(tun_bufs.data() + i * kBufSize, kBufSize); };
  auto flush = [&] {
    if (nb > 0) send_tun_packets(std::span<const ConstByteSpan>(batch, nb));
    nb = 0;
  };
  if (tun->frame_header_len() == 0) {
    // Plain packets: read straight into the slots.
    io::Packet pk[kBatch];
    for (std::size_t i = 0; i < kBatch; ++i)
      pk[i].buf = slot(i);
    auto n = tun->read_batch(std::span<io::Packet>(pk, kBatch));
    if (!n) return;
    for (; nb < *n; ++nb)
      batch[nb] = ConstByteSpan(pk[nb].buf.data(), pk[nb].len);
    flush();
    return;
  }
  // Offloads (tcp_offload.hpp): frames of up to 64 KiB into tun_frames; a TCP super packet is
  // cut into MSS-sized segments in the slots, anything else copied there (its partial
  // checksum completed). The slots are handed on whenever they are full, so a frame's
  // segments may span batches; the frames are reused only after that.
  if (tun_frames.size() < kReadFrames * io::kMaxTunFrame)
    tun_frames.resize(kReadFrames * io::kMaxTunFrame);
  std::size_t reads = 0;
  while (reads < kMaxReads) {
    io::Packet rd[kReadFrames];
    for (std::size_t i = 0; i < kReadFrames; ++i)
      rd[i].buf = ByteSpan(tun_frames.data() + i * io::kMaxTunFrame, io::kMaxTunFrame);
    auto n = tun->read_batch(std::span<io::Packet>(rd, kReadFrames));
    if (!n || *n == 0) break;
    reads += *n;
    for (std::size_t j = 0; j < *n; ++j) {
      const auto f = open_tun_frame(ByteSpan(rd[j].buf.data(), rd[j].len));
      if (!f) {
        drops.add(wire::DropReason::bad_inner_packet);
        continue;
      }
      if (!f->gso) {
        if (f->packet.size() > kBufSize) {
          drops.add(wire::DropReason::bad_inner_packet);
          continue;
        }
        if (nb == kBatch) flush();
        std::memcpy(slot(nb).data(), f->packet.data(), f->packet.size());
        batch[nb] = ConstByteSpan(slot(nb).data(), f->packet.size());
        ++nb;
        continue;
      }
      counters.add(Ctr::tun_rx_super);
      for (std::size_t s = 0; s < f->segments; ++s) {
        if (nb == kBatch) flush();
        const std::size_t len = write_segment(*f, s, slot(nb));
        if (len == 0) {
          drops.add(wire::DropReason::bad_inner_packet);  // a segment larger than a slot
          continue;
        }
        batch[nb] = ConstByteSpan(slot(nb).data(), len);
        ++nb;
      }
    }
    if (*n < kReadFrames) break;
  }
  flush();
}

void Daemon::Impl::send_tun_packets(std::span<const ConstByteSpan> packets) {
  const auto now = Clock::now();
  // Packets for direct peers, sent in runs per peer after the loop.
  link::OutPacket dout[kBatch];
  link::PeerId dpeer[kBatch];
  std::size_t nd = 0;
  const auto send_direct = [&] {
    for (std::size_t i = 0; i < nd;) {
      std::size_t j = i;
      while (j < nd && dpeer[j] == dpeer[i])
        ++j;
      std::size_t done = 0;
      for (int tries = 0; i + done < j && tries < 4; ++tries)
        done +=
            link->send(dpeer[i], std::span<const link::OutPacket>(dout + i + done, j - i - done));
      counters.add(Ctr::direct_tx_packets, done);
      if (i + done < j) drops.add(wire::DropReason::send_failed, j - i - done);
      i = j;
    }
    nd = 0;
  };
  frags.clear();
  for (const ConstByteSpan p : packets) {
    counters.add(Ctr::tun_rx_packets);
    counters.add(Ctr::tun_rx_bytes, p.size());
    const auto fk = parse_flow(p);
    if (!fk) {
      drops.add(wire::DropReason::bad_inner_packet);
      continue;
    }
    const IpAddr src = fk->src_addr();
    const IpAddr dst = fk->dst_addr();
    if (iesps.empty()) {
      drops.add(wire::DropReason::no_route);
      continue;
    }
    // The peer's key: its route's, else the one it proved in its handshake (it opened the
    // session; we answer). Where to send is decided per packet in flush_e2e_output.
    const PeerRoute* route = peer_route(dst);
    std::optional<crypto::noise::PublicKey> key;
    if (route != nullptr) key = route->key;
    if (!key) {
      if (const auto info = e2e->peer(dst)) key = info->key;
    }
    if (!key || (route == nullptr && !learned_sn.count(dst))) {
      drops.add(wire::DropReason::no_route);
      continue;
    }
    FlowEntry* f = flows->lookup(*fk, now);
    if (f == nullptr) {
      FlowEntry e;
      e.peer = dst;
      e.service = static_cast<std::uint16_t>(wire::ServiceId::ip);
      e.via = FlowVia::sn;
      if (steering) {
        if (const auto m = steering->flow_mark(*fk)) {
          e.mark = *m;
          const auto choice = steering->choice_of_mark(*m);
          e.direct_allowed = !choice || choice->allows_direct();
          e.sn_options = choice && choice->carried_to_sns();
        }
      }
      f = flows->insert(*fk, e, now);
    }
    // The flow's IESP must have a usable SN (a direct path falls back to it).
    if (!iesp_active(flow_iesp(dst, f != nullptr ? f->mark : 0))) {
      drops.add(wire::DropReason::no_route);
      counters.add(Ctr::iesp_no_sn);
      continue;
    }
    const auto d = (f == nullptr || f->direct_allowed) ? direct_path(dst, route) : std::nullopt;
    if (f != nullptr) f->via = d ? FlowVia::direct : FlowVia::sn;
    // The flow counts a packet once it passed the path MTU check (count_if_sent): one
    // answered with a PTB was not sent.
    if (d) {
      // Path MTU to the peer's ied (its route's endpoint; one that reached us first without
      // a route of ours is not checked): the ILP datagram has no TLVs and no e2e layer.
      const MtuAction act = route != nullptr && !route->endpoint.empty()
                                ? check_hop_mtu(p, route->endpoint, *d, wire::kIlpBaseLen, 0, now)
                                : MtuAction::send;
      if (!count_if_sent(f, p.size(), act)) continue;
      auto& cid = connection_ids[dst];
      while (cid == 0)
        cid = rng();
      const auto add = [&](ConstByteSpan q) {
        if (nd == kBatch) send_direct();
        dout[nd].header.service_id = static_cast<std::uint16_t>(wire::ServiceId::ip);
        dout[nd].header.connection_id = cid;
        dout[nd].inner = q;
        dpeer[nd++] = *d;
      };
      if (act == MtuAction::fragmented) {
        for (std::size_t i = frag_begin; i < frags.size(); ++i)
          add(frags[i]);
      } else {
        add(p);
      }
      continue;
    }
    // Options the SNs must see travel with the packet: its tag is the flow's mark (also
    // when [[policy]] picks IESPs by service: flush_e2e_output reads the service from it).
    const std::uint32_t tag =
        f != nullptr && (f->sn_options || policy.has_service_rules()) ? f->mark : 0;
    // Path MTU to the first-hop SN flush_e2e_output will pick: the datagram carries the e2e
    // packet behind the dest_sn and source_sn TLVs (and a cache_control TLV, counted always).
    MtuAction act = MtuAction::send;
    if (const auto a = iesp_active(flow_iesp(dst, tag))) {
      const std::string* peer_sn = route != nullptr ? &route->sn : nullptr;
      if (auto it = learned_sn.find(dst); it != learned_sn.end()) peer_sn = &it->second;
      const std::size_t tlvs =
          (2 + (peer_sn != nullptr ? peer_sn->size() : 63)) + (2 + sns[*a].name.size()) + 3;
      if (sns[*a].peer)
        act =
            check_hop_mtu(p, sns[*a].endpoint, *sns[*a].peer,
                          wire::kIlpBaseLen + (tlvs + 3) / 4 * 4, E2e::overhead(dst.is_v6()), now);
    }
    if (!count_if_sent(f, p.size(), act)) continue;
    if (act == MtuAction::fragmented) {
      for (std::size_t i = frag_begin; i < frags.size(); ++i)
        e2e->send(src, dst, *key, frags[i], now, eout, tag);
    } else {
      e2e->send(src, dst, *key, p, now, eout, tag);
    }
  }
  send_direct();
  flush_e2e_output();
}

void Daemon::Impl::flush_e2e_output() {
  // 4. to_net: one ILP packet per e2e packet, to the active SN of its IESP.
  if (!eout.to_net.empty()) {
    std::optional<link::PeerId> sn;  // the SN of the batch in out
    link::OutPacket out[link::HostLink::kBatch];
    wire::Tlv tlv[link::HostLink::kBatch][3];
    static constexpr std::uint8_t kNoCache = 1;
    std::size_t k = 0;
    auto send = [&] {
      std::size_t done = 0;
      // The socket may take fewer than offered when its buffer is full; a few retries, then
      // the rest is lost like on any congested link (TCP recovers).
      for (int tries = 0; done < k && tries < 4; ++tries)
        done += link->send(*sn, std::span<const link::OutPacket>(out + done, k - done));
      counters.add(Ctr::sn_tx_packets, done);
      if (done < k) drops.add(wire::DropReason::send_failed, k - done);
      k = 0;
    };
    for (std::size_t i = 0; i < eout.to_net.size(); ++i) {
      const ConstByteSpan p = eout.to_net[i];
      const auto dst = ip_dst(p);
      // Its first hop: the active SN of the flow's IESP (handshakes, tag 0: the
      // destination's); a batch goes out when the SN changes.
      const auto a = dst ? iesp_active(flow_iesp(*dst, eout.to_net.tag(i))) : std::nullopt;
      if (!a || !sns[*a].peer) {
        drops.add(wire::DropReason::no_route);
        if (dst) counters.add(Ctr::iesp_no_sn);
        continue;
      }
      if (k > 0 && *sn != *sns[*a].peer) send();
      sn = sns[*a].peer;
      const std::string& my_sn = sns[*a].name;
      // Its SN: the one it named in its latest packets (source_sn), else its route's.
      const std::string* peer_sn = nullptr;
      if (dst) {
        if (auto it = learned_sn.find(*dst); it != learned_sn.end()) {
          peer_sn = &it->second;
        } else if (const PeerRoute* route = peer_route(*dst)) {
          peer_sn = &route->sn;
        }
      }
      if (peer_sn == nullptr) {
        drops.add(wire::DropReason::no_route);
        continue;
      }
      // Every end-to-end handshake message (initiation, response, cookie reply) takes a fresh
      // connection id, so each try gets fresh decisions from the SNs on the way, not one an SN
      // cached while the peer was registered nowhere (its ied restarting): such an entry goes
      // only with its pipes and would keep the handshake, and the session, from getting
      // through. Bounded by handshake retries and rekeys.
      if (const std::size_t hl = ip_header_len(dst->is_v6()); p.size() > hl) {
        const auto kind = wire::classify(p.subspan(hl));
        if (kind == wire::DatagramKind::handshake_init ||
            kind == wire::DatagramKind::handshake_resp || kind == wire::DatagramKind::cookie_reply)
          connection_ids.erase(*dst);
      }
      auto& cid = connection_ids[*dst];
      // A random connection id per peer host: SNs key their decision caches on the sending
      // pipe, the service and this id, so it must name one destination and must not collide
      // with another host's ids behind the same SN.
      while (cid == 0)
        cid = rng();
      tlv[k][0].type = static_cast<std::uint8_t>(wire::TlvType::dest_sn);
      tlv[k][0].value =
          ConstByteSpan(reinterpret_cast<const std::uint8_t*>(peer_sn->data()), peer_sn->size());
      tlv[k][1].type = static_cast<std::uint8_t>(wire::TlvType::source_sn);
      tlv[k][1].value =
          ConstByteSpan(reinterpret_cast<const std::uint8_t*>(my_sn.data()), my_sn.size());
      std::size_t ntlv = 2;
      const std::uint32_t tag = eout.to_net.tag(i);
      if (tag != 0 && steering) {
        // The socket's options for the SNs (ServiceChoice::carried_to_sns).
        const auto c = steering->choice_of_mark(tag);
        if (c && c->sn_cache_off()) {
          tlv[k][ntlv].type = static_cast<std::uint8_t>(wire::TlvType::cache_control);
          tlv[k][ntlv++].value = ConstByteSpan(&kNoCache, 1);
        }
      }
      out[k].header.service_id = static_cast<std::uint16_t>(wire::ServiceId::ip);
      out[k].header.connection_id = tagged_cid(cid, ntlv > 2 ? tag : 0);
      out[k].header.flags = wire::kIlpFlagE2e;
      out[k].tlvs = std::span<const wire::Tlv>(tlv[k], ntlv);
      out[k].inner = p;
      if (++k == link::HostLink::kBatch) send();
    }
    if (k > 0) send();
  }
  write_tun();
  eout.clear();
}

void Daemon::Impl::write_tun() {
  // to_tun: the decrypted packets, in one batch. With offloads every write carries a
  // virtio-net header: runs of one TCP flow's segments become one super packet
  // (tcp_offload.hpp), everything else goes as is behind an all-zero header (in to_tun's
  // headroom).
  if (eout.to_tun.empty() || !tun) return;
  const std::size_t hl = tun->frame_header_len();
  if (hl != 0) tun_coalescer.clear();
  for (std::size_t i = 0; i < eout.to_tun.size(); ++i) {
    const ConstByteSpan p = eout.to_tun[i];
    counters.add(Ctr::tun_tx_bytes, p.size());
    if (const auto key = parse_flow(p)) {
      if (FlowEntry* f = flows->lookup(key->reversed(), Clock::now())) {
        ++f->packets_in;
        f->bytes_in += p.size();
      }
    }
    if (hl != 0) tun_coalescer.add(p);
  }
  tun_writes.clear();
  std::span<const TcpCoalescer::Item> items;  // offloads: what each write carries
  if (hl == 0) {
    for (std::size_t i = 0; i < eout.to_tun.size(); ++i) {
      const ByteSpan b = eout.to_tun.mutable_at(i);
      tun_writes.push_back(io::Packet{b, b.size()});
    }
  } else {
    items = tun_coalescer.finish();
    for (const auto& it : items) {
      if (it.frame.empty()) {
        const ByteSpan b = eout.to_tun.with_room(it.index);  // header room + packet
        std::memset(b.data(), 0, hl);
        tun_writes.push_back(io::Packet{b, b.size()});
      } else {
        counters.add(Ctr::tun_tx_super);
        tun_writes.push_back(io::Packet{it.frame, it.frame.size()});
      }
    }
  }
  std::size_t done = 0;
  for (int tries = 0; done < tun_writes.size() && tries < 4; ++tries) {
    auto w = tun->write_batch(
        std::span<const io::Packet>(tun_writes.data() + done, tun_writes.size() - done));
    if (!w) break;
    done += *w;
  }
  std::size_t packets = done;
  if (hl != 0) {
    packets = 0;
    for (std::size_t i = 0; i < done; ++i)
      packets += items[i].count;
  }
  counters.add(Ctr::tun_tx_packets, packets);
}

void Daemon::Impl::learn_from_sn_path(const link::InPacket& in, bool delivered) {
  // The outer source of the proto-253 packet: the peer host.
  if (in.inner.size() < 20) return;
  const unsigned v = in.inner[0] >> 4;
  std::optional<IpAddr> src;
  if (v == 4) src = IpAddr::from_bytes(ConstByteSpan(in.inner.data() + 12, 4));
  if (v == 6 && in.inner.size() >= 40)
    src = IpAddr::from_bytes(ConstByteSpan(in.inner.data() + 8, 16));
  if (!src) return;
  // Its data comes through the SNs again: a direct path it opened (we would not) is no longer
  // its choice (it found it farther, or lost it); reply the way it comes now. Only data: its
  // end-to-end session's keepalives and handshakes always take the SN path.
  if (delivered && direct_learned.erase(*src) != 0) {
    direct.erase(*src);
    IE_LOG_INFO("peer {} sends through the SNs again: replying that way", src->str());
  }
  wire::Tlv t;
  if (!wire::find_tlv(in.tlvs, static_cast<std::uint8_t>(wire::TlvType::source_sn), &t)) return;
  const std::string_view name(reinterpret_cast<const char*>(t.value.data()), t.value.size());
  if (!conf::valid_sn_name(name)) return;
  auto it = learned_sn.find(*src);
  if (it == learned_sn.end()) {
    if (learned_sn.size() >= kMaxLearned) return;
    learned_sn.emplace(*src, std::string(name));
  } else if (it->second != name) {
    IE_LOG_INFO("peer {} now behind SN {} (was {})", src->str(), name, it->second);
    it->second.assign(name);
    // A new connection id for the new way there: SNs on the path may have cached the old
    // decision (towards the old SN) under the old one.
    connection_ids.erase(*src);
  }
}

// Path MTU (path_mtu.hpp): packets too big for the path to their next hop are answered with
// a PTB into the TUN (written with this batch's to_tun) and dropped; the rest go on.
MtuAction Daemon::Impl::check_hop_mtu(ConstByteSpan p, const std::string& hop, link::PeerId peer,
                                      std::size_t ilp_header_len, std::size_t inner_overhead,
                                      Clock::time_point now) {
  // The kernel takes no path MTU under net.ipv4.route.min_pmtu (552 by default): a datagram
  // that small always fits, so small packets skip the look-up.
  constexpr std::size_t kMinPathMtu = 552;
  if (!path_mtus ||
      p.size() + inner_overhead + ilp_datagram_overhead(true, ilp_header_len) <= kMinPathMtu)
    return MtuAction::send;
  PathMtuCache::Hop* h = path_mtus->get(hop, now);
  if (h == nullptr) return MtuAction::send;
  h->peer = peer;  // pmtu_tick probes the hop while big datagrams go there
  h->last_big = now;
  const std::size_t overhead =
      ilp_datagram_overhead(h->addr.is_v6(), ilp_header_len) + inner_overhead;
  const std::uint32_t mtu = h->usable_mtu();
  if (mtu <= overhead) return MtuAction::send;  // no inner packet fits: left to the kernel
  std::uint8_t ptb[kPtbMaxV6];
  std::size_t len = 0;
  MtuAction act = check_path_mtu(p, mtu - overhead, ptb_bucket, now, ptb, &len);
  if (mtu < h->mtu && (act == MtuAction::fragment_outside || act == MtuAction::rate_limited)) {
    // Over a black hole's limit. The kernel does not know that limit: it would send the
    // datagram whole with DF, into the black hole (not fragment it: pmtu_outer_fragments
    // would be wrong). An IPv4 packet without DF is cut here, as a router on its path
    // would; anything else (IPv6 of at most 1280 bytes, a DF packet over the PTB rate, ...)
    // cannot be and goes as it is.
    frag_begin = frags.size();
    if (fragment_ipv4(p, mtu - overhead, frags) > 0) {
      counters.add(Ctr::pmtu_inner_fragmented);
      return MtuAction::fragmented;
    }
    counters.add(Ctr::pmtu_over_black_hole);
    if (act == MtuAction::rate_limited) counters.add(Ctr::ptb_rate_limited);
    return act;
  }
  switch (act) {
    case MtuAction::send:
      break;
    case MtuAction::fragment_outside:
      counters.add(Ctr::pmtu_outer_fragments);
      break;
    case MtuAction::rate_limited:
      counters.add(Ctr::ptb_rate_limited);
      break;
    case MtuAction::ptb:
      eout.to_tun.push(ConstByteSpan(ptb, len));
      counters.add(Ctr::ptb_sent);
      break;
    case MtuAction::fragmented:
      break;
  }
  return act;
}

void Daemon::Impl::pmtu_tick(Clock::time_point now) {
  if (!path_mtus) return;
  const Plpmtud::Config pc;
  for (auto& [endpoint, h] : path_mtus->hops()) {
    if (h.peer == 0 || h.mtu == 0 || !link->can_send(h.peer)) continue;
    const auto peer = static_cast<link::PeerId>(h.peer);
    const bool busy = now - h.last_big < pc.confirm_every;
    const auto had = h.plpmtud.cap();
    const std::uint64_t sent = h.plpmtud.probes_sent();
    const std::uint64_t holes = h.plpmtud.black_holes();
    h.plpmtud.tick(
        now, std::min(h.kernel_payload(), link::HostLink::kBufSize), busy,
        [&](std::size_t size) { return link->probe_size(peer, size); },
        [&](std::uint32_t id) { return link->probe_size_answered(peer, id); });
    counters.add(Ctr::pmtu_probes, h.plpmtud.probes_sent() - sent);
    counters.add(Ctr::pmtu_black_holes, h.plpmtud.black_holes() - holes);
    const auto cap = h.plpmtud.cap();
    if (cap != had) {
      if (cap)
        IE_LOG_WARN(
            "path MTU black hole towards {}: datagrams above {} bytes (path MTU {}) are lost "
            "without an ICMP error; inner packets are now fitted to that",
            endpoint, *cap, *cap + h.headers());
      else
        IE_LOG_INFO("path MTU black hole towards {} gone: path MTU {} again", endpoint, h.mtu);
    }
  }
}

bool Daemon::Impl::direct_up(const IpAddr& addr) const {
  const auto it = direct.find(addr);
  return it != direct.end() && direct_usable(it->second);
}

bool Daemon::Impl::direct_usable(link::PeerId peer) const {
  if (!link->can_send(peer)) return false;
  const auto far = direct_far.find(peer);
  return far == direct_far.end() || far->second.closer;
}

void Daemon::Impl::route_changed(const IpAddr& addr, const PeerRoute* route) {
  // The association direct_path() made for another endpoint (or for one the peer's route no
  // longer names) goes, and one to the new endpoint, if any, is started at once; until it is
  // up packets take the SN path. Called where routes change (a DNS answer, a reload), so the
  // per-packet path does not compare endpoints.
  const auto ep = direct_endpoint.find(addr);
  if (ep == direct_endpoint.end()) return;
  const std::string now_ep = route != nullptr ? route->endpoint : std::string();
  if (now_ep == ep->second) return;
  IE_LOG_INFO("peer {}: endpoint {} -> {}", addr.str(), ep->second,
              now_ep.empty() ? "none (via SNs)" : now_ep);
  if (const auto it = direct.find(addr); it != direct.end()) {
    link->remove_host(it->second);
    direct_far.erase(it->second);
    direct.erase(it);
  }
  direct_endpoint.erase(ep);
  if (route != nullptr) (void)direct_path(addr, route);
}

std::optional<link::PeerId> Daemon::Impl::direct_path(const IpAddr& dst, const PeerRoute* route) {
  if (auto it = direct.find(dst); it != direct.end())
    return direct_usable(it->second) ? std::optional(it->second) : std::nullopt;
  if (route == nullptr || route->endpoint.empty() || !route->key) return std::nullopt;
  // Once per endpoint: is it on one of our links (no gateway on the route, not via ie0)?
  // On-link: the direct path is used once up. Otherwise it is associated too, and used while
  // measurably closer than the SN (direct_tick).
  auto [chk, fresh] = direct_checked.try_emplace(route->endpoint, DirectCheck::far);
  if (fresh) {
    socklen_t len = 0;
    auto ep = io::parse_endpoint(route->endpoint, &len);
    std::optional<IpAddr> a;
    if (ep) a = IpAddr::from_sockaddr(reinterpret_cast<const sockaddr*>(&*ep), len);
    std::optional<RouteLookup> rg;
    if (a) {
      if (auto r = nl->route_get(*a)) rg = *r;
    }
    if (!a) {
      chk->second = DirectCheck::none;
    } else if (rg && rg->ifindex == tun_ifindex) {
      chk->second = DirectCheck::none;  // the association itself would enter the tunnel
    } else if (rg && !rg->gateway) {
      chk->second = DirectCheck::on_link;
    }
    IE_LOG_INFO("peer {} at {}: {}", dst.str(), route->endpoint,
                chk->second == DirectCheck::on_link ? "on-link, associating directly"
                : chk->second == DirectCheck::far
                    ? "not on-link, associating directly, used while closer than the SN"
                    : "not reachable directly, via SNs");
  }
  if (chk->second == DirectCheck::none) return std::nullopt;
  auto p = link->add_host(route->endpoint, *route->key);
  if (!p) {
    IE_LOG_WARN("direct association with {}: {}", route->endpoint, p.error().to_string());
    chk->second = DirectCheck::none;
    return std::nullopt;
  }
  direct[dst] = *p;
  direct_endpoint[dst] = route->endpoint;
  if (chk->second == DirectCheck::far) direct_far[*p].addr = dst;
  return std::nullopt;  // not up yet: this packet goes via the SN
}

std::optional<double> Daemon::Impl::sn_path_rtt(const DirectFar& far, bool* end_to_end) const {
  // The first hop alone is a lower bound of the SN path (the rest, SN to SN to the peer, is
  // not seen from here); it also covers an end-to-end figure gone stale (taken before a
  // switch to a farther SN, or kept after the session idled out while traffic went direct).
  std::optional<double> first;
  if (const auto a = iesp_active(flow_iesp(far.addr, 0)))
    if (const RttRecord* rec = rtt_of(sns[*a])) first = rec->rtt_ms();
  const auto e2e_ms = far.sn_path.rtt_ms();
  const bool whole = e2e_ms && (!first || *e2e_ms >= *first);
  if (end_to_end) *end_to_end = whole;
  return whole ? e2e_ms : first;
}

// Far direct peers: a measuring PROBE every kDirectProbeEvery while the association is up,
// and one over the end-to-end session (through the SNs) if there is one; the windowed
// minimum of the direct answers against the SN path's.
void Daemon::Impl::direct_tick(Clock::time_point now) {
  bool probed_e2e = false;
  for (auto& [peer, far] : direct_far) {
    if (const std::uint64_t n = e2e->rtt_samples(far.addr); n != far.e2e_samples) {
      far.e2e_samples = n;
      if (const auto d = e2e->rtt(far.addr))
        far.sn_path.add(std::chrono::duration<double, std::milli>(*d).count(), now);
    }
    if (!link->can_send(peer)) {
      far.closer = false;  // measured afresh when it is back
      continue;
    }
    if (const std::uint64_t n = link->rtt_samples(peer); n != far.samples) {
      far.samples = n;
      if (const auto ms = link->rtt_ms(peer)) far.rtt.add(*ms, now);
    }
    if (now >= far.next_probe) {
      link->probe(peer);
      probed_e2e = e2e->probe(far.addr, now, eout) || probed_e2e;
      far.next_probe = now + kDirectProbeEvery;
    }
    bool whole = false;
    const auto sn_ms = sn_path_rtt(far, &whole);
    const bool closer = direct_is_closer(far.rtt.rtt_ms(), sn_ms, far.closer);
    if (closer != far.closer) {
      IE_LOG_INFO("direct path to {}: {:.2f} ms, SN path {:.2f} ms ({}): {}", far.addr.str(),
                  far.rtt.rtt_ms().value_or(-1), sn_ms.value_or(-1),
                  whole ? "end to end" : "first hop",
                  closer ? "closer, going direct" : "not closer, via SNs");
      far.closer = closer;
    }
  }
  if (probed_e2e) flush_e2e_output();
}

void Daemon::Impl::on_direct_packet(link::InPacket& in) {
  // A packet straight from another host: the inner packet as it left its TUN. Its source
  // must be an address that host's key is entitled to.
  const auto fk = parse_flow(in.inner);
  const auto key = link->peer_key(in.peer);
  if (in.header.service_id != static_cast<std::uint16_t>(wire::ServiceId::ip) || !fk || !key) {
    drops.add(wire::DropReason::bad_inner_packet);
    return;
  }
  const IpAddr src = fk->src_addr();
  std::optional<crypto::noise::PublicKey> expected;
  if (const PeerRoute* route = peer_route(src); route && route->key) expected = route->key;
  if (!expected) {
    if (const auto info = e2e->peer(src)) expected = info->key;
  }
  if (!expected) {
    if (auto it = direct_keys.find(src); it != direct_keys.end()) expected = it->second;
  }
  if (!expected && direct_keys.size() < kMaxLearned) {
    direct_keys.emplace(src, *key);  // first contact: bind the address to this key
    expected = key;
  }
  if (!expected || *expected != *key) {
    drops.add(wire::DropReason::spoofed_source);
    return;
  }
  counters.add(Ctr::direct_rx_packets);
  // Reply the way it came; an entry made here (not by direct_path) follows the peer's choice.
  if (auto it = direct.find(src); it == direct.end()) {
    direct.emplace(src, in.peer);
    direct_learned.insert(src);
  } else if (it->second != in.peer) {
    it->second = in.peer;
  }
  eout.to_tun.push(in.inner);
}

void Daemon::Impl::on_link_readable() {
  if (stopping) return;
  const auto now = Clock::now();
  for (int round = 0; round < 8; ++round) {
    const std::size_t got = link->receive([&](link::InPacket& in) {
      if (!link->is_sn(in.peer)) {
        on_direct_packet(in);
        return;
      }
      counters.add(Ctr::sn_rx_packets);
      if (in.header.service_id != static_cast<std::uint16_t>(wire::ServiceId::ip)) {
        drops.add(wire::DropReason::unknown_service);
        return;
      }
      // An authentic packet (data accepted, or a handshake that moved the session) tells us
      // the sender's current SN.
      const std::size_t to_tun = eout.to_tun.size();
      if (e2e->receive(in.inner, now, eout)) learn_from_sn_path(in, eout.to_tun.size() > to_tun);
    });
    flush_e2e_output();
    if (got < link::HostLink::kBatch) break;
  }
  link->service();
  // An SN's state changed (a session up or down, a registration answered): act now, not at
  // the next tick. Data alone changes nothing there, and this runs for every batch.
  if (link->events() != link_events_seen) {
    link_events_seen = link->events();
    reconcile_sns();
  }
}

}  // namespace ie::ied
