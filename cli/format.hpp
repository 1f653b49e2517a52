// Human output for every iectl verb: null-safe field access (a missing, null or mistyped
// field prints as "-", unknown fields are never looked at), human units (counts, bytes,
// durations, milliseconds) and aligned text tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ie/ctl/protocol.hpp"

namespace iectl::fmt {

using Json = ie::ctl::Json;

inline constexpr const char* kNone = "-";

// The field as text: a string as is, a number as written, a bool as "yes"/"no", anything
// else (missing, null, object, array) as `none`. j need not be an object.
std::string text(const Json& j, std::string_view key, std::string_view none = kNone);
std::optional<std::uint64_t> u64(const Json& j, std::string_view key);
std::optional<double> number(const Json& j, std::string_view key);
std::optional<bool> flag(const Json& j, std::string_view key);
// The field if it is an array / object, else an empty one.
const Json& array(const Json& j, std::string_view key);
const Json& object(const Json& j, std::string_view key);
// The strings of an array field joined with ", " ("-" when empty or missing).
std::string list(const Json& j, std::string_view key);

// 999, 12.3k, 4.56M, 7.89G (exact below 100,000).
std::string count(std::optional<std::uint64_t> n);
// 512 B, 1.5 KiB, 3.2 MiB, 1.1 GiB.
std::string bytes(std::optional<std::uint64_t> n);
// 45s, 3m05s, 2h03m, 1d 01:01:01.
std::string duration_s(std::optional<std::uint64_t> seconds);
// 0.42 ms, 12.3 ms, 1.5 s for a duration in milliseconds.
std::string ms(std::optional<double> millis);
// A counter by its name: "*_bytes" as bytes, anything else as a count.
std::string counter(std::string_view name, std::optional<std::uint64_t> n);
// The first 8 characters of a base64 key and "...", for tables (--json has the full key).
std::string short_key(const std::string& key);

// Columns separated by two spaces, each as wide as its widest cell, a header row in
// capitals; numeric columns marked right() are right-aligned. No trailing spaces.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  Table& right(std::size_t column);
  void row(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  std::string str() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_;
};

// "key  value" lines with the keys padded to the widest, each line indented by `indent`.
std::string pairs(const std::vector<std::pair<std::string, std::string>>& kv,
                  std::size_t indent = 0);

}  // namespace iectl::fmt
