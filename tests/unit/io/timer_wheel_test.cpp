// TimerWheel: 100k timers, never early, cancel, re-arming callbacks, and a differential test
// against a std::multimap reference on a fake clock.
#include "ie/io/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace ie::io {
namespace {

TEST(TimerWheel, FiresOnItsTickNeverEarly) {
  TimerWheel w(1000);
  std::vector<std::uint64_t> fired;
  for (std::uint64_t d :
       {1ull, 2ull, 255ull, 256ull, 257ull, 65535ull, 65536ull, 70000ull, 16777216ull + 5}) {
    const std::uint64_t at = 1000 + d;
    w.add(at, [&, at] {
      EXPECT_EQ(w.now(), at);
      fired.push_back(at);
    });
  }
  w.advance(1000 + 16777216ull + 10);
  EXPECT_EQ(fired.size(), 9u);
  EXPECT_TRUE(std::is_sorted(fired.begin(), fired.end()));
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheel, DueOrPastTimersFireOnTheNextTick) {
  TimerWheel w(50);
  int n = 0;
  w.add(10, [&] { ++n; });
  w.add(50, [&] { ++n; });
  EXPECT_EQ(w.advance(50), 0u);
  EXPECT_EQ(w.advance(51), 2u);
  EXPECT_EQ(n, 2);
}

TEST(TimerWheel, FarFutureBeyondTheTopLevel) {
  TimerWheel w(0);
  const std::uint64_t far = (std::uint64_t{1} << 33) + 12345;  // beyond 2^32 ticks
  bool fired = false;
  w.add(far, [&] {
    EXPECT_EQ(w.now(), far);
    fired = true;
  });
  w.advance(far - 1);
  EXPECT_FALSE(fired);
  w.advance(far);
  EXPECT_TRUE(fired);
}

TEST(TimerWheel, CancelAndStaleHandles) {
  TimerWheel w;
  int n = 0;
  auto a = w.add(10, [&] { ++n; });
  auto b = w.add(10, [&] { ++n; });
  EXPECT_TRUE(w.cancel(a));
  EXPECT_FALSE(w.cancel(a));
  w.advance(10);
  EXPECT_EQ(n, 1);
  EXPECT_FALSE(w.cancel(b));         // already fired
  auto c = w.add(20, [&] { ++n; });  // reuses a slab node; old handles stay stale
  EXPECT_FALSE(w.cancel(a));
  EXPECT_FALSE(w.cancel(TimerWheel::Handle{}));
  EXPECT_TRUE(w.cancel(c));
}

TEST(TimerWheel, CallbacksMayRearmAndCancel) {
  TimerWheel w;
  int ticks = 0;
  std::function<void()> tick = [&] {
    if (++ticks < 100) w.add(w.now() + 3, tick);
  };
  w.add(3, tick);
  TimerWheel::Handle victim = w.add(150, [] { FAIL() << "cancelled timer fired"; });
  w.add(149, [&] { EXPECT_TRUE(w.cancel(victim)); });
  w.advance(1000);
  EXPECT_EQ(ticks, 100);
}

TEST(TimerWheel, HundredThousandTimersDifferential) {
  const std::uint32_t seed = 4242;
  std::mt19937_64 rng(seed);
  TimerWheel w(7);
  std::multimap<std::uint64_t, std::uint32_t> ref;  // expiry -> id
  std::map<std::uint32_t, TimerWheel::Handle> handles;
  std::map<std::uint32_t, std::uint64_t> expiry_of;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> fired;
  std::uint32_t next_id = 0;
  auto add = [&](std::uint64_t at) {
    const std::uint32_t id = next_id++;
    handles[id] = w.add(at, [&, id] { fired.emplace_back(w.now(), id); });
    ref.emplace(at, id);
    expiry_of[id] = at;
  };
  for (int i = 0; i < 100000; ++i) {
    const auto r = rng() % 100;
    const std::uint64_t d = r < 60 ? rng() % 300 : r < 90 ? rng() % 70000 : rng() % 20'000'000;
    add(w.now() + 1 + d);
  }
  // Advance in irregular steps, cancelling and adding along the way.
  std::uint64_t cancelled = 0;
  while (w.now() < 25'000'000) {
    const std::uint64_t to = w.now() + 1 + rng() % 5000;
    for (int k = 0; k < 20 && !handles.empty(); ++k) {
      auto it = handles.lower_bound(static_cast<std::uint32_t>(rng() % next_id));
      if (it == handles.end()) continue;
      if (w.cancel(it->second)) {
        auto range = ref.equal_range(expiry_of[it->first]);
        for (auto r = range.first; r != range.second; ++r) {
          if (r->second == it->first) {
            ref.erase(r);
            break;
          }
        }
        ++cancelled;
      }
      handles.erase(it);
    }
    if (rng() % 4 == 0) add(w.now() + 1 + rng() % 100000);
    fired.clear();
    w.advance(to);
    // The reference: everything due by `to`, in expiry order.
    std::vector<std::pair<std::uint64_t, std::uint32_t>> want;
    while (!ref.empty() && ref.begin()->first <= to) {
      want.emplace_back(ref.begin()->first, ref.begin()->second);
      ref.erase(ref.begin());
    }
    ASSERT_EQ(fired.size(), want.size()) << "seed " << seed << " at " << to;
    for (std::size_t i = 0; i < fired.size(); ++i) {
      ASSERT_EQ(fired[i].first, expiry_of[fired[i].second])
          << "fired at the wrong tick, seed " << seed;
    }
    std::sort(fired.begin(), fired.end());
    std::sort(want.begin(), want.end());
    ASSERT_EQ(fired, want) << "seed " << seed;
    for (auto& f : fired)
      handles.erase(f.second);
  }
  EXPECT_GT(cancelled, 1000u);
  EXPECT_EQ(w.size(), ref.size());
}

}  // namespace
}  // namespace ie::io
