// ctl::Server's access control with real credentials (needs root: it forks children that
// drop to uid nobody). Topology: this process runs the server on a reactor it drives itself
// (single-threaded, so fork is safe); each child sets its groups, gid and uid, connects to
// the 0666 socket in a 0755 temporary directory, sends `get` (read) and `set` (admin), and
// pipes the two reply lines back. Children use raw syscalls only.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "ie/ctl/credentials.hpp"
#include "ie/ctl/server.hpp"

namespace ie::ctl {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
constexpr gid_t kAdminGid = 54321;  // a gid nobody is not in (the test gives it explicitly)

struct Child {
  std::vector<gid_t> groups;  // supplementary
  gid_t gid = kNogroup;
};

class ServerAccess : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "this test needs root (it runs clients as uid nobody)";
    char tmpl[] = "/tmp/ie-ctl-access-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);  // nobody must reach the socket
    path_ = dir_ + "/ied.sock";
    auto r = io::Reactor::create();
    ASSERT_TRUE(r.ok());
    reactor_ = std::move(*r);
    Dispatcher d;
    d.add("get", [this](const Json&, const Caller& c) -> Result<Json> {
      ++gets_;
      return Json{{"uid", c.uid}};
    });
    d.add(
        "set",
        [this](const Json&, const Caller& c) -> Result<Json> {
          ++sets_;
          return Json{{"uid", c.uid}, {"admin", c.admin}};
        },
        Access::admin);
    auto s = Server::start(*reactor_, path_, std::move(d), ServerOptions{0666, kAdminGid});
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    server_ = std::move(*s);
  }
  void TearDown() override {
    server_.reset();
    reactor_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Runs one child as `who`; returns its two reply lines (empty on any failure, which is
  // also reported).
  std::vector<Response> run_child(const Child& who) {
    const std::string req = encode(Request{1, "get", {}}) + encode(Request{2, "set", {}});
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    int pfd[2];
    if (::pipe2(pfd, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe";
      return {};
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      ADD_FAILURE() << "fork";
      return {};
    }
    if (pid == 0) {  // the child: async-signal-safe calls only
      ::close(pfd[0]);
      if (::setgroups(who.groups.size(), who.groups.data()) != 0) ::_exit(10);
      if (::setgid(who.gid) != 0) ::_exit(11);
      if (::setuid(kNobody) != 0) ::_exit(12);
      if (::getuid() != kNobody || ::geteuid() != kNobody) ::_exit(13);
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      if (fd < 0) ::_exit(14);
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) ::_exit(15);
      if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) ::_exit(16);
      char buf[4096];
      int newlines = 0;
      for (int i = 0; i < 100 && newlines < 2; ++i) {  // bounded: two short lines
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) ::_exit(17);
        for (ssize_t k = 0; k < n; ++k)
          newlines += buf[k] == '\n';
        if (::write(pfd[1], buf, static_cast<std::size_t>(n)) != n) ::_exit(18);
      }
      ::_exit(newlines == 2 ? 0 : 19);
    }
    ::close(pfd[1]);
    ::fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    std::string got;
    bool eof = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!eof && std::chrono::steady_clock::now() < deadline) {
      (void)reactor_->run_once(std::chrono::milliseconds(5));
      char buf[4096];
      const ssize_t n = ::read(pfd[0], buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
      if (n == 0) eof = true;
    }
    ::close(pfd[0]);
    if (!eof) ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(eof) << "child did not finish in 10 s";
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "child failed, status " << status << " (10-13: dropping privileges)";
    std::vector<Response> out;
    std::size_t start = 0;
    for (auto nl = got.find('\n'); nl != std::string::npos; nl = got.find('\n', start)) {
      auto m = decode(std::string_view(got).substr(start, nl - start));
      start = nl + 1;
      if (!m || !std::holds_alternative<Response>(*m)) {
        ADD_FAILURE() << "bad reply: " << got;
        return {};
      }
      out.push_back(std::get<Response>(std::move(*m)));
    }
    return out;
  }

  std::string dir_, path_;
  std::unique_ptr<io::Reactor> reactor_;
  std::unique_ptr<Server> server_;
  int gets_ = 0, sets_ = 0;
};

TEST_F(ServerAccess, SocketIsOpenToAll) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
}

TEST_F(ServerAccess, UnprivilegedCallerMayReadButNotAdminister) {
  auto r = run_child(Child{{}, kNogroup});
  ASSERT_EQ(r.size(), 2u);
  ASSERT_TRUE(r[0].ok) << r[0].error.context;
  EXPECT_EQ(r[0].result["uid"], kNobody);
  ASSERT_FALSE(r[1].ok);
  EXPECT_EQ(r[1].id, 2u);
  EXPECT_EQ(r[1].error.code, Errc::permission);
  EXPECT_EQ(r[1].error.context, "\"set\" is an admin method; it needs root or a member of " +
                                    group_label(kAdminGid) + " (caller uid 65534)");
  EXPECT_EQ(gets_, 1);
  EXPECT_EQ(sets_, 0);  // refused before the handler
}

TEST_F(ServerAccess, SupplementaryAdminGroupMayAdminister) {
  auto r = run_child(Child{{kAdminGid}, kNogroup});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0].ok);
  ASSERT_TRUE(r[1].ok) << r[1].error.context;
  EXPECT_EQ(r[1].result["uid"], kNobody);
  EXPECT_EQ(r[1].result["admin"], true);
  EXPECT_EQ(sets_, 1);
}

TEST_F(ServerAccess, PrimaryAdminGroupMayAdminister) {
  auto r = run_child(Child{{}, kAdminGid});
  ASSERT_EQ(r.size(), 2u);
  ASSERT_TRUE(r[1].ok) << r[1].error.context;
  EXPECT_EQ(r[1].result["admin"], true);
  EXPECT_EQ(sets_, 1);
}

TEST_F(ServerAccess, OtherGroupsDoNotCount) {
  auto r = run_child(Child{{kAdminGid + 1, kAdminGid - 1}, kAdminGid + 2});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0].ok);
  ASSERT_FALSE(r[1].ok);
  EXPECT_EQ(r[1].error.code, Errc::permission);
  EXPECT_EQ(sets_, 0);
}

// The per-uid and non-admin connection caps need callers of other uids: each connection is
// made by a child that drops to that uid, connects and passes the socket back (SCM_RIGHTS);
// the credentials are the child's, taken at connect().
class ServerCaps : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "this test needs root (it connects as other uids)";
    char tmpl[] = "/tmp/ie-ctl-caps-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
    path_ = dir_ + "/ied.sock";
    auto r = io::Reactor::create();
    ASSERT_TRUE(r.ok());
    reactor_ = std::move(*r);
    Dispatcher d;
    d.add("get", [](const Json&, const Caller& c) -> Result<Json> { return Json{{"uid", c.uid}}; });
    ServerLimits l;
    l.max_connections = 8;
    l.max_non_admin_connections = 5;
    l.max_connections_per_uid = 3;
    auto s = Server::start(*reactor_, path_, std::move(d), ServerOptions{0666, kAdminGid, l});
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    server_ = std::move(*s);
  }
  void TearDown() override {
    for (int fd : conns_)
      ::close(fd);
    server_.reset();
    reactor_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // A connection made by uid (with gid and supplementary groups); -1 on failure.
  int connect_as(uid_t uid, gid_t gid = kNogroup, std::vector<gid_t> groups = {}) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
    const pid_t pid = ::fork();
    if (pid < 0) return -1;
    if (pid == 0) {  // the child: async-signal-safe calls only
      ::close(sv[0]);
      if (::setgroups(groups.size(), groups.data()) != 0) ::_exit(10);
      if (::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(11);
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      if (fd < 0) ::_exit(12);
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) ::_exit(13);
      char byte = 'x';
      iovec iov{&byte, 1};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* h = CMSG_FIRSTHDR(&msg);
      h->cmsg_level = SOL_SOCKET;
      h->cmsg_type = SCM_RIGHTS;
      h->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(h), &fd, sizeof fd);
      ::_exit(::sendmsg(sv[1], &msg, 0) == 1 ? 0 : 14);
    }
    ::close(sv[1]);
    char byte;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    int fd = -1;
    if (::recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC) == 1 && CMSG_FIRSTHDR(&msg) != nullptr)
      std::memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof fd);
    ::close(sv[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    if (fd >= 0) conns_.push_back(fd);
    return fd;
  }

  // Sends `get` and returns the reply, driving the server's loop meanwhile (nullopt: the
  // connection closed or nothing came in 5 s).
  std::optional<Response> ask(int fd) {
    const std::string q = encode(Request{1, "get", {}});
    (void)!::send(fd, q.data(), q.size(), MSG_NOSIGNAL);
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      (void)reactor_->run_once(std::chrono::milliseconds(5));
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN)) break;
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    }
    if (got.find('\n') == std::string::npos) return std::nullopt;
    auto m = decode(got.substr(0, got.find('\n')));
    if (!m || !std::holds_alternative<Response>(*m)) return std::nullopt;
    return std::get<Response>(*m);
  }
  bool accepted(int fd) {
    auto r = ask(fd);
    return r && r->ok;
  }
  // True if the connection got one `busy` error naming `why`.
  bool refused(int fd, const std::string& why) {
    auto r = ask(fd);
    if (!r || r->ok || r->error.code != Errc::busy) return false;
    EXPECT_NE(r->error.context.find(why), std::string::npos) << r->error.context;
    return true;
  }

  std::string dir_, path_;
  std::unique_ptr<io::Reactor> reactor_;
  std::unique_ptr<Server> server_;
  std::vector<int> conns_;
};

TEST_F(ServerCaps, PerUidCapThenNonAdminReserveThenTotal) {
  // Limits: 8 in all, 5 for non-admin callers, 3 per uid (not root).
  constexpr uid_t kA = 60001, kB = 60002, kC = 60003, kAdminUser = 60004;
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(accepted(connect_as(kA))) << i;
  EXPECT_TRUE(refused(connect_as(kA), "from uid 60001 (3)"));
  EXPECT_TRUE(accepted(connect_as(kB)));  // another uid is not held back by A
  EXPECT_TRUE(accepted(connect_as(kB)));
  // 5 non-admin connections: a third uid finds no non-admin slot.
  EXPECT_TRUE(refused(connect_as(kC), "not admin (5)"));
  // Admin callers still get in: a member of the admin group (its own per-uid cap applies)...
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(accepted(connect_as(kAdminUser, kNogroup, {kAdminGid}))) << i;
  // ... and root, until the total of 8 is reached.
  EXPECT_TRUE(refused(connect_as(0, 0), "connections (8)"));
  ::close(conns_[4]);  // one of B's
  conns_.erase(conns_.begin() + 4);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (server_->connection_count() != 7 && std::chrono::steady_clock::now() < deadline)
    (void)reactor_->run_once(std::chrono::milliseconds(5));
  EXPECT_TRUE(accepted(connect_as(0, 0)));
  EXPECT_EQ(server_->connection_count(), 8u);
  // A non-admin slot is free again (B closed one), but the total is reached.
  EXPECT_TRUE(refused(connect_as(kC), "connections (8)"));
}

}  // namespace
}  // namespace ie::ctl
