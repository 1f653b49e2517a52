// libinteredge-preload.so: InterEdge steering for programs linked against plain libc, loaded
// with LD_PRELOAD (usually by `iectl invoke`). It does two things:
//   1. setsockopt/getsockopt at level SOL_INTEREDGE are answered by the C API (service.cpp)
//      instead of the kernel (which would say ENOPROTOOPT); other levels go to libc.
//   2. With a policy (IE_SERVICE..., or the program's line in the policy file), an
//      AF_INET/AF_INET6 TCP or UDP socket is steered once, just BEFORE its first
//      connect()/sendto()/sendmsg()/sendmmsg() to a destination the policy wants; then the
//      real call runs. A failed steering lets the call go ahead unsteered, unless IE_STRICT=1.
// Which fds have been decided is a process-wide bitmap (the one piece of global state a
// preload library cannot avoid): set when a socket is steered or explicitly set through
// SOL_INTEREDGE, cleared by socket(), close(), dup2()/dup3() over it and close_range().
// The constructor only copies environment variables; everything else happens at first use.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>

#include "control.hpp"
#include "policy.hpp"
#include "service.hpp"

#define IE_INTERCEPT extern "C" __attribute__((visibility("default")))

namespace {

using ie::shim::Policy;

// --- the environment, copied at load time (a program may clear its environment later) ---

struct Env {
  const char* socket = ie::shim::kDefaultSocket;
  const char* service = nullptr;
  const char* options = nullptr;
  const char* destinations = nullptr;
  const char* strict = nullptr;
  const char* debug = nullptr;
  const char* policy_file = nullptr;
};
Env g_env;  // written once by the constructor, read-only afterwards

const char* dup_env(const char* name) {
  const char* v = getenv(name);
  return v == nullptr ? nullptr : strdup(v);  // never freed: lives as long as the process
}

__attribute__((constructor)) void snapshot_env() {
  if (const char* s = dup_env("IE_SOCKET"); s != nullptr && *s != '\0') g_env.socket = s;
  g_env.service = dup_env("IE_SERVICE");
  g_env.options = dup_env("IE_OPTIONS");
  g_env.destinations = dup_env("IE_DESTINATIONS");
  g_env.strict = dup_env("IE_STRICT");
  g_env.debug = dup_env("IE_DEBUG");
  g_env.policy_file = dup_env("IE_POLICY_FILE");
}

bool debug_on() {
  return g_env.debug != nullptr && strcmp(g_env.debug, "1") == 0;
}

void debug_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void debug_line(const char* fmt, ...) {
  if (!debug_on()) return;
  char buf[512];
  int n = snprintf(buf, sizeof buf, "interedge-preload[%d]: ", static_cast<int>(getpid()));
  va_list ap;
  va_start(ap, fmt);
  const int m = vsnprintf(buf + n, sizeof buf - static_cast<std::size_t>(n) - 1, fmt, ap);
  va_end(ap);
  n = m < 0 ? n : std::min<int>(n + m, static_cast<int>(sizeof buf) - 2);
  buf[n++] = '\n';
  const int saved = errno;
  (void)!write(STDERR_FILENO, buf, static_cast<std::size_t>(n));
  errno = saved;
}

// --- libc's own functions ---

template <typename F>
F* next_fn(const char* name) {
  return reinterpret_cast<F*>(dlsym(RTLD_NEXT, name));
}
#define IE_REAL(name)                                         \
  static auto* const real = next_fn<decltype(::name)>(#name); \
  if (real == nullptr) {                                      \
    errno = ENOSYS;                                           \
    return -1;                                                \
  }

// --- the decided-fds bitmap ---

constexpr int kTableFds = 1 << 20;  // fds above are never steered by policy (documented)
std::atomic<std::uint64_t> g_decided[kTableFds / 64];

bool in_table(int fd) {
  return fd >= 0 && fd < kTableFds;
}
bool decided(int fd) {
  return in_table(fd) && (g_decided[fd / 64].load(std::memory_order_relaxed) >> (fd % 64)) & 1;
}
// True if this call set the bit (no other thread got there first).
bool claim(int fd) {
  if (!in_table(fd)) return false;
  const std::uint64_t bit = std::uint64_t{1} << (fd % 64);
  return (g_decided[fd / 64].fetch_or(bit) & bit) == 0;
}
void set_decided(int fd, bool on) {
  if (!in_table(fd)) return;
  const std::uint64_t bit = std::uint64_t{1} << (fd % 64);
  if (on)
    g_decided[fd / 64].fetch_or(bit);
  else
    g_decided[fd / 64].fetch_and(~bit);
}

// --- the policy, built at first use ---

pthread_once_t g_policy_once = PTHREAD_ONCE_INIT;
const Policy* g_policy = nullptr;  // never freed

std::string read_policy_file(const char* path, bool explicit_path) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (explicit_path) debug_line("policy file %s: %s", path, strerror(errno));
    return {};
  }
  std::string text;
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 64 * 1024) {
    debug_line("policy file %s ignored: not a regular file of at most 64 KiB", path);
  } else {
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0 && text.size() < 64 * 1024;)
      text.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return text;
}

void build_policy() {
  try {
    ie::shim::PolicyInputs in;
    in.service = g_env.service;
    in.options = g_env.options;
    in.destinations = g_env.destinations;
    in.strict = g_env.strict;
    in.debug = g_env.debug;
    std::string text;
    if (g_env.service == nullptr) {
      const bool explicit_path = g_env.policy_file != nullptr && *g_env.policy_file != '\0';
      text = read_policy_file(explicit_path ? g_env.policy_file : "/etc/interedge/shim.conf",
                              explicit_path);
      in.file_text = &text;
      in.program_names.emplace_back(program_invocation_short_name);
      char exe[PATH_MAX];
      const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
      if (n > 0) {
        exe[n] = '\0';
        const char* slash = strrchr(exe, '/');
        in.program_names.emplace_back(slash != nullptr ? slash + 1 : exe);
      }
    }
    auto* p = new Policy(
        ie::shim::make_policy(in, [](const std::string& why) { debug_line("%s", why.c_str()); }));
    g_policy = p;
  } catch (...) {
    g_policy = nullptr;  // no policy: steer nothing
  }
}

const Policy* policy() {
  pthread_once(&g_policy_once, build_policy);
  return g_policy;
}

// Steers fd if this destination calls for it. Returns 0 to go ahead with the real call, or
// the errno to fail it with (IE_STRICT=1 only). errno is preserved when going ahead.
int steer_before(int fd, const sockaddr* sa, socklen_t len) {
  if (sa == nullptr || len < sizeof(sa_family_t)) return 0;
  if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) return 0;
  if (!in_table(fd) || decided(fd)) return 0;
  const int saved = errno;
  const Policy* p = policy();
  if (p == nullptr || !ie::shim::wants_destination(*p, sa, len)) return 0;
  int proto = 0;
  socklen_t plen = sizeof proto;
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) != 0 ||
      (proto != IPPROTO_TCP && proto != IPPROTO_UDP)) {
    errno = saved;
    return 0;
  }
  if (!claim(fd)) return 0;  // another thread is steering it
  const int e = ie::shim::set_service(g_env.socket, fd, p->service.c_str(), &p->options);
  if (e == 0) {
    debug_line("fd %d steered to %s", fd, p->service.c_str());
  } else if (p->strict) {
    debug_line("fd %d: steering to %s failed: %s (IE_STRICT: call fails)", fd, p->service.c_str(),
               strerror(e));
    set_decided(fd, false);  // the next attempt tries again
    return e;
  } else {
    debug_line("fd %d: steering to %s failed: %s (continuing unsteered)", fd, p->service.c_str(),
               strerror(e));
  }
  errno = saved;
  return 0;
}

}  // namespace

// --- the intercepted calls ---

IE_INTERCEPT int socket(int domain, int type, int protocol) noexcept {
  IE_REAL(socket);
  const int fd = real(domain, type, protocol);
  if (fd >= 0) set_decided(fd, false);  // a stale bit from an fd closed behind our back
  return fd;
}

IE_INTERCEPT int connect(int fd, const sockaddr* addr, socklen_t len) {
  IE_REAL(connect);
  if (const int e = steer_before(fd, addr, len); e != 0) {
    errno = e;
    return -1;
  }
  return real(fd, addr, len);
}

IE_INTERCEPT ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* addr,
                            socklen_t len) {
  IE_REAL(sendto);
  if (const int e = steer_before(fd, addr, len); e != 0) {
    errno = e;
    return -1;
  }
  return real(fd, buf, n, flags, addr, len);
}

IE_INTERCEPT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  IE_REAL(sendmsg);
  if (msg != nullptr) {
    if (const int e =
            steer_before(fd, static_cast<const sockaddr*>(msg->msg_name), msg->msg_namelen);
        e != 0) {
      errno = e;
      return -1;
    }
  }
  return real(fd, msg, flags);
}

IE_INTERCEPT int sendmmsg(int fd, mmsghdr* vec, unsigned int n, int flags) {
  IE_REAL(sendmmsg);
  if (vec != nullptr && n > 0) {
    if (const int e = steer_before(fd, static_cast<const sockaddr*>(vec[0].msg_hdr.msg_name),
                                   vec[0].msg_hdr.msg_namelen);
        e != 0) {
      errno = e;
      return -1;
    }
  }
  return real(fd, vec, n, flags);
}

IE_INTERCEPT int setsockopt(int fd, int level, int optname, const void* optval,
                            socklen_t optlen) noexcept {
  IE_REAL(setsockopt);
  if (level != SOL_INTEREDGE) return real(fd, level, optname, optval, optlen);
  const int e = ie::shim::set_sockopt(g_env.socket, fd, level, optname, optval, optlen);
  if (e != 0) {
    errno = e;
    return -1;
  }
  set_decided(fd, true);  // the program chose: the policy no longer applies to this socket
  return 0;
}

IE_INTERCEPT int getsockopt(int fd, int level, int optname, void* optval,
                            socklen_t* optlen) noexcept {
  IE_REAL(getsockopt);
  if (level != SOL_INTEREDGE) return real(fd, level, optname, optval, optlen);
  const int e = ie::shim::get_sockopt(g_env.socket, fd, level, optname, optval, optlen);
  if (e != 0) {
    errno = e;
    return -1;
  }
  return 0;
}

IE_INTERCEPT int close(int fd) {
  IE_REAL(close);
  set_decided(fd, false);  // before: once closed, another thread may get this fd number
  return real(fd);
}

IE_INTERCEPT int dup2(int oldfd, int newfd) noexcept {
  IE_REAL(dup2);
  const int r = real(oldfd, newfd);
  if (r >= 0 && oldfd != newfd) set_decided(newfd, decided(oldfd));
  return r;
}

IE_INTERCEPT int dup3(int oldfd, int newfd, int flags) noexcept {
  IE_REAL(dup3);
  const int r = real(oldfd, newfd, flags);
  if (r >= 0) set_decided(newfd, decided(oldfd));
  return r;
}

IE_INTERCEPT int close_range(unsigned int first, unsigned int last, int flags) noexcept {
  IE_REAL(close_range);
  if ((flags & CLOSE_RANGE_CLOEXEC) == 0) {
    for (unsigned int fd = first; fd <= last && fd < static_cast<unsigned>(kTableFds);) {
      if (fd % 64 == 0 && last - fd >= 63) {  // a whole word at once
        g_decided[fd / 64].store(0);
        fd += 64;
      } else {
        set_decided(static_cast<int>(fd++), false);
      }
    }
  }
  return real(first, last, flags);
}
