// Control-protocol client and server socket helpers (ie/ctl/client.hpp).
#include "ie/ctl/client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ie::ctl {
namespace {

Result<sockaddr_un> unix_addr(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path) {
    return fail(Errc::invalid_argument, "socket path too long or empty: " + path);
  }
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

}  // namespace

Result<Client> Client::connect(const std::string& path) {
  auto addr = unix_addr(path);
  if (!addr) return fail(addr.error());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(Errc::io, "socket", errno);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    const int e = errno;
    ::close(fd);
    const bool down = e == ENOENT || e == ECONNREFUSED;
    return fail(down ? Errc::not_found : (e == EACCES ? Errc::permission : Errc::io),
                "cannot connect to " + path + (down ? " (is ied running?)" : ""), e);
  }
  return Client(fd, path);
}

Client::Client(Client&& o) noexcept
    : on_event(std::move(o.on_event)),
      fd_(o.fd_),
      path_(std::move(o.path_)),
      next_id_(o.next_id_),
      reader_(std::move(o.reader_)) {
  o.fd_ = -1;
}
Client& Client::operator=(Client&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
    path_ = std::move(o.path_);
    next_id_ = o.next_id_;
    reader_ = std::move(o.reader_);
    on_event = std::move(o.on_event);
  }
  return *this;
}
Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

Result<Json> Client::call(const std::string& method, const Json& params,
                          std::chrono::milliseconds timeout, int pass_fd) {
  auto r = request(method, params, timeout, pass_fd);
  if (!r) return fail(r.error());
  if (!r->ok) return fail(std::move(r->error));
  return std::move(r->result);
}

Result<Response> Client::request(const std::string& method, const Json& params,
                                 std::chrono::milliseconds timeout, int pass_fd) {
  if (fd_ < 0) return fail(Errc::closed, "control connection closed");
  Request req;
  req.id = next_id_++;
  req.method = method;
  req.params = params;
  const std::string line = encode(req);
  // The descriptor rides on the first sendmsg(); a blocking stream socket sends the whole
  // line in it unless a signal interrupts, and the rest then follows without it.
  std::size_t off = 0;
  bool fd_pending = pass_fd >= 0;
  while (off < line.size()) {
    iovec iov{const_cast<char*>(line.data() + off), line.size() - off};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (fd_pending) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* h = CMSG_FIRSTHDR(&msg);
      h->cmsg_level = SOL_SOCKET;
      h->cmsg_type = SCM_RIGHTS;
      h->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(h), &pass_fd, sizeof pass_fd);
    }
    const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      const int e = errno;
      if (e == EINTR) continue;
      if (e == EBADF && fd_pending)
        return fail(Errc::invalid_argument, "file descriptor to pass: not open", e);
      if (e == EPIPE || e == ECONNRESET)
        return fail(Errc::closed, path_ + " closed the connection", e);
      return fail(Errc::io, "send to " + path_, e);
    }
    fd_pending = false;
    off += static_cast<std::size_t>(n);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string got;
  char buf[65536];
  for (;;) {
    while (reader_.next(&got)) {
      auto m = decode(got);
      if (!m) return fail(m.error().code, "reply from " + path_ + ": " + m.error().context);
      if (auto* ev = std::get_if<Event>(&*m)) {
        if (on_event) on_event(*ev);
        continue;
      }
      auto* resp = std::get_if<Response>(&*m);
      if (resp == nullptr) return fail(Errc::protocol, "reply from " + path_ + ": a request");
      if (resp->id != req.id) continue;  // a late reply to an earlier, timed-out call
      return std::move(*resp);
    }
    if (reader_.overflowed()) return fail(Errc::too_large, "reply from " + path_ + " over 1 MiB");
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return fail(Errc::timeout, method + ": no reply from " + path_);
    pollfd pfd{fd_, POLLIN, 0};
    const int pr = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (pr < 0 && errno != EINTR) return fail(Errc::io, "poll", errno);
    if (pr <= 0) continue;
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return fail(Errc::closed, path_ + " closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return fail(Errc::closed, path_ + " closed the connection", errno);
      return fail(Errc::io, "recv from " + path_, errno);
    }
    reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  }
}

Result<int> listen_unix(const std::string& path, unsigned mode) {
  auto addr = unix_addr(path);
  if (!addr) return fail(addr.error());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(Errc::io, "socket", errno);
  ::unlink(path.c_str());  // a stale socket from a previous run
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0 ||
      ::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0 || ::listen(fd, 64) != 0) {
    const int e = errno;
    ::close(fd);
    return fail(e == EACCES ? Errc::permission : Errc::io, "listen on " + path, e);
  }
  return fd;
}

}  // namespace ie::ctl
