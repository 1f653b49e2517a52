// PSP encryption for ILP: the AES-CMAC key derivation (SP 800-108 counter mode, master key
// picked by the SPI's top bit) and AES-GCM seal/open of PSP packets (version 0 = AES-128-GCM,
// 1 = AES-256-GCM) with nonce = SPI || IV and AAD = 16-byte header || crypt-offset bytes.
//
// A `psp::Sa` (security association) owns one key and two OpenSSL cipher contexts set up
// once; per packet only the IV changes, nothing is allocated. Not thread-safe: one Sa per
// worker. Seal and open may run in place (see each function).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "ie/util/bytes.hpp"
#include "ie/util/result.hpp"
#include "ie/util/secret.hpp"
#include "ie/wire/drop_reason.hpp"
#include "ie/wire/psp.hpp"

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

struct Opened {
  wire::PspHeader header;
  std::size_t payload_len = 0;  // clear crypt-offset bytes + decrypted bytes, written to out
};

class Sa {
 public:
  // Which directions the Sa serves. Each costs an expanded AES-GCM key schedule (about
  // 1.2 KB in OpenSSL), and a datapath's SAs only seal (send SAs) or only open (receive
  // SAs): an SN with 100,000 pipes would hold 240 MB of contexts it never uses.
  enum class Use : std::uint8_t { seal, open, both };
  // Fails only if OpenSSL cannot set up AES-GCM.
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
  struct Ctx;
  explicit Sa(std::unique_ptr<Ctx> ctx, Version v);
  std::unique_ptr<Ctx> ctx_;
  Version version_;
};

}  // namespace ie::crypto::psp
