// Plpmtud (ie/ied/plpmtud.hpp): path MTU black-hole detection with padded PROBEs.
#include "ie/ied/plpmtud.hpp"

#include <algorithm>

namespace ie::ied {

std::string_view to_string(Plpmtud::State s) {
  switch (s) {
    case Plpmtud::State::idle:
      return "idle";
    case Plpmtud::State::confirmed:
      return "confirmed";
    case Plpmtud::State::probing:
      return "probing";
    case Plpmtud::State::searching:
      return "searching";
  }
  return "?";
}

void Plpmtud::send_probe(Time now, std::size_t size, Kind kind, const SendProbe& send) {
  const std::uint32_t id = send(size);  // 0: not sent; it times out like a lost one
  ++probes_sent_;
  pending_.push_back({size, id, now, kind});
}

void Plpmtud::start_round(Time now, const SendProbe& send) {
  const std::size_t span = hi_ - lo_;
  std::size_t last = lo_;
  for (unsigned i = 1; i <= cfg_.parallel; ++i) {
    const std::size_t size = lo_ + span * i / (cfg_.parallel + 1);
    if (size <= last || size >= hi_) continue;
    send_probe(now, size, Kind::search, send);
    last = size;
  }
}

void Plpmtud::tick(Time now, std::size_t upper, bool busy, const SendProbe& send,
                   const Answered& answered) {
  if (upper <= kFloor) return;  // every datagram the kernel sends with DF fits any path
  const std::size_t t = target(upper);

  // Answers and losses. A search round's results are applied together: its largest answered
  // size passes, and the smallest unanswered one above that fails (a probe lost by chance
  // below an answered one says nothing).
  std::size_t round_best = 0;
  std::vector<std::size_t> round_lost;
  for (auto it = pending_.begin(); it != pending_.end();) {
    const bool ok = it->id != 0 && answered(it->id);
    if (!ok && now - it->sent < cfg_.timeout) {
      ++it;
      continue;
    }
    switch (it->kind) {
      case Kind::confirm:
        if (ok && it->size >= t) {
          confirmed_size_ = t;
          confirmed_at_ = now;
          fails_ = 0;
          if (state_ != State::searching) state_ = State::confirmed;
        } else if (!ok) {
          fails_ = it->size == t ? fails_ + 1 : 0;  // a lost probe of an old target: start over
        }
        break;
      case Kind::raise:
        if (ok && it->size >= upper) {  // the black hole is gone
          cap_.reset();
          confirmed_size_ = upper;
          confirmed_at_ = now;
          fails_ = 0;
          if (state_ != State::searching) state_ = State::confirmed;
        }
        break;
      case Kind::search:
        if (ok) {
          search_answered_ = true;
          round_best = std::max(round_best, it->size);
        } else {
          round_lost.push_back(it->size);
        }
        break;
    }
    it = pending_.erase(it);
  }

  if (state_ == State::searching) {
    lo_ = std::max(lo_, round_best);
    for (const std::size_t s : round_lost)
      if (s > lo_) hi_ = std::min(hi_, s);
    hi_ = std::min(hi_, upper + 1);  // the kernel may have learned a smaller MTU meanwhile
    const bool round_over = std::none_of(pending_.begin(), pending_.end(),
                                         [](const Pending& p) { return p.kind == Kind::search; });
    if (!round_over) return;
    if (!search_answered_) {
      // Not one size answered: the peer is unreachable (its association's timers deal with
      // that), not a black hole. No limit; confirm again a confirm_every later.
      state_ = State::idle;
      confirmed_size_ = t;
      confirmed_at_ = now;
      fails_ = 0;
      return;
    }
    if (hi_ - lo_ <= cfg_.granularity || hi_ <= lo_) {
      cap_ = lo_;
      ++black_holes_;
      state_ = State::confirmed;
      confirmed_size_ = target(upper);
      confirmed_at_ = now;
      fails_ = 0;
      next_raise_ = now + cfg_.raise_every;
      return;
    }
    start_round(now, send);
    return;
  }

  if (fails_ > 0) state_ = State::probing;
  if (!busy) return;
  const bool confirming = std::any_of(pending_.begin(), pending_.end(),
                                      [](const Pending& p) { return p.kind == Kind::confirm; });
  if (!confirming) {
    if (fails_ >= cfg_.max_probes) {
      // t does not get through: search below it (below the limit itself, if that failed).
      state_ = State::searching;
      lo_ = kFloor;
      hi_ = t;
      fails_ = 0;
      search_answered_ = false;
      start_round(now, send);
      // ... and one of the floor's size, which any path carries: if not even that is
      // answered, the peer is unreachable rather than behind a black hole.
      send_probe(now, kFloor, Kind::search, send);
      return;
    }
    if (fails_ > 0 || confirmed_size_ != t || now - confirmed_at_ >= cfg_.confirm_every)
      send_probe(now, t, Kind::confirm, send);
  }
  const bool raising = std::any_of(pending_.begin(), pending_.end(),
                                   [](const Pending& p) { return p.kind == Kind::raise; });
  if (cap_ && *cap_ < upper && !raising && now >= next_raise_) {
    send_probe(now, upper, Kind::raise, send);
    next_raise_ = now + cfg_.raise_every;
  }
}

}  // namespace ie::ied
