// The two InterEdge TXT records (docs/discovery.md):
//   at an SRV target:        "v=ie1 name=<DOM.SN> key=<base64 X25519 public key>"
//   at a host's reverse name: "v=ie1 sn=<DOM.SN> key=<base64 X25519 public key>
//                              [ep=<ip:port of its ied, for a direct path>]"
// Fields are k=v separated by spaces; "v" comes first; unknown keys are ignored (forward
// compatible); a missing or invalid v, key or name/sn, or an invalid ep (not a numeric
// "a.b.c.d:port" / "[v6]:port", port 0, or an unspecified, multicast or broadcast
// address) rejects the record with a reason.
// Input is untrusted (from DNS): nothing throws.
#pragma once

#include <string>
#include <string_view>

#include "ie/crypto/key_file.hpp"
#include "ie/crypto/noise.hpp"
#include "ie/util/result.hpp"

namespace ie::ied {

struct SnTxt {
  std::string name;
  crypto::noise::PublicKey key{};
};

struct PeerTxt {
  std::string sn;
  crypto::noise::PublicKey key{};
  std::string endpoint;  // ep=, canonical ("a.b.c.d:port" / "[v6]:port"); "" if none
};

// True when a TXT text claims to be an InterEdge record ("v=ie" prefix, any version), so
// unrelated TXT records at the same name (SPF, site verification) are ignored, while an
// InterEdge record of an unknown version is reported.
bool is_ie_txt(std::string_view text);

Result<SnTxt> parse_sn_txt(std::string_view text);
Result<PeerTxt> parse_peer_txt(std::string_view text);

// Standard base64 (with padding, 44 characters) of a 32-byte key, and back (canonical only,
// not all zero): libie's (ie/crypto/key_file.hpp).
using crypto::key_from_base64;
using crypto::key_to_base64;

}  // namespace ie::ied
