// The transport of libinteredge to ied (control.hpp): one short-lived Unix stream connection
// per call, the request and the app's fd (if any) in one sendmsg, a bounded read of one reply
// line under a poll deadline. The app's fd is only passed, never read from or changed.
#include "control.hpp"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <string>

namespace ie::shim {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

long long now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Nesting deeper than the control protocol allows (32) is refused before the JSON parser
// sees the line. Brackets inside strings do not count.
bool nesting_ok(std::string_view line) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : line) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > 32) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

int errno_for_code(const std::string& code) {
  if (code == "invalid_argument" || code == "invalid") return EINVAL;
  if (code == "not_found") return ENOENT;
  if (code == "unsupported") return EOPNOTSUPP;
  if (code == "permission") return EPERM;
  if (code == "busy") return EBUSY;
  if (code == "timeout") return ETIMEDOUT;
  return EIO;
}

enum class Line { result, error, skip, garbage };

// Interprets one reply line: 0/*result for ok, an errno for an error reply; events and
// replies to another id are skipped.
Line interpret(std::string_view line, Json* result, int* err) {
  if (!nesting_ok(line)) return Line::garbage;
  Json j = Json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Line::garbage;
  if (j.contains("event")) return Line::skip;
  const auto id = j.find("id");
  if (id != j.end() && (!id->is_number_unsigned() || id->get<std::uint64_t>() != 1))
    return Line::skip;
  const auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean()) return Line::garbage;
  if (ok->get<bool>()) {
    const auto r = j.find("result");
    if (r == j.end()) {
      *result = Json::object();
    } else if (r->is_object()) {
      *result = std::move(*r);
    } else {
      return Line::garbage;
    }
    return Line::result;
  }
  const auto e = j.find("error");
  if (e == j.end() || !e->is_object()) return Line::garbage;
  const auto n = e->find("errno");
  if (n != e->end() && n->is_number_integer() && n->get<long long>() > 0 &&
      n->get<long long>() < 4096) {
    *err = static_cast<int>(n->get<long long>());
  } else {
    const auto c = e->find("code");
    *err = c != e->end() && c->is_string() ? errno_for_code(c->get<std::string>()) : EIO;
  }
  return Line::error;
}

int connect_to(const char* path, int s, int timeout_ms) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  const std::size_t n = strlen(path);
  if (n == 0 || n >= sizeof sa.sun_path) return ENAMETOOLONG;
  memcpy(sa.sun_path, path, n);
  // Bounds a connect that would wait on a full backlog (and the send below).
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  (void)setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  for (;;) {
    if (::connect(s, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) return 0;
    switch (errno) {
      case EINTR:
        continue;
      case ENOENT:
      case ENOTDIR:
      case ECONNREFUSED:
        return ECONNREFUSED;  // nothing there: ied is not running
      case EAGAIN:
      case EINPROGRESS:
        return ETIMEDOUT;
      default:
        return errno;
    }
  }
}

int send_request(int s, const std::string& line, int fd) {
  iovec iov{const_cast<char*>(line.data()), line.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  ssize_t n;
  do {
    n = ::sendmsg(s, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EAGAIN ? ETIMEDOUT : errno;
  // A request is far below the socket buffer, so this is one write; if the kernel ever
  // split it, the rest follows without the fd.
  std::size_t off = static_cast<std::size_t>(n);
  while (off < line.size()) {
    n = ::send(s, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 && errno != EAGAIN ? errno : ETIMEDOUT;
    off += static_cast<std::size_t>(n);
  }
  return 0;
}

int read_reply(int s, Json* result, int timeout_ms) {
  std::string buf;
  const long long deadline = now_ms() + timeout_ms;
  char chunk[4096];
  for (;;) {
    // Every complete line: the reply, or something to skip.
    for (std::size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
      int err = 0;
      const Line l = interpret(std::string_view(buf).substr(0, nl), result, &err);
      if (l == Line::result) return 0;
      if (l == Line::error) return err;
      if (l == Line::garbage) return EPROTO;
      buf.erase(0, nl + 1);
    }
    if (buf.size() > kMaxReply) return EPROTO;
    const long long left = deadline - now_ms();
    if (left <= 0) return ETIMEDOUT;
    pollfd p{s, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno;
    if (r == 0) return ETIMEDOUT;
    const ssize_t n = ::recv(s, chunk, sizeof chunk, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return errno;
    if (n == 0) return ECONNRESET;  // closed without (a complete) reply
    buf.append(chunk, static_cast<std::size_t>(n));
  }
}

}  // namespace

const char* socket_path_from_env() {
  const char* p = getenv("IE_SOCKET");
  return p != nullptr && *p != '\0' ? p : kDefaultSocket;
}

std::uint64_t socket_cookie(int fd) noexcept {
  std::uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) return 0;
  return cookie;
}

int call(const char* socket_path, int fd, std::string_view method, const Json& params, Json* result,
         int timeout_ms) noexcept {
  if (timeout_ms <= 0) return ETIMEDOUT;
  if (timeout_ms > kReplyTimeoutMs) timeout_ms = kReplyTimeoutMs;
  try {
    const Json req = {{"v", 1}, {"id", 1}, {"method", method}, {"params", params}};
    const std::string line = req.dump() + "\n";
    Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (s.get() < 0) return errno;
    if (int e = connect_to(socket_path, s.get(), timeout_ms); e != 0) return e;
    if (int e = send_request(s.get(), line, fd); e != 0) return e;
    return read_reply(s.get(), result, timeout_ms);
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  } catch (...) {
    return EPROTO;
  }
}

}  // namespace ie::shim
