// Access control of the control protocol without root: Dispatcher::add with Access::admin
// (refused to non-admin callers before the handler runs, with a message naming the method
// and what it needs; read methods open to all), and peer_credentials' admin decision from a
// real socket's SO_PEERCRED/SO_PEERGROUPS. The refusal of a real unprivileged process over
// ctl::Server is ctl_server_root_test.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "ie/ctl/credentials.hpp"
#include "ie/ctl/protocol.hpp"

namespace ie::ctl {
namespace {

struct Counting {
  int calls = 0;
  Dispatcher::Handler handler() {
    return [this](const Json&, const Caller&) -> Result<Json> {
      ++calls;
      return Json{{"done", true}};
    };
  }
};

TEST(Access, AdminMethodsAreRefusedToNonAdminsBeforeTheHandlerRuns) {
  Counting set, get;
  Dispatcher d;
  ASSERT_TRUE(d.add("set", set.handler(), Access::admin));
  ASSERT_TRUE(d.add("get", get.handler()));
  ASSERT_TRUE(d.add_hello("test"));
  EXPECT_EQ(d.access_of("set"), Access::admin);
  EXPECT_EQ(d.access_of("get"), Access::read);
  EXPECT_EQ(d.access_of("hello"), Access::read);
  EXPECT_EQ(d.access_of("nope"), std::nullopt);

  const Caller user{1000, 1000, 7, false};
  auto r = d.dispatch(Request{1, "set", {}}, user);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.error.code, Errc::permission);
  EXPECT_EQ(r.error.context, "\"set\" is an admin method; it needs root (caller uid 1000)");
  EXPECT_EQ(set.calls, 0);
  // The reply on the wire carries code "permission" and EPERM.
  auto line = decode(d.handle_line(R"({"v":1,"id":9,"method":"set"})", user)).value();
  EXPECT_EQ(std::get<Response>(line).id, 9u);
  EXPECT_EQ(std::get<Response>(line).error.code, Errc::permission);
  EXPECT_EQ(std::get<Response>(line).error.sys_errno, EPERM);
  EXPECT_EQ(set.calls, 0);

  // Read methods (and hello) answer anyone.
  EXPECT_TRUE(d.dispatch(Request{2, "get", {}}, user).ok);
  EXPECT_TRUE(d.dispatch(Request{3, "hello", {}}, user).ok);
  EXPECT_EQ(get.calls, 1);

  // Root, and a member of the admin group, may.
  EXPECT_TRUE(d.dispatch(Request{4, "set", {}}, Caller{0, 0, 1, false}).ok);
  EXPECT_TRUE(d.dispatch(Request{5, "set", {}}, Caller{1000, 1000, 7, true}).ok);
  EXPECT_EQ(set.calls, 2);

  // The requirement a server configured is named in the refusal.
  d.set_admin_requirement("root or a member of group \"interedge\"");
  r = d.dispatch(Request{6, "set", {}}, user);
  EXPECT_EQ(r.error.context,
            "\"set\" is an admin method; it needs root or a member of group \"interedge\" "
            "(caller uid 1000)");
  // A duplicate keeps the first registration and its access.
  EXPECT_FALSE(d.add("set", get.handler(), Access::read));
  EXPECT_EQ(d.access_of("set"), Access::admin);
}

TEST(Access, PeerCredentialsDecideAdminFromGroups) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  auto plain = peer_credentials(sv[0]);
  ASSERT_TRUE(plain.ok()) << plain.error().to_string();
  EXPECT_EQ(plain->uid, ::getuid());
  EXPECT_EQ(plain->gid, ::getgid());
  EXPECT_EQ(plain->pid, ::getpid());
  EXPECT_FALSE(plain->admin);  // no admin group: nobody is admin by group

  // Our primary group as the admin group.
  auto primary = peer_credentials(sv[0], ::getgid());
  ASSERT_TRUE(primary.ok());
  EXPECT_TRUE(primary->admin);

  // A group we are not in (neither primary nor supplementary).
  std::vector<gid_t> ours(static_cast<std::size_t>(::getgroups(0, nullptr)));
  ASSERT_EQ(::getgroups(static_cast<int>(ours.size()), ours.data()), static_cast<int>(ours.size()));
  gid_t stranger = 54321;
  while (stranger == ::getgid() || std::find(ours.begin(), ours.end(), stranger) != ours.end())
    ++stranger;
  auto other = peer_credentials(sv[0], stranger);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->admin);
  EXPECT_EQ(other->may_admin(), ::getuid() == 0);  // root stays admin without the group

  // A supplementary group of ours, if we have one that is not the primary.
  for (gid_t g : ours) {
    if (g == ::getgid()) continue;
    auto sup = peer_credentials(sv[0], g);
    ASSERT_TRUE(sup.ok());
    EXPECT_TRUE(sup->admin) << "gid " << g;
  }
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(Access, GroupLabel) {
  EXPECT_EQ(group_label(0), "group \"root\"");
  EXPECT_EQ(group_label(4000000000u), "gid 4000000000");
}

}  // namespace
}  // namespace ie::ctl
