// RTT of first-hop SN candidates (ARCHITECTURE.md "SN discovery and association": probe
// candidates' RTT, associate with the best; docs/discovery.md "Choosing by RTT").
// The two SNs an IESP is associated with are measured all the time (their PROBE_ACKs,
// HostLink::SnState::rtt_ms). The other candidates whose RTT could move them into the first
// two places (sn_rank.hpp rtt_contenders) are surveyed: echoes one after another
// (kSurveySamples; docs/ilp.md "Echo": a 36-byte datagram with a mac1 for the candidate's
// key, answered by the SN's control plane with no handshake and no state), the least round
// trip kept. A candidate that answers none of the first kEchoTries echoes (an SN older than
// echoes, or lost datagrams) is surveyed the old way: a short association of its own (Noise
// IK to its key, no registration, no out-of-band invocations), PROBEs one after another,
// the association closed. A survey that gets no answer within kSurveyTimeout (counted from
// the fallback, if any) marks the candidate unreachable (last of its tier) until the next
// one. Figures are the least round trip of the last 30-60 s
// (RttRecord), so a PROBE that waited behind a busy CPU does not move an SN down the list.
// Each candidate is surveyed again every discovery.rtt_survey_s; at most kMaxSurveys run at
// once, so a long SRV list costs a handshake every few hundred milliseconds at start and then
// one per candidate per period. sn_rank.hpp turns the figures into the preference order that
// reconcile_iesp() (sn_set.cpp) associates by.
#include <algorithm>

#include "daemon_impl.hpp"
#include "ie/crypto/key_file.hpp"
#include "ie/util/log.hpp"

namespace ie::ied {

namespace {

constexpr auto kSurveyTimeout = std::chrono::seconds(3);
constexpr unsigned kSurveySamples = 3;  // round trips per survey, one after the other; the least
constexpr auto kEchoWait = std::chrono::seconds(1);  // an echo unanswered this long is lost
constexpr unsigned kEchoTries = 2;  // none of the first ones answered: survey by association
constexpr std::size_t kMaxSurveys = 2;
constexpr auto kRttWindow = std::chrono::seconds(30);

bool usable(const SnEntry& e) {
  return e.error.empty() && !e.retiring;
}

}  // namespace

SnEntry SnEntry::make(std::string name, std::string endpoint, const crypto::noise::PublicKey& key) {
  SnEntry e;
  e.rtt_id = name + ' ' + endpoint + ' ' + crypto::key_to_base64(key);
  e.name = std::move(name);
  e.endpoint = std::move(endpoint);
  e.key = key;
  return e;
}

std::optional<double> Daemon::Impl::RttRecord::rtt_ms() const {
  if (min_cur && min_prev) return std::min(*min_cur, *min_prev);
  return min_cur ? min_cur : min_prev;
}

void Daemon::Impl::RttRecord::add(double ms, Clock::time_point now) {
  if (now - window_start >= kRttWindow) {
    min_prev = now - window_start < 2 * kRttWindow ? min_cur : std::nullopt;
    min_cur.reset();
    window_start = now;
  }
  min_cur = min_cur ? std::min(*min_cur, ms) : ms;
  at = now;
  unreachable = false;
}

const Daemon::Impl::RttRecord* Daemon::Impl::rtt_of(const SnEntry& e) const {
  const auto it = rtts.find(e.rtt_id);
  return it == rtts.end() ? nullptr : &it->second;
}

std::vector<RankInput> Daemon::Impl::rank_inputs(const std::vector<std::size_t>& members) const {
  std::vector<RankInput> in;
  in.reserve(members.size());
  for (const std::size_t i : members) {
    const SnEntry& e = sns[i];
    RankInput r;
    r.source_rank = source_rank(cfg, e.source);
    r.priority = e.priority;
    r.order = e.order;
    if (const RttRecord* rec = rtt_of(e)) {
      r.rtt_ms = rec->rtt_ms();
      r.unreachable = rec->unreachable;
    }
    in.push_back(r);
  }
  return in;
}

std::vector<std::size_t> Daemon::Impl::usable_of(const std::string& iesp) const {
  std::vector<std::size_t> members;
  for (std::size_t i = 0; i < sns.size(); ++i)
    if (sns[i].iesp == iesp && usable(sns[i])) members.push_back(i);
  return members;
}

std::vector<std::size_t> Daemon::Impl::rank_iesp(const std::string& iesp) const {
  const std::vector<std::size_t> members = usable_of(iesp);
  const auto in = rank_inputs(members);
  std::vector<std::size_t> out;
  out.reserve(members.size());
  for (const std::size_t k : rank_candidates(in, cfg.rtt_survey.count() > 0))
    out.push_back(members[k]);
  return out;
}

void Daemon::Impl::end_survey(std::size_t k) {
  RttSurvey& s = surveys[k];
  if (s.echo) link->forget_echo(*s.echo);
  if (s.by_association) link->remove_sn(s.peer);
  surveys.erase(surveys.begin() + static_cast<std::ptrdiff_t>(k));
}

void Daemon::Impl::end_survey_of(const SnEntry& e) {
  const std::string& id = e.rtt_id;
  for (std::size_t k = 0; k < surveys.size(); ++k)
    if (surveys[k].id == id) return end_survey(k);
}

bool Daemon::Impl::send_echo(RttSurvey& s, const SnEntry& e, Clock::time_point now) {
  auto id = link->echo(e.endpoint, e.key);
  if (!id) {
    IE_LOG_WARN("RTT survey: SN {} at {}: {}", e.name, e.endpoint, id.error().to_string());
    return false;
  }
  s.echo = *id;
  s.echo_sent = now;
  ++s.echoes_sent;
  return true;
}

void Daemon::Impl::rtt_tick(Clock::time_point now) {
  // Surveys in flight: answered, timed out, or their candidate gone (or associated now).
  for (std::size_t k = 0; k < surveys.size();) {
    RttSurvey& s = surveys[k];
    const auto e = std::find_if(sns.begin(), sns.end(), [&](const SnEntry& x) {
      return x.rtt_id == s.id && usable(x) && !x.peer;
    });
    const auto st = s.by_association ? link->sn_state(s.peer) : std::nullopt;
    if (st && s.probing && st->rtt_samples > s.answered && st->rtt_ms) {
      s.best = s.best ? std::min(*s.best, *st->rtt_ms) : *st->rtt_ms;
      ++s.samples;
      s.probing = false;
    }
    if (s.echo) {
      if (const auto ms = link->echo_rtt_ms(*s.echo)) {
        s.best = s.best ? std::min(*s.best, *ms) : *ms;
        ++s.samples;
        link->forget_echo(*s.echo);
        s.echo.reset();
      } else if (now - s.echo_sent >= kEchoWait) {
        link->forget_echo(*s.echo);  // lost (or never answered): a late answer is not taken
        s.echo.reset();
      }
    }
    if (e == sns.end() || cfg.rtt_survey.count() == 0) {
      end_survey(k);
    } else if (!s.by_association && s.samples == 0 && !s.echo && s.echoes_sent >= kEchoTries) {
      // No echo answered: an SN older than echoes (or a path losing them). The old way.
      auto p = link->add_sn_for_rtt(e->endpoint, e->key);
      if (!p) {
        rtts[s.id].at = now;  // the same key associated under another entry: no figure
        IE_LOG_WARN("RTT survey: SN {} at {}: {}", e->name, e->endpoint, p.error().to_string());
        end_survey(k);
        continue;
      }
      counters.add(Ctr::rtt_survey_fallbacks);
      IE_LOG_INFO("RTT survey: SN {} at {} answered no echo; measuring through an association",
                  e->name, e->endpoint);
      s.by_association = true;
      s.peer = *p;
      s.started = now;
      ++k;
    } else if (s.samples >= kSurveySamples || (s.best && now - s.started >= kSurveyTimeout)) {
      rtts[s.id].add(*s.best, now);
      IE_LOG_INFO("RTT survey: SN {} at {}: {:.3f} ms", e->name, e->endpoint, *s.best);
      end_survey(k);
    } else if (now - s.started >= kSurveyTimeout) {
      RttRecord& rec = rtts[s.id];
      rec = RttRecord{};
      rec.at = now;
      rec.unreachable = true;
      counters.add(Ctr::rtt_survey_failures);
      IE_LOG_WARN("RTT survey: SN {} at {}: no answer in {} s", e->name, e->endpoint,
                  std::chrono::duration_cast<std::chrono::seconds>(kSurveyTimeout).count());
      end_survey(k);
    } else {
      if (st && st->established && !s.probing) {
        s.answered = st->rtt_samples;
        s.probing = true;
        link->probe(s.peer);
      } else if (!s.by_association && !s.echo) {
        send_echo(s, *e, now);
      }
      ++k;
    }
  }
  // Associated SNs: their live RTT (an unanswered PROBE leaves the last answer; a dead
  // association is the failover's business, not the ranking's).
  for (const SnEntry& e : sns)
    if (e.peer)
      if (const auto st = link->sn_state(*e.peer); st && st->rtt_ms)
        rtts[e.rtt_id].add(*st->rtt_ms, now);  // the same answer again changes no minimum
  // Forget figures of candidates that are gone.
  for (auto it = rtts.begin(); it != rtts.end();) {
    const bool known = std::any_of(sns.begin(), sns.end(),
                                   [&](const SnEntry& x) { return x.rtt_id == it->first; });
    it = known ? std::next(it) : rtts.erase(it);
  }
  if (cfg.rtt_survey.count() == 0) return;
  // New surveys: per IESP, the contenders for its first places that are not associated and
  // have no figure younger than the period.
  for (const auto& entry : iesps) {
    const std::string& iesp = entry.first;
    const std::vector<std::size_t> members = usable_of(iesp);
    const auto in = rank_inputs(members);
    for (const std::size_t k : rtt_contenders(in, kAssociatedPerIesp)) {
      if (surveys.size() >= kMaxSurveys) return;
      const SnEntry& e = sns[members[k]];
      if (e.peer) continue;
      const std::string& id = e.rtt_id;
      if (std::any_of(surveys.begin(), surveys.end(),
                      [&](const RttSurvey& s) { return s.id == id; }))
        continue;
      if (const RttRecord* rec = rtt_of(e); rec && now - rec->at < cfg.rtt_survey) continue;
      RttSurvey sv;
      sv.id = id;
      sv.started = now;
      if (!send_echo(sv, e, now)) {
        rtts[id].at = now;  // an endpoint that cannot be sent to: no figure, it keeps its place
        continue;
      }
      counters.add(Ctr::rtt_surveys);
      surveys.push_back(std::move(sv));
    }
  }
}

}  // namespace ie::ied
