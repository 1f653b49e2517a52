// Result<T>: a std::expected-shaped return type for OS-facing code (g++ 12 has no
// std::expected). Holds either a value or an ie::Error (code + errno + context).
// The datapath does not use this; it returns verdicts and counts drops.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include "ie/util/error.hpp"

namespace ie {

// Tag used to build an error Result: `return ie::fail(Errc::io, "bind", errno);`
struct Unexpected {
  Error error;
};

inline Unexpected fail(Errc code, std::string context = {}, int sys_errno = 0) {
  return Unexpected{Error{code, sys_errno, std::move(context)}};
}
inline Unexpected fail(Error e) { return Unexpected{std::move(e)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Unexpected u) : v_(std::in_place_index<1>, std::move(u.error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

  template <typename U>
  T value_or(U&& fallback) const& {
    return ok() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Unexpected u) : err_(std::move(u.error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return err_;
  }

 private:
  Error err_{};
  bool ok_ = true;
};

inline Result<void> ok() { return {}; }

}  // namespace ie

// Propagate an error from an expression returning Result<...>.
#define IE_TRY(expr)                                         \
  do {                                                       \
    auto ie_try_r_ = (expr);                                 \
    if (!ie_try_r_.ok()) return ::ie::fail(ie_try_r_.error()); \
  } while (0)
