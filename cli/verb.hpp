// The verb registry of iectl and the session a verb runs in. Each verb lives in its own file
// under verbs/ and registers itself at static-initialisation time (IECTL_VERB), so adding
// `qos` or `group` later is one new file and no edit elsewhere. A verb declares its
// arguments on its CLI11 subcommand, then makes one control call through the Session and
// prints the result (human form, or the daemon's JSON with --json).
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "ie/ctl/protocol.hpp"

namespace iectl {

using Json = ie::ctl::Json;

// iectl's exit codes (docs/iectl.md).
enum Exit : int {
  kExitOk = 0,
  kExitFailed = 1,      // the daemon answered with an error
  kExitUsage = 2,       // bad command line (CLI11)
  kExitDaemonDown = 3,  // nothing to talk to at the socket (not running, unreachable, no reply)
  kExitPermission = 4,  // the socket or the method is not open to this user
};

inline constexpr const char* kDefaultSocket = "/run/interedge/ied.sock";

struct Globals {
  std::string socket = kDefaultSocket;
  bool json = false;
};

class Session {
 public:
  enum class ErrorStyle {
    tagged,  // "iectl: MESSAGE (code)"
    as_is,   // "MESSAGE": already "FILE:LINE:COL: what", e.g. config.check
  };

  Session(Globals g, std::ostream& out, std::ostream& err)
      : globals_(std::move(g)), out_(out), err_(err) {}

  // One request to the daemon. On failure prints the error to err and records the exit
  // code (exit_code()); on success returns the result object.
  std::optional<Json> call(const std::string& method, const Json& params = Json::object(),
                           ErrorStyle style = ErrorStyle::tagged);
  // Prints a call's result: the JSON pretty-printed with --json, else human(result). Returns
  // kExitOk.
  int print(const Json& result, const std::function<std::string(const Json&)>& human);

  int exit_code() const { return exit_; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }

 private:
  Globals globals_;
  std::ostream& out_;
  std::ostream& err_;
  int exit_ = kExitOk;
};

// What a verb does once its arguments are parsed; returns the exit code.
using Run = std::function<int(Session&)>;

struct Verb {
  std::vector<std::string> path;  // {"sn", "list"}: `iectl sn list`
  std::string help;
  // Declares the verb's options and positionals on cmd; returns what to run. The variables
  // the options write to live in the returned closure (e.g. a shared_ptr).
  std::function<Run(CLI::App& cmd)> setup;
};

// Registers a verb, or a group (a path prefix such as "sn") with its help text. Duplicates
// are programming errors: iectl aborts at start-up.
bool register_verb(Verb v);
bool register_group(std::string name, std::string help);

// Runs iectl: builds the command tree from the registry, parses, runs the chosen verb.
int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace iectl

#define IECTL_CONCAT2(a, b) a##b
#define IECTL_CONCAT(a, b) IECTL_CONCAT2(a, b)
// IECTL_VERB({"sn", "list"}, "help", setup): registers a verb from its own file.
#define IECTL_VERB(...)                                                       \
  [[maybe_unused]] static const bool IECTL_CONCAT(iectl_verb_, __COUNTER__) = \
      ::iectl::register_verb(::iectl::Verb{__VA_ARGS__})
#define IECTL_GROUP(name, help)                                                \
  [[maybe_unused]] static const bool IECTL_CONCAT(iectl_group_, __COUNTER__) = \
      ::iectl::register_group(name, help)
