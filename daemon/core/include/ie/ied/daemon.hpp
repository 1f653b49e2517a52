// The ied daemon: the one composition root (STYLE.md "one composition root"). It builds the
// subsystems in dependency order — state (identity key), the reactor, the SN link
// (libie HostLink), SN discovery (static configuration, DNS), the end-to-end sessions, the
// TUN device and its routes, the control socket — owns them, and tears them down in reverse
// on SIGTERM/SIGINT, removing everything it created (TUN, routes, socket file).
#pragma once

#include <memory>
#include <string>

#include "ie/ied/config.hpp"
#include "ie/util/result.hpp"

namespace ie::ied {

struct DaemonOptions {
  IedConfig config;
  std::string config_path;  // for reload and config.check ("" if none)
};

class Daemon {
 public:
  static Result<std::unique_ptr<Daemon>> create(DaemonOptions o);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Runs until SIGTERM/SIGINT (or stop()). Tells systemd READY=1 once the TUN, routes and
  // control socket are up.
  Result<void> run();
  void stop();

  struct Impl;

 private:
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ie::ied
