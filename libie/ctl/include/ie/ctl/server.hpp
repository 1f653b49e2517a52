// The control server every InterEdge daemon runs (ied, iesn): serves a Dispatcher on a Unix
// stream socket from a reactor, one connection per client, the caller's credentials from
// the kernel (SO_PEERCRED/SO_PEERGROUPS) decided once at accept, admin methods refused to
// anyone not root or in the configured admin group (docs/control-protocol.md, Permissions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ie/ctl/protocol.hpp"
#include "ie/io/reactor.hpp"
#include "ie/util/result.hpp"

namespace ie::ctl {

struct ServerOptions {
  // The socket file's mode. ied uses 0666 (anyone may connect and read status; admin
  // methods are gated by credentials, not by the mode); iesn 0660.
  unsigned mode = 0660;
  // Members of this group (primary or supplementary) may call Access::admin methods, like
  // root. nullopt: root only.
  std::optional<std::uint32_t> admin_gid;
};

// Accepts connections (at most kMaxConnections at once), reads NDJSON requests, answers each
// with Dispatcher::handle_line and the connection's caller. A client that sends a line over
// kMaxFrame gets one too_large reply and is disconnected. While more than kMaxPending bytes
// of replies wait for a client that does not read them, its requests are not read either.
// Threads: create, use and destroy on the reactor's thread; destroy before the reactor. The
// handlers run there.
class Server {
 public:
  static constexpr std::size_t kMaxConnections = 64;
  static constexpr std::size_t kMaxPending = 8u << 20;

  // Listens on path (an old socket file there is replaced), creating the parent directory
  // (0755) if it is missing.
  static Result<std::unique_ptr<Server>> start(io::Reactor& reactor, const std::string& path,
                                               Dispatcher dispatcher, ServerOptions options = {});
  ~Server();  // closes every connection and removes the socket file
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  const std::string& path() const;
  std::size_t connection_count() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ie::ctl
