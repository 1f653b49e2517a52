// SN discovery and peer records over DNS (see dns_resolver.hpp, docs/discovery.md).
//
// One discovery is a small tree of queries, all on one AresChannel:
//   1. SRV _interedge._udp.<domain>                       -> SRV records, distinct targets
//   2. per target: TXT <target>, and A + AAAA <target> unless the SRV answer's additional
//      section already carried addresses for it
//   3. when the last answer is in: RFC 2782 order over the SRV records, one candidate per
//      (SRV record, address) with a usable TXT, expiring at the smallest TTL involved.
// Each request has an id; c-ares callbacks find their request by id, so late answers for a
// finished request are dropped. `pending` counts outstanding queries plus one guard while
// step 2 issues them (a query can fail synchronously inside AresChannel::query).
#include "ie/ied/dns_resolver.hpp"

#include <ares.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include "ares_channel.hpp"
#include "ie/ied/dns_message.hpp"
#include "ie/ied/ie_txt_record.hpp"
#include "ie/ied/reverse_name.hpp"
#include "ie/util/log.hpp"

namespace ie::ied {

using Clock = std::chrono::steady_clock;

struct DnsResolver::Target {
  std::string name;
  std::optional<SnTxt> txt;
  Clock::time_point txt_expires{};
  struct Addr {
    std::string address;
    bool v6 = false;
    Clock::time_point expires{};
  };
  std::vector<Addr> addrs;
  std::string error;  // why this target is unusable (TXT / address failures)
};

struct DnsResolver::DiscoverOp {
  std::string domain;
  std::string srv_name;
  DiscoverDone done;
  struct Srv {
    SrvRank rank;
    std::uint16_t port = 0;
    std::size_t target = 0;
    Clock::time_point expires{};
  };
  std::vector<Srv> srvs;
  std::vector<Target> targets;
  int pending = 0;
};

struct DnsResolver::PeerOp {
  std::string address;
  std::string name;
  PeerDone done;
};

namespace {

bool valid_dns_name(std::string_view n) {
  if (n.empty() || n.size() > 253) return false;
  std::size_t label = 0;
  for (char c : n) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) != 0 || c == '-' || c == '_')) return false;
    if (++label > 63) return false;
  }
  return label != 0;
}

Errc errc_of(int status) {
  switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
      return Errc::not_found;
    case ARES_ETIMEOUT:
      return Errc::timeout;
    case ARES_EFORMERR:
    case ARES_EBADRESP:
      return Errc::protocol;
    case ARES_EBADNAME:
      return Errc::invalid_argument;
    default:
      return Errc::io;
  }
}

Clock::time_point expiry(Clock::time_point now, std::uint32_t ttl) {
  return now + std::chrono::seconds(ttl);
}

void add_reason(std::string* to, const std::string& reason) {
  if (!to->empty()) *to += "; ";
  *to += reason;
}

// The InterEdge TXT records among `recs` parsed with `parse`; the one valid record (or the
// identical copies of it) wins; two different valid records are ambiguous. *why explains a failure.
template <typename T, typename Parse>
std::optional<T> pick_ie_txt(const std::vector<const dns::Record*>& recs, Parse parse,
                             Clock::time_point now, Clock::time_point* expires, Errc* code,
                             std::string* why) {
  std::optional<T> found;
  std::string found_text;
  std::string rejected;
  std::size_t ie_records = 0;
  *code = Errc::not_found;
  for (const auto* r : recs) {
    if (!is_ie_txt(r->text)) continue;
    ++ie_records;
    auto parsed = parse(r->text);
    if (!parsed) {
      add_reason(&rejected, "record rejected: " + parsed.error().context);
      continue;
    }
    if (found && found_text != r->text) {
      *code = Errc::protocol;
      *why = "more than one valid InterEdge TXT record (ambiguous)";
      return std::nullopt;
    }
    const auto e = expiry(now, r->ttl);
    if (!found || e < *expires) *expires = e;
    found = std::move(*parsed);
    found_text = r->text;
  }
  if (found) return found;
  *why = ie_records == 0 ? "no InterEdge TXT record (v=ie...)" : rejected;
  return std::nullopt;
}

}  // namespace

std::string sn_srv_name(std::string_view domain) {
  return "_interedge._udp." + dns::canonical_name(domain);
}

Result<std::unique_ptr<DnsResolver>> DnsResolver::create(io::Reactor& reactor,
                                                         ResolverOptions opts) {
  if (!opts.rand_below) opts.rand_below = system_rand_below;
  if (opts.max_targets == 0) return fail(Errc::invalid_argument, "dns resolver: max_targets 0");
  std::unique_ptr<DnsResolver> self(new DnsResolver(reactor, std::move(opts)));
  auto ch = AresChannel::create(reactor, self->opts_);
  if (!ch) return fail(ch.error());
  self->channel_ = std::move(*ch);
  return self;
}

DnsResolver::DnsResolver(io::Reactor& reactor, ResolverOptions opts)
    : reactor_(reactor), opts_(std::move(opts)) {}

DnsResolver::~DnsResolver() {
  *alive_ = false;
  alive_.reset();    // posted deliveries hold a weak_ptr: they now find nothing and do nothing
  channel_.reset();  // drops every query without calling back
}

template <typename T, typename Done>
void DnsResolver::deliver(Done done, Result<T> result) {
  reactor_.post([alive = std::weak_ptr<bool>(alive_), done = std::move(done),
                 result = std::move(result)]() mutable {
    if (alive.expired()) return;
    done(std::move(result));
  });
}

void DnsResolver::discover_sns(const std::string& domain, DiscoverDone done) {
  const std::string d = dns::canonical_name(domain);
  if (!valid_dns_name(d) || d.size() > 253 - 16) {
    deliver<std::vector<SnCandidate>>(
        std::move(done),
        fail(Errc::invalid_argument, "discover \"" + domain.substr(0, 64) + "\": not a domain"));
    return;
  }
  const std::uint64_t id = next_id_++;
  auto op = std::make_unique<DiscoverOp>();
  op->domain = d;
  op->srv_name = sn_srv_name(d);
  op->done = std::move(done);
  const std::string name = op->srv_name;
  discover_ops_.emplace(id, std::move(op));
  channel_->query(name, dns::kSrv,
                  [this, id](int status, ConstByteSpan answer) { on_srv(id, status, answer); });
}

void DnsResolver::on_srv(std::uint64_t id, int status, ConstByteSpan answer) {
  auto it = discover_ops_.find(id);
  if (it == discover_ops_.end()) return;
  DiscoverOp& op = *it->second;
  const auto now = reactor_.now();
  auto finish_error = [&](Errc code, const std::string& what) {
    auto done = std::move(op.done);
    const std::string ctx = "discover " + op.domain + ": " + op.srv_name + " SRV: " + what;
    discover_ops_.erase(it);
    deliver<std::vector<SnCandidate>>(std::move(done), fail(code, ctx));
  };
  if (status != ARES_SUCCESS) {
    const char* what = status == ARES_ENODATA ? "no SRV record" : AresChannel::status_text(status);
    return finish_error(errc_of(status), what);
  }
  auto msg = dns::parse_message(answer);
  if (!msg) return finish_error(Errc::protocol, msg.error().context);
  const auto recs = dns::answers_for(*msg, op.srv_name, dns::kSrv);
  if (recs.empty()) return finish_error(Errc::not_found, "no SRV record");
  // RFC 2782: a lone SRV with target "." says the service is decidedly not available.
  if (recs.size() == 1 && recs[0]->srv.target.empty())
    return finish_error(Errc::unsupported, "target \".\": the domain offers no InterEdge SN");

  std::size_t dropped = 0;
  for (const auto* r : recs) {
    if (r->srv.target.empty() || r->srv.port == 0) {
      ++dropped;
      continue;
    }
    std::size_t t = 0;
    while (t < op.targets.size() && op.targets[t].name != r->srv.target)
      ++t;
    if (t == op.targets.size()) {
      if (op.targets.size() >= opts_.max_targets) {
        ++dropped;
        continue;
      }
      op.targets.push_back(Target{});
      op.targets.back().name = r->srv.target;
    }
    op.srvs.push_back(DiscoverOp::Srv{SrvRank{r->srv.priority, r->srv.weight}, r->srv.port, t,
                                      expiry(now, r->ttl)});
  }
  if (dropped != 0)
    IE_LOG_WARN("discover {}: ignored {} SRV record(s) (target \".\", port 0, or over {} targets)",
                op.domain, dropped, opts_.max_targets);
  if (op.srvs.empty()) return finish_error(Errc::not_found, "no usable SRV record");

  // Addresses the server volunteered in the additional section save two queries per target.
  std::vector<bool> need_addr_query(op.targets.size(), true);
  for (std::size_t t = 0; t < op.targets.size(); ++t) {
    for (const auto& a : msg->additional) {
      if ((a.type != dns::kA && a.type != dns::kAaaa) || a.owner != op.targets[t].name) continue;
      op.targets[t].addrs.push_back(
          Target::Addr{a.address, a.type == dns::kAaaa, expiry(now, a.ttl)});
      need_addr_query[t] = false;
    }
  }

  ++op.pending;  // guard: the queries below may complete synchronously
  for (std::size_t t = 0; t < op.targets.size(); ++t) {
    const std::string target = op.targets[t].name;
    ++op.pending;
    channel_->query(target, dns::kTxt,
                    [this, id, t](int st, ConstByteSpan a) { on_target_txt(id, t, st, a); });
    if (!need_addr_query[t]) continue;
    for (std::uint16_t type : {std::uint16_t{dns::kA}, std::uint16_t{dns::kAaaa}}) {
      ++op.pending;
      channel_->query(target, type, [this, id, t, type](int st, ConstByteSpan a) {
        on_target_addr(id, t, type, st, a);
      });
    }
  }
  // `op` is still alive: the guard kept every synchronous completion from finishing it.
  --op.pending;
  maybe_finish_discover(id);
}

void DnsResolver::on_target_txt(std::uint64_t id, std::size_t t, int status, ConstByteSpan answer) {
  auto it = discover_ops_.find(id);
  if (it == discover_ops_.end()) return;
  DiscoverOp& op = *it->second;
  Target& tgt = op.targets[t];
  if (status != ARES_SUCCESS) {
    add_reason(&tgt.error,
               std::string("TXT: ") +
                   (status == ARES_ENODATA ? "no TXT record" : AresChannel::status_text(status)));
  } else if (auto msg = dns::parse_message(answer); !msg) {
    add_reason(&tgt.error, "TXT: " + msg.error().context);
  } else {
    Errc code{};
    std::string why;
    tgt.txt = pick_ie_txt<SnTxt>(dns::answers_for(*msg, tgt.name, dns::kTxt), parse_sn_txt,
                                 reactor_.now(), &tgt.txt_expires, &code, &why);
    if (!tgt.txt) add_reason(&tgt.error, "TXT: " + why);
  }
  --op.pending;
  maybe_finish_discover(id);
}

void DnsResolver::on_target_addr(std::uint64_t id, std::size_t t, std::uint16_t type, int status,
                                 ConstByteSpan answer) {
  auto it = discover_ops_.find(id);
  if (it == discover_ops_.end()) return;
  DiscoverOp& op = *it->second;
  Target& tgt = op.targets[t];
  const char* family = type == dns::kA ? "A" : "AAAA";
  if (status == ARES_SUCCESS) {
    if (auto msg = dns::parse_message(answer); msg) {
      const auto now = reactor_.now();
      for (const auto* r : dns::answers_for(*msg, tgt.name, type))
        tgt.addrs.push_back(Target::Addr{r->address, type == dns::kAaaa, expiry(now, r->ttl)});
    } else {
      add_reason(&tgt.error, std::string(family) + ": " + msg.error().context);
    }
  } else if (status != ARES_ENODATA && status != ARES_ENOTFOUND) {
    // No record of one family is normal; a failure to find out is worth reporting.
    add_reason(&tgt.error, std::string(family) + ": " + AresChannel::status_text(status));
  }
  --op.pending;
  maybe_finish_discover(id);
}

void DnsResolver::maybe_finish_discover(std::uint64_t id) {
  auto it = discover_ops_.find(id);
  if (it == discover_ops_.end() || it->second->pending != 0) return;
  std::unique_ptr<DiscoverOp> op = std::move(it->second);
  discover_ops_.erase(it);

  std::vector<SrvRank> ranks;
  for (const auto& s : op->srvs)
    ranks.push_back(s.rank);
  std::vector<SnCandidate> out;
  std::vector<bool> reported(op->targets.size(), false);
  std::string reasons;
  for (std::size_t i : rfc2782_order(ranks, opts_.rand_below)) {
    const auto& srv = op->srvs[i];
    const Target& tgt = op->targets[srv.target];
    if (!tgt.txt || tgt.addrs.empty()) {
      if (!reported[srv.target]) {
        std::string why = tgt.error;
        if (tgt.txt && tgt.addrs.empty()) add_reason(&why, "no A/AAAA record");
        add_reason(&reasons, tgt.name + ": " + why);
        reported[srv.target] = true;
      }
      continue;
    }
    // Per SRV record: its IPv4 endpoints, then its IPv6 ones (the daemon probes them all).
    for (bool v6 : {false, true}) {
      for (const auto& a : tgt.addrs) {
        if (a.v6 != v6) continue;
        SnCandidate c;
        c.name = tgt.txt->name;
        c.endpoint = v6 ? "[" + a.address + "]:" + std::to_string(srv.port)
                        : a.address + ":" + std::to_string(srv.port);
        c.target = tgt.name;
        c.key = tgt.txt->key;
        c.priority = srv.rank.priority;
        c.weight = srv.rank.weight;
        c.expires = std::min({srv.expires, tgt.txt_expires, a.expires});
        out.push_back(std::move(c));
      }
    }
  }
  if (out.empty()) {
    deliver<std::vector<SnCandidate>>(
        std::move(op->done),
        fail(Errc::not_found, "discover " + op->domain + ": no usable SN: " + reasons));
    return;
  }
  if (!reasons.empty()) IE_LOG_WARN("discover {}: skipped {}", op->domain, reasons);
  deliver<std::vector<SnCandidate>>(std::move(op->done), std::move(out));
}

void DnsResolver::lookup_peer(const std::string& address, PeerDone done) {
  auto name = reverse_name(address);
  if (!name) {
    deliver<PeerRecord>(std::move(done),
                        fail(Errc::invalid_argument, "peer lookup: " + name.error().context));
    return;
  }
  const std::uint64_t id = next_id_++;
  auto op = std::make_unique<PeerOp>();
  op->address = address;
  op->name = *name;
  op->done = std::move(done);
  peer_ops_.emplace(id, std::move(op));
  channel_->query(*name, dns::kTxt, [this, id](int status, ConstByteSpan answer) {
    on_peer_txt(id, status, answer);
  });
}

void DnsResolver::on_peer_txt(std::uint64_t id, int status, ConstByteSpan answer) {
  auto it = peer_ops_.find(id);
  if (it == peer_ops_.end()) return;
  std::unique_ptr<PeerOp> op = std::move(it->second);
  peer_ops_.erase(it);
  const std::string ctx = "peer " + op->address + ": " + op->name + " TXT: ";
  if (status != ARES_SUCCESS) {
    const std::string what = status == ARES_ENOTFOUND ? "NXDOMAIN (no peer record)"
                             : status == ARES_ENODATA ? "no TXT record"
                                                      : AresChannel::status_text(status);
    deliver<PeerRecord>(std::move(op->done), fail(errc_of(status), ctx + what));
    return;
  }
  auto msg = dns::parse_message(answer);
  if (!msg) {
    deliver<PeerRecord>(std::move(op->done), fail(Errc::protocol, ctx + msg.error().context));
    return;
  }
  PeerRecord rec;
  Errc code{};
  std::string why;
  auto txt = pick_ie_txt<PeerTxt>(dns::answers_for(*msg, op->name, dns::kTxt), parse_peer_txt,
                                  reactor_.now(), &rec.expires, &code, &why);
  if (!txt) {
    deliver<PeerRecord>(std::move(op->done), fail(code, ctx + why));
    return;
  }
  rec.sn = std::move(txt->sn);
  rec.key = txt->key;
  rec.endpoint = std::move(txt->endpoint);
  deliver<PeerRecord>(std::move(op->done), std::move(rec));
}

}  // namespace ie::ied
