// Reactor behaviour beyond io_test.cpp's basic run: SIGTERM through signalfd stops the loop,
// a timer re-arming itself from its callback, fds removed from inside a callback, run_once
// honouring its wait bound, and many posts from several threads all running exactly once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "ie/io/reactor.hpp"

namespace ie::io {
namespace {

using namespace std::chrono_literals;

TEST(Reactor, SigtermViaSignalfdStopsTheLoop) {
  auto r = Reactor::create();
  ASSERT_TRUE(r.ok());
  Reactor& re = **r;
  int seen = 0;
  ASSERT_TRUE(re.stop_on_signals([&](int sig) { seen = sig; }).ok());
  // Blocked by stop_on_signals for this thread, so raise() leaves it pending for signalfd.
  re.add_timer(5ms, [] { ::raise(SIGTERM); });
  bool gave_up = false;
  re.add_timer(5000ms, [&] {
    gave_up = true;
    re.stop();
  });
  ASSERT_TRUE(re.run().ok());
  EXPECT_EQ(seen, SIGTERM);
  EXPECT_FALSE(gave_up);
}

TEST(Reactor, SighupCallsTheReloadCallbackWithoutStopping) {
  auto r = Reactor::create();
  ASSERT_TRUE(r.ok());
  Reactor& re = **r;
  int seen = 0, hups = 0;
  ASSERT_TRUE(re.stop_on_signals([&](int sig) { seen = sig; }, [&] { ++hups; }).ok());
  re.add_timer(5ms, [] { ::raise(SIGHUP); });
  re.add_timer(40ms, [] { ::raise(SIGHUP); });
  re.add_timer(80ms, [] { ::raise(SIGTERM); });
  bool gave_up = false;
  re.add_timer(5000ms, [&] {
    gave_up = true;
    re.stop();
  });
  ASSERT_TRUE(re.run().ok());
  EXPECT_EQ(hups, 2);
  EXPECT_EQ(seen, SIGTERM);  // SIGHUP did not stop the loop; SIGTERM did
  EXPECT_FALSE(gave_up);
}

TEST(Reactor, TimerRearmsItselfAndRunOnceIsBounded) {
  auto r = Reactor::create();
  ASSERT_TRUE(r.ok());
  Reactor& re = **r;
  int fired = 0;
  std::function<void()> tick = [&] {
    if (++fired < 5) re.add_timer(2ms, tick);
  };
  re.add_timer(2ms, tick);
  const auto start = Reactor::Clock::now();
  for (int i = 0; i < 500 && fired < 5; ++i)
    ASSERT_TRUE(re.run_once(50ms).ok());
  EXPECT_EQ(fired, 5);
  EXPECT_GE(Reactor::Clock::now() - start, 10ms);  // 5 x 2 ms, never early
  EXPECT_EQ(re.timer_count(), 0u);

  // Nothing to do: run_once returns after about its bound, not much later.
  const auto t0 = Reactor::Clock::now();
  ASSERT_TRUE(re.run_once(20ms).ok());
  const auto waited = Reactor::Clock::now() - t0;
  EXPECT_GE(waited, 15ms);
  EXPECT_LT(waited, 2000ms);
}

TEST(Reactor, CallbackMayRemoveItsOwnFd) {
  auto r = Reactor::create();
  ASSERT_TRUE(r.ok());
  Reactor& re = **r;
  const int efd = ::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);  // readable from the start
  ASSERT_GE(efd, 0);
  int calls = 0;
  ASSERT_TRUE(re.add_fd(efd, Reactor::kReadable, [&](std::uint32_t) {
                  ++calls;
                  re.remove_fd(efd);  // still readable: must not be called again
                }).ok());
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(re.run_once(10ms).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(re.modify_fd(efd, Reactor::kReadable).ok());  // gone from epoll
  ::close(efd);
}

TEST(Reactor, PostsFromManyThreadsRunOnceEach) {
  auto r = Reactor::create();
  ASSERT_TRUE(r.ok());
  Reactor& re = **r;
  constexpr int kThreads = 4, kEach = 1000;
  int ran = 0;  // only touched on the loop thread
  std::atomic<int> done_threads{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < kEach; ++i)
        re.post([&] { ++ran; });
      ++done_threads;
    });
  const auto deadline = Reactor::Clock::now() + 10s;
  while ((done_threads < kThreads || ran < kThreads * kEach) && Reactor::Clock::now() < deadline)
    ASSERT_TRUE(re.run_once(10ms).ok());
  for (auto& t : ts)
    t.join();
  ASSERT_TRUE(re.run_once(0ms).ok());
  EXPECT_EQ(ran, kThreads * kEach);
}

TEST(Reactor, StopBeforeRunIsNotLost) {
  auto r = Reactor::create();
  ASSERT_TRUE(r.ok());
  (*r)->stop();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE((*r)->run().ok());  // returns at once instead of waiting for another stop()
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
}

}  // namespace
}  // namespace ie::io
