// The exported C API of libinteredge (<interedge/interedge.h>): thin wrappers that turn the
// errno values of service.cpp into -1 + errno, with the control socket from $IE_SOCKET.
// Nothing here or below throws (service.cpp catches at its entry points).
#include <errno.h>
#include <string.h>

#include "control.hpp"
#include "interedge/interedge.h"
#include "resolve.hpp"
#include "service.hpp"

namespace {

int ret(int e) {
  if (e == 0) return 0;
  errno = e;
  return -1;
}

}  // namespace

extern "C" {

int ie_api_version(void) {
  return IE_API_VERSION;
}

void ie_options_init(struct ie_options* o) {
  if (o == nullptr) return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
}

int ie_options_add(struct ie_options* o, const char* key, const char* value) {
  return ret(ie::shim::options_add(o, key, value));
}

int ie_options_parse(struct ie_options* o, const char* text) {
  return ret(ie::shim::options_parse(o, text));
}

int ie_set_service(int fd, const char* service, const struct ie_options* opts) {
  return ret(ie::shim::set_service(ie::shim::socket_path_from_env(), fd, service, opts));
}

int ie_get_service(int fd, struct ie_service_info* out) {
  return ret(ie::shim::get_service(ie::shim::socket_path_from_env(), fd, out));
}

int ie_clear_service(int fd) {
  return ret(ie::shim::clear_service(ie::shim::socket_path_from_env(), fd));
}

int ie_setsockopt(int fd, int level, int optname, const void* optval, socklen_t optlen) {
  return ret(
      ie::shim::set_sockopt(ie::shim::socket_path_from_env(), fd, level, optname, optval, optlen));
}

int ie_getsockopt(int fd, int level, int optname, void* optval, socklen_t* optlen) {
  return ret(
      ie::shim::get_sockopt(ie::shim::socket_path_from_env(), fd, level, optname, optval, optlen));
}

int ie_resolve(const char* host, const char* port, int family, struct ie_peer* out, size_t max,
               size_t* count) {
  return ret(
      ie::shim::resolve(ie::shim::socket_path_from_env(), host, port, family, out, max, count));
}

}  // extern "C"
