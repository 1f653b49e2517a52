// ied: the InterEdge host daemon. `ied --config FILE` runs it in the foreground (as systemd
// runs it); `ied --check-config FILE` validates a configuration and exits; `ied --identity`
// prints the host's identity public key (creating it, as a first start would, when the state
// directory has none) and exits, so it can be published before the daemon first runs. Exit
// codes: 0 ok, 1 failure (configuration invalid, startup failed), 2 usage.
#include <CLI/CLI.hpp>
#include <iostream>

#include "ie/crypto/key_file.hpp"
#include "ie/ied/config.hpp"
#include "ie/ied/daemon.hpp"
#include "ie/ied/state.hpp"
#include "ie/util/log.hpp"

int main(int argc, char** argv) {
  CLI::App app{"ied: the InterEdge host daemon"};
  app.set_version_flag("--version", "ied 0.1.0");
  std::string config = "/etc/interedge/ied.toml", check, log_level = "info", state_dir, socket;
  bool journald = false, identity = false;
  app.add_option("--config,-c", config, "configuration file")->capture_default_str();
  app.add_option("--check-config", check, "validate this configuration file and exit");
  app.add_option("--state-dir", state_dir, "override daemon.state_dir");
  app.add_option("--socket", socket, "override daemon.socket");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off");
  app.add_flag("--journald", journald, "log to journald instead of stderr");
  app.add_flag("--identity", identity,
               "print the host's identity public key (base64) and exit; creates it in the state "
               "directory (--state-dir, else daemon.state_dir of --config) if there is none");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return 2;
  }
  if (!check.empty()) {
    auto c = ie::ied::load_ied_config(check);
    if (!c) {
      std::cerr << c.error().context << "\n";
      return 1;
    }
    std::cout << check << ": ok\n";
    return 0;
  }
  if (identity) {
    std::string dir = state_dir;
    if (dir.empty()) {
      auto c = ie::ied::load_ied_config(config);
      if (!c) {
        std::cerr << "ied: " << c.error().to_string() << "\n";
        return 1;
      }
      dir = c->state_dir;
    }
    auto st = ie::ied::State::open(dir);
    auto kp = st ? st->identity() : ie::Result<ie::crypto::noise::KeyPair>(ie::fail(st.error()));
    if (!kp) {
      std::cerr << "ied: identity in " << dir << ": " << kp.error().to_string() << "\n";
      return 1;
    }
    std::cout << ie::crypto::key_to_base64(kp->pub) << "\n";
    return 0;
  }
  ie::log::Options lo;
  lo.name = "ied";
  lo.sink = journald ? ie::log::Sink::journald : ie::log::Sink::stderr_sink;
  if (!ie::log::parse_level(log_level, &lo.level)) {
    std::cerr << "ied: unknown log level '" << log_level << "'\n";
    return 2;
  }
  ie::log::init(lo);
  auto c = ie::ied::load_ied_config(config);
  if (!c) {
    IE_LOG_ERROR("{}", c.error().context.empty() ? c.error().to_string() : c.error().context);
    return 1;
  }
  if (!state_dir.empty()) c->state_dir = state_dir;
  if (!socket.empty()) c->socket = socket;
  ie::ied::DaemonOptions o;
  o.config = std::move(*c);
  o.config_path = config;
  auto d = ie::ied::Daemon::create(std::move(o));
  if (!d) {
    IE_LOG_ERROR("startup: {}", d.error().to_string());
    return 1;
  }
  if (auto r = (*d)->run(); !r) {
    IE_LOG_ERROR("{}", r.error().to_string());
    return 1;
  }
  return 0;
}
