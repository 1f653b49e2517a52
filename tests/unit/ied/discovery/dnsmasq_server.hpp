// Test helper: a real dnsmasq serving a config written by the test, on 127.0.0.1 and a free
// high port, for the discovery tests (no root needed). The process and its temp directory
// are removed by the destructor (also when a test fails). dnsmasq reads only the config we
// give it (--conf-file replaces /etc/dnsmasq.conf; --no-resolv --no-hosts).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace ie::ied::test {

// A port free for both UDP and TCP on 127.0.0.1 right now (dnsmasq binds both).
inline std::uint16_t free_port() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int u = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (u < 0 || ::bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(u, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      if (u >= 0) ::close(u);
      continue;
    }
    int t = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool tcp_ok = t >= 0 && ::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (t >= 0) ::close(t);
    ::close(u);
    if (tcp_ok && ntohs(a.sin_port) > 1024) return ntohs(a.sin_port);
  }
  return 0;
}

class Dnsmasq {
 public:
  Dnsmasq() {
    char tmpl[] = "/tmp/ie-dnsmasq-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) dir_ = tmpl;
  }
  ~Dnsmasq() {
    stop();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  // Starts dnsmasq with `config` (dnsmasq.conf lines) and --local-ttl=local_ttl, on `port`
  // (0: a free one, kept across restarts). Waits until it accepts TCP (at most 5 s).
  bool start(const std::string& config, int local_ttl, std::uint16_t port = 0) {
    stop();
    if (dir_.empty()) return false;
    if (port == 0) port = port_ != 0 ? port_ : free_port();
    if (port == 0) return false;
    port_ = port;
    const std::string conf = dir_ + "/dnsmasq.conf";
    {
      std::ofstream f(conf);
      // NXDOMAIN (not REFUSED) for names we did not configure.
      f << "local=/test/\nlocal=/in-addr.arpa/\nlocal=/ip6.arpa/\n" << config << "\n";
    }
    std::vector<std::string> args = {"dnsmasq",
                                     "--conf-file=" + conf,
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--keep-in-foreground",
                                     "--port=" + std::to_string(port),
                                     "--listen-address=127.0.0.1",
                                     "--bind-interfaces",
                                     "--local-ttl=" + std::to_string(local_ttl),
                                     "--pid-file=",
                                     "--log-facility=-",
                                     "--log-queries"};
    std::vector<char*> argv;
    for (auto& s : args)
      argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const std::string log = dir_ + "/dnsmasq.log";
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, "dnsmasq", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return false;
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {  // exited: bad config or port taken
        pid_ = -1;
        return false;
      }
      if (accepts_tcp()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 300; ++i) {  // at most 3 s, then SIGKILL
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::uint16_t port() const { return port_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const {
    std::ifstream f(dir_ + "/dnsmasq.log");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  // How many queries for `name` dnsmasq logged.
  int queries_for(const std::string& what) const {
    const std::string l = log();
    int n = 0;
    for (std::size_t p = l.find(what); p != std::string::npos; p = l.find(what, p + 1))
      ++n;
    return n;
  }

 private:
  bool accepts_tcp() const {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    return ok;
  }

  std::string dir_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace ie::ied::test
