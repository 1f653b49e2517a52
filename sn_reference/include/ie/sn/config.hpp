// iesn's configuration: a TOML file (parsed with toml++, Debian's libtomlplusplus-dev),
// validated as a whole; errors name the file, line and column. Reference: docs/sn.md.
//
//   [sn]
//   name = "dom1.sn1"                    # DOM.SN; DOM is this SN's edomain
//   listen = "0.0.0.0:1000"              # UDP endpoint for ILP (numeric)
//   workers = 0                          # 0: one per online CPU
//   private_key_file = "/etc/interedge/iesn.key"   # base64 X25519 private key, mode 0600
//   state_db = "/var/lib/interedge/iesn.db"
//   control_socket = "/run/interedge/iesn.sock"
//   cache_capacity = 1000000             # decision-cache entries per SN (split over workers)
//   host_prefixes = ["10.1.0.0/16"]      # addresses hosts may register here (empty: any)
//
//   [edomain]
//   gateway = "dom1.sn1"                 # this edomain's gateway SN (may be this SN)
//   rekey_seconds = 180                  # SN-SN pipes re-key this often
//
//   [[edomain.sn]]                       # the other SNs of this edomain
//   name = "dom1.sn2"
//   address = "10.0.0.2:1000"
//   public_key = "base64..."
//
//   [[peer]]                             # a remote edomain, reached through its gateway
//   edomain = "dom2"
//   gateway = "dom2.sn1"
//   address = "10.9.0.2:1000"
//   public_key = "base64..."
//
//   [[route]]                            # static: inner destinations served by an SN
//   prefix = "10.2.0.0/16"
//   sn = "dom2.sn1"
//
//   [modules]
//   load = ["/usr/lib/interedge/modules/libfoo.so"]
//   [modules.foo]                        # per-module settings, strings / numbers / bools
//   key = "value"
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ie/crypto/noise.hpp"
#include "ie/util/result.hpp"

namespace ie::sn {

namespace noise = ie::crypto::noise;

// An IPv4 or IPv6 prefix; addresses are kept as 16 bytes (IPv4-mapped for IPv4).
struct Prefix {
  std::array<std::uint8_t, 16> addr{};
  unsigned bits = 0;  // of the 128-bit form (an IPv4 /24 is 96 + 24 = 120)
  bool contains(const std::array<std::uint8_t, 16>& a) const;
  static Result<Prefix> parse(const std::string& text);  // "10.2.0.0/16", "fd00::/8", "1.2.3.4"
  std::string str() const;
};

struct SnRef {
  std::string name;     // DOM.SN
  std::string address;  // "ip:port"
  noise::PublicKey public_key{};
};

struct PeerDomain {
  std::string edomain;
  SnRef gateway;
};

struct StaticRoute {
  Prefix prefix;
  std::string sn;  // DOM.SN
};

struct SnConfig {
  std::string name;     // DOM.SN
  std::string edomain;  // DOM (from name)
  std::string listen = "0.0.0.0:1000";
  unsigned workers = 0;
  std::string private_key_file;
  std::string state_db;
  std::string control_socket;
  std::size_t cache_capacity = 1000000;
  std::vector<Prefix> host_prefixes;

  std::string gateway;  // DOM.SN of this edomain's gateway
  unsigned rekey_seconds = 180;
  std::vector<SnRef> domain_sns;  // other SNs of this edomain
  std::vector<PeerDomain> peers;  // remote edomains
  std::vector<StaticRoute> routes;

  std::vector<std::string> module_paths;
  std::map<std::string, std::map<std::string, std::string>> module_config;

  bool is_gateway() const { return gateway == name; }
};

// Parses and validates; Errc::parse / Errc::invalid_argument with "FILE:LINE:COL: what" messages.
Result<SnConfig> parse_config(const std::string& toml_text, const std::string& file_name);
Result<SnConfig> load_config(const std::string& path);

// Key files: one line, the base64 (standard alphabet) of the 32-byte key.
Result<noise::KeyPair> load_private_key(const std::string& path);  // refuses group/other-readable
Result<void> write_private_key(const std::string& path, const noise::KeyPair& kp);  // 0600
std::string key_to_base64(const noise::PublicKey& k);
Result<noise::PublicKey> key_from_base64(const std::string& text);

}  // namespace ie::sn
