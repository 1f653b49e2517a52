// Path MTU black-hole detection (plpmtud.hpp) against a simulated path: a probe of a size the
// path carries is answered one RTT later; a larger one is lost without a word (a black hole).
// Checked: a path that carries what the kernel sends is confirmed with one probe and no
// limit; a black hole is found, its limit within the granularity below the real one, in a
// bounded number of probes and seconds; an idle hop costs nothing; an unreachable peer sets
// no limit; one lost probe is not a black hole; a kernel that learns the smaller MTU from
// ICMP meanwhile leaves no limit; a black hole that appears later is found at the next
// confirmation; one that goes away is noticed by the raise probe.
#include "ie/ied/plpmtud.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <vector>

namespace ie::ied {
namespace {

using namespace std::chrono_literals;
using Time = Plpmtud::Time;

struct FakePath {
  std::size_t carries = 1472;  // the largest datagram (UDP payload) that gets through
  std::chrono::milliseconds rtt{20};
  std::set<std::uint32_t> lose;  // ids lost whatever their size
  struct Sent {
    std::uint32_t id;
    std::size_t size;
    Time at;
  };
  std::vector<Sent> sent;
  std::uint32_t next = 1;
  Time now{};

  Plpmtud::SendProbe sender() {
    return [this](std::size_t size) {
      sent.push_back({next, size, now});
      return next++;
    };
  }
  Plpmtud::Answered answers() {
    return [this](std::uint32_t id) {
      for (const auto& s : sent)
        if (s.id == id) return s.size <= carries && now >= s.at + rtt && !lose.count(id);
      return false;
    };
  }
};

FakePath fresh_path(std::size_t carries) {
  FakePath p;
  p.carries = carries;
  p.now = Time{} + 1000s;
  return p;
}

class PlpmtudTest : public ::testing::Test {
 protected:
  // Ticks every 50 ms (ied's tick) for d, with the kernel's `upper` and `busy` as given.
  void run(std::chrono::milliseconds d, std::size_t upper = 1472, bool busy = true) {
    const Time end = path.now + d;
    while (path.now < end) {
      path.now += 50ms;
      pm.tick(path.now, upper, busy, path.sender(), path.answers());
    }
  }
  // Ticks until the limit is set (at most `limit`); returns how long it took.
  std::chrono::milliseconds until_cap(std::chrono::milliseconds limit, std::size_t upper = 1472) {
    const Time start = path.now;
    while (!pm.cap() && path.now - start < limit) {
      path.now += 50ms;
      pm.tick(path.now, upper, true, path.sender(), path.answers());
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(path.now - start);
  }

  FakePath path = fresh_path(1472);
  Plpmtud pm;
};

TEST_F(PlpmtudTest, APathThatCarriesWhatTheKernelSendsIsConfirmedWithOneProbe) {
  run(5s);
  EXPECT_FALSE(pm.cap());
  EXPECT_EQ(pm.state(), Plpmtud::State::confirmed);
  ASSERT_EQ(path.sent.size(), 1u);
  EXPECT_EQ(path.sent[0].size, 1472u);
  // Confirmed again once per confirm_every (10 s) while busy.
  run(10s);
  EXPECT_EQ(path.sent.size(), 2u);
  EXPECT_FALSE(pm.cap());
}

TEST_F(PlpmtudTest, ABlackHoleIsFoundWithinTheGranularityBelowItsSize) {
  for (const std::size_t carries : {1252u, 1400u, 600u, 530u, 1471u}) {
    SCOPED_TRACE(carries);
    path = fresh_path(carries);
    pm = Plpmtud();
    const auto took = until_cap(30s);
    ASSERT_TRUE(pm.cap());
    EXPECT_LE(*pm.cap(), carries);
    EXPECT_GE(*pm.cap() + Plpmtud::Config{}.granularity, carries);
    // Three lost confirmations (a second each), then rounds of 8 probes a second (the
    // first also probes kFloor): at most 4 rounds from 524..1472 down to 8 bytes.
    EXPECT_LE(took, 8s);
    EXPECT_LE(pm.probes_sent(), 3u + 1 + 4 * 8);
    EXPECT_EQ(pm.black_holes(), 1u);
    // Afterwards the limit is what gets confirmed, and it holds.
    const auto before = path.sent.size();
    run(11s);
    EXPECT_TRUE(pm.cap());
    EXPECT_EQ(pm.state(), Plpmtud::State::confirmed);
    EXPECT_LE(path.sent.size() - before, 2u);
    EXPECT_LE(path.sent.back().size, carries);
  }
}

TEST_F(PlpmtudTest, AnIdleHopCostsNothing) {
  run(30s, 1472, false);
  EXPECT_TRUE(path.sent.empty());
  EXPECT_EQ(pm.state(), Plpmtud::State::idle);
}

TEST_F(PlpmtudTest, NothingIsProbedWhenTheKernelSendsOnlySmallDatagramsWithDf) {
  run(5s, Plpmtud::kFloor);
  EXPECT_TRUE(path.sent.empty());
}

TEST_F(PlpmtudTest, AnUnreachablePeerIsNotABlackHole) {
  path.carries = 0;  // nothing answered
  run(6s);
  EXPECT_FALSE(pm.cap());
  EXPECT_EQ(pm.state(), Plpmtud::State::idle);
  const auto n = path.sent.size();
  EXPECT_EQ(n, 3u + 9u);  // three confirmations, one search round (with kFloor)
  // It tries again a confirm_every later, not at once.
  run(5s);
  EXPECT_EQ(path.sent.size(), n);
  run(6s);
  EXPECT_GT(path.sent.size(), n);
  EXPECT_FALSE(pm.cap());
}

TEST_F(PlpmtudTest, OneLostProbeIsNotABlackHole) {
  path.lose = {1, 2};  // the first two confirmations
  run(5s);
  EXPECT_FALSE(pm.cap());
  EXPECT_EQ(pm.state(), Plpmtud::State::confirmed);
  EXPECT_EQ(path.sent.size(), 3u);
  for (const auto& s : path.sent)
    EXPECT_EQ(s.size, 1472u);
}

TEST_F(PlpmtudTest, AKernelThatLearnsTheSmallerMtuFromIcmpLeavesNoLimit) {
  // The first probe draws the router's ICMP: the kernel's path MTU drops to what the path
  // carries, and the next confirmation (of the new upper) passes.
  path.carries = 1252;
  run(1500ms, 1472);
  run(5s, 1252);
  EXPECT_FALSE(pm.cap());
  EXPECT_EQ(pm.state(), Plpmtud::State::confirmed);
  EXPECT_EQ(pm.black_holes(), 0u);
}

TEST_F(PlpmtudTest, ABlackHoleThatAppearsLaterIsFoundAtTheNextConfirmation) {
  run(2s);
  ASSERT_EQ(pm.state(), Plpmtud::State::confirmed);
  path.carries = 1372;  // a route change onto a tunnel that filters ICMP
  const auto took = until_cap(30s);
  ASSERT_TRUE(pm.cap());
  EXPECT_LE(*pm.cap(), 1372u);
  EXPECT_GE(*pm.cap(), 1372u - 8);
  EXPECT_LE(took, 10s + 8s);
}

TEST_F(PlpmtudTest, ABlackHoleThatGoesAwayIsNoticedByTheRaiseProbe) {
  path.carries = 1252;
  until_cap(30s);
  ASSERT_TRUE(pm.cap());
  path.carries = 1472;
  run(30s);
  EXPECT_TRUE(pm.cap()) << "raised only every raise_every (60 s)";
  run(31s);
  EXPECT_FALSE(pm.cap());
  EXPECT_EQ(pm.state(), Plpmtud::State::confirmed);
  // ... and while the black hole stays, the raise probes do not remove the limit.
  path.carries = 1252;
  pm = Plpmtud();
  until_cap(30s);
  run(125s);
  EXPECT_TRUE(pm.cap());
}

TEST_F(PlpmtudTest, ALimitThatStopsPassingIsSearchedBelow) {
  path.carries = 1400;
  until_cap(30s);
  ASSERT_TRUE(pm.cap());
  path.carries = 1100;
  run(20s);
  ASSERT_TRUE(pm.cap());
  EXPECT_LE(*pm.cap(), 1100u);
  EXPECT_GE(*pm.cap(), 1100u - 8);
  EXPECT_EQ(pm.black_holes(), 2u);
}

}  // namespace
}  // namespace ie::ied
