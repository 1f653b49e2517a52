// ReplayWindow (PSP) and ControlReplayWindow (control channel): edge cases, and a differential
// test of each against a naive reference (a set of every accepted number plus the maximum)
// over random operations.
#include "ie/crypto/replay_window.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace ie::crypto {
namespace {

// What a window of kWindow numbers must decide, written the obvious way.
template <std::uint64_t kWindow = ReplayWindow::kWindow>
class NaiveWindow {
 public:
  bool check(std::uint64_t seq) const {
    if (seen_.empty() || seq > max_) return true;
    if (max_ - seq >= kWindow) return false;
    return seen_.count(seq) == 0;
  }
  void update(std::uint64_t seq) {
    seen_.insert(seq);
    if (seq > max_) max_ = seq;
    // Forget what can never be asked again, to keep the set small.
    while (!seen_.empty() && max_ - *seen_.begin() >= kWindow)
      seen_.erase(seen_.begin());
  }

 private:
  std::set<std::uint64_t> seen_;
  std::uint64_t max_ = 0;
};

TEST(ReplayWindow, WindowIsAtLeast2048) {
  EXPECT_GE(ReplayWindow::kWindow, 2048u);
}

TEST(ReplayWindow, AcceptsOnceRejectsDuplicate) {
  ReplayWindow w;
  EXPECT_TRUE(w.check(0));
  EXPECT_TRUE(w.update(0));
  EXPECT_FALSE(w.check(0));
  EXPECT_FALSE(w.update(0));
  EXPECT_TRUE(w.update(1));
  EXPECT_TRUE(w.update(5));
  EXPECT_TRUE(w.check(3));
  EXPECT_TRUE(w.update(3));
  EXPECT_FALSE(w.check(3));
  EXPECT_FALSE(w.check(5));
}

TEST(ReplayWindow, CheckDoesNotChangeState) {
  ReplayWindow w;
  for (int i = 0; i < 10; ++i)
    EXPECT_TRUE(w.check(42));
  EXPECT_TRUE(w.empty());
  EXPECT_TRUE(w.update(42));
  EXPECT_EQ(w.highest(), 42u);
}

TEST(ReplayWindow, OldestEdgeOfWindow) {
  ReplayWindow w;
  const std::uint64_t top = 100000;
  ASSERT_TRUE(w.update(top));
  EXPECT_TRUE(w.check(top - ReplayWindow::kWindow + 1));  // inside
  EXPECT_FALSE(w.check(top - ReplayWindow::kWindow));     // just outside
  EXPECT_TRUE(w.update(top - ReplayWindow::kWindow + 1));
  EXPECT_FALSE(w.check(top - ReplayWindow::kWindow + 1));
}

TEST(ReplayWindow, JumpFarAheadClearsEverything) {
  ReplayWindow w;
  for (std::uint64_t s = 0; s < 5000; ++s)
    ASSERT_TRUE(w.update(s));
  const std::uint64_t far = 1'000'000'000ull;
  ASSERT_TRUE(w.update(far));
  // Numbers just below the new top were never seen, even where old bits lived in the ring.
  for (std::uint64_t s = far - 1; s > far - ReplayWindow::kWindow; s -= 7)
    EXPECT_TRUE(w.check(s)) << s;
  EXPECT_FALSE(w.check(4999));
}

TEST(ReplayWindow, HighSequenceNumbers) {
  ReplayWindow w;
  const std::uint64_t top = UINT64_MAX;
  ASSERT_TRUE(w.update(top - 1));
  ASSERT_TRUE(w.update(top));
  EXPECT_FALSE(w.check(top));
  EXPECT_TRUE(w.check(top - 2));
}

TEST(ReplayWindow, DifferentialAgainstNaiveReference) {
  const std::uint32_t seed = 0x1e5eed;
  std::mt19937_64 rng(seed);
  ReplayWindow w;
  NaiveWindow<> ref;
  std::uint64_t base = 0;
  std::size_t accepted = 0, rejected = 0;
  for (std::size_t op = 0; op < 1'200'000; ++op) {
    std::uint64_t seq;
    const auto kind = rng() % 100;
    if (kind < 50) {
      seq = base + rng() % 64;  // mostly in order, some reordering
    } else if (kind < 80) {
      seq = base > 3000 ? base - rng() % 3000 : rng() % (base + 1);  // late, often duplicate
    } else if (kind < 95) {
      seq = base > 6000 ? base - 4000 - rng() % 2000 : rng() % (base + 1);  // around the edge
    } else if (kind < 99) {
      seq = base + 64 + rng() % 10000;  // jump ahead
    } else {
      seq = base + rng() % 5'000'000;  // far jump
    }
    const bool want = ref.check(seq);
    ASSERT_EQ(w.check(seq), want) << "seed " << seed << " op " << op << " seq " << seq;
    // Half of the acceptable packets "fail authentication" and must not update.
    const bool authentic = (rng() & 1) != 0;
    if (want && authentic) {
      ASSERT_TRUE(w.update(seq)) << "seed " << seed << " op " << op;
      ref.update(seq);
      if (seq > base) base = seq;
      ++accepted;
    } else {
      ++rejected;
    }
  }
  EXPECT_GT(accepted, 100000u);
  EXPECT_GT(rejected, 100000u);
}

// The control channel's small window: same rules, 192 numbers, and a tenth of the size.
TEST(ControlReplayWindow, SmallAndStillRejectsReplays) {
  static_assert(ControlReplayWindow::kWindow == 192);
  static_assert(sizeof(ControlReplayWindow) <= 48);
  ControlReplayWindow w;
  EXPECT_TRUE(w.update(0));
  EXPECT_FALSE(w.check(0));
  EXPECT_FALSE(w.update(0));
  const std::uint64_t top = 1000;
  ASSERT_TRUE(w.update(top));
  EXPECT_TRUE(w.check(top - ControlReplayWindow::kWindow + 1));  // inside, never seen
  EXPECT_FALSE(w.check(top - ControlReplayWindow::kWindow));     // just outside
  EXPECT_FALSE(w.check(0));                                      // seen, and far outside
  EXPECT_FALSE(w.check(top));
  ASSERT_TRUE(w.update(top + 100000));  // a jump clears the ring: below it is unseen
  EXPECT_FALSE(w.check(top));
  EXPECT_TRUE(w.check(top + 100000 - 1));
}

TEST(ControlReplayWindow, DifferentialAgainstNaiveReference) {
  const std::uint32_t seed = 0xc0ffee;
  std::mt19937_64 rng(seed);
  ControlReplayWindow w;
  NaiveWindow<ControlReplayWindow::kWindow> ref;
  std::uint64_t base = 0;
  std::size_t accepted = 0, rejected = 0;
  for (std::size_t op = 0; op < 300'000; ++op) {
    std::uint64_t seq;
    const auto kind = rng() % 100;
    if (kind < 50) {
      seq = base + rng() % 8;  // mostly in order
    } else if (kind < 80) {
      seq = base > 150 ? base - rng() % 150 : rng() % (base + 1);  // late, often duplicate
    } else if (kind < 95) {
      seq = base > 300 ? base - 180 - rng() % 30 : rng() % (base + 1);  // around the edge
    } else if (kind < 99) {
      seq = base + 8 + rng() % 500;  // jump ahead
    } else {
      seq = base + rng() % 100'000;  // far jump
    }
    const bool want = ref.check(seq);
    ASSERT_EQ(w.check(seq), want) << "seed " << seed << " op " << op << " seq " << seq;
    const bool authentic = (rng() & 1) != 0;
    if (want && authentic) {
      ASSERT_TRUE(w.update(seq)) << "seed " << seed << " op " << op;
      ref.update(seq);
      if (seq > base) base = seq;
      ++accepted;
    } else {
      ++rejected;
    }
  }
  EXPECT_GT(accepted, 20000u);
  EXPECT_GT(rejected, 20000u);
}

}  // namespace
}  // namespace ie::crypto
