// PSP encryption for ILP: the AES-CMAC key derivation (SP 800-108 counter mode, master key
// picked by the SPI's top bit) and AES-GCM seal/open of PSP packets (version 0 = AES-128-GCM,
// 1 = AES-256-GCM) with nonce = SPI || IV and AAD = 16-byte header || crypt-offset bytes.
//
// A `psp::Sa` (security association) owns its key; the expanded AES-GCM state (an OpenSSL
// cipher context, about 1.2 KB) lives in a bounded per-thread cache of contexts (below), so
// an idle SA costs its 32-byte key, not a context: an SN with 100,000 pipes holds 200,000+
// SAs but seals and opens with far fewer at a time. Per packet of a cached SA only the IV
// changes, nothing is allocated. Not thread-safe: one Sa per worker. Seal and open may run
// in place (see each function).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "ie/util/bytes.hpp"
#include "ie/util/result.hpp"
#include "ie/util/secret.hpp"
#include "ie/wire/drop_reason.hpp"
#include "ie/wire/psp.hpp"

struct evp_mac_ctx_st;  // OpenSSL's EVP_MAC_CTX

namespace ie::crypto::psp {

enum class Version : std::uint8_t { aes_gcm_128 = 0, aes_gcm_256 = 1 };

inline constexpr std::size_t key_len(Version v) {
  return v == Version::aes_gcm_128 ? 16 : 32;
}

// A PSP key: 16 bytes (v0, the first 16 of `bytes`) or 32 bytes (v1).
struct Key {
  Version version = Version::aes_gcm_256;
  Key32 bytes;

  Key clone() const { return Key{version, bytes.clone()}; }
  ConstByteSpan span() const { return ConstByteSpan(bytes.data(), key_len(version)); }
};

// The PSP key for `spi` from the two 256-bit master keys (top bit of spi selects master1).
Key derive_key(const Key32& master0, const Key32& master1, std::uint32_t spi, Version version);

// One master key with its AES-256-CMAC context keyed once, so each derivation costs the
// CMAC blocks alone (derive_key above keys a fresh context, cipher lookup and key schedule
// included, per 16-byte block: about 6% of an SN's CPU per handshake before this existed).
// derive(spi, v) == derive_key(m, m, spi, v). Not thread-safe (RxKeyring's one owner);
// move-only; the keyed context is cleansed when freed.
class MasterKey {
 public:
  explicit MasterKey(const Key32& master);
  ~MasterKey();
  MasterKey(MasterKey&& o) noexcept : ctx_(o.ctx_) { o.ctx_ = nullptr; }
  MasterKey& operator=(MasterKey&& o) noexcept;
  MasterKey(const MasterKey&) = delete;
  MasterKey& operator=(const MasterKey&) = delete;

  Key derive(std::uint32_t spi, Version version);

 private:
  ::evp_mac_ctx_st* ctx_ = nullptr;
};

struct Opened {
  wire::PspHeader header;
  std::size_t payload_len = 0;  // clear crypt-offset bytes + decrypted bytes, written to out
};

// The per-thread context cache. Each thread that seals or opens keeps up to `capacity`
// expanded AES-GCM contexts, each bound to one (Sa, direction). seal/open of an Sa whose
// context is cached costs a compare; of one that is not (cold, or evicted) it takes a slot
// (CLOCK eviction: a slot used since the hand last passed gets a second chance) and expands
// the Sa's key into it (an AES key schedule and the GHASH key: about a microsecond). An Sa
// destroyed on the thread that used it wipes and frees its context at once; one destroyed
// on another thread leaves it to be overwritten by the next key that takes the slot (iesn
// and ied destroy SAs on the worker that used them). A thread's contexts are freed (and
// wiped by OpenSSL) when it exits.
inline constexpr std::size_t kDefaultContextCacheCapacity = 4096;  // ~4.8 MB per thread
// Sets the calling thread's capacity (>= 1; tests use small ones). Shrinking frees slots.
void set_context_cache_capacity(std::size_t capacity);
struct ContextCacheStats {
  std::size_t capacity = 0, in_use = 0;
  std::uint64_t hits = 0, misses = 0;  // misses: a key expanded into a slot
};
ContextCacheStats context_cache_stats();  // the calling thread's

class Sa {
 public:
  // Which directions the Sa serves: a datapath's SAs only seal (send SAs) or only open
  // (receive SAs); the other direction fails (seal returns 0, open auth_failed).
  enum class Use : std::uint8_t { seal, open, both };
  // Fails only if OpenSSL cannot set up AES-GCM (checked once per process).
  static Result<Sa> create(const Key& key, Use use = Use::both);

  Sa(Sa&&) noexcept;
  Sa& operator=(Sa&&) noexcept;
  ~Sa();

  Version version() const { return version_; }

  // Seals one packet: writes header(h, with h.version set from the key) || payload[0..clear)
  // || AES-GCM(payload[clear..]) || tag into out. payload = the crypt-offset clear bytes
  // followed by the bytes to encrypt. In place is allowed when payload.data() ==
  // out.data() + 16. Returns the packet length, or 0 if out is too small or the crypt offset
  // exceeds the payload.
  std::size_t seal(const wire::PspHeader& h, ConstByteSpan payload, ByteSpan out);

  // Opens one packet whose header was already parsed (wire::parse_psp_header) into `h`:
  // writes clear bytes || plaintext into out (in place allowed when out.data() ==
  // packet.data() + 16) and returns none, or auth_failed / unsupported_psp_version (the
  // packet's version differs from the key's) / too_large (out too small).
  wire::DropReason open(const wire::PspHeader& h, ConstByteSpan packet, ByteSpan out,
                        std::size_t* payload_len);

  // Parse + open in one call (for tests and tools).
  wire::DropReason open(ConstByteSpan packet, ByteSpan out, Opened* result);

 private:
  Sa(const Key& key, Use use, std::uint64_t id);
  void release();  // frees this Sa's contexts in the calling thread's cache

  Key32 key_;              // wiped on destruction and move (Secret)
  std::uint64_t id_ = 0;   // unique per process; 0: moved from
  std::uint32_t hint_[2];  // [0] seal, [1] open: the cache slot last used (a hint only)
  Version version_;
  Use use_;
};

}  // namespace ie::crypto::psp
