// PSP crypto: the CMAC key derivation and AES-GCM seal/open behind ie/crypto/psp.hpp.
// OpenSSL's EVP cipher contexts are created and keyed once per Sa; each packet only sets the
// 12-byte nonce (SPI || IV), feeds the AAD and runs GCM.
#include "ie/crypto/psp.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <climits>
#include <cstdlib>
#include <cstring>

namespace ie::crypto::psp {
namespace {

// One CMAC EVP_MAC fetched for the process (fetching is the expensive part).
EVP_MAC* cmac_algorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "CMAC", nullptr);
  return mac;
}

void cmac_block(const Key32& master, const std::uint8_t block[16], std::uint8_t out[16]) {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(cmac_algorithm());
  if (ctx == nullptr) std::abort();  // out of memory or no CMAC in this OpenSSL: unusable
  char cipher[] = "AES-256-CBC";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
                         OSSL_PARAM_construct_end()};
  std::size_t len = 0;
  if (EVP_MAC_init(ctx, master.data(), master.size(), params) != 1 ||
      EVP_MAC_update(ctx, block, 16) != 1 || EVP_MAC_final(ctx, out, &len, 16) != 1 || len != 16) {
    std::abort();
  }
  EVP_MAC_CTX_free(ctx);
}

const EVP_CIPHER* gcm_cipher(Version v) {
  return v == Version::aes_gcm_128 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
}

void make_nonce(std::uint32_t spi, std::uint64_t iv, std::uint8_t nonce[12]) {
  store_be32(nonce, spi);
  store_be64(nonce + 4, iv);
}

}  // namespace

Key derive_key(const Key32& master0, const Key32& master1, std::uint32_t spi, Version version) {
  const Key32& master = (spi & 0x80000000u) != 0 ? master1 : master0;
  const std::uint32_t bits = static_cast<std::uint32_t>(key_len(version) * 8);
  Key key;
  key.version = version;
  std::uint8_t block[16];
  for (std::uint32_t counter = 1; counter <= bits / 128; ++counter) {
    store_be32(block, counter);
    block[4] = 'P';
    block[5] = 'v';
    block[6] = version == Version::aes_gcm_128 ? '0' : '1';
    block[7] = 0;
    store_be32(block + 8, spi);
    store_be32(block + 12, bits);
    cmac_block(master, block, key.bytes.data() + (counter - 1) * 16);
  }
  secure_wipe(block, sizeof block);
  return key;
}

struct Sa::Ctx {
  EVP_CIPHER_CTX* enc = nullptr;
  EVP_CIPHER_CTX* dec = nullptr;
  ~Ctx() {
    EVP_CIPHER_CTX_free(enc);  // frees (and cleanses) the expanded key schedule
    EVP_CIPHER_CTX_free(dec);
  }
};

Sa::Sa(std::unique_ptr<Ctx> ctx, Version v) : ctx_(std::move(ctx)), version_(v) {}
Sa::Sa(Sa&&) noexcept = default;
Sa& Sa::operator=(Sa&&) noexcept = default;
Sa::~Sa() = default;

Result<Sa> Sa::create(const Key& key, Use use) {
  auto ctx = std::make_unique<Ctx>();
  const EVP_CIPHER* c = gcm_cipher(key.version);
  if (use != Use::open) {
    ctx->enc = EVP_CIPHER_CTX_new();
    if (ctx->enc == nullptr) return fail(Errc::crypto, "psp: EVP_CIPHER_CTX_new");
    if (EVP_EncryptInit_ex(ctx->enc, c, nullptr, key.bytes.data(), nullptr) != 1)
      return fail(Errc::crypto, "psp: AES-GCM key setup");
  }
  if (use != Use::seal) {
    ctx->dec = EVP_CIPHER_CTX_new();
    if (ctx->dec == nullptr) return fail(Errc::crypto, "psp: EVP_CIPHER_CTX_new");
    if (EVP_DecryptInit_ex(ctx->dec, c, nullptr, key.bytes.data(), nullptr) != 1)
      return fail(Errc::crypto, "psp: AES-GCM key setup");
  }
  return Sa(std::move(ctx), key.version);
}

std::size_t Sa::seal(const wire::PspHeader& hdr, ConstByteSpan payload, ByteSpan out) {
  if (ctx_->enc == nullptr) return 0;  // an open-only Sa: out is left untouched
  wire::PspHeader h = hdr;
  h.version = static_cast<std::uint8_t>(version_);
  const std::size_t clear = h.clear_len();
  if (clear > payload.size() || h.crypt_offset > wire::kPspMaxCryptOffset) return 0;
  const std::size_t total = wire::kPspHeaderLen + payload.size() + wire::kPspTagLen;
  if (out.size() < total || payload.size() > INT_MAX) return 0;
  std::uint8_t* o = out.data();
  // Copy the payload into place first when not sealing in place (memmove: may overlap).
  if (!payload.empty() && payload.data() != o + wire::kPspHeaderLen) {
    std::memmove(o + wire::kPspHeaderLen, payload.data(), payload.size());
  }
  wire::write_psp_header(h, o);
  std::uint8_t nonce[12];
  make_nonce(h.spi, h.iv, nonce);
  EVP_CIPHER_CTX* ctx = ctx_->enc;
  int len = 0;
  std::uint8_t* body = o + wire::kPspHeaderLen + clear;
  const int body_len = static_cast<int>(payload.size() - clear);
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
      EVP_EncryptUpdate(ctx, nullptr, &len, o, static_cast<int>(wire::kPspHeaderLen + clear)) !=
          1 ||
      EVP_EncryptUpdate(ctx, body, &len, body, body_len) != 1 ||
      EVP_EncryptFinal_ex(ctx, body + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, body + body_len) != 1) {
    return 0;
  }
  return total;
}

wire::DropReason Sa::open(const wire::PspHeader& h, ConstByteSpan packet, ByteSpan out,
                          std::size_t* payload_len) {
  if (ctx_->dec == nullptr) return wire::DropReason::auth_failed;  // a seal-only Sa
  if (h.version != static_cast<std::uint8_t>(version_))
    return wire::DropReason::unsupported_psp_version;
  const std::size_t clear = h.clear_len();
  if (packet.size() < wire::kPspHeaderLen + clear + wire::kPspTagLen)
    return wire::DropReason::truncated;
  const std::size_t n = packet.size() - wire::kPspHeaderLen - wire::kPspTagLen;  // clear + ct
  if (out.size() < n || n > INT_MAX) return wire::DropReason::too_large;
  const std::uint8_t* p = packet.data();
  std::uint8_t nonce[12];
  make_nonce(h.spi, h.iv, nonce);
  // The tag is copied first, so nothing depends on the packet bytes while out overlaps them.
  std::uint8_t tag[16];
  std::memcpy(tag, p + wire::kPspHeaderLen + n, 16);
  EVP_CIPHER_CTX* ctx = ctx_->dec;
  int len = 0;
  const std::uint8_t* ct = p + wire::kPspHeaderLen + clear;
  const int ct_len = static_cast<int>(n - clear);
  std::uint8_t empty_out = 0;  // out may be an empty span (n == 0) with a null data()
  std::uint8_t* o = out.empty() ? &empty_out : out.data();
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
      EVP_DecryptUpdate(ctx, nullptr, &len, p, static_cast<int>(wire::kPspHeaderLen + clear)) !=
          1) {
    return wire::DropReason::auth_failed;
  }
  // In place (out == packet + 16): the clear bytes are already where they belong.
  if (clear != 0 && o != p + wire::kPspHeaderLen) std::memmove(o, p + wire::kPspHeaderLen, clear);
  if (EVP_DecryptUpdate(ctx, o + clear, &len, ct, ct_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1 ||
      EVP_DecryptFinal_ex(ctx, o + clear + len, &len) != 1) {
    // Never hand out unauthenticated plaintext.
    secure_wipe(o + clear, static_cast<std::size_t>(ct_len));
    return wire::DropReason::auth_failed;
  }
  *payload_len = n;
  return wire::DropReason::none;
}

wire::DropReason Sa::open(ConstByteSpan packet, ByteSpan out, Opened* result) {
  const auto r = wire::parse_psp_header(packet, &result->header);
  if (r != wire::DropReason::none) return r;
  return open(result->header, packet, out, &result->payload_len);
}

}  // namespace ie::crypto::psp
