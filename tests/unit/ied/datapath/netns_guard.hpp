// Test-only: a network namespace created for one test and entered by the calling thread, left
// and deleted again by the destructor (also when the test fails), plus a helper to run a
// shell command inside it. Names include the pid so parallel runs never collide.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace ie::ied::test {

class NetnsGuard {
 public:
  explicit NetnsGuard(const std::string& tag) : name_("iedp" + std::to_string(::getpid()) + tag) {
    if (std::system(("ip netns add " + name_).c_str()) != 0) return;
    created_ = true;
    orig_ = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    const int ns = ::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
    if (orig_ >= 0 && ns >= 0 && ::setns(ns, CLONE_NEWNET) == 0) entered_ = true;
    if (ns >= 0) ::close(ns);
    if (entered_) entered_ = std::system("ip link set lo up") == 0;
  }
  ~NetnsGuard() {
    if (orig_ >= 0) {
      if (::setns(orig_, CLONE_NEWNET) != 0) std::abort();  // never run on in the wrong netns
      ::close(orig_);
    }
    if (created_) (void)std::system(("ip netns del " + name_).c_str());
  }
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

  bool ok() const { return entered_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  int orig_ = -1;
  bool created_ = false;
  bool entered_ = false;
};

// Runs cmd with sh in the calling thread's network namespace; returns stdout (and the exit
// status in *status).
inline std::string sh(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    if (status) *status = -1;
    return out;
  }
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
    out.append(buf.data(), n);
  const int st = ::pclose(p);
  if (status) *status = st;
  return out;
}

}  // namespace ie::ied::test
