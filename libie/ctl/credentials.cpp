// Peer credentials and admin-group membership of a control connection (ie/ctl/credentials.hpp).
#include "ie/ctl/credentials.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace ie::ctl {
namespace {

// Bounds the retries below; Linux caps a process's groups at NGROUPS_MAX (65536).
constexpr std::size_t kMaxGroups = 65536;

// The peer process's supplementary groups as the kernel saw them at connect().
Result<std::vector<gid_t>> peer_groups(int fd) {
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 4; ++attempt) {
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return groups;
    }
    if (errno != ERANGE) return fail(Errc::io, "SO_PEERGROUPS", errno);
    const std::size_t want = len / sizeof(gid_t);
    if (want <= groups.size() || want > kMaxGroups) return fail(Errc::io, "SO_PEERGROUPS", ERANGE);
    groups.resize(want);
  }
  return fail(Errc::io, "SO_PEERGROUPS: the group list kept growing", ERANGE);
}

// The uid's groups from the user database (only when the kernel cannot say).
bool user_in_group(std::uint32_t uid, std::uint32_t primary, std::uint32_t gid) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return false;
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 4; ++attempt) {
    int n = static_cast<int>(groups.size());
    if (::getgrouplist(pw.pw_name, primary, groups.data(), &n) >= 0) {
      groups.resize(static_cast<std::size_t>(n));
      return std::find(groups.begin(), groups.end(), gid) != groups.end();
    }
    if (n <= static_cast<int>(groups.size()) || static_cast<std::size_t>(n) > kMaxGroups)
      return false;
    groups.resize(static_cast<std::size_t>(n));
  }
  return false;
}

}  // namespace

Result<Caller> peer_credentials(int fd, std::optional<std::uint32_t> admin_gid) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return fail(Errc::io, "SO_PEERCRED", errno);
  Caller c{cred.uid, cred.gid, cred.pid};
  if (!admin_gid) return c;
  if (cred.gid == *admin_gid) {
    c.admin = true;
    return c;
  }
  auto groups = peer_groups(fd);
  if (groups) {
    c.admin = std::find(groups->begin(), groups->end(), *admin_gid) != groups->end();
  } else if (groups.error().sys_errno == ENOPROTOOPT) {
    c.admin = user_in_group(cred.uid, cred.gid, *admin_gid);
  } else {
    return fail(groups.error());
  }
  return c;
}

std::string group_label(std::uint32_t gid) {
  std::vector<char> buf(16384);
  group gr{};
  group* found = nullptr;
  if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr)
    return std::string("group \"") + gr.gr_name + "\"";
  return "gid " + std::to_string(gid);
}

}  // namespace ie::ctl
