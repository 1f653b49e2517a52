// Logging: a thin layer over spdlog (Debian's libspdlog-dev), so every program logs the same
// way: to stderr by default, or to journald when run under systemd (sd-journal sink).
// On drop paths use IE_LOG_RATELIMITED so a flood of bad packets cannot flood the log.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace ie::log {

enum class Sink { stderr_sink, journald };

struct Options {
  std::string name = "ie";
  spdlog::level::level_enum level = spdlog::level::info;
  Sink sink = Sink::stderr_sink;
};

// Replaces the default logger. Safe to call more than once (tests, SIGHUP reload).
void init(const Options& opts);
// Parses "trace|debug|info|warn|error|off"; false if unknown.
bool parse_level(const std::string& text, spdlog::level::level_enum* out);

// Allows `burst` events, then one per `interval`; counts what it suppressed. Thread-safe.
class RateLimiter {
 public:
  explicit RateLimiter(std::chrono::milliseconds interval = std::chrono::seconds(1),
                       std::uint32_t burst = 10)
      : interval_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(interval).count()),
        burst_(burst) {}
  // True if the caller may log now; *suppressed receives how many were dropped since last.
  bool allow(std::uint64_t* suppressed);

 private:
  std::int64_t interval_ns_;
  std::uint32_t burst_;
  std::atomic<std::int64_t> window_start_{0};
  std::atomic<std::uint32_t> in_window_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

}  // namespace ie::log

#define IE_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define IE_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define IE_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define IE_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define IE_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)

// One limiter per call site.
#define IE_LOG_RATELIMITED(level, ...)                                            \
  do {                                                                            \
    static ::ie::log::RateLimiter ie_rl_;                                         \
    std::uint64_t ie_rl_suppressed_ = 0;                                          \
    if (ie_rl_.allow(&ie_rl_suppressed_)) {                                       \
      if (ie_rl_suppressed_ > 0)                                                  \
        ::spdlog::log(level, "({} similar messages suppressed)", ie_rl_suppressed_); \
      ::spdlog::log(level, __VA_ARGS__);                                          \
    }                                                                             \
  } while (0)
