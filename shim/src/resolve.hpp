// ie_resolve (resolve.cpp): getaddrinfo, then ied's `peer.resolve` for each address. Returns 0
// or an errno value (never -1); throws nothing.
#pragma once

#include <cstddef>

#include "interedge/interedge.h"

namespace ie::shim {

// How long ie_resolve waits, in all, for ied's pending DNS lookups.
inline constexpr int kResolveBudgetMs = 2000;

// The errno for a getaddrinfo() error code (EAI_*); sys_errno is errno after EAI_SYSTEM.
int errno_for_gai(int gai, int sys_errno);

int resolve(const char* sock, const char* host, const char* port, int family, ie_peer* out,
            std::size_t max, std::size_t* count);

}  // namespace ie::shim
