// Services and bundles (services.hpp).
#include "ie/ied/services.hpp"

#include <array>

namespace ie::ied {
namespace {

struct OptionSpec {
  std::string_view key;
  std::string_view def;
  std::array<std::string_view, 4> values;  // accepted values ("" ends the list)
};

struct ServiceSpec {
  std::string_view name;
  std::array<OptionSpec, 2> options;  // key "" ends the list
};

struct BundleSpec {
  std::string_view name;
  std::string_view service;
  std::string_view key, value;  // one option (enough for the bundles there are)
};

constexpr ServiceSpec kServices[] = {
    {"ip",
     {{{"direct", "allow", {"allow", "never", "", ""}},
       {"sn_cache", "on", {"on", "off", "", ""}}}}},
};

constexpr BundleSpec kBundles[] = {
    {"ip-via-sn", "ip", "direct", "never"},
    {"ip-uncached", "ip", "sn_cache", "off"},
};

bool key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

}  // namespace

bool ServiceChoice::allows_direct() const {
  auto it = options.find("direct");
  return it == options.end() || it->second != "never";
}

bool ServiceChoice::sn_cache_off() const {
  auto it = options.find("sn_cache");
  return it != options.end() && it->second == "off";
}

bool ServiceChoice::carried_to_sns() const {
  return sn_cache_off();
}

bool valid_service_syntax(std::string_view name) {
  if (name.empty() || name.size() > kMaxServiceNameLen) return false;
  for (const char c : name)
    if (!key_char(c) && c != '+') return false;
  return true;
}

Result<ServiceChoice> resolve_service(std::string_view name, const ServiceOptions& options) {
  if (!valid_service_syntax(name))
    return fail(Errc::invalid_argument,
                "service name " + quoted(name.substr(0, 80)) +
                    " is not 1..63 characters of a-z, 0-9, '_', '.', '+', '-'");
  if (options.size() > kMaxServiceOptions)
    return fail(Errc::invalid_argument,
                "at most " + std::to_string(kMaxServiceOptions) + " service options");
  for (const auto& [k, v] : options) {
    bool ok = !k.empty() && k.size() <= kMaxOptionKeyLen;
    for (const char c : k)
      ok = ok && key_char(c);
    if (!ok)
      return fail(Errc::invalid_argument,
                  "option key " + quoted(k.substr(0, 40)) +
                      " is not 1..31 characters of a-z, 0-9, '_', '.', '-'");
    bool vok = v.size() <= kMaxOptionValueLen;
    for (const char c : v)
      vok = vok && c >= 0x20 && c < 0x7f;
    if (!vok)
      return fail(Errc::invalid_argument,
                  "option " + k + ": the value must be printable ASCII, at most 127 bytes");
  }
  ServiceChoice out;
  out.requested = std::string(name);
  std::string_view service = name;
  for (const auto& b : kBundles) {
    if (b.name == name) {
      service = b.service;
      out.options.emplace(std::string(b.key), std::string(b.value));
    }
  }
  const ServiceSpec* spec = nullptr;
  for (const auto& s : kServices)
    if (s.name == service) spec = &s;
  if (spec == nullptr) {
    std::string known;
    for (const auto& s : kServices)
      known += (known.empty() ? "" : ", ") + std::string(s.name);
    for (const auto& b : kBundles)
      known += ", " + std::string(b.name);
    return fail(Errc::not_found, "unknown service " + quoted(name) + " (known: " + known + ")");
  }
  out.service = std::string(spec->name);
  for (const auto& [k, v] : options) {
    const OptionSpec* o = nullptr;
    for (const auto& os : spec->options)
      if (!os.key.empty() && os.key == k) o = &os;
    if (o == nullptr) {
      std::string known;
      for (const auto& os : spec->options)
        if (!os.key.empty()) known += (known.empty() ? "" : ", ") + std::string(os.key);
      return fail(Errc::invalid_argument, "service " + out.service + " has no option " + quoted(k) +
                                              " (known: " + known + ")");
    }
    bool accepted = false;
    std::string values;
    for (const auto& val : o->values) {
      if (val.empty()) continue;
      accepted = accepted || val == v;
      values += (values.empty() ? "" : ", ") + std::string(val);
    }
    if (!accepted)
      return fail(Errc::invalid_argument, "option " + k + " of service " + out.service + ": " +
                                              quoted(v) + " is not one of " + values);
    out.options[k] = v;
  }
  for (const auto& os : spec->options)
    if (!os.key.empty()) out.options.emplace(std::string(os.key), std::string(os.def));
  return out;
}

}  // namespace ie::ied
