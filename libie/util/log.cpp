// Logger set-up (stderr or journald) and the rate limiter for drop paths.
#include "ie/util/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>

namespace ie::log {

void init(const Options& opts) {
  std::shared_ptr<spdlog::logger> logger;
  if (opts.sink == Sink::journald) {
    auto sink = std::make_shared<spdlog::sinks::systemd_sink_mt>(opts.name);
    logger = std::make_shared<spdlog::logger>(opts.name, sink);
    logger->set_pattern("%v");
  } else {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic);
    logger = std::make_shared<spdlog::logger>(opts.name, sink);
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %n[%P] %^%l%$: %v");
  }
  logger->set_level(opts.level);
  spdlog::set_default_logger(logger);
}

bool parse_level(const std::string& text, spdlog::level::level_enum* out) {
  static const std::pair<const char*, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"off", spdlog::level::off}};
  for (const auto& [name, lvl] : kLevels) {
    if (text == name) {
      *out = lvl;
      return true;
    }
  }
  return false;
}

bool RateLimiter::allow(std::uint64_t* suppressed) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t start = window_start_.load(std::memory_order_relaxed);
  if (now - start >= interval_ns_ &&
      window_start_.compare_exchange_strong(start, now, std::memory_order_relaxed)) {
    in_window_.store(0, std::memory_order_relaxed);
  }
  if (in_window_.fetch_add(1, std::memory_order_relaxed) < burst_) {
    *suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
    return true;
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  *suppressed = 0;
  return false;
}

}  // namespace ie::log
