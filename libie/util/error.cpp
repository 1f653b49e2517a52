// Rendering of ie::Error.
#include "ie/util/error.hpp"

#include <cstring>

namespace ie {

const char* errc_name(Errc c) {
  switch (c) {
#define IE_X(name, text) \
  case Errc::name:       \
    return #name;
    IE_ERRC_LIST(IE_X)
#undef IE_X
  }
  return "unknown";
}

const char* errc_text(Errc c) {
  switch (c) {
#define IE_X(name, text) \
  case Errc::name:       \
    return text;
    IE_ERRC_LIST(IE_X)
#undef IE_X
  }
  return "unknown error";
}

std::string Error::to_string() const {
  std::string s = context.empty() ? std::string(errc_text(code)) : context + ": " + errc_text(code);
  if (sys_errno != 0) {
    char buf[128];
    // GNU strerror_r returns the message pointer (possibly not buf).
    const char* m = strerror_r(sys_errno, buf, sizeof buf);
    s += " (";
    s += m;
    s += ")";
  }
  return s;
}

}  // namespace ie
