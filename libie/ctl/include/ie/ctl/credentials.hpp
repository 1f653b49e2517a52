// Who is on the other end of a control connection: the kernel's credentials of a connected
// Unix socket's peer (SO_PEERCRED, SO_PEERGROUPS), and whether they make it an admin, the
// only thing a server needs to decide who may call Access::admin methods.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ie/ctl/protocol.hpp"
#include "ie/util/result.hpp"

namespace ie::ctl {

// The peer's uid/gid/pid of a connected Unix socket (SO_PEERCRED). With an admin group,
// Caller::admin says whether the peer's primary group or one of its supplementary groups is
// admin_gid. The supplementary groups are the peer process's own, captured by the kernel at
// connect() (SO_PEERGROUPS): no race with the pid being reused, and a process that dropped
// its groups is not admin. Kernels without SO_PEERGROUPS (before 4.13) fall back to the
// user database (getgrouplist on the uid's name).
Result<Caller> peer_credentials(int fd, std::optional<std::uint32_t> admin_gid = std::nullopt);

// "group \"interedge\"" if the gid has a name, else "gid 1234" (for messages).
std::string group_label(std::uint32_t gid);

}  // namespace ie::ctl
