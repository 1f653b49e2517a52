// TOML configuration reading shared by ied and iesn (toml_reader.hpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <exception>
#include <sstream>

#include "ie/conf/toml_reader.hpp"

namespace ie::conf {

bool valid_edomain(std::string_view label) {
  if (label.empty() || label.size() > 31) return false;
  for (const char c : label) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool valid_sn_name(std::string_view name) {
  const auto dot = name.find('.');
  if (dot == std::string_view::npos) return false;
  return valid_edomain(name.substr(0, dot)) && valid_edomain(name.substr(dot + 1));
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date/time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string quoted(std::string_view s) {
  std::string q = "\"";
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      q += buf;
    } else {
      q += c;
    }
  }
  return q + "\"";
}

bool is_absolute_path(const std::string& p) {
  return !p.empty() && p.front() == '/' && p.find('\0') == std::string::npos;
}

std::string scalar_string(const toml::node& n) {
  if (const auto* s = n.as_string()) return s->get();
  if (const auto* i = n.as_integer()) return std::to_string(i->get());
  if (const auto* b = n.as_boolean()) return b->get() ? "true" : "false";
  const double d = n.as_floating_point()->get();
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip form
  return std::string(buf, r.ptr);
}

Result<std::string> read_config_file(const std::string& path) {
  if (path.find('\0') != std::string::npos)
    return fail(Errc::invalid_argument, "config path with a NUL byte");
  // O_NONBLOCK: opening a FIFO must not wait for a writer (a daemon checking a path it was
  // handed would hang); anything but a regular file is refused below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int e = errno;
    return fail(e == ENOENT ? Errc::not_found : (e == EACCES ? Errc::permission : Errc::io),
                "config " + path, e);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(Errc::invalid_argument, "config " + path + ": not a regular file");
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return fail(Errc::io, "read config " + path, e);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      ::close(fd);
      return fail(Errc::too_large,
                  "config " + path + ": larger than " + std::to_string(kMaxConfigBytes) + " bytes");
    }
  }
  ::close(fd);
  return text;
}

Result<toml::table> parse_toml(std::string_view text, const std::string& file_name) {
  try {
    return toml::parse(text, file_name);
  } catch (const toml::parse_error& e) {
    return Reader(file_name).err(e.source(), Errc::parse, std::string(e.description()));
  } catch (const std::exception& e) {
    return fail(Errc::parse, file_name + ": " + e.what());
  }
}

}  // namespace ie::conf
