// Test helper: a fake ied for libinteredge. A Unix listening socket in a temporary folder,
// served by one thread: it reads one request line per connection with SCM_RIGHTS, records
// the method, params and the passed socket's SO_COOKIE, and answers as the test chose (ok,
// an error with errno, garbage, nothing, a close, ...). socket.get_service answers from what
// socket.set_service stored for that cookie, like ied; peer.resolve answers from the table
// set_peer fills (pending for the first N asks if told so), else "none" like ied.
#pragma once

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace ie::testing {

using Json = nlohmann::json;

inline std::uint64_t cookie_of(int fd) {
  std::uint64_t c = 0;
  socklen_t len = sizeof c;
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) != 0) return 0;
  return c;
}

class FakeIed {
 public:
  enum class Mode {
    ok,            // as ied would
    error,         // {"ok":false,"error":{code, errno}} (errno omitted when error_errno is 0)
    garbage,       // a line that is not JSON
    silent,        // no reply; the connection stays open
    close,         // close without a reply
    partial,       // half a reply, then close
    huge,          // 70 KiB without a newline
    wrong_cookie,  // ok, but the cookie of another socket
    event_first,   // an event and a reply to another id before the real reply
  };

  struct Request {
    std::string method;
    Json params;
    int fds = 0;               // descriptors received with the request
    std::uint64_t cookie = 0;  // SO_COOKIE of the first
    int domain = 0;
  };

  FakeIed() {
    char tmpl[] = "/tmp/ie-shim-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/ied.sock";
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path_.c_str(), sizeof sa.sun_path - 1);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        listen(listen_fd_, 128) != 0)
      std::abort();
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeIed() {
    std::uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof one);
    thread_.join();
    for (int fd : held_)
      ::close(fd);
    ::close(listen_fd_);
    ::close(stop_fd_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  FakeIed(const FakeIed&) = delete;
  FakeIed& operator=(const FakeIed&) = delete;

  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_; }

  void set_mode(Mode m, int err = 0, std::string code = "") {
    std::lock_guard<std::mutex> lock(mu_);
    mode_ = m;
    error_errno_ = err;
    error_code_ = std::move(code);
  }
  // peer.resolve's result for address (the "address" field is added); answered with
  // "pending":true for the first pending_first asks (-1: always).
  void set_peer(const std::string& address, Json result, int pending_first = 0) {
    std::lock_guard<std::mutex> lock(mu_);
    result["address"] = address;
    peers_[address] = {std::move(result), pending_first};
  }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  std::size_t count(const std::string& method) {
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t n = 0;
    for (const auto& r : requests_)
      n += r.method == method;
    return n;
  }
  // Waits (bounded) until at least n requests of method arrived.
  bool wait_for(const std::string& method, std::size_t n,
                std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (count(method) < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

 private:
  void serve() {
    for (;;) {
      pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents != 0) return;
      const int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      handle(c);
    }
  }

  // Reads one line (bounded: 1 s, 64 KiB), collecting passed fds.
  bool read_request(int c, std::string* line, std::vector<int>* fds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (line->find('\n') == std::string::npos && line->size() < 65536) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{c, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
      iovec iov{buf, sizeof buf};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
      if (n <= 0) return false;
      for (cmsghdr* h = CMSG_FIRSTHDR(&msg); h != nullptr; h = CMSG_NXTHDR(&msg, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < k; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
          fds->push_back(fd);
        }
      }
      line->append(buf, static_cast<std::size_t>(n));
    }
    return line->find('\n') != std::string::npos;
  }

  void handle(int c) {
    std::string line;
    std::vector<int> fds;
    const bool got = read_request(c, &line, &fds);
    Request r;
    r.fds = static_cast<int>(fds.size());
    if (!fds.empty()) {
      r.cookie = cookie_of(fds[0]);
      int d = 0;
      socklen_t len = sizeof d;
      getsockopt(fds[0], SOL_SOCKET, SO_DOMAIN, &d, &len);
      r.domain = d;
    }
    for (int fd : fds)
      ::close(fd);
    Json req = got ? Json::parse(line.substr(0, line.find('\n')), nullptr, false) : Json();
    if (req.is_object()) {
      r.method = req.value("method", "");
      r.params = req.value("params", Json::object());
    }
    Mode mode;
    int err;
    std::string code;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(r);
      mode = mode_;
      err = error_errno_;
      code = error_code_;
    }
    std::string reply;
    switch (mode) {
      case Mode::ok:
      case Mode::wrong_cookie:
      case Mode::event_first:
        reply = ok_reply(r, mode == Mode::wrong_cookie);
        if (mode == Mode::event_first)
          reply = R"({"v":1,"event":"x","data":{}})"
                  "\n"
                  R"({"v":1,"id":7,"ok":true,"result":{}})"
                  "\n" +
                  reply;
        break;
      case Mode::error: {
        Json e = {{"code", code.empty() ? "invalid_argument" : code}, {"message", "no"}};
        if (err != 0) e["errno"] = err;
        reply = Json{{"v", 1}, {"id", 1}, {"ok", false}, {"error", e}}.dump() + "\n";
        break;
      }
      case Mode::garbage:
        reply = "this is not json\n";
        break;
      case Mode::silent:
        held_.push_back(c);
        return;
      case Mode::close:
        break;
      case Mode::partial:
        reply = R"({"v":1,"id":1,"ok":tr)";
        break;
      case Mode::huge:
        reply = std::string(70 * 1024, ' ');
        break;
    }
    for (std::size_t off = 0; off < reply.size();) {
      const ssize_t n = send(c, reply.data() + off, reply.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    ::close(c);
  }

  std::string ok_reply(const Request& r, bool wrong_cookie) {
    Json result = Json::object();
    std::lock_guard<std::mutex> lock(mu_);
    if (r.method == "socket.set_service") {
      const std::uint32_t mark = 0x1e100000u | next_slot_++;
      state_[r.cookie] = {r.params.value("service", ""), r.params.value("options", Json::object()),
                          mark};
      result = {{"service", state_[r.cookie].service},
                {"options", state_[r.cookie].options},
                {"mark", mark},
                {"cookie", wrong_cookie ? r.cookie + 1 : r.cookie}};
    } else if (r.method == "socket.get_service") {
      const auto it = state_.find(r.cookie);
      if (it == state_.end()) {
        result = {{"service", nullptr}};
      } else {
        result = {{"service", it->second.service},
                  {"options", it->second.options},
                  {"mark", it->second.mark},
                  {"cookie", r.cookie}};
      }
    } else if (r.method == "socket.clear_service") {
      result = {{"cleared", state_.erase(r.cookie) > 0}};
    } else if (r.method == "peer.resolve") {
      const std::string a = r.params.value("address", "");
      result = {{"address", a},     {"interedge", false},      {"sns", Json::array()},
                {"source", "none"}, {"expires_in_s", nullptr}, {"pending", false}};
      if (auto it = peers_.find(a); it != peers_.end()) {
        if (it->second.pending_first != 0) {
          result["pending"] = true;
          if (it->second.pending_first > 0) --it->second.pending_first;
        } else {
          result = it->second.result;
        }
      }
    }
    return Json{{"v", 1}, {"id", 1}, {"ok", true}, {"result", result}}.dump() + "\n";
  }

  struct State {
    std::string service;
    Json options;
    std::uint32_t mark = 0;
  };
  struct Peer {
    Json result;
    int pending_first = 0;
  };

  std::string dir_, path_;
  int listen_fd_ = -1, stop_fd_ = -1;
  std::thread thread_;
  std::vector<int> held_;  // silent mode's connections (serve thread only, then destructor)
  std::mutex mu_;          // guards everything below
  Mode mode_ = Mode::ok;
  int error_errno_ = 0;
  std::string error_code_;
  std::vector<Request> requests_;
  std::map<std::uint64_t, State> state_;
  std::map<std::string, Peer> peers_;
  std::uint32_t next_slot_ = 0;
};

}  // namespace ie::testing
