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

// The differential test's workload per window type, scaled to its window (kWindow 2048+ or
// 192): each draws in-order numbers, late ones (often duplicates), numbers around the
// window's oldest edge, jumps ahead and far jumps.
struct Workload {
  std::uint32_t seed;
  std::size_t ops;
  std::uint64_t in_order, late;               // ahead by < in_order; behind by < late
  std::uint64_t edge_above, edge, edge_span;  // once base > edge_above: behind by edge + < span
  std::uint64_t jump, far_jump;               // ahead by in_order + < jump; by < far_jump
  std::size_t min_each;                       // accepted, and rejected, at least
};
template <typename W>
constexpr Workload kWorkload{};
// In Workload's order: seed, ops, in_order, late, edge_above, edge, edge_span, jump,
// far_jump, min_each.
// clang-format off
template <>
constexpr Workload kWorkload<ReplayWindow>{0x1e5eed, 1'200'000, 64, 3000, 6000, 4000, 2000,
                                           10000, 5'000'000, 100000};
template <>
constexpr Workload kWorkload<ControlReplayWindow>{0xc0ffee, 300'000, 8, 150, 300, 180, 30,
                                                  500, 100'000, 20000};
// clang-format on

template <typename W>
class ReplayWindowDifferential : public ::testing::Test {};
using WindowTypes = ::testing::Types<ReplayWindow, ControlReplayWindow>;
TYPED_TEST_SUITE(ReplayWindowDifferential, WindowTypes);

TYPED_TEST(ReplayWindowDifferential, AgreesWithNaiveReference) {
  constexpr Workload L = kWorkload<TypeParam>;
  std::mt19937_64 rng(L.seed);
  TypeParam w;
  NaiveWindow<TypeParam::kWindow> ref;
  std::uint64_t base = 0;
  std::size_t accepted = 0, rejected = 0;
  for (std::size_t op = 0; op < L.ops; ++op) {
    std::uint64_t seq;
    const auto kind = rng() % 100;
    if (kind < 50) {
      seq = base + rng() % L.in_order;  // mostly in order, some reordering
    } else if (kind < 80) {
      seq = base > L.late ? base - rng() % L.late : rng() % (base + 1);  // late, often dup
    } else if (kind < 95) {
      seq = base > L.edge_above ? base - L.edge - rng() % L.edge_span
                                : rng() % (base + 1);  // around the edge
    } else if (kind < 99) {
      seq = base + L.in_order + rng() % L.jump;  // jump ahead
    } else {
      seq = base + rng() % L.far_jump;  // far jump
    }
    const bool want = ref.check(seq);
    ASSERT_EQ(w.check(seq), want) << "seed " << L.seed << " op " << op << " seq " << seq;
    // Half of the acceptable packets "fail authentication" and must not update.
    const bool authentic = (rng() & 1) != 0;
    if (want && authentic) {
      ASSERT_TRUE(w.update(seq)) << "seed " << L.seed << " op " << op;
      ref.update(seq);
      if (seq > base) base = seq;
      ++accepted;
    } else {
      ++rejected;
    }
  }
  EXPECT_GT(accepted, L.min_each);
  EXPECT_GT(rejected, L.min_each);
}

}  // namespace
}  // namespace ie::crypto
