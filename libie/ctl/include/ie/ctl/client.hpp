// The blocking client of the control protocol (iectl, the shim, tests) and the listening
// Unix socket a server needs (ctl::Server; the caller's credentials: credentials.hpp).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "ie/ctl/credentials.hpp"
#include "ie/ctl/protocol.hpp"

namespace ie::ctl {

class Client {
 public:
  // Connects to the server's socket. On failure the error names the path (and says whether
  // the daemon looks down), so a CLI can print it as is.
  static Result<Client> connect(const std::string& socket_path);

  Client(Client&& o) noexcept;
  Client& operator=(Client&& o) noexcept;
  ~Client();

  // One request/response round trip. A server error reply becomes an Error with the
  // server's code, errno and message; events arriving meanwhile go to on_event.
  //
  // pass_fd >= 0: the request line and that descriptor (SCM_RIGHTS) go in one sendmsg(), so
  // the server hands it to this request's handler (Caller::fds); the caller keeps its own
  // copy. A descriptor that is not open: invalid_argument (EBADF), nothing sent.
  //
  // Errors besides the server's: timeout (no reply in time; a later call skips the late
  // reply), closed (the server closed the connection, e.g. after its idle timeout: the
  // request was not sent or not answered; connect again), io, or a reply that did not decode.
  Result<Json> call(const std::string& method, const Json& params = Json::object(),
                    std::chrono::milliseconds timeout = std::chrono::seconds(5), int pass_fd = -1);
  // The same, but the server's reply is returned whole, error replies included, so a caller
  // can tell "the server said no" (Response::ok false) from "no answer" (the Result's error).
  // iectl's exit codes rest on this.
  Result<Response> request(const std::string& method, const Json& params = Json::object(),
                           std::chrono::milliseconds timeout = std::chrono::seconds(5),
                           int pass_fd = -1);

  std::function<void(const Event&)> on_event;

 private:
  explicit Client(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
  std::uint64_t next_id_ = 1;
  LineReader reader_;
};

// A listening Unix stream socket at path (an old socket file there is replaced), with the
// file's mode set to `mode`. Returns the fd (close-on-exec, nonblocking).
Result<int> listen_unix(const std::string& path, unsigned mode);

}  // namespace ie::ctl
