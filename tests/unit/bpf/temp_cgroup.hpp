// Test helper: a uniquely named cgroup v2 directory that is removed on every path (its
// processes are moved back to the cgroup2 root first, then rmdir is retried briefly), and a
// child process that joins a cgroup and reports the SO_MARK of the sockets it creates.
// Shared by tests/unit/bpf and tests/bench/bench_bpf_steer.cpp.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace ie::bpf::cgtest {

inline bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.flush();
  return static_cast<bool>(f);
}

class TempCgroup {
 public:
  // `root`: the cgroup2 mount (or a cgroup under it); `tag` makes the name readable.
  TempCgroup(const std::string& parent, const std::string& tag, const std::string& root)
      : root_(root) {
    static int counter = 0;
    path_ =
        parent + "/ie-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    created_ = ::mkdir(path_.c_str(), 0755) == 0;
    error_ = created_ ? 0 : errno;
  }
  ~TempCgroup() {
    if (!created_) return;
    // Move anything left (a child that failed to exit) to the root, then remove.
    std::ifstream procs(path_ + "/cgroup.procs");
    std::string pid;
    while (std::getline(procs, pid))
      write_file(root_ + "/cgroup.procs", pid);
    for (int i = 0; i < 100; ++i) {
      if (::rmdir(path_.c_str()) == 0 || errno == ENOENT) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  TempCgroup(const TempCgroup&) = delete;
  TempCgroup& operator=(const TempCgroup&) = delete;

  bool ok() const { return created_; }
  int error() const { return error_; }
  const std::string& path() const { return path_; }

 private:
  std::string root_;
  std::string path_;
  bool created_ = false;
  int error_ = 0;
};

// The sockets a probe child creates, in this order.
struct SocketKind {
  int family, type, protocol;
};
inline constexpr std::array<SocketKind, 5> kProbeSockets{{
    {AF_INET, SOCK_STREAM, 0},
    {AF_INET, SOCK_DGRAM, 0},
    {AF_INET6, SOCK_STREAM, 0},
    {AF_INET6, SOCK_DGRAM, 0},
    {AF_INET, SOCK_RAW, IPPROTO_ICMP},  // not TCP/UDP: never marked
}};
inline constexpr std::uint32_t kProbeFailed = 0xffffffffu;

// Forks a child that moves itself into `cgroup_dir`, creates kProbeSockets and sends their
// SO_MARKs back over a pipe. Returns an empty vector if anything failed (bounded: 5 s).
inline std::vector<std::uint32_t> socket_marks_in_cgroup(const std::string& cgroup_dir) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return {};
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(p[0]);
    ::close(p[1]);
    return {};
  }
  if (pid == 0) {
    ::close(p[0]);
    std::array<std::uint32_t, kProbeSockets.size()> marks{};
    marks.fill(kProbeFailed);
    const std::string self = std::to_string(::getpid());
    const int cg = ::open((cgroup_dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    const bool joined =
        cg >= 0 && ::write(cg, self.data(), self.size()) == static_cast<ssize_t>(self.size());
    if (joined) {
      for (std::size_t i = 0; i < kProbeSockets.size(); ++i) {
        const auto& k = kProbeSockets[i];
        const int s = ::socket(k.family, k.type | SOCK_CLOEXEC, k.protocol);
        if (s < 0) continue;
        std::uint32_t m = 0;
        socklen_t len = sizeof m;
        if (::getsockopt(s, SOL_SOCKET, SO_MARK, &m, &len) == 0) marks[i] = m;
        ::close(s);
      }
    }
    const ssize_t w = ::write(p[1], marks.data(), sizeof marks);
    ::_exit(joined && w == static_cast<ssize_t>(sizeof marks) ? 0 : 1);
  }
  ::close(p[1]);
  std::vector<std::uint32_t> out(kProbeSockets.size());
  std::size_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto* bytes = reinterpret_cast<char*>(out.data());
  while (got < out.size() * sizeof(std::uint32_t) && std::chrono::steady_clock::now() < deadline) {
    pollfd pf{p[0], POLLIN, 0};
    if (::poll(&pf, 1, 100) <= 0) continue;
    const ssize_t n = ::read(p[0], bytes + got, out.size() * sizeof(std::uint32_t) - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(p[0]);
  if (got != out.size() * sizeof(std::uint32_t)) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (got != out.size() * sizeof(std::uint32_t) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return {};
  return out;
}

}  // namespace ie::bpf::cgtest
