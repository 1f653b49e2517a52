// The preload shim's policy (policy.hpp): environment first, else the program's line of the
// policy file; destination prefixes and the loopback rule.
#include "policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "service.hpp"

namespace ie::shim {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      if (i > start) out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
      ++i;
    const std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
      ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

bool truthy(const char* v) {
  return v != nullptr && (strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0);
}

bool matches(const Prefix& p, const std::uint8_t* addr) {
  const unsigned full = p.len / 8, bits = p.len % 8;
  if (memcmp(p.addr, addr, full) != 0) return false;
  if (bits == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - bits));
  return (p.addr[full] & mask) == (addr[full] & mask);
}

// Parses one file line's fields after PROGRAM into out.
bool parse_line_rest(const std::vector<std::string_view>& w, Policy* out, std::string* why) {
  const std::string service(w[1]);
  if (!valid_service_name(service.c_str())) {
    *why = "bad service name \"" + service + "\"";
    return false;
  }
  Policy p;
  p.service = service;
  ie_options_init(&p.options);
  std::size_t i = 2;
  if (i < w.size() && w[i].find('=') == std::string_view::npos) {
    if (w[i] != "-" && !parse_prefixes(w[i], &p.destinations)) {
      *why = "bad destinations \"" + std::string(w[i]) + "\"";
      return false;
    }
    ++i;
  }
  for (; i < w.size(); ++i) {
    const std::string opt(w[i]);
    if (options_parse(&p.options, opt.c_str()) != 0) {
      *why = "bad option \"" + opt + "\"";
      return false;
    }
  }
  p.strict = out->strict;
  p.debug = out->debug;
  *out = std::move(p);
  return true;
}

}  // namespace

bool parse_prefix(std::string_view text, Prefix* out) {
  if (text.empty() || text.size() > 64) return false;
  std::string addr(text);
  long len = -1;
  if (const auto slash = addr.find('/'); slash != std::string::npos) {
    const std::string l = addr.substr(slash + 1);
    addr.resize(slash);
    if (l.empty() || l.size() > 3 || l.find_first_not_of("0123456789") != std::string::npos)
      return false;
    len = strtol(l.c_str(), nullptr, 10);
  }
  Prefix p;
  if (inet_pton(AF_INET, addr.c_str(), p.addr) == 1) {
    p.family = AF_INET;
    if (len < 0) len = 32;
    if (len > 32) return false;
  } else if (inet_pton(AF_INET6, addr.c_str(), p.addr) == 1) {
    p.family = AF_INET6;
    if (len < 0) len = 128;
    if (len > 128) return false;
  } else {
    return false;
  }
  p.len = static_cast<unsigned>(len);
  *out = p;
  return true;
}

bool parse_prefixes(std::string_view text, std::vector<Prefix>* out) {
  std::vector<Prefix> all;
  for (std::string_view item : split(text, ',')) {
    Prefix p;
    if (!parse_prefix(item, &p)) return false;
    all.push_back(p);
  }
  if (all.empty()) return false;
  *out = std::move(all);
  return true;
}

bool policy_from_file_text(std::string_view text, const std::vector<std::string>& programs,
                           Policy* out, const Warn& warn) {
  bool found_wild = false;
  Policy wild = *out;
  int lineno = 0;
  for (std::string_view line : split(text, '\n')) {
    ++lineno;
    if (const auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    const auto w = words(line);
    if (w.empty()) continue;
    bool exact = false;
    for (const std::string& name : programs)
      exact = exact || (!name.empty() && w[0] == name);
    if (!exact && w[0] != "*") continue;
    if (!exact && found_wild) continue;  // the first `*` line counts
    std::string why = "missing service";
    Policy p = *out;
    if (w.size() < 2 || !parse_line_rest(w, &p, &why)) {
      if (warn) warn("policy line " + std::to_string(lineno) + " ignored: " + why);
      continue;
    }
    if (exact) {
      *out = std::move(p);
      return true;
    }
    wild = std::move(p);
    found_wild = true;
  }
  if (found_wild) *out = std::move(wild);
  return found_wild;
}

Policy make_policy(const PolicyInputs& in, const Warn& warn) {
  Policy p;
  ie_options_init(&p.options);
  p.strict = truthy(in.strict);
  p.debug = truthy(in.debug);
  if (in.service == nullptr) {
    if (in.file_text == nullptr) return p;
    policy_from_file_text(*in.file_text, in.program_names, &p, warn);
  } else if (*in.service != '\0') {
    if (!valid_service_name(in.service)) {
      if (warn) warn(std::string("IE_SERVICE ignored: bad service name \"") + in.service + "\"");
      return p;
    }
    p.service = in.service;
  }
  // Environment values win over the file's (and apply to IE_SERVICE's service).
  if (!p.service.empty() && in.options != nullptr) {
    ie_options o;
    ie_options_init(&o);
    if (options_parse(&o, in.options) == 0)
      p.options = o;
    else if (warn)
      warn(std::string("IE_OPTIONS ignored: bad options \"") + in.options + "\"");
  }
  if (!p.service.empty() && in.destinations != nullptr && *in.destinations != '\0') {
    std::vector<Prefix> d;
    if (parse_prefixes(in.destinations, &d)) {
      p.destinations = std::move(d);
    } else {
      // Steering everything when the user meant a few prefixes would be the worse mistake.
      if (warn) warn(std::string("bad IE_DESTINATIONS \"") + in.destinations + "\": steering off");
      p.service.clear();
    }
  }
  return p;
}

bool wants_destination(const Policy& p, const sockaddr* sa, socklen_t len) {
  if (sa == nullptr || p.service.empty()) return false;
  std::uint8_t v4[4];
  const std::uint8_t* v6 = nullptr;
  bool is_v4 = false;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    memcpy(v4, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    is_v4 = true;
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* a = &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a)) {
      memcpy(v4, a->s6_addr + 12, 4);
      is_v4 = true;
    } else {
      if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a)) return false;
      v6 = a->s6_addr;
    }
  } else {
    return false;
  }
  if (is_v4 && (v4[0] == 127 || v4[0] == 0)) return false;
  if (p.destinations.empty()) return true;
  for (const Prefix& d : p.destinations) {
    if (is_v4 && d.family == AF_INET && matches(d, v4)) return true;
    if (!is_v4 && d.family == AF_INET6 && matches(d, v6)) return true;
  }
  return false;
}

}  // namespace ie::shim
