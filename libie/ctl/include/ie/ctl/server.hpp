// The control server every InterEdge daemon runs (ied, iesn): serves a Dispatcher on a Unix
// stream socket from a reactor, one connection per client, the caller's credentials from
// the kernel (SO_PEERCRED/SO_PEERGROUPS) decided once at accept, admin methods refused to
// anyone not root or in the configured admin group (docs/control-protocol.md, Permissions).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ie/ctl/protocol.hpp"
#include "ie/io/reactor.hpp"
#include "ie/util/result.hpp"

namespace ie::ctl {

// Limits of a control server (docs/control-protocol.md, "Limits"). The defaults are the
// constants below; tests shorten them.
struct ServerLimits {
  // Connections at once (every caller).
  static constexpr std::size_t kMaxConnections = 64;
  // Connections of callers that are not admin (Caller::may_admin() false), so that root and
  // the admin group always find a free slot.
  static constexpr std::size_t kMaxNonAdminConnections = 48;
  // Connections of one uid other than 0 (admin group members included), so that one user
  // cannot take every non-admin slot.
  static constexpr std::size_t kMaxConnectionsPerUid = 16;
  // Reply bytes queued for a client that does not read them; beyond it the server stops
  // reading (and running) that connection's requests.
  static constexpr std::size_t kMaxBacklog = 256u << 10;     // non-admin callers
  static constexpr std::size_t kMaxBacklogAdmin = 4u << 20;  // root and the admin group
  // A connection whose backlog stays over its limit this long is closed.
  static constexpr std::chrono::milliseconds kBacklogTimeout{10'000};
  // A connection on which no byte moved either way this long is closed (silently).
  static constexpr std::chrono::milliseconds kIdleTimeout{30'000};
  // A request line must be complete (its newline received) this long after its first byte,
  // else the server answers one `timeout` error and closes the connection (slowloris).
  static constexpr std::chrono::milliseconds kLineTimeout{10'000};

  std::size_t max_connections = kMaxConnections;
  std::size_t max_non_admin_connections = kMaxNonAdminConnections;
  std::size_t max_connections_per_uid = kMaxConnectionsPerUid;
  std::size_t max_backlog = kMaxBacklog;
  std::size_t max_backlog_admin = kMaxBacklogAdmin;
  std::chrono::milliseconds backlog_timeout = kBacklogTimeout;
  std::chrono::milliseconds idle_timeout = kIdleTimeout;
  std::chrono::milliseconds line_timeout = kLineTimeout;
};

struct ServerOptions {
  // The socket file's mode. ied uses 0666 (anyone may connect and read status; admin
  // methods are gated by credentials, not by the mode); iesn 0660.
  unsigned mode = 0660;
  // Members of this group (primary or supplementary) may call Access::admin methods, like
  // root. nullopt: root only.
  std::optional<std::uint32_t> admin_gid;
  ServerLimits limits{};
};

// Accepts connections and serves NDJSON requests on them, answering each with
// Dispatcher::handle_line and the connection's caller (credentials decided at accept).
//
// Limits (ServerLimits): a connection over max_connections, over max_non_admin_connections
// for a non-admin caller, or over max_connections_per_uid for its uid (uid 0 exempt) gets
// one `busy` error line (id 0) and is closed. A client that sends a line over kMaxFrame gets
// one too_large reply and is disconnected. While a connection's unsent replies exceed its
// backlog limit, its requests are neither read nor run; if that lasts backlog_timeout, it is
// closed. A line not completed within line_timeout of its first byte gets a `timeout` error
// and the connection is closed; a connection on which nothing was received or sent for
// idle_timeout is closed.
//
// File descriptors (SCM_RIGHTS, at most kMaxFdsPerRequest per request): the descriptors a
// read brings belong to the request whose line holds that read's last byte (the kernel
// delivers them with the read that reaches the first byte of the sendmsg that carried them,
// and ends that read within it), so a client that sends each request line with its
// descriptors in one sendmsg() gets them with that request, whatever was sent before. The
// handler sees them in Caller::fds; the server closes them when the handler returns, and
// closes any not yet handed out when the connection closes. More than kMaxFdsPerRequest
// waiting on a connection, or a truncated control message, gets one invalid_argument error
// (id 0) and closes the connection.
//
// Threads: create, use and destroy on the reactor's thread; destroy before the reactor. The
// handlers run there.
class Server {
 public:
  static constexpr std::size_t kMaxConnections = ServerLimits::kMaxConnections;
  static constexpr std::size_t kMaxFdsPerRequest = 4;

  // Listens on path (an old socket file there is replaced), creating the parent directory
  // (0755) if it is missing.
  static Result<std::unique_ptr<Server>> start(io::Reactor& reactor, const std::string& path,
                                               Dispatcher dispatcher, ServerOptions options = {});
  ~Server();  // closes every connection (and descriptors received) and removes the socket
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  const std::string& path() const;
  std::size_t connection_count() const;
  // Descriptors received and not yet handed to a handler, over all connections.
  std::size_t pending_fd_count() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ie::ctl
