// The reactor-driven control server (ie/ctl/server.hpp). Each connection: nonblocking reads
// -> LineReader -> one reply per request line (Dispatcher::handle_line with the caller
// decided at accept) -> buffered writes, reads paused while replies pile up.
#include "ie/ctl/server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>

#include "ie/ctl/client.hpp"
#include "ie/ctl/credentials.hpp"
#include "ie/util/log.hpp"

namespace ie::ctl {

struct Server::Impl {
  struct Conn {
    int fd = -1;
    Caller caller;
    LineReader reader;
    std::string out;
    bool closing = false;  // close once `out` is sent
  };

  io::Reactor& reactor;
  std::string path;
  Dispatcher dispatcher;
  ServerOptions options;
  int listen_fd = -1;
  std::map<int, std::unique_ptr<Conn>> conns;

  Impl(io::Reactor& r, std::string p, Dispatcher d, ServerOptions o)
      : reactor(r), path(std::move(p)), dispatcher(std::move(d)), options(o) {}

  ~Impl() {
    for (auto& [fd, c] : conns) {
      reactor.remove_fd(fd);
      ::close(fd);
    }
    if (listen_fd >= 0) {
      reactor.remove_fd(listen_fd);
      ::close(listen_fd);
      ::unlink(path.c_str());
    }
  }

  void close_conn(int fd) {
    reactor.remove_fd(fd);
    ::close(fd);
    conns.erase(fd);
  }

  void on_accept() {
    for (int i = 0; i < 16; ++i) {  // a bounded burst per wake-up; epoll reports the rest
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
          IE_LOG_RATELIMITED(spdlog::level::warn, "control socket {}: accept: {}", path, errno);
        return;
      }
      if (conns.size() >= kMaxConnections) {
        IE_LOG_RATELIMITED(spdlog::level::warn,
                           "control socket {}: over {} connections, refusing one", path,
                           kMaxConnections);
        ::close(fd);
        continue;
      }
      // Decided once: credentials are the peer's at connect() and cannot change after.
      auto caller = peer_credentials(fd, options.admin_gid);
      if (!caller) {
        IE_LOG_RATELIMITED(spdlog::level::warn, "control socket {}: {}", path,
                           caller.error().to_string());
        ::close(fd);
        continue;
      }
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      c->caller = *caller;
      if (!reactor.add_fd(fd, io::Reactor::kReadable,
                          [this, fd](std::uint32_t ev) { on_conn(fd, ev); })) {
        ::close(fd);
        continue;
      }
      conns.emplace(fd, std::move(c));
    }
  }

  void on_conn(int fd, std::uint32_t events) {
    auto it = conns.find(fd);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    if ((events & io::Reactor::kReadable) && !c.closing) {
      char buf[16384];
      for (int i = 0; i < 8 && c.out.size() < kMaxPending; ++i) {  // bounded work per wake-up
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
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
        c.reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
        std::string line;
        while (c.reader.next(&line))
          c.out += dispatcher.handle_line(line, c.caller);
        if (c.reader.overflowed()) {
          Response r;
          r.ok = false;
          r.error = Error{Errc::too_large, 0,
                          "request line over " + std::to_string(kMaxFrame) + " bytes"};
          c.out += encode(r);
          c.closing = true;
          break;
        }
      }
    } else if ((events & io::Reactor::kError) && !(events & io::Reactor::kWritable)) {
      close_conn(fd);
      return;
    }
    flush(fd, c);
  }

  // Sends what it can; closes the connection when done closing or on an error.
  void flush(int fd, Conn& c) {
    while (!c.out.empty()) {
      const ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        close_conn(fd);
        return;
      }
      c.out.erase(0, static_cast<std::size_t>(n));
    }
    if (c.out.empty() && c.closing) {
      close_conn(fd);
      return;
    }
    // Stop reading while replies pile up (the client is not reading them).
    const bool want_write = !c.out.empty();
    const std::uint32_t interest =
        (want_write ? std::uint32_t{io::Reactor::kWritable} : 0u) |
        (c.closing || c.out.size() >= kMaxPending ? 0u : std::uint32_t{io::Reactor::kReadable});
    if (!reactor.modify_fd(fd, interest)) close_conn(fd);
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
