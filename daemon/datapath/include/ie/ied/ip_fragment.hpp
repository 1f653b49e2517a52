// IPv4 fragmentation (RFC 791 3.2, "An Example Fragmentation Procedure") of an inner packet
// that must cross a next hop whose path carries less and that allows it (no DF): what a
// router on the inner path would do. ied uses it where the outer datagram cannot be
// fragmented for it: on a path MTU black hole, where the kernel, not knowing the smaller
// MTU, would send the outer datagram whole with DF (docs/ied.md "Path MTU", step 6). The
// receiving host's kernel reassembles the fragments.
#pragma once

#include <cstddef>
#include <vector>

#include "ie/util/bytes.hpp"

namespace ie::ied {

// Cuts the IPv4 packet pkt (a valid header; DF clear) into fragments of at most max_len
// bytes each, appended to out: every fragment carries the header (options only where their
// copied flag says so, after the first), its total length, offset, MF (set on all but the
// last; the last keeps pkt's own MF, so a fragment can be cut again) and a fresh header
// checksum. Returns how many were appended; 0 (nothing appended) if pkt is not IPv4 with a
// consistent header and total length, has DF set, already fits, or max_len leaves no room
// for 8 payload bytes behind the header.
std::size_t fragment_ipv4(ConstByteSpan pkt, std::size_t max_len, std::vector<Bytes>& out);

}  // namespace ie::ied
