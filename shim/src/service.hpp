// The operations behind the C API (api.cpp) and the preload shim (preload.cpp), with the
// control socket path passed in (the shim snapshots $IE_SOCKET at load time). Every function
// returns 0 or an errno value (never -1), so callers choose how to report it; none throws.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "interedge/interedge.h"

namespace ie::shim {

// Checks on names and options, as ied applies them (steering contract).
bool valid_service_name(const char* s);
bool valid_option_key(const char* s);
bool valid_option_value(const char* s);

// A size-prefixed struct: ok if size == known, or size > known and the extra bytes are zero.
bool size_prefix_ok(const void* p, std::uint32_t size, std::size_t known);

int options_add(ie_options* o, const char* key, const char* value);
int options_parse(ie_options* o, const char* text);

int set_service(const char* sock, int fd, const char* service, const ie_options* opts);
int set_service_info(const char* sock, int fd, const ie_service_info* in);
int get_service(const char* sock, int fd, ie_service_info* out);
int clear_service(const char* sock, int fd);

int set_sockopt(const char* sock, int fd, int level, int optname, const void* optval,
                socklen_t optlen);
int get_sockopt(const char* sock, int fd, int level, int optname, void* optval, socklen_t* optlen);

}  // namespace ie::shim
