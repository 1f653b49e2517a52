// Reading TOML configuration files (ied.toml, iesn.toml) with toml++, and the checks every
// such file needs: each error is "FILE:LINE:COL: what", pointing at the offending value, key,
// or the table that lacks a required key. toml++ (Debian's libtomlplusplus-dev) throws on
// syntax errors; parse_toml catches them, nothing escapes.
#pragma once

#include <netinet/in.h>

#include <toml++/toml.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ie/conf/names.hpp"
#include "ie/crypto/key_file.hpp"
#include "ie/crypto/noise.hpp"
#include "ie/io/udp.hpp"
#include "ie/util/result.hpp"

namespace ie::conf {

const char* type_name(const toml::node& n);
// s in double quotes, control characters, quotes and backslashes escaped.
std::string quoted(std::string_view s);
bool is_absolute_path(const std::string& p);
// A string, integer, boolean or float value as text.
std::string scalar_string(const toml::node& n);

// Reads a whole file of at most kMaxConfigBytes; errors name the path ("config PATH").
Result<std::string> read_config_file(const std::string& path);
// Parses TOML text; a syntax error becomes "FILE:LINE:COL: what" (Errc::parse).
Result<toml::table> parse_toml(std::string_view text, const std::string& file_name);

// Parses TOML text and hands the table to validate(root, file_name) -> Result<Config>; an
// exception escaping validate (a toml++ bug, bad_alloc) becomes Errc::internal.
template <typename Config, typename Validate>
Result<Config> parse_config_with(std::string_view text, const std::string& file_name,
                                 Validate&& validate) {
  auto root = parse_toml(text, file_name);
  if (!root) return fail(root.error());
  try {
    return validate(*root, file_name);
  } catch (const std::exception& e) {
    return fail(Errc::internal, file_name + ": " + e.what());
  }
}

// One parse: the file name for messages and the checks shared by every table.
class Reader {
 public:
  explicit Reader(const std::string& file) : file_(file) {}

  Unexpected err(const toml::source_region& where, Errc code, const std::string& what) const {
    std::ostringstream s;
    s << file_ << ":" << where.begin.line << ":" << where.begin.column << ": " << what;
    return fail(code, s.str());
  }
  Unexpected err(const toml::node& n, const std::string& what) const {
    return err(n.source(), Errc::invalid_argument, what);
  }

  // Every key of t must be one of `allowed`.
  Result<void> only_keys(const toml::table& t, const std::string& where,
                         std::initializer_list<std::string_view> allowed) const {
    for (auto&& [k, v] : t) {
      bool found = false;
      for (const auto a : allowed)
        found = found || k.str() == a;
      if (found) continue;
      std::string list;
      for (const auto a : allowed)
        list += (list.empty() ? "" : ", ") + std::string(a);
      return err(k.source(), Errc::invalid_argument,
                 "unknown key " + quoted(k.str()) + " in " + where + " (allowed: " + list + ")");
    }
    return ok();
  }

  Result<const toml::table*> table(const toml::table& parent, std::string_view key,
                                   const std::string& name) const {
    const toml::node* n = parent.get(key);
    if (n == nullptr) return static_cast<const toml::table*>(nullptr);
    if (!n->is_table()) return err(*n, name + " must be a table (got " + type_name(*n) + ")");
    return n->as_table();
  }

  // An array whose elements are all tables ([[name]] or an array of inline tables).
  Result<std::vector<const toml::table*>> tables(const toml::table& parent, std::string_view key,
                                                 const std::string& name) const {
    std::vector<const toml::table*> out;
    const toml::node* n = parent.get(key);
    if (n == nullptr) return out;
    if (!n->is_array())
      return err(*n, name + " must be an array of tables, written [[" + name + "]] (got " +
                         type_name(*n) + ")");
    for (const auto& el : *n->as_array()) {
      if (!el.is_table())
        return err(
            el, name + " must hold tables, written [[" + name + "]] (got " + type_name(el) + ")");
      out.push_back(el.as_table());
    }
    return out;
  }

  Result<std::optional<std::string>> str(const toml::table& t, std::string_view key,
                                         const std::string& name) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::optional<std::string>();
    if (!n->is_string()) return err(*n, name + " must be a string (got " + type_name(*n) + ")");
    return std::optional<std::string>(n->as_string()->get());
  }

  Result<std::string> required_str(const toml::table& t, std::string_view key,
                                   const std::string& name) const {
    auto s = str(t, key, name);
    if (!s) return fail(s.error());
    if (!s->has_value()) return err(t, "missing " + name);
    return std::move(**s);
  }

  Result<std::optional<std::int64_t>> integer(const toml::table& t, std::string_view key,
                                              const std::string& name, std::int64_t lo,
                                              std::int64_t hi) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::optional<std::int64_t>();
    if (!n->is_integer()) return err(*n, name + " must be an integer (got " + type_name(*n) + ")");
    const std::int64_t v = n->as_integer()->get();
    if (v < lo || v > hi)
      return err(*n, name + " must be " + std::to_string(lo) + ".." + std::to_string(hi) +
                         " (got " + std::to_string(v) + ")");
    return std::optional<std::int64_t>(v);
  }

  Result<std::optional<bool>> boolean(const toml::table& t, std::string_view key,
                                      const std::string& name) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::optional<bool>();
    if (!n->is_boolean()) return err(*n, name + " must be a boolean (got " + type_name(*n) + ")");
    return std::optional<bool>(n->as_boolean()->get());
  }

  // An array of strings, each with its node (for error positions).
  Result<std::vector<std::pair<std::string, const toml::node*>>> strings(
      const toml::table& t, std::string_view key, const std::string& name) const {
    std::vector<std::pair<std::string, const toml::node*>> out;
    const toml::node* n = t.get(key);
    if (n == nullptr) return out;
    if (!n->is_array())
      return err(*n, name + " must be an array of strings (got " + type_name(*n) + ")");
    for (const auto& el : *n->as_array()) {
      if (!el.is_string()) return err(el, name + " must hold strings (got " + type_name(el) + ")");
      out.emplace_back(el.as_string()->get(), &el);
    }
    return out;
  }

  // A path value: absolute, or empty when empty_ok.
  Result<std::optional<std::string>> path(const toml::table& t, std::string_view key,
                                          const std::string& name, bool empty_ok) const {
    auto s = str(t, key, name);
    if (!s) return fail(s.error());
    if (!s->has_value()) return s;
    const std::string& p = **s;
    if (p.empty() && empty_ok) return s;
    if (!is_absolute_path(p))
      return err(*t.get(key), name + " must be an absolute path (got " + quoted(p) + ")");
    return s;
  }

  // A base64 X25519 public key under `key` (not all zero).
  Result<crypto::noise::PublicKey> public_key(const toml::table& t, const std::string& name,
                                              std::string_view key = "public_key") const {
    const std::string full = name + "." + std::string(key);
    auto text = required_str(t, key, full);
    if (!text) return fail(text.error());
    if (auto k = crypto::key_from_base64(*text)) return *k;
    // Tell an all-zero key from text that is not a key at all.
    crypto::noise::PublicKey zero{};
    if (*text == crypto::key_to_base64(zero)) return err(*t.get(key), full + " is all zero");
    return err(*t.get(key), full + ": not a base64 32-byte key (44 characters, standard base64)");
  }

  // A numeric IP:PORT / [IPv6]:PORT endpoint with a non-zero port under `key`.
  Result<std::string> address(const toml::table& t, const std::string& name,
                              std::string_view key = "address") const {
    const std::string full = name + "." + std::string(key);
    auto a = required_str(t, key, full);
    if (!a) return fail(a.error());
    socklen_t len = 0;
    auto ep = io::parse_endpoint(*a, &len);
    if (!ep)
      return err(*t.get(key),
                 full + ": expected a numeric IP:PORT or [IPv6]:PORT (got " + quoted(*a) + ")");
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&*ep);  // port at the same offset in v6
    if (sin->sin_port == 0) return err(*t.get(key), full + ": port 0");
    return std::move(*a);
  }

  Result<std::string> sn_name(const toml::table& t, std::string_view key,
                              const std::string& name) const {
    auto s = required_str(t, key, name);
    if (!s) return fail(s.error());
    if (!valid_sn_name(*s))
      return err(*t.get(key),
                 name + " " + quoted(*s) +
                     " is not DOM.SN (two labels of a-z, 0-9, '-', 1..31 long, joined by a dot)");
    return std::move(*s);
  }

 private:
  const std::string& file_;
};

}  // namespace ie::conf
