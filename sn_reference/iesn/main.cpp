// iesn: the reference Service Node (docs/sn.md).
//
//   iesn run --config FILE [--log-level LEVEL]   run in the foreground (logs to stderr)
//   iesn check-config FILE                       validate a configuration and its key file
//   iesn genkey FILE                             new private key (0600), prints the public key
//   iesn pubkey FILE                             print a private key file's public key
//   iesn status|counters|pipes|modules|reload [--socket PATH] [--json]
//                                                ask a running iesn over its control socket
//   iesn --version
// Exit codes: 0 ok, 1 failure, 2 usage (3: the daemon is not running, for the client verbs).
#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>

#include "ie/sn/config.hpp"
#include "ie/sn/status.hpp"
#include "ie/sn/terminus.hpp"
#include "ie/util/log.hpp"

namespace {

using namespace ie::sn;

int genkey(const std::string& file) {
  const auto kp = noise::KeyPair::generate();
  if (auto r = write_private_key(file, kp); !r) {
    std::cerr << "iesn: " << r.error().to_string() << "\n";
    return 1;
  }
  std::cout << key_to_base64(kp.pub) << "\n";
  return 0;
}

int pubkey(const std::string& file) {
  auto kp = load_private_key(file);
  if (!kp) {
    std::cerr << "iesn: " << kp.error().to_string() << "\n";
    return 1;
  }
  std::cout << key_to_base64(kp->pub) << "\n";
  return 0;
}

int check_config(const std::string& file) {
  if (auto r = check_config_file(file, std::cout); !r) {
    std::cerr << "iesn: " << r.error().to_string() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"iesn: the InterEdge reference Service Node"};
  app.set_version_flag("--version", std::string("iesn ") + IE_SN_VERSION);
  app.require_subcommand(1);

  std::string config, log_level = "info";
  auto* run = app.add_subcommand("run", "run the SN in the foreground");
  run->add_option("--config,-c", config, "configuration file (iesn.toml)")->required();
  run->add_option("--log-level", log_level, "trace|debug|info|warn|error|off");
  std::uint32_t max_handshakes = 0;
  auto* max_hs_opt =
      run->add_option(
             "--max-handshakes", max_handshakes,
             "responder handshakes per second, over it initiations are dropped before any DH and "
             "hosts retry (0: no limit); overrides [sn] max_handshakes_per_second, also on reload")
          ->check(CLI::Range(std::uint32_t{0}, ie::sn::kMaxHandshakesPerSecond));

  std::string file;
  auto* check = app.add_subcommand("check-config", "validate a configuration file");
  check->add_option("file", file, "configuration file")->required();
  auto* gen = app.add_subcommand("genkey", "write a new private key (mode 0600)");
  gen->add_option("file", file, "key file to create")->required();
  auto* pub = app.add_subcommand("pubkey", "print the public key of a private key file");
  pub->add_option("file", file, "private key file")->required();

  std::string socket = kDefaultControlSocket;
  bool json = false;
  std::vector<std::pair<CLI::App*, std::string>> clients;
  for (const char* what : {"status", "counters", "pipes", "modules", "reload"}) {
    auto* c = app.add_subcommand(what, std::string("ask a running iesn: ") + what);
    c->add_option("--socket", socket, "control socket")->capture_default_str();
    c->add_flag("--json", json, "print JSON");
    clients.emplace_back(c, what);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return 2;
  }

  if (*run) {
    ie::log::Options lo;
    lo.name = "iesn";
    if (!ie::log::parse_level(log_level, &lo.level)) {
      std::cerr << "iesn: unknown log level '" << log_level << "'\n";
      return 2;
    }
    ie::log::init(lo);
    return run_iesn(config, max_hs_opt->count() > 0 ? std::optional<std::uint32_t>(max_handshakes)
                                                    : std::nullopt);
  }
  if (*check) return check_config(file);
  if (*gen) return genkey(file);
  if (*pub) return pubkey(file);
  for (const auto& [c, what] : clients) {
    if (*c) return run_status_client(socket, what, json, std::cout, std::cerr);
  }
  return 2;
}
