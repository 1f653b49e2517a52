// ctl::Server over its real Unix socket, without root: file descriptors passed with a request
// (SCM_RIGHTS: which request gets them, that the handler sees the very socket sent, that every
// one is closed after the handler, on disconnect and at server destruction, the limit of
// kMaxFdsPerRequest), Client::request with pass_fd, and the limits with short values (idle,
// line and backlog timeouts, the backlog pause, the connection cap). The server runs on a
// reactor thread of its own; the per-uid and non-admin caps need other uids: root test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ie/ctl/client.hpp"
#include "ie/ctl/server.hpp"
#include "ie/io/reactor.hpp"

namespace ie::ctl {
namespace {

using namespace std::chrono_literals;

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
    ++n;
  return n - 1;  // the iterator's own descriptor
}

bool is_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

std::uint64_t cookie_of(int fd) {
  std::uint64_t c = 0;
  socklen_t len = sizeof c;
  return ::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) == 0 ? c : 0;
}

// One sendmsg with the data and the descriptors (none: a plain send).
void send_with_fds(int s, std::string_view data, const std::vector<int>& fds = {}) {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* h = CMSG_FIRSTHDR(&msg);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(h), fds.data(), sizeof(int) * fds.size());
  }
  ASSERT_EQ(::sendmsg(s, &msg, MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
}

// Reads from a raw client socket with a deadline.
struct Reader {
  explicit Reader(int s) : fd(s) {}
  int fd;
  std::string buf;
  bool eof = false;

  // One line, or nullopt at EOF or timeout (eof says which).
  std::optional<std::string> line(std::chrono::milliseconds timeout = 3s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto nl = buf.find('\n'); nl != std::string::npos) {
        std::string l = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        return l;
      }
      if (!fill(end)) return std::nullopt;
    }
  }
  Response response(std::chrono::milliseconds timeout = 3s) {
    auto l = line(timeout);
    if (!l) {
      ADD_FAILURE() << (eof ? "connection closed" : "no reply in time");
      return {};
    }
    auto m = decode(*l);
    if (!m || !std::holds_alternative<Response>(*m)) {
      ADD_FAILURE() << "not a response: " << *l;
      return {};
    }
    return std::get<Response>(*m);
  }
  // True when the server closes the connection within the timeout (data before is skipped).
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!eof)
      if (!fill(end) && !eof) return false;
    return true;
  }
  bool fill(std::chrono::steady_clock::time_point end) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (eof || left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char b[65536];
    const ssize_t n = ::recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      eof = true;
      return false;
    }
    if (n > 0) buf.append(b, static_cast<std::size_t>(n));
    return true;
  }
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ie-ctl-server-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/ied.sock";
    fds_before_ = open_fds();
  }
  void TearDown() override {
    stop();
    for (int fd : clients_)
      ::close(fd);
    std::filesystem::remove_all(dir_);
  }

  // The methods: "fds" describes the descriptors it got, "keep" dup()s the first one,
  // "sleep" blocks the loop for params.ms, "echo" answers params.n bytes of padding.
  Dispatcher methods() {
    Dispatcher d;
    d.add("fds", [](const Json&, const Caller& c) -> Result<Json> {
      Json numbers = Json::array(), inodes = Json::array(), cookies = Json::array();
      bool cloexec = true;
      for (int fd : c.fds) {
        struct stat st {};
        if (::fstat(fd, &st) != 0) return fail(Errc::io, "fstat", errno);
        numbers.push_back(fd);
        inodes.push_back(st.st_ino);
        cookies.push_back(cookie_of(fd));
        cloexec = cloexec && (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
      }
      return Json{{"count", c.fds.size()},
                  {"numbers", numbers},
                  {"inodes", inodes},
                  {"cookies", cookies},
                  {"cloexec", cloexec}};
    });
    d.add("keep", [this](const Json&, const Caller& c) -> Result<Json> {
      if (c.fds.empty()) return fail(Errc::invalid_argument, "no descriptor");
      const int kept = ::fcntl(c.fds[0], F_DUPFD_CLOEXEC, 0);
      kept_.store(kept);
      return Json{{"kept", kept}, {"passed", c.fds[0]}};
    });
    d.add("sleep", [](const Json& p, const Caller&) -> Result<Json> {
      std::this_thread::sleep_for(std::chrono::milliseconds(p.value("ms", 0)));
      return Json::object();
    });
    d.add("echo", [this](const Json& p, const Caller&) -> Result<Json> {
      ++echoes_;
      return Json{{"pad", std::string(p.value("n", std::size_t{0}), 'x')}};
    });
    return d;
  }

  void start(ServerLimits limits = {}) {
    auto r = io::Reactor::create();
    ASSERT_TRUE(r.ok());
    reactor_ = std::move(*r);
    std::promise<Result<std::unique_ptr<Server>>> started;
    auto fut = started.get_future();
    ServerOptions o{0600, std::nullopt, limits};
    thread_ = std::thread([this, &started, o]() {
      reactor_->post([&]() { started.set_value(Server::start(*reactor_, path_, methods(), o)); });
      (void)reactor_->run();
      server_.reset();  // on the loop's thread
    });
    ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
    auto s = fut.get();
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    server_ = std::move(*s);
  }
  void stop() {
    if (thread_.joinable()) {
      reactor_->stop();
      thread_.join();
    }
    reactor_.reset();
  }
  // Runs fn on the loop's thread and returns its result.
  template <class F>
  auto on_loop(F fn) {
    std::promise<decltype(fn())> p;
    auto f = p.get_future();
    reactor_->post([&] { p.set_value(fn()); });
    EXPECT_EQ(f.wait_for(5s), std::future_status::ready);
    return f.get();
  }
  std::size_t connections() {
    return on_loop([this] { return server_->connection_count(); });
  }
  std::size_t pending_fds() {
    return on_loop([this] { return server_->pending_fd_count(); });
  }
  // Polls until the server has n connections (true) or 3 s pass.
  bool wait_connections(std::size_t n, std::chrono::milliseconds timeout = 3s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (connections() != n) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  int connect_raw() {
    const int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(s, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path_.c_str(), path_.size() + 1);
    EXPECT_EQ(::connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
    clients_.push_back(s);
    return s;
  }
  void close_client(int s) {
    ::close(s);
    std::erase(clients_, s);
  }
  // A socket pair whose first end is passed; returns both ends (closed at TearDown).
  std::pair<int, int> pair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    clients_.push_back(sv[0]);
    clients_.push_back(sv[1]);
    return {sv[0], sv[1]};
  }

  std::string dir_, path_;
  std::size_t fds_before_ = 0;
  std::unique_ptr<io::Reactor> reactor_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::vector<int> clients_;
  std::atomic<int> kept_{-1};
  std::atomic<int> echoes_{0};
};

std::string line(std::uint64_t id, const std::string& method, const Json& params = {}) {
  return encode(Request{id, method, params});
}

// ---- file descriptors ----------------------------------------------------------------

TEST_F(ServerTest, ClientPassesOneDescriptorAndTheHandlerSeesThatSocket) {
  start();
  auto [mine, other] = pair();
  struct stat st {};
  ASSERT_EQ(::fstat(mine, &st), 0);
  auto c = Client::connect(path_);
  ASSERT_TRUE(c.ok());
  auto r = c->call("fds", {}, 3s, mine);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ((*r)["count"], 1);
  EXPECT_EQ((*r)["inodes"][0], st.st_ino);
  EXPECT_EQ((*r)["cookies"][0], cookie_of(mine));
  EXPECT_NE((*r)["cookies"][0], 0u);
  EXPECT_EQ((*r)["cloexec"], true);
  // Closed by the server once the handler returned (before the reply was sent).
  const int passed = (*r)["numbers"][0];
  EXPECT_FALSE(is_open(passed));
  EXPECT_EQ(pending_fds(), 0u);

  // No descriptor: an empty span.
  r = c->call("fds");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["count"], 0);

  // A descriptor that is not open: refused by the client, nothing sent, connection usable.
  auto bad = c->request("fds", {}, 3s, 987654);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::invalid_argument);
  EXPECT_TRUE(c->call("fds").ok());
  (void)other;
}

TEST_F(ServerTest, HandlerKeepsADupAndEverythingElseIsClosed) {
  start();
  auto [mine, other] = pair();
  auto c = Client::connect(path_);
  ASSERT_TRUE(c.ok());
  auto r = c->call("keep", {}, 3s, mine);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const int kept = (*r)["kept"], passed = (*r)["passed"];
  EXPECT_FALSE(is_open(passed));
  ASSERT_TRUE(is_open(kept));
  EXPECT_EQ(cookie_of(kept), cookie_of(mine));
  ::close(kept);

  // Not taken by anyone: an unknown method, an admin refusal (root here: hello instead), a
  // parse error. Each descriptor is closed after its reply.
  for (const std::string& m : {std::string("nope"), std::string("hello")}) {
    auto resp = c->request(m, {}, 3s, mine);
    ASSERT_TRUE(resp.ok());
  }
  const int s = connect_raw();
  Reader rd{s};
  send_with_fds(s, "garbage\n", {mine});
  EXPECT_EQ(rd.response().error.code, Errc::parse);
  EXPECT_EQ(pending_fds(), 0u);
  close_client(s);
  c = Client::connect(path_);  // drops the first client
  ASSERT_TRUE(wait_connections(1));
  EXPECT_EQ(open_fds(), fds_before_ + clients_.size() + 5)  // reactor: epoll, eventfd;
      << "server: listener, 1 connection; client: 1";       // + the Client above
  (void)other;
}

// The rule: the descriptors a read brings belong to the request whose line holds that
// read's last byte.
TEST_F(ServerTest, TwoRequestsInOneSendmsgTheDescriptorGoesToTheLast) {
  start();
  auto [mine, other] = pair();
  const int s = connect_raw();
  Reader rd{s};
  send_with_fds(s, line(1, "fds") + line(2, "fds"), {mine});
  auto a = rd.response(), b = rd.response();
  EXPECT_EQ(a.id, 1u);
  EXPECT_EQ(a.result["count"], 0);
  EXPECT_EQ(b.id, 2u);
  EXPECT_EQ(b.result["count"], 1);
  EXPECT_EQ(b.result["cookies"][0], cookie_of(mine));
  (void)other;
}

TEST_F(ServerTest, EarlierRequestInTheSameReadDoesNotTakeALaterRequestsDescriptor) {
  start();
  auto [p1, o1] = pair();
  auto [p2, o2] = pair();
  const int s = connect_raw();
  Reader rd{s};
  // While the loop sleeps, four writes queue up: A (none), B (p1), C (none), D (p2). The
  // kernel may deliver A and B in one read (and C with D): A and C must get nothing.
  send_with_fds(s, line(1, "sleep", {{"ms", 200}}));
  std::this_thread::sleep_for(50ms);
  send_with_fds(s, line(2, "fds"));
  send_with_fds(s, line(3, "fds"), {p1});
  send_with_fds(s, line(4, "fds"));
  send_with_fds(s, line(5, "fds"), {p2});
  EXPECT_EQ(rd.response().id, 1u);
  const std::uint64_t want[] = {0, 0, 0, cookie_of(p1), 0, cookie_of(p2)};
  for (std::uint64_t id = 2; id <= 5; ++id) {
    auto r = rd.response();
    ASSERT_EQ(r.id, id);
    if (want[id] == 0) {
      EXPECT_EQ(r.result["count"], 0) << id;
    } else {
      ASSERT_EQ(r.result["count"], 1) << id;
      EXPECT_EQ(r.result["cookies"][0], want[id]) << id;
    }
  }
  (void)o1, (void)o2;
}

TEST_F(ServerTest, DescriptorSentWithTheStartOfALineGoesToThatLine) {
  start();
  auto [mine, other] = pair();
  const int s = connect_raw();
  Reader rd{s};
  const std::string l = line(1, "fds") + line(2, "fds");
  send_with_fds(s, l.substr(0, l.size() / 2 + 5), {mine});  // line 1, start of line 2
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rd.response().result["count"], 0);
  EXPECT_EQ(pending_fds(), 1u);  // waiting for line 2
  send_with_fds(s, l.substr(l.size() / 2 + 5));
  auto r = rd.response();
  EXPECT_EQ(r.id, 2u);
  EXPECT_EQ(r.result["count"], 1);
  EXPECT_EQ(pending_fds(), 0u);
  (void)other;
}

TEST_F(ServerTest, FourDescriptorsAreAcceptedFiveCloseTheConnection) {
  start();
  auto [mine, other] = pair();
  {
    const int s = connect_raw();
    Reader rd{s};
    send_with_fds(s, line(1, "fds"), {mine, mine, other, other});
    auto r = rd.response();
    EXPECT_EQ(r.result["count"], 4);
  }
  {
    const int s = connect_raw();
    Reader rd{s};
    send_with_fds(s, line(2, "fds"), {mine, mine, other, other, mine});
    auto r = rd.response();
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.id, 0u);
    EXPECT_EQ(r.error.code, Errc::invalid_argument);
    EXPECT_NE(r.error.context.find("4"), std::string::npos) << r.error.context;
    EXPECT_TRUE(rd.closed_within(2s));
  }
  {  // 3 + 2 pending for one unfinished line
    const int s = connect_raw();
    Reader rd{s};
    send_with_fds(s, R"({"v":1,)", {mine, mine, other});
    std::this_thread::sleep_for(30ms);
    send_with_fds(s, R"("id":3,)", {other, mine});
    auto r = rd.response();
    EXPECT_EQ(r.error.code, Errc::invalid_argument);
    EXPECT_NE(r.error.context.find("more than 4"), std::string::npos) << r.error.context;
    EXPECT_TRUE(rd.closed_within(2s));
  }
  ASSERT_TRUE(wait_connections(1));  // the first raw client is still connected
  EXPECT_EQ(pending_fds(), 0u);
  EXPECT_EQ(open_fds(), fds_before_ + clients_.size() + 4);  // reactor 2, listener, 1 conn
}

TEST_F(ServerTest, DisconnectAndServerDestructionCloseWaitingDescriptors) {
  start();
  auto [mine, other] = pair();
  const int s = connect_raw();
  send_with_fds(s, R"({"v":1,"id":1,)", {mine, other});
  const int s2 = connect_raw();
  send_with_fds(s2, R"({"v":1,"id":1,)", {mine, mine, mine});
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (pending_fds() != 5 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  ASSERT_EQ(pending_fds(), 5u);
  close_client(s);
  ASSERT_TRUE(wait_connections(1));
  EXPECT_EQ(pending_fds(), 3u);
  stop();  // destroys the server with three descriptors waiting, then the reactor
  EXPECT_EQ(open_fds(), fds_before_ + clients_.size());
}

// ---- limits ------------------------------------------------------------------------------

TEST_F(ServerTest, IdleConnectionIsClosedActiveOneIsNot) {
  ServerLimits l;
  l.idle_timeout = 300ms;
  start(l);
  const int idle = connect_raw();
  const int busy = connect_raw();
  Reader ri{idle}, rb{busy};
  send_with_fds(idle, line(1, "fds"));
  EXPECT_TRUE(ri.response().ok);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 8; ++i) {  // 800 ms of a request every 100 ms
    send_with_fds(busy, line(static_cast<std::uint64_t>(10 + i), "fds"));
    EXPECT_TRUE(rb.response().ok) << i;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(ri.closed_within(1s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  EXPECT_FALSE(rb.eof);
  EXPECT_TRUE(wait_connections(1));
  EXPECT_TRUE(rb.closed_within(2s));  // and the busy one once it falls silent
}

TEST_F(ServerTest, LineNotCompletedInTimeGetsTimeoutAndClose) {
  ServerLimits l;
  l.line_timeout = 300ms;
  start(l);
  const int slow = connect_raw();
  Reader rs{slow};
  const auto t0 = std::chrono::steady_clock::now();
  const std::string req = line(1, "fds");
  for (char ch : req.substr(0, req.size() - 1)) {        // trickling keeps the idle timer away
    if (::send(slow, &ch, 1, MSG_NOSIGNAL) != 1) break;  // closed by the server
    std::this_thread::sleep_for(15ms);
  }
  auto r = rs.response();
  EXPECT_EQ(r.error.code, Errc::timeout);
  EXPECT_EQ(r.id, 0u);
  EXPECT_TRUE(rs.closed_within(1s));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 280ms);
  EXPECT_LT(took, 2s);

  // Lines each completed within the limit, one after the other, are fine.
  const int ok = connect_raw();
  Reader ro{ok};
  for (std::uint64_t id = 1; id <= 4; ++id) {
    const std::string q = line(id, "fds");
    send_with_fds(ok, q.substr(0, 10));
    std::this_thread::sleep_for(150ms);
    send_with_fds(ok, q.substr(10));
    EXPECT_EQ(ro.response().id, id);
  }
}

TEST_F(ServerTest, BacklogOverTheLimitPausesRequestsThenClosesTheConnection) {
  ServerLimits l;
  l.max_backlog_admin = 64 << 10;  // we are root or not: set both
  l.max_backlog = 64 << 10;
  l.backlog_timeout = 500ms;
  start(l);
  // A reader that comes back in time gets every reply, in order.
  {
    const int s = connect_raw();
    std::string all;
    for (std::uint64_t id = 1; id <= 3000; ++id)
      all += line(id, "echo", {{"n", 200}});
    std::thread writer([&] {
      std::size_t off = 0;
      while (off < all.size()) {
        const ssize_t n = ::send(s, all.data() + off, all.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
      }
    });
    std::this_thread::sleep_for(250ms);
    // Paused: far fewer than 3000 run (the limit plus what the socket buffers hold).
    EXPECT_LT(echoes_.load(), 2500);
    Reader rd{s};
    for (std::uint64_t id = 1; id <= 3000; ++id) {
      auto r = rd.response();
      ASSERT_EQ(r.id, id);
      ASSERT_TRUE(r.ok);
    }
    writer.join();
    EXPECT_EQ(echoes_.load(), 3000);
  }
  // One that never reads is closed once it has been over the limit for 500 ms.
  const int s = connect_raw();
  std::string all;
  for (std::uint64_t id = 1; id <= 3000; ++id)
    all += line(id, "echo", {{"n", 200}});
  ::fcntl(s, F_SETFL, O_NONBLOCK);
  (void)!::send(s, all.data(), all.size(), MSG_NOSIGNAL);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_connections(1, 3s));  // the first one stays
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 400ms);
}

TEST_F(ServerTest, ConnectionsOverTheCapGetOneBusyLine) {
  ServerLimits l;
  l.max_connections = 3;
  start(l);
  std::vector<int> held;
  for (int i = 0; i < 3; ++i)
    held.push_back(connect_raw());
  ASSERT_TRUE(wait_connections(3));
  const int extra = connect_raw();
  Reader rx{extra};
  auto r = rx.response();
  EXPECT_EQ(r.error.code, Errc::busy);
  EXPECT_EQ(r.error.sys_errno, EBUSY);
  EXPECT_NE(r.error.context.find("too many control connections (3)"), std::string::npos)
      << r.error.context;
  EXPECT_TRUE(rx.closed_within(1s));
  close_client(held[0]);
  ASSERT_TRUE(wait_connections(2));
  auto c = Client::connect(path_);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->call("fds").ok());
}

TEST_F(ServerTest, ClientReportsAClosedConnection) {
  ServerLimits l;
  l.idle_timeout = 100ms;
  start(l);
  auto c = Client::connect(path_);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->call("fds").ok());
  ASSERT_TRUE(wait_connections(0));
  auto r = c->call("fds");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::closed) << r.error().to_string();
}

}  // namespace
}  // namespace ie::ctl
