// `iesn run`: the SN in the foreground (ie/sn/terminus.hpp run_iesn). The main thread blocks
// SIGINT, SIGTERM and SIGHUP before any worker thread exists (threads inherit the mask, so
// no worker is ever interrupted) and then only waits for them with sigtimedwait: SIGHUP
// reloads, SIGINT/SIGTERM stop. A watchdog bounds the shutdown to 2 s.
#include <signal.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "ie/sn/terminus.hpp"
#include "ie/util/log.hpp"

namespace ie::sn {

int run_iesn(const std::string& config_path,
             std::optional<std::uint32_t> max_handshakes_per_second) {
  auto cfg = load_config(config_path);
  if (!cfg) {
    IE_LOG_ERROR("{}", cfg.error().to_string());
    return 1;
  }
  if (cfg->private_key_file.empty()) {
    IE_LOG_ERROR("{}: [sn] private_key_file is required to run", config_path);
    return 1;
  }
  auto key = load_private_key(cfg->private_key_file);
  if (!key) {
    IE_LOG_ERROR("{}", key.error().to_string());
    return 1;
  }

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) {
    IE_LOG_ERROR("pthread_sigmask failed");
    return 1;
  }

  SnOptions options;
  options.config_path = config_path;
  options.max_handshakes_per_second = max_handshakes_per_second;
  auto sn = Sn::create(std::move(*cfg), std::move(*key), options);
  if (!sn) {
    IE_LOG_ERROR("{}", sn.error().to_string());
    return 1;
  }
  if (auto r = (*sn)->start(); !r) {
    IE_LOG_ERROR("{}", r.error().to_string());
    return 1;
  }

  for (;;) {
    timespec ts{1, 0};
    const int sig = ::sigtimedwait(&set, nullptr, &ts);
    if (sig < 0) continue;  // timeout or EINTR
    if (sig == SIGHUP) {
      IE_LOG_INFO("SIGHUP: reloading {}", config_path);
      (void)(*sn)->reload();  // logs why a bad file was refused
      continue;
    }
    IE_LOG_INFO("{}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    break;
  }

  // Stop within 2 s, whatever happens.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::milliseconds(1900), [&] { return done; })) {
      IE_LOG_ERROR("shutdown took too long; exiting");
      std::_Exit(1);
    }
  });
  (*sn)->stop();
  (*sn)->wait();
  sn->reset();
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  IE_LOG_INFO("stopped");
  return 0;
}

}  // namespace ie::sn
