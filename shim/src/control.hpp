// The one request libinteredge makes to ied: connect to the control socket, send one request
// line (carrying the app's socket, if any, as SCM_RIGHTS) in ONE sendmsg, read one reply
// line, close.
// No connection is kept (fork-safe, thread-safe); nothing throws out of here.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace ie::shim {

using Json = nlohmann::json;

inline constexpr const char* kDefaultSocket = "/run/interedge/ied.sock";
inline constexpr int kReplyTimeoutMs = 2000;
inline constexpr std::size_t kMaxReply = 64 * 1024;

// $IE_SOCKET, else kDefaultSocket.
const char* socket_path_from_env();

// Sends {"v":1,"id":1,"method":method,"params":params} with fd attached (fd < 0: no
// descriptor is passed). Returns 0 and the reply's result object in *result, or an errno
// value:
//   ECONNREFUSED  nothing listens at socket_path (missing file or refused): ied not running
//   EACCES/EPERM  the control socket is not open to this user
//   ETIMEDOUT     no complete reply within timeout_ms (at most kReplyTimeoutMs)
//   ECONNRESET    ied closed the connection without a reply
//   EPROTO        a reply that does not parse, or one over kMaxReply bytes
//   N             ied refused: the reply's error "errno" (EINVAL, ENOENT, EOPNOTSUPP, ...)
int call(const char* socket_path, int fd, std::string_view method, const Json& params, Json* result,
         int timeout_ms = kReplyTimeoutMs) noexcept;

// The socket's SO_COOKIE, or 0 if it has none.
std::uint64_t socket_cookie(int fd) noexcept;

}  // namespace ie::shim
