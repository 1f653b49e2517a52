// What SN discovery produces: one reachable SN endpoint with the key to associate with, and
// the per-host peer record (which first-hop SN serves a host, and the host's end-to-end key).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "ie/crypto/noise.hpp"

namespace ie::ied {

struct SnCandidate {
  std::string name;      // the SN's InterEdge name from its TXT record, e.g. "dom1.sn1"
  std::string endpoint;  // "192.0.2.1:1000" or "[2001:db8::1]:1000"
  std::string target;    // the SRV target it came from, e.g. "sn1.example.net"
  crypto::noise::PublicKey key{};
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  // When to re-resolve: the smallest TTL of the SRV, TXT and A/AAAA records used.
  std::chrono::steady_clock::time_point expires{};
};

struct PeerRecord {
  std::string sn;  // the host's first-hop SN, e.g. "dom2.sn1"
  crypto::noise::PublicKey key{};
  std::chrono::steady_clock::time_point expires{};
  std::string endpoint;  // its ied's UDP endpoint for a direct path (ep=), or ""
};

}  // namespace ie::ied
