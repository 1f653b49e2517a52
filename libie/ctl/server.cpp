// The reactor-driven control server (ie/ctl/server.hpp). Each connection:
//   1. recvmsg -> bytes into the LineReader, descriptors (SCM_RIGHTS) into the connection's
//      queue, each tagged with the number of the line it belongs to;
//   2. each complete line, while the reply backlog is under its limit: Dispatcher::
//      handle_line with the caller decided at accept and the line's descriptors, which are
//      closed when it returns;
//   3. replies -> buffered nonblocking writes; reads pause while the backlog is over its
//      limit (and the lines already read wait for it to drain).
// One timer per connection enforces the backlog, line and idle timeouts. It is re-armed
// lazily: activity only moves timestamps, and a timer that fires early re-arms itself for
// the deadline those timestamps now give.
#include "ie/ctl/server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "ie/ctl/client.hpp"
#include "ie/ctl/credentials.hpp"
#include "ie/util/log.hpp"

namespace ie::ctl {
namespace {

using Clock = io::Reactor::Clock;

void close_fds(std::vector<int>& fds) {
  for (int fd : fds)
    ::close(fd);
  fds.clear();
}

std::string error_line(Errc code, std::string message) {
  Response r;
  r.ok = false;
  r.error = Error{code, 0, std::move(message)};
  return encode(r);
}

}  // namespace

struct Server::Impl {
  struct PendingFd {
    std::uint64_t line = 0;  // the number of the line (request) it belongs to
    int fd = -1;
  };
  struct Conn {
    int fd = -1;
    Caller caller;
    std::size_t max_backlog = 0;
    LineReader reader;
    std::uint64_t lines_framed = 0;      // newlines received
    std::uint64_t lines_dispatched = 0;  // lines handed to the dispatcher
    std::deque<PendingFd> fds;
    std::string out;
    bool closing = false;  // read no more; close once the lines read are answered and sent
    // Deadlines (ServerLimits): the last byte moved either way; the first byte of the line
    // still incomplete; since when the backlog is over the limit.
    Clock::time_point last_io;
    std::optional<Clock::time_point> line_started;
    std::optional<Clock::time_point> backlog_since;
    io::Reactor::TimerId timer;
    Clock::time_point timer_due;

    bool over_backlog() const { return out.size() >= max_backlog; }
    bool lines_waiting() const { return lines_dispatched < lines_framed; }
    bool reading() const { return !closing && !over_backlog() && !lines_waiting(); }
  };

  io::Reactor& reactor;
  std::string path;
  Dispatcher dispatcher;
  ServerOptions options;
  int listen_fd = -1;
  std::map<int, std::unique_ptr<Conn>> conns;
  std::size_t non_admin = 0;                               // connections of non-admin callers
  std::unordered_map<std::uint32_t, std::size_t> per_uid;  // uid != 0 only

  Impl(io::Reactor& r, std::string p, Dispatcher d, ServerOptions o)
      : reactor(r), path(std::move(p)), dispatcher(std::move(d)), options(o) {}

  ~Impl() {
    for (auto& [fd, c] : conns)
      release(*c);
    if (listen_fd >= 0) {
      reactor.remove_fd(listen_fd);
      ::close(listen_fd);
      ::unlink(path.c_str());
    }
  }

  const ServerLimits& limits() const { return options.limits; }

  // Ends a connection that broke a rule: one error line (after the replies already queued),
  // the lines read but not run dropped, nothing more read; closed once `out` is sent.
  static void fail_conn(Conn& c, Errc code, std::string message) {
    c.out += error_line(code, std::move(message));
    c.reader = LineReader();
    c.lines_framed = c.lines_dispatched;
    c.line_started.reset();
    c.closing = true;
  }

  // Everything a connection holds: its timer, descriptors received, the socket.
  void release(Conn& c) {
    if (c.timer.valid()) reactor.cancel_timer(c.timer);
    for (const auto& p : c.fds)
      ::close(p.fd);
    c.fds.clear();
    reactor.remove_fd(c.fd);
    ::close(c.fd);
  }

  void close_conn(int fd) {
    auto it = conns.find(fd);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    release(c);
    if (!c.caller.may_admin()) --non_admin;
    if (c.caller.uid != 0) {
      auto u = per_uid.find(c.caller.uid);
      if (u != per_uid.end() && --u->second == 0) per_uid.erase(u);
    }
    conns.erase(it);
  }

  // Why a new connection from `who` is refused, or empty to accept it.
  std::string refusal(const Caller& who) const {
    if (conns.size() >= limits().max_connections)
      return "too many control connections (" + std::to_string(limits().max_connections) +
             "); try again later";
    if (!who.may_admin() && non_admin >= limits().max_non_admin_connections)
      return "too many control connections from callers that are not admin (" +
             std::to_string(limits().max_non_admin_connections) + "); try again later";
    if (who.uid != 0) {
      auto u = per_uid.find(who.uid);
      if (u != per_uid.end() && u->second >= limits().max_connections_per_uid)
        return "too many control connections from uid " + std::to_string(who.uid) + " (" +
               std::to_string(limits().max_connections_per_uid) + "); try again later";
    }
    return {};
  }

  void on_accept() {
    for (int i = 0; i < 16; ++i) {  // a bounded burst per wake-up; epoll reports the rest
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
          IE_LOG_RATELIMITED(spdlog::level::warn, "control socket {}: accept: {}", path, errno);
        return;
      }
      // Decided once: credentials are the peer's at connect() and cannot change after.
      auto caller = peer_credentials(fd, options.admin_gid);
      if (!caller) {
        IE_LOG_RATELIMITED(spdlog::level::warn, "control socket {}: {}", path,
                           caller.error().to_string());
        ::close(fd);
        continue;
      }
      if (auto why = refusal(*caller); !why.empty()) {
        IE_LOG_RATELIMITED(spdlog::level::warn, "control socket {}: refusing uid {} pid {}: {}",
                           path, caller->uid, caller->pid, why);
        // One line into an empty socket buffer: it fits, never blocks.
        const std::string line = error_line(Errc::busy, why);
        (void)!::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        continue;
      }
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      c->caller = *caller;
      c->max_backlog = caller->may_admin() ? limits().max_backlog_admin : limits().max_backlog;
      c->last_io = reactor.now();
      if (!reactor.add_fd(fd, io::Reactor::kReadable,
                          [this, fd](std::uint32_t ev) { on_conn(fd, ev); })) {
        ::close(fd);
        continue;
      }
      if (!caller->may_admin()) ++non_admin;
      if (caller->uid != 0) ++per_uid[caller->uid];
      Conn& conn = *c;
      conns.emplace(fd, std::move(c));
      schedule(conn);
    }
  }

  // Descriptors from one read: closed, and the connection told why and closed, if they are
  // too many or were truncated; else queued for the line holding the read's last byte.
  // Returns false when the connection is closing.
  bool take_fds(Conn& c, std::vector<int>& fds, bool truncated, std::string_view bytes) {
    if (fds.empty() && !truncated) return true;
    if (truncated || c.fds.size() + fds.size() > kMaxFdsPerRequest) {
      close_fds(fds);
      for (const auto& p : c.fds)
        ::close(p.fd);
      c.fds.clear();
      fail_conn(c, Errc::invalid_argument,
                truncated ? "file descriptors truncated: more than " +
                                std::to_string(kMaxFdsPerRequest) + " in one message"
                          : "more than " + std::to_string(kMaxFdsPerRequest) +
                                " file descriptors with one request");
      return false;
    }
    const auto newlines = static_cast<std::uint64_t>(std::count(bytes.begin(), bytes.end(), '\n'));
    // The line holding the read's last byte: the last one this read completes, or the one
    // still incomplete after it.
    const std::uint64_t line = c.lines_framed + newlines - (bytes.back() == '\n' ? 1 : 0);
    for (int fd : fds)
      c.fds.push_back(PendingFd{line, fd});
    fds.clear();
    return true;
  }

  // Runs complete lines while the backlog is under its limit.
  void dispatch(Conn& c) {
    std::string line;
    std::vector<int> fds;
    while (!c.over_backlog() && c.reader.next(&line)) {
      const std::uint64_t n = c.lines_dispatched++;
      while (!c.fds.empty() && c.fds.front().line <= n) {
        fds.push_back(c.fds.front().fd);
        c.fds.pop_front();
      }
      if (fds.empty()) {
        c.out += dispatcher.handle_line(line, c.caller);
      } else {
        Caller who = c.caller;
        who.fds = fds;
        c.out += dispatcher.handle_line(line, who);
        close_fds(fds);  // a handler that keeps one has dup()ed it
      }
    }
  }

  void on_conn(int fd, std::uint32_t events) {
    auto it = conns.find(fd);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    if ((events & io::Reactor::kReadable) && c.reading()) {
      char buf[16384];
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerRequest)];
      std::vector<int> fds;
      for (int i = 0; i < 8 && c.reading(); ++i) {  // bounded work per wake-up
        iovec iov{buf, sizeof buf};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n == 0) {  // the client is done sending: answer what it sent, then close
          c.closing = true;
          break;
        }
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          close_conn(fd);
          return;
        }
        for (cmsghdr* h = CMSG_FIRSTHDR(&msg); h != nullptr; h = CMSG_NXTHDR(&msg, h)) {
          if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;  // e.g. creds
          const std::size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
          for (std::size_t k = 0; k < count; ++k) {
            int received;
            std::memcpy(&received, CMSG_DATA(h) + k * sizeof(int), sizeof received);
            fds.push_back(received);
          }
        }
        const std::string_view bytes(buf, static_cast<std::size_t>(n));
        const auto now = reactor.now();
        c.last_io = now;
        if (!take_fds(c, fds, (msg.msg_flags & MSG_CTRUNC) != 0, bytes)) break;
        const std::uint64_t framed_before = c.lines_framed;
        c.lines_framed += static_cast<std::uint64_t>(std::count(bytes.begin(), bytes.end(), '\n'));
        c.reader.feed(bytes);
        if (c.reader.partial_size() == 0)
          c.line_started.reset();
        else if (c.lines_framed != framed_before || !c.line_started)
          c.line_started = now;  // a new line began in this read
        dispatch(c);
        if (c.reader.overflowed()) {
          fail_conn(c, Errc::too_large,
                    "request line over " + std::to_string(kMaxFrame) + " bytes");
          break;
        }
      }
    } else if ((events & io::Reactor::kError) && !(events & io::Reactor::kWritable)) {
      close_conn(fd);
      return;
    }
    flush(fd, c);
  }

  // Sends what it can, running lines that waited for the backlog to drain; closes the
  // connection when done closing or on an error; then sets the fd's interest and the timer.
  void flush(int fd, Conn& c) {
    for (;;) {
      while (!c.out.empty()) {
        const ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          close_conn(fd);
          return;
        }
        c.out.erase(0, static_cast<std::size_t>(n));
        c.last_io = reactor.now();
      }
      if (c.over_backlog() || !c.lines_waiting()) break;
      dispatch(c);  // lines that waited for the backlog to drain (also after the client's EOF)
    }
    if (c.out.empty() && c.closing && !c.lines_waiting()) {
      close_conn(fd);
      return;
    }
    // Stop reading while replies pile up (the client is not reading them).
    const std::uint32_t interest = (c.out.empty() ? 0u : std::uint32_t{io::Reactor::kWritable}) |
                                   (c.reading() ? std::uint32_t{io::Reactor::kReadable} : 0u);
    if (!reactor.modify_fd(fd, interest)) {
      close_conn(fd);
      return;
    }
    schedule(c);
  }

  // The earliest deadline of the connection's state; (re-)arms the timer if it is earlier
  // than the armed one.
  void schedule(Conn& c) {
    const auto now = reactor.now();
    if (!c.over_backlog())
      c.backlog_since.reset();
    else if (!c.backlog_since)
      c.backlog_since = now;
    auto due = c.last_io + limits().idle_timeout;
    if (c.line_started) due = std::min(due, *c.line_started + limits().line_timeout);
    if (c.backlog_since) due = std::min(due, *c.backlog_since + limits().backlog_timeout);
    if (c.timer.valid() && c.timer_due <= due) return;
    if (c.timer.valid()) reactor.cancel_timer(c.timer);
    const auto wait =
        std::chrono::ceil<std::chrono::milliseconds>(std::max(due - now, Clock::duration::zero()));
    const int fd = c.fd;
    c.timer = reactor.add_timer(wait + std::chrono::milliseconds(1), [this, fd] { on_timer(fd); });
    c.timer_due = due;
  }

  void on_timer(int fd) {
    auto it = conns.find(fd);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    c.timer = {};
    const auto now = reactor.now();
    if (c.backlog_since && now >= *c.backlog_since + limits().backlog_timeout) {
      IE_LOG_RATELIMITED(spdlog::level::info,
                         "control socket {}: closing uid {} pid {}: {} bytes of replies unread "
                         "for {} ms",
                         path, c.caller.uid, c.caller.pid, c.out.size(),
                         limits().backlog_timeout.count());
      close_conn(fd);
      return;
    }
    if (c.line_started && now >= *c.line_started + limits().line_timeout) {
      fail_conn(c, Errc::timeout,
                "request line not completed within " +
                    std::to_string(limits().line_timeout.count()) + " ms");
      flush(fd, c);
      return;
    }
    if (now >= c.last_io + limits().idle_timeout) {
      // Bytes the loop has not read yet (a request racing the timer) are activity.
      char b;
      if (c.reading() && ::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
        c.last_io = now;
      } else {
        close_conn(fd);
        return;
      }
    }
    schedule(c);
  }

  std::size_t pending_fds() const {
    std::size_t n = 0;
    for (const auto& [fd, c] : conns)
      n += c->fds.size();
    return n;
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

const std::string& Server::path() const {
  return impl_->path;
}
std::size_t Server::connection_count() const {
  return impl_->conns.size();
}
std::size_t Server::pending_fd_count() const {
  return impl_->pending_fds();
}

Result<std::unique_ptr<Server>> Server::start(io::Reactor& reactor, const std::string& path,
                                              Dispatcher dispatcher, ServerOptions options) {
  const auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return fail(errno == EACCES ? Errc::permission : Errc::io, "create directory " + dir, errno);
  }
  dispatcher.set_admin_requirement(options.admin_gid
                                       ? "root or a member of " + group_label(*options.admin_gid)
                                       : std::string("root"));
  auto fd = listen_unix(path, options.mode);
  if (!fd) return fail(fd.error());
  auto impl = std::make_unique<Impl>(reactor, path, std::move(dispatcher), options);
  impl->listen_fd = *fd;
  Impl* raw = impl.get();
  if (auto r =
          reactor.add_fd(*fd, io::Reactor::kReadable, [raw](std::uint32_t) { raw->on_accept(); });
      !r) {
    ::close(*fd);
    impl->listen_fd = -1;
    ::unlink(path.c_str());
    return fail(r.error());
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

}  // namespace ie::ctl
