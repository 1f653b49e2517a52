// `iectl invoke SERVICE [-o K=V]... [--destinations P,...] [--strict] -- COMMAND [ARGS]`:
// runs COMMAND with libinteredge-preload.so loaded (LD_PRELOAD, prepended) and the policy in
// its environment (IE_SERVICE, IE_OPTIONS, IE_DESTINATIONS, IE_STRICT, IE_SOCKET), like
// `mptcpize run`. iectl itself does not talk to ied here: the shim does, per socket.
// docs/socket-api.md describes the shim; the variables are its whole interface.
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "verb.hpp"

// verb_invoke: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_invoke {
namespace {

constexpr const char* kPreloadName = "libinteredge-preload.so";

struct InvokeArgs {
  std::string service;
  std::vector<std::string> options;
  std::string destinations;
  bool strict = false;
  std::vector<std::string> command;
};

bool file_exists(const std::string& p) {
  return access(p.c_str(), R_OK) == 0;
}

// IE_PRELOAD (an explicit override), then ../lib next to this binary (the build tree:
// bin/iectl, lib/libinteredge-preload.so; an install with bin/ and lib/ side by side), then
// the install libdir. Empty if none exists; *tried lists where it looked.
std::string find_preload(std::vector<std::string>* tried) {
  if (const char* p = getenv("IE_PRELOAD"); p != nullptr && *p != '\0') {
    tried->emplace_back(p);
    return file_exists(p) ? p : "";
  }
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    std::string dir(exe);
    dir.resize(dir.rfind('/'));
    const std::string p = dir + "/../lib/" + kPreloadName;
    tried->push_back(p);
    if (file_exists(p)) return p;
  }
#ifdef IE_INSTALL_LIBDIR
  const std::string p = std::string(IE_INSTALL_LIBDIR) + "/" + kPreloadName;
  tried->push_back(p);
  if (file_exists(p)) return p;
#endif
  return "";
}

bool all_chars(const std::string& s, std::size_t min, std::size_t max, const char* extra) {
  if (s.size() < min || s.size() > max) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr(extra, c) != nullptr))
      return false;
  return true;
}

// The checks the shim and ied apply, made here so a typo is a usage error, not a program
// that silently runs unsteered.
std::string check(const InvokeArgs& a) {
  if (!all_chars(a.service, 1, 63, "_.+-"))
    return "bad service name \"" + a.service + "\" (1..63 of a-z 0-9 _ . + -)";
  if (a.options.size() > 16) return "at most 16 options";
  for (const std::string& o : a.options) {
    const auto eq = o.find('=');
    if (eq == std::string::npos) return "option \"" + o + "\" is not KEY=VALUE";
    if (!all_chars(o.substr(0, eq), 1, 31, "_.-"))
      return "bad option key in \"" + o + "\" (1..31 of a-z 0-9 _ . -)";
    const std::string v = o.substr(eq + 1);
    if (v.size() > 127) return "option value in \"" + o + "\" is over 127 bytes";
    for (char c : v)
      if (c < 0x20 || c > 0x7e || c == ',')
        return "option value in \"" + o + "\" must be printable ASCII without ','";
  }
  if (!a.destinations.empty()) {
    std::size_t start = 0;
    while (start <= a.destinations.size()) {
      std::size_t end = a.destinations.find(',', start);
      if (end == std::string::npos) end = a.destinations.size();
      std::string item = a.destinations.substr(start, end - start);
      std::string addr = item;
      long len = -1;
      if (const auto slash = item.find('/'); slash != std::string::npos) {
        addr = item.substr(0, slash);
        const std::string l = item.substr(slash + 1);
        if (l.empty() || l.size() > 3 || l.find_first_not_of("0123456789") != std::string::npos)
          return "bad destination prefix \"" + item + "\"";
        len = strtol(l.c_str(), nullptr, 10);
      }
      unsigned char buf[16];
      const bool v4 = inet_pton(AF_INET, addr.c_str(), buf) == 1;
      const bool v6 = !v4 && inet_pton(AF_INET6, addr.c_str(), buf) == 1;
      if ((!v4 && !v6) || len > (v4 ? 32 : 128)) return "bad destination prefix \"" + item + "\"";
      start = end + 1;
    }
  }
  return "";
}

// The value --socket (or IECTL_SOCKET) gave, if any: the verb reads the root's option.
std::string socket_option(CLI::App* root) {
  try {
    const CLI::Option* o = root->get_option("--socket");
    if (o->count() > 0) return o->as<std::string>();
  } catch (const CLI::Error&) {
  }
  return "";
}

int invoke(const InvokeArgs& a, const std::string& socket, Session& s) {
  if (const std::string why = check(a); !why.empty()) {
    s.err() << "iectl: invoke: " << why << "\n";
    return kExitUsage;
  }
  std::vector<std::string> tried;
  const std::string preload = find_preload(&tried);
  if (preload.empty()) {
    s.err() << "iectl: invoke: cannot find " << kPreloadName << " (tried";
    for (const auto& t : tried)
      s.err() << " " << t;
    s.err() << "; set IE_PRELOAD to its path)\n";
    return kExitFailed;
  }
  std::string ld = preload;
  if (const char* old = getenv("LD_PRELOAD"); old != nullptr && *old != '\0')
    ld += std::string(":") + old;
  std::string options;
  for (const auto& o : a.options)
    options += (options.empty() ? "" : ",") + o;
  // The invocation defines the whole policy: nothing is inherited from an outer one.
  setenv("LD_PRELOAD", ld.c_str(), 1);
  setenv("IE_SERVICE", a.service.c_str(), 1);
  if (options.empty())
    unsetenv("IE_OPTIONS");
  else
    setenv("IE_OPTIONS", options.c_str(), 1);
  if (a.destinations.empty())
    unsetenv("IE_DESTINATIONS");
  else
    setenv("IE_DESTINATIONS", a.destinations.c_str(), 1);
  if (a.strict)
    setenv("IE_STRICT", "1", 1);
  else
    unsetenv("IE_STRICT");
  if (!socket.empty()) setenv("IE_SOCKET", socket.c_str(), 1);

  std::vector<char*> argv;
  for (const auto& c : a.command)
    argv.push_back(const_cast<char*>(c.c_str()));
  argv.push_back(nullptr);
  s.out().flush();
  s.err().flush();
  std::cout.flush();
  std::cerr.flush();
  execvp(argv[0], argv.data());
  const int e = errno;
  s.err() << "iectl: invoke: " << a.command[0] << ": "
          << (e == ENOENT ? "command not found" : strerror(e)) << "\n";
  return e == ENOENT ? 127 : 126;
}

IECTL_VERB(
    {"invoke"},
    "run COMMAND with its sockets steered to SERVICE (LD_PRELOAD shim): "
    "iectl invoke SERVICE [-o K=V]... [--destinations P,...] [--strict] -- COMMAND...",
    [](CLI::App& cmd) -> Run {
      auto a = std::make_shared<InvokeArgs>();
      cmd.add_option("service", a->service, "service or bundle, e.g. ip, ip-direct")->required();
      cmd.add_option("command", a->command, "the program to run and its arguments")->required();
      cmd.add_option("-o,--option", a->options, "a service option KEY=VALUE (repeat)")
          ->allow_extra_args(false);
      cmd.add_option("--destinations", a->destinations,
                     "steer only destinations in these prefixes (P,...)");
      cmd.add_flag("--strict", a->strict, "fail a connect/send whose socket cannot be steered");
      CLI::App* root = cmd.get_parent();
      return [a, root](Session& s) { return invoke(*a, socket_option(root), s); };
    });

}  // namespace
}  // namespace iectl::verb_invoke
