// Human output helpers shared by every verb (format.hpp).
#include "format.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace iectl::fmt {
namespace {

const Json* field(const Json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// v with `decimals` digits after the point.
std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// 2 decimals below 10, 1 below 100, none above: three significant digits.
int decimals_for(double v) {
  return v < 10 ? 2 : v < 100 ? 1 : 0;
}

// Below `limit`: the exact value and units[0]. Else v scaled down by `step` per unit, with
// three significant digits.
std::string scaled(double v, double step, double limit, const char* const* units,
                   std::size_t n_units) {
  if (v < limit) return fixed(v, 0) + units[0];
  std::size_t u = 0;
  while (v >= step && u + 1 < n_units) {
    v /= step;
    ++u;
  }
  return fixed(v, decimals_for(v)) + units[u];
}

}  // namespace

std::string text(const Json& j, std::string_view key, std::string_view none) {
  const Json* f = field(j, key);
  if (f == nullptr) return std::string(none);
  if (f->is_string()) return f->get<std::string>();
  if (f->is_boolean()) return f->get<bool>() ? "yes" : "no";
  if (f->is_number()) return f->dump();
  return std::string(none);
}

std::optional<std::uint64_t> u64(const Json& j, std::string_view key) {
  const Json* f = field(j, key);
  if (f == nullptr) return std::nullopt;
  if (f->is_number_unsigned()) return f->get<std::uint64_t>();
  if (f->is_number_integer() && f->get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(f->get<std::int64_t>());
  return std::nullopt;
}

std::optional<double> number(const Json& j, std::string_view key) {
  const Json* f = field(j, key);
  if (f == nullptr || !f->is_number()) return std::nullopt;
  return f->get<double>();
}

std::optional<bool> flag(const Json& j, std::string_view key) {
  const Json* f = field(j, key);
  if (f == nullptr || !f->is_boolean()) return std::nullopt;
  return f->get<bool>();
}

const Json& array(const Json& j, std::string_view key) {
  static const Json kEmpty = Json::array();
  const Json* f = field(j, key);
  return f != nullptr && f->is_array() ? *f : kEmpty;
}

const Json& object(const Json& j, std::string_view key) {
  static const Json kEmpty = Json::object();
  const Json* f = field(j, key);
  return f != nullptr && f->is_object() ? *f : kEmpty;
}

std::string list(const Json& j, std::string_view key) {
  std::string s;
  for (const Json& e : array(j, key)) {
    if (!e.is_string()) continue;
    s += (s.empty() ? "" : ", ") + e.get<std::string>();
  }
  return s.empty() ? kNone : s;
}

std::string count(std::optional<std::uint64_t> n) {
  if (!n) return kNone;
  static const char* const kUnits[] = {"", "k", "M", "G", "T", "P", "E"};
  return scaled(static_cast<double>(*n), 1000, 100000, kUnits, std::size(kUnits));
}

std::string bytes(std::optional<std::uint64_t> n) {
  if (!n) return kNone;
  static const char* const kUnits[] = {" B", " KiB", " MiB", " GiB", " TiB", " PiB", " EiB"};
  return scaled(static_cast<double>(*n), 1024, 1024, kUnits, std::size(kUnits));
}

std::string duration_s(std::optional<std::uint64_t> seconds) {
  if (!seconds) return kNone;
  const std::uint64_t s = *seconds;
  char buf[64];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 "s", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRIu64 "d %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 86400,
                  s % 86400 / 3600, s % 3600 / 60, s % 60);
  }
  return buf;
}

std::string ms(std::optional<double> millis) {
  if (!millis || *millis < 0) return kNone;
  const double v = *millis;
  if (v >= 1000) return fixed(v / 1000, 1) + " s";
  return fixed(v, decimals_for(v)) + " ms";
}

std::string counter(std::string_view name, std::optional<std::uint64_t> n) {
  const std::string_view suffix = "_bytes";
  const bool is_bytes =
      name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  return is_bytes ? bytes(n) : count(n);
}

std::string short_key(const std::string& key) {
  if (key.size() <= 11) return key;
  return key.substr(0, 8) + "...";
}

Table& Table::right(std::size_t column) {
  if (right_.size() <= column) right_.resize(column + 1, false);
  right_[column] = true;
  return *this;
}

void Table::row(std::vector<std::string> cells) {
  cells.resize(header_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::str() const {
  std::vector<std::size_t> width(header_.size(), 0);
  for (std::size_t c = 0; c < header_.size(); ++c) {
    width[c] = header_[c].size();
    for (const auto& r : rows_)
      width[c] = std::max(width[c], r[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::string& cell = cells[c];
      const std::size_t pad = width[c] - cell.size();
      const bool last = c + 1 == cells.size();
      if (c > 0) s += "  ";
      if (c < right_.size() && right_[c]) {
        s.append(pad, ' ');
        s += cell;
      } else {
        s += cell;
        if (!last) s.append(pad, ' ');
      }
    }
    while (!s.empty() && s.back() == ' ')
      s.pop_back();
    return s + "\n";
  };
  std::vector<std::string> head;
  for (const auto& h : header_) {
    std::string u = h;
    std::transform(u.begin(), u.end(), u.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
    head.push_back(std::move(u));
  }
  std::string out = line(head);
  for (const auto& r : rows_)
    out += line(r);
  return out;
}

std::string pairs(const std::vector<std::pair<std::string, std::string>>& kv, std::size_t indent) {
  std::size_t w = 0;
  for (const auto& [k, v] : kv)
    w = std::max(w, k.size());
  std::string s;
  for (const auto& [k, v] : kv) {
    s.append(indent, ' ');
    s += k;
    s.append(w - k.size() + 2, ' ');
    s += v;
    s += "\n";
  }
  return s;
}

}  // namespace iectl::fmt
