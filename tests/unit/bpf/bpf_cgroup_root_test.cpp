// ie_sock_create on real cgroups (root; labels bpf, root): a temporary cgroup v2 directory
// gets the program and a policy; a child process moved into it creates TCP/UDP IPv4/IPv6
// sockets and reports their SO_MARK over a pipe. Checks the mark, inheritance by a nested
// cgroup, the deeper policy winning, no mark outside or after the Steering is destroyed, and
// that SIGKILL of the process holding the links detaches the program. Every cgroup is
// removed on every path (TempCgroup).
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ie/bpf/steer.hpp"
#include "temp_cgroup.hpp"

namespace ie::bpf {
namespace {

using cgtest::kProbeSockets;
using cgtest::socket_marks_in_cgroup;
using cgtest::TempCgroup;

// The marks a probe child sees when every TCP/UDP socket should carry `mark`.
std::vector<std::uint32_t> expected(std::uint32_t mark) {
  std::vector<std::uint32_t> v(kProbeSockets.size(), mark);
  v.back() = 0;  // the raw ICMP socket is never marked
  return v;
}

// Programs attached to `dir` for BPF_CGROUP_INET_SOCK_CREATE, or -1 on error.
int attached_count(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  std::uint32_t ids[8]{}, cnt = 8, flags = 0;
  const int rc = bpf_prog_query(fd, BPF_CGROUP_INET_SOCK_CREATE, 0, &flags, ids, &cnt);
  ::close(fd);
  return rc == 0 ? static_cast<int>(cnt) : -1;
}

std::uint32_t own_socket_mark(int family, int type) {
  const int s = ::socket(family, type | SOCK_CLOEXEC, 0);
  if (s < 0) return 0xffffffffu;
  std::uint32_t m = 0xffffffffu;
  socklen_t len = sizeof m;
  ::getsockopt(s, SOL_SOCKET, SO_MARK, &m, &len);
  ::close(s);
  return m;
}

class CgroupSteering : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "BPF cgroup tests need root; CI runs them as root";
    auto root = Steering::cgroup2_mount();
    ASSERT_TRUE(root.ok()) << root.error().to_string();
    root_ = *root;
    auto s = Steering::load();
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    steer_ = std::move(s.value());
  }

  std::uint64_t id_of(const TempCgroup& cg) {
    auto id = Steering::cgroup_id(cg.path());
    EXPECT_TRUE(id.ok()) << id.error().to_string();
    return id.value_or(0);
  }

  std::string root_;
  std::unique_ptr<Steering> steer_;
};

TEST_F(CgroupSteering, SocketsInThePolicyCgroupCarryTheMark) {
  TempCgroup cg(root_, "bpf", root_);
  ASSERT_TRUE(cg.ok()) << cg.path() << ": " << std::strerror(cg.error());
  auto a = steer_->attach_cgroup(cg.path());
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(attached_count(cg.path()), 1);
  ASSERT_TRUE(steer_->set_cgroup_policy(id_of(cg), policy_mark(1)).ok());

  EXPECT_EQ(socket_marks_in_cgroup(cg.path()), expected(policy_mark(1)));
  EXPECT_EQ(steer_->stats().sock_marked, 4u);
  // This process is outside the cgroup: its sockets are untouched.
  EXPECT_EQ(own_socket_mark(AF_INET, SOCK_STREAM), 0u);
  EXPECT_EQ(own_socket_mark(AF_INET6, SOCK_DGRAM), 0u);

  // Policy removed: no mark, program still attached.
  ASSERT_TRUE(steer_->remove_cgroup_policy(id_of(cg)).ok());
  EXPECT_EQ(socket_marks_in_cgroup(cg.path()), expected(0));
  EXPECT_EQ(steer_->stats().sock_marked, 4u);
}

TEST_F(CgroupSteering, NestedCgroupInheritsAndTheDeeperPolicyWins) {
  TempCgroup outer(root_, "bpf-outer", root_);
  ASSERT_TRUE(outer.ok()) << std::strerror(outer.error());
  TempCgroup inner(outer.path(), "inner", root_);
  ASSERT_TRUE(inner.ok()) << std::strerror(inner.error());
  // Attached at the outer cgroup only; it runs for the inner one too.
  ASSERT_TRUE(steer_->attach_cgroup(outer.path()).ok());
  ASSERT_TRUE(steer_->set_cgroup_policy(id_of(outer), policy_mark(3)).ok());

  EXPECT_EQ(socket_marks_in_cgroup(inner.path()), expected(policy_mark(3)));
  ASSERT_TRUE(steer_->set_cgroup_policy(id_of(inner), policy_mark(4)).ok());
  EXPECT_EQ(socket_marks_in_cgroup(inner.path()), expected(policy_mark(4)));
  EXPECT_EQ(socket_marks_in_cgroup(outer.path()), expected(policy_mark(3)));
  ASSERT_TRUE(steer_->remove_cgroup_policy(id_of(inner)).ok());
  EXPECT_EQ(socket_marks_in_cgroup(inner.path()), expected(policy_mark(3)));
}

TEST_F(CgroupSteering, DestroyingTheSteeringDetaches) {
  TempCgroup cg(root_, "bpf", root_);
  ASSERT_TRUE(cg.ok()) << std::strerror(cg.error());
  ASSERT_TRUE(steer_->attach_cgroup(cg.path()).ok());
  ASSERT_TRUE(steer_->set_cgroup_policy(id_of(cg), policy_mark(5)).ok());
  EXPECT_EQ(socket_marks_in_cgroup(cg.path()), expected(policy_mark(5)));
  steer_.reset();
  EXPECT_EQ(attached_count(cg.path()), 0);
  EXPECT_EQ(socket_marks_in_cgroup(cg.path()), expected(0));
}

TEST_F(CgroupSteering, SigkillOfTheOwnerDetaches) {
  steer_.reset();  // the child loads its own
  TempCgroup cg(root_, "bpf-kill", root_);
  ASSERT_TRUE(cg.ok()) << std::strerror(cg.error());
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(p[0]);
    char ok = 0;
    auto s = Steering::load();
    if (s.ok() && (*s)->attach_cgroup(cg.path()).ok()) ok = 1;
    (void)!::write(p[1], &ok, 1);
    for (int i = 0; i < 300; ++i)  // bounded: the parent kills it long before
      ::usleep(100 * 1000);
    ::_exit(0);
  }
  ::close(p[1]);
  char ok = 0;
  const bool got = ::read(p[0], &ok, 1) == 1;
  ::close(p[0]);
  EXPECT_TRUE(got && ok == 1) << "child failed to load/attach";
  EXPECT_EQ(attached_count(cg.path()), 1);
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  int n = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((n = attached_count(cg.path())) != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(n, 0);
}

TEST_F(CgroupSteering, ErrorsSayWhatFailed) {
  auto missing = steer_->attach_cgroup(root_ + "/ie-no-such-cgroup-" + std::to_string(getpid()));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  EXPECT_EQ(missing.error().sys_errno, ENOENT);

  auto notcg = steer_->attach_cgroup("/tmp");
  ASSERT_FALSE(notcg.ok());
  EXPECT_EQ(notcg.error().code, Errc::invalid_argument);
  EXPECT_NE(notcg.error().to_string().find("not a cgroup v2"), std::string::npos)
      << notcg.error().to_string();
  EXPECT_FALSE(Steering::cgroup_id("/tmp").ok());
  EXPECT_EQ(Steering::cgroup_id("/nonexistent-ie").error().code, Errc::not_found);

  EXPECT_EQ(steer_->set_cgroup_policy(1, 0x12345678).error().code, Errc::invalid_argument);
  EXPECT_EQ(steer_->remove_cgroup_policy(123456789).error().code, Errc::not_found);

  // The id is the directory's inode (1 for the real root; a cgroup namespace's root differs).
  auto rootid = Steering::cgroup_id(root_);
  ASSERT_TRUE(rootid.ok()) << rootid.error().to_string();
  struct stat st {};
  ASSERT_EQ(::stat(root_.c_str(), &st), 0);
  EXPECT_EQ(*rootid, static_cast<std::uint64_t>(st.st_ino));
}

}  // namespace
}  // namespace ie::bpf
