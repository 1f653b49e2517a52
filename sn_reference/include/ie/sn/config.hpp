// iesn's configuration: a TOML file (parsed with toml++, Debian's libtomlplusplus-dev),
// validated as a whole; errors name the file, line and column. Reference: docs/sn.md
// ("Configuration reference").
//
//   [sn]
//   name = "dom1.sn1"                    # DOM.SN; DOM is this SN's edomain (required)
//   listen = "0.0.0.0:1000"              # UDP endpoint for ILP (numeric)
//   advertise = "192.0.2.10:1000"        # unicast endpoint told to hosts that found this SN
//                                        # at an anycast address (default: listen, unless
//                                        # it is a wildcard address)
//   workers = 0                          # 0: one per online CPU (0..256)
//   private_key_file = "/etc/interedge/iesn.key"  # base64 X25519 private key, mode 0600
//                                        # (required)
//   state_db = "/var/lib/interedge/iesn.db"  # "" (default): module state in memory only
//   control_socket = "/run/interedge/iesn.sock"  # the default; "" disables the socket
//   cache_capacity = 1000000             # decision-cache entries per SN (split over workers)
//   host_prefixes = ["10.1.0.0/16"]      # addresses hosts may register here (empty: any)
//   max_handshakes_per_second = 0        # responder handshakes (DH) per second, 0: no
//                                        # limit (0..1000000; --max-handshakes overrides)
//   psp_contexts_per_worker = 4096       # expanded AES-GCM contexts each worker thread
//                                        # caches (1..1048576; a reload applies a change)
//
//   [edomain]
//   gateway = "dom1.sn1"                 # this edomain's gateway SN (default: this SN)
//   rekey_seconds = 180                  # SN-SN pipes re-key this often (1..86400)
//   direct_pipes = false                 # open pipes on demand straight to the SNs that
//                                        # traffic is routed to through a gateway
//   direct_idle_seconds = 120            # such a pipe closes after this long unused
//                                        # (1..86400)
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
//
// Unknown keys and tables are errors, so a typo never passes silently. Nothing here throws.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ie/conf/names.hpp"
#include "ie/crypto/key_file.hpp"
#include "ie/crypto/noise.hpp"
#include "ie/crypto/psp.hpp"
#include "ie/util/result.hpp"

namespace ie::sn {

namespace noise = ie::crypto::noise;

inline constexpr const char* kDefaultControlSocket = "/run/interedge/iesn.sock";
using conf::kMaxConfigBytes;  // load_config refuses larger files
inline constexpr unsigned kMaxWorkers = 256;
inline constexpr std::size_t kMaxCacheCapacity = std::size_t{1} << 26;
inline constexpr std::uint32_t kMaxHandshakesPerSecond = 1000000;
inline constexpr unsigned kMaxRekeySeconds = 86400;
// [sn] psp_contexts_per_worker: at most 2^20 contexts (about 1.2 GB) per worker thread.
inline constexpr std::size_t kMaxPspContextsPerWorker = std::size_t{1} << 20;

// Addresses are kept as 16 bytes: IPv6, or IPv4-mapped (::ffff:a.b.c.d).
using Addr16 = std::array<std::uint8_t, 16>;
// IPv4 a.b.c.d as ::ffff:a.b.c.d.
Addr16 mapped_v4(std::uint32_t addr_host_order);
bool is_mapped_v4(const Addr16& a);
// "10.1.0.2" / "fd00::2" -> 16 bytes; nullopt if not a numeric address.
std::optional<Addr16> parse_addr(std::string_view text);
// "10.1.0.2" for IPv4-mapped, else the IPv6 text form.
std::string addr_str(const Addr16& a);

// An IPv4 or IPv6 prefix; addresses are kept as 16 bytes (IPv4-mapped for IPv4).
struct Prefix {
  std::array<std::uint8_t, 16> addr{};
  unsigned bits = 0;  // of the 128-bit form (an IPv4 /24 is 96 + 24 = 120)

  bool contains(const std::array<std::uint8_t, 16>& a) const;
  // "10.2.0.0/16", "fd00::/8", "1.2.3.4" (/32), "fd00::1" (/128), "::ffff:10.0.0.0/104".
  // Host bits must be zero ("10.2.0.1/16" is refused; a typo in a file) unless
  // clear_host_bits (requests from hosts: "10.2.0.1/16" becomes 10.2.0.0/16). Errc::parse
  // naming the text.
  static Result<Prefix> parse(std::string_view text, bool clear_host_bits = false);
  // Canonical text: IPv4 form for prefixes inside ::ffff:0:0/96 ("10.2.0.0/16"), else IPv6
  // ("fd00::/8"). parse(str()) gives the same prefix.
  std::string str() const;
  // True if this prefix lies inside ::ffff:0:0/96 (an IPv4 prefix).
  bool is_v4() const;
  bool operator==(const Prefix&) const = default;
};

struct SnRef {
  std::string name;     // DOM.SN
  std::string address;  // "ip:port" / "[v6]:port", numeric, port != 0
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
  std::string advertise;  // "" = none (listen is a wildcard and advertise was not given)
  unsigned workers = 0;   // 0: one per online CPU
  std::string private_key_file;
  std::string state_db;                                // "": module state in memory only
  std::string control_socket = kDefaultControlSocket;  // "": no control socket
  std::size_t cache_capacity = 1000000;
  std::vector<Prefix> host_prefixes;
  // Responder handshakes (DH) answered per second, 0: no limit; `iesn run --max-handshakes`
  // overrides it. Applied by a reload.
  std::uint32_t max_handshakes_per_second = 0;
  // Expanded AES-GCM contexts each worker thread keeps (psp::set_context_cache_capacity on
  // the worker's thread); beyond it, a packet on an SA without one expands its key first.
  // Applied by a reload.
  std::size_t psp_contexts_per_worker = crypto::psp::kDefaultContextCacheCapacity;

  std::string gateway;  // DOM.SN of this edomain's gateway (parse_config: name if not given)
  unsigned rekey_seconds = 180;
  // On-demand direct pipes (docs/sn.md "On-demand direct pipes"); both applied by a reload.
  bool direct_pipes = false;
  unsigned direct_idle_seconds = 120;
  std::vector<SnRef> domain_sns;  // other SNs of this edomain
  std::vector<PeerDomain> peers;  // remote edomains
  std::vector<StaticRoute> routes;

  // [services]: modules hosts may invoke out of band; modules imposed on every packet from
  // and to this SN's hosts; the SN a pass-through SN relays its hosts' traffic to.
  std::vector<std::string> out_of_band;
  std::vector<std::string> imposed;
  std::string upstream;  // DOM.SN, "" = none

  std::vector<std::string> module_paths;
  std::map<std::string, std::map<std::string, std::string>> module_config;

  bool is_gateway() const { return gateway.empty() || gateway == name; }
};

// "a.b": two labels of [a-z0-9-]{1,31} joined by one dot.
using conf::valid_sn_name;
// One label [a-z0-9-]{1,31}.
using conf::valid_edomain;

// Parses and validates. Errors: Errc::parse (TOML syntax) or Errc::invalid_argument (anything
// else), the context being "FILE:LINE:COL: what" with the position of the offending value
// (or key, or the table that lacks a required key). Never throws.
Result<SnConfig> parse_config(std::string_view toml_text, const std::string& file_name);
// Reads the file (at most kMaxConfigBytes) and parses it; I/O errors name the path.
Result<SnConfig> load_config(const std::string& path);

// Key files and public-key text: libie (ie/crypto/key_file.hpp), under the SN's names.
using crypto::key_from_base64;
using crypto::key_to_base64;
using crypto::load_private_key;
using crypto::write_private_key;

}  // namespace ie::sn
