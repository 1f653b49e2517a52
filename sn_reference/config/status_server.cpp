// The server side of iesn's control socket: the read-only status methods and root-only
// reload on a ctl::Dispatcher, and ControlServer, which serves a Dispatcher to Unix-socket
// clients from a reactor. Each connection: nonblocking reads -> LineReader -> one reply per
// request line (Dispatcher::handle_line with the SO_PEERCRED caller) -> buffered writes.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "ie/ctl/client.hpp"
#include "ie/sn/status.hpp"
#include "ie/util/log.hpp"

namespace ie::sn {

using ctl::Json;

// ---- Methods ----

namespace {

Result<std::uint64_t> u64_param(const Json& params, const char* key, std::uint64_t dflt) {
  const auto it = params.find(key);
  if (it == params.end() || it->is_null()) return dflt;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_number_integer() && it->get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(it->get<std::int64_t>());
  return fail(Errc::invalid_argument, std::string("\"") + key + "\" must be an unsigned integer");
}

}  // namespace

Result<void> add_status_methods(ctl::Dispatcher& d, StatusProvider provider, ReloadHandler reload,
                                const std::string& server) {
  if (!provider) return fail(Errc::invalid_argument, "add_status_methods: no status provider");
  auto shared = std::make_shared<StatusProvider>(std::move(provider));
  auto summary = [shared](const Json&, const ctl::Caller&) -> Result<Json> {
    auto s = (*shared)(StatusQuery{});
    if (!s) return fail(s.error());
    return status_to_json(*s);
  };
  bool added = d.add_hello(server);
  added = d.add("status", summary) && added;
  added = d.add("counters", summary) && added;
  added = d.add("modules", [shared](const Json&, const ctl::Caller&) -> Result<Json> {
    auto s = (*shared)(StatusQuery{});
    if (!s) return fail(s.error());
    const Json j = status_to_json(*s);
    return Json{{"modules", j["modules"]}, {"module_counters", j["module_counters"]}};
  }) && added;
  added = d.add("pipes", [shared](const Json& params, const ctl::Caller&) -> Result<Json> {
    auto after = u64_param(params, "after", 0);
    if (!after) return fail(Errc::invalid_argument, "pipes: " + after.error().context);
    if (*after > 0xffffffffu)
      return fail(Errc::invalid_argument, "pipes: \"after\" must be a pipe id (32 bits)");
    auto limit = u64_param(params, "limit", kPipesPerPage);
    if (!limit) return fail(Errc::invalid_argument, "pipes: " + limit.error().context);
    if (*limit < 1 || *limit > kPipesPerPage)
      return fail(Errc::invalid_argument,
                  "pipes: \"limit\" must be 1.." + std::to_string(kPipesPerPage));
    StatusQuery q;
    q.pipes = true;
    q.pipes_after = static_cast<PipeId>(*after);
    q.pipe_limit = static_cast<std::size_t>(*limit);
    auto s = (*shared)(q);
    if (!s) return fail(s.error());
    // Enforce the page contract whatever the provider returned.
    auto& pipes = s->pipes;
    std::sort(pipes.begin(), pipes.end(),
              [](const PipeStatus& a, const PipeStatus& b) { return a.id < b.id; });
    pipes.erase(std::remove_if(pipes.begin(), pipes.end(),
                               [&](const PipeStatus& p) { return p.id <= q.pipes_after; }),
                pipes.end());
    bool more = pipes.size() >= q.pipe_limit;
    if (pipes.size() > q.pipe_limit) pipes.resize(q.pipe_limit);
    Json list = Json::array();
    for (const auto& p : pipes)
      list.push_back(pipe_to_json(p));
    const PipeSummary& ps = s->pipe_summary;
    return Json{{"pipes", std::move(list)},
                {"more", more},
                {"pipe_summary", Json{{"total", ps.total},
                                      {"hosts", ps.hosts},
                                      {"sns", ps.sns},
                                      {"established", ps.established}}}};
  }) && added;
  added = d.add("reload",
                [reload = std::move(reload)](const Json&, const ctl::Caller& who) -> Result<Json> {
                  if (who.uid != 0)
                    return fail(Errc::permission,
                                "reload: only root may reload the configuration (caller uid " +
                                    std::to_string(who.uid) + ")");
                  if (!reload)
                    return fail(Errc::unsupported, "reload: not supported by this server");
                  auto r = reload();
                  if (!r) return fail(r.error());
                  IE_LOG_INFO("configuration reloaded (requested by pid {})", who.pid);
                  return Json{{"reloaded", true}};
                }) &&
          added;
  if (!added) return fail(Errc::exists, "add_status_methods: a method name is already registered");
  return ok();
}

// ---- ControlServer ----

struct ControlServer::Impl {
  struct Conn {
    int fd = -1;
    ctl::Caller caller;
    ctl::LineReader reader;
    std::string out;
    bool closing = false;     // close once `out` is sent
    bool want_write = false;  // registered for kWritable
  };

  io::Reactor& reactor;
  std::string path;
  ctl::Dispatcher dispatcher;
  int listen_fd = -1;
  std::map<int, std::unique_ptr<Conn>> conns;

  Impl(io::Reactor& r, std::string p, ctl::Dispatcher d)
      : reactor(r), path(std::move(p)), dispatcher(std::move(d)) {}

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
      auto caller = ctl::peer_credentials(fd);
      if (!caller) {
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
        if (n == 0) {
          close_conn(fd);
          return;
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
          ctl::Response r;
          r.ok = false;
          r.error = Error{Errc::too_large, 0,
                          "request line over " + std::to_string(ctl::kMaxFrame) + " bytes"};
          c.out += ctl::encode(r);
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

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlServer::~ControlServer() = default;

const std::string& ControlServer::path() const {
  return impl_->path;
}
std::size_t ControlServer::connection_count() const {
  return impl_->conns.size();
}

Result<std::unique_ptr<ControlServer>> ControlServer::start(io::Reactor& reactor,
                                                            const std::string& path,
                                                            ctl::Dispatcher dispatcher,
                                                            unsigned mode) {
  const auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return fail(errno == EACCES ? Errc::permission : Errc::io, "create directory " + dir, errno);
  }
  auto fd = ctl::listen_unix(path, mode);
  if (!fd) return fail(fd.error());
  auto impl = std::make_unique<Impl>(reactor, path, std::move(dispatcher));
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
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

}  // namespace ie::sn
