// The event loop every InterEdge program runs on: epoll for file descriptors, a timer wheel
// (1 ms ticks of the steady clock) for timers, an eventfd so other threads can post work,
// and signalfd for SIGINT/SIGTERM. Single-threaded: everything except post() and stop() must
// be called from the thread running the loop. Callbacks run on that thread and may add or
// remove fds and timers, including their own.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ie/io/timer_wheel.hpp"
#include "ie/util/result.hpp"

namespace ie::io {

class Reactor {
 public:
  using Clock = std::chrono::steady_clock;
  enum Interest : std::uint32_t { kReadable = 1, kWritable = 2 };
  // events: kReadable / kWritable bits, plus kError when the fd reported an error or hang-up.
  static constexpr std::uint32_t kError = 4;
  using FdCallback = std::function<void(std::uint32_t events)>;
  using TimerId = TimerWheel::Handle;

  static Result<std::unique_ptr<Reactor>> create();
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  Result<void> add_fd(int fd, std::uint32_t interest, FdCallback cb);
  Result<void> modify_fd(int fd, std::uint32_t interest);
  void remove_fd(int fd);  // does not close it

  TimerId add_timer(std::chrono::milliseconds delay, std::function<void()> fn);
  bool cancel_timer(TimerId id);

  // Thread-safe: runs fn on the loop thread soon.
  void post(std::function<void()> fn);
  // Thread-safe: makes run() return after the current iteration.
  void stop();
  // Blocks SIGINT and SIGTERM for this thread and stops the loop when one arrives (calls
  // on_signal first if set).
  // With on_hangup, SIGHUP is taken too and calls it instead of stopping (reload).
  Result<void> stop_on_signals(std::function<void(int)> on_signal = {},
                               std::function<void()> on_hangup = {});

  // Runs until stop().
  Result<void> run();
  // One iteration: waits at most max_wait for events or timers, dispatches them.
  Result<void> run_once(std::chrono::milliseconds max_wait);

  Clock::time_point now() const { return Clock::now(); }
  std::size_t timer_count() const { return wheel_.size(); }

 private:
  Reactor(int epfd, int evfd);
  std::uint64_t tick_now() const;

  int epfd_;
  int evfd_;
  int sigfd_ = -1;
  Clock::time_point epoch_;
  TimerWheel wheel_;
  std::unordered_map<int, std::shared_ptr<FdCallback>> fds_;
  std::mutex posted_mu_;  // guards posted_
  std::vector<std::function<void()>> posted_;
  std::atomic<bool> stopping_{false};
};

}  // namespace ie::io
