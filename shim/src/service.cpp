// socket.set_service / get_service / clear_service as C structs in and out (service.hpp):
// everything that can be checked locally (the struct's size prefix, names, option limits,
// the kind of socket) is checked before ied is asked, so a bad call costs no round trip.
#include "service.hpp"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>

#include <string>
#include <utility>
#include <vector>

#include "control.hpp"

namespace ie::shim {
namespace {

using Options = std::vector<std::pair<std::string, std::string>>;

// A NUL-terminated string inside a fixed array, or nullptr if the array has no NUL.
const char* bounded(const char* a, std::size_t n) {
  return memchr(a, '\0', n) != nullptr ? a : nullptr;
}

bool all_of(const char* s, std::size_t min, std::size_t max, bool (*ok)(char)) {
  std::size_t n = 0;
  for (; s[n] != '\0'; ++n)
    if (n >= max || !ok(s[n])) return false;
  return n >= min;
}

bool lower_digit(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Appends the options of a fixed array (validated) to out.
int collect(const ie_option* opt, std::uint32_t count, Options* out) {
  if (count > IE_OPTIONS_MAX) return EINVAL;
  for (std::uint32_t i = 0; i < count; ++i) {
    const char* k = bounded(opt[i].key, sizeof opt[i].key);
    const char* v = bounded(opt[i].value, sizeof opt[i].value);
    if (k == nullptr || v == nullptr || !valid_option_key(k) || !valid_option_value(v))
      return EINVAL;
    for (const auto& [key, value] : *out)
      if (key == k) return EINVAL;  // a key at most once
    out->emplace_back(k, v);
  }
  return 0;
}

// fd must be an open AF_INET/AF_INET6 TCP or UDP socket.
int check_socket(int fd) {
  if (fd < 0 || fcntl(fd, F_GETFD) < 0) return EBADF;
  int domain = 0, protocol = 0;
  socklen_t len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return errno;
  len = sizeof protocol;
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0) return errno;
  if (domain != AF_INET && domain != AF_INET6) return EINVAL;
  if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) return EINVAL;
  return 0;
}

int request_set(const char* sock, int fd, const char* service, const Options& options) {
  try {
    Json opts = Json::object();
    for (const auto& [k, v] : options)
      opts[k] = v;
    Json result;
    const int e = call(sock, fd, "socket.set_service",
                       Json{{"service", service}, {"options", std::move(opts)}}, &result);
    if (e != 0) return e;
    // The cookie names the socket ied marked: another one means something is badly wrong.
    const auto c = result.find("cookie");
    if (c != result.end() && c->is_number_unsigned() &&
        c->get<std::uint64_t>() != socket_cookie(fd))
      return EPROTO;
    return 0;
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  } catch (...) {
    return EPROTO;
  }
}

// Copies s into a fixed array of n bytes; false if it does not fit.
bool copy_to(char* dst, std::size_t n, const std::string& s) {
  if (s.size() >= n) return false;
  memcpy(dst, s.c_str(), s.size() + 1);
  return true;
}

// Fills info (known size) from socket.get_service's result; EPROTO for a malformed one.
int fill_info(const Json& r, int fd, ie_service_info* info) {
  memset(info, 0, sizeof *info);
  info->size = sizeof *info;
  info->cookie = socket_cookie(fd);
  const auto s = r.find("service");
  if (s == r.end() || s->is_null()) return 0;  // not steered
  if (!s->is_string() || !copy_to(info->service, sizeof info->service, s->get<std::string>()))
    return EPROTO;
  if (const auto o = r.find("options"); o != r.end() && !o->is_null()) {
    if (!o->is_object() || o->size() > IE_OPTIONS_MAX) return EPROTO;
    for (const auto& [k, v] : o->items()) {
      ie_option& dst = info->option[info->option_count++];
      if (!v.is_string() || !copy_to(dst.key, sizeof dst.key, k) ||
          !copy_to(dst.value, sizeof dst.value, v.get<std::string>()))
        return EPROTO;
    }
  }
  if (const auto m = r.find("mark"); m != r.end()) {
    if (!m->is_number_unsigned() || m->get<std::uint64_t>() > UINT32_MAX) return EPROTO;
    info->mark = static_cast<std::uint32_t>(m->get<std::uint64_t>());
  }
  return 0;
}

}  // namespace

bool valid_service_name(const char* s) {
  return s != nullptr && all_of(s, 1, IE_SERVICE_NAME_MAX - 1, [](char c) {
           return lower_digit(c) || c == '_' || c == '.' || c == '+' || c == '-';
         });
}

bool valid_option_key(const char* s) {
  return s != nullptr && all_of(s, 1, IE_OPTION_KEY_MAX - 1, [](char c) {
           return lower_digit(c) || c == '_' || c == '.' || c == '-';
         });
}

bool valid_option_value(const char* s) {
  return s != nullptr &&
         all_of(s, 0, IE_OPTION_VALUE_MAX - 1, [](char c) { return c >= 0x20 && c <= 0x7e; });
}

bool size_prefix_ok(const void* p, std::uint32_t size, std::size_t known) {
  if (size < known) return false;
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = known; i < size; ++i)
    if (b[i] != 0) return false;
  return true;
}

int options_add(ie_options* o, const char* key, const char* value) {
  if (o == nullptr || !size_prefix_ok(o, o->size, sizeof *o) || o->count > IE_OPTIONS_MAX)
    return EINVAL;
  if (!valid_option_key(key) || !valid_option_value(value)) return EINVAL;
  for (std::uint32_t i = 0; i < o->count; ++i)
    if (strncmp(o->option[i].key, key, sizeof o->option[i].key) == 0) return EINVAL;
  if (o->count == IE_OPTIONS_MAX) return E2BIG;
  ie_option& dst = o->option[o->count++];
  memset(&dst, 0, sizeof dst);
  memcpy(dst.key, key, strlen(key));
  memcpy(dst.value, value, strlen(value));
  return 0;
}

int options_parse(ie_options* o, const char* text) {
  if (o == nullptr || text == nullptr || !size_prefix_ok(o, o->size, sizeof *o)) return EINVAL;
  ie_options copy = *o;  // all or nothing
  copy.size = sizeof copy;
  const char* p = text;
  while (*p != '\0') {
    const char* end = strchr(p, ',');
    if (end == nullptr) end = p + strlen(p);
    const char* eq = static_cast<const char*>(memchr(p, '=', static_cast<std::size_t>(end - p)));
    if (end != p) {  // empty items ("a=b,,c=d", a trailing comma) are skipped
      if (eq == nullptr) return EINVAL;
      char key[IE_OPTION_KEY_MAX], value[IE_OPTION_VALUE_MAX];
      const auto klen = static_cast<std::size_t>(eq - p);
      const auto vlen = static_cast<std::size_t>(end - eq - 1);
      if (klen >= sizeof key || vlen >= sizeof value) return EINVAL;
      memcpy(key, p, klen);
      key[klen] = '\0';
      memcpy(value, eq + 1, vlen);
      value[vlen] = '\0';
      if (int e = options_add(&copy, key, value); e != 0) return e;
    }
    p = *end == ',' ? end + 1 : end;
  }
  memcpy(o->option, copy.option, sizeof o->option);
  o->count = copy.count;
  return 0;
}

int set_service(const char* sock, int fd, const char* service, const ie_options* opts) {
  if (!valid_service_name(service)) return EINVAL;
  Options options;
  if (opts != nullptr) {
    if (!size_prefix_ok(opts, opts->size, sizeof *opts)) return EINVAL;
    if (int e = collect(opts->option, opts->count, &options); e != 0) return e;
  }
  if (int e = check_socket(fd); e != 0) return e;
  return request_set(sock, fd, service, options);
}

int set_service_info(const char* sock, int fd, const ie_service_info* in) {
  if (in == nullptr) return EFAULT;
  if (!size_prefix_ok(in, in->size, sizeof *in) || in->flags != 0) return EINVAL;
  const char* service = bounded(in->service, sizeof in->service);
  if (service == nullptr) return EINVAL;
  if (*service == '\0') return clear_service(sock, fd);
  if (!valid_service_name(service)) return EINVAL;
  Options options;
  if (int e = collect(in->option, in->option_count, &options); e != 0) return e;
  if (int e = check_socket(fd); e != 0) return e;
  return request_set(sock, fd, service, options);
}

int get_service(const char* sock, int fd, ie_service_info* out) {
  if (out == nullptr) return EFAULT;
  const std::uint32_t size = out->size;
  if (size < sizeof *out) return EINVAL;
  if (int e = check_socket(fd); e != 0) return e;
  try {
    Json result;
    if (int e = call(sock, fd, "socket.get_service", Json::object(), &result); e != 0) return e;
    ie_service_info info;
    if (int e = fill_info(result, fd, &info); e != 0) return e;
    *out = info;
    // A newer caller's struct: what this version does not know reads as zero.
    memset(reinterpret_cast<unsigned char*>(out) + sizeof *out, 0, size - sizeof *out);
    return 0;
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  } catch (...) {
    return EPROTO;
  }
}

int clear_service(const char* sock, int fd) {
  if (int e = check_socket(fd); e != 0) return e;
  try {
    Json result;
    return call(sock, fd, "socket.clear_service", Json::object(), &result);
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  } catch (...) {
    return EPROTO;
  }
}

int set_sockopt(const char* sock, int fd, int level, int optname, const void* optval,
                socklen_t optlen) {
  if (level != SOL_INTEREDGE || optname != IE_SERVICE) return ENOPROTOOPT;
  if (optval == nullptr) return EFAULT;
  if (optlen < sizeof(ie_service_info)) return EINVAL;
  const auto* in = static_cast<const ie_service_info*>(optval);
  if (in->size > optlen) return EINVAL;
  return set_service_info(sock, fd, in);
}

int get_sockopt(const char* sock, int fd, int level, int optname, void* optval, socklen_t* optlen) {
  if (level != SOL_INTEREDGE || optname != IE_SERVICE) return ENOPROTOOPT;
  if (optval == nullptr || optlen == nullptr) return EFAULT;
  if (*optlen < sizeof(ie_service_info)) return EINVAL;
  ie_service_info info;
  info.size = sizeof info;
  if (int e = get_service(sock, fd, &info); e != 0) return e;
  memcpy(optval, &info, sizeof info);
  *optlen = sizeof info;
  return 0;
}

}  // namespace ie::shim
