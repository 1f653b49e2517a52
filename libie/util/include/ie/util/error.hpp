// Error codes with context, shared by every layer. An Error names what failed (context),
// a portable code, and the errno that caused it if any; to_string() renders all three.
#pragma once

#include <string>

namespace ie {

#define IE_ERRC_LIST(X)                                 \
  X(ok, "ok")                                           \
  X(invalid_argument, "invalid argument")               \
  X(parse, "malformed input")                           \
  X(io, "I/O error")                                    \
  X(not_found, "not found")                             \
  X(exists, "already exists")                           \
  X(permission, "permission denied")                    \
  X(timeout, "timed out")                               \
  X(protocol, "protocol error")                         \
  X(crypto, "cryptographic failure")                    \
  X(unsupported, "unsupported")                         \
  X(busy, "busy")                                       \
  X(closed, "closed")                                   \
  X(too_large, "too large")                             \
  X(internal, "internal error")

enum class Errc : int {
#define IE_X(name, text) name,
  IE_ERRC_LIST(IE_X)
#undef IE_X
};

const char* errc_name(Errc c);
const char* errc_text(Errc c);

struct Error {
  Errc code = Errc::ok;
  int sys_errno = 0;    // 0 when the failure did not come from the OS
  std::string context;  // what was being done, e.g. "bind 127.0.0.1:1000"

  std::string to_string() const;
};

}  // namespace ie
