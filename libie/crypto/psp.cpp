// PSP crypto: the CMAC key derivation and AES-GCM seal/open behind ie/crypto/psp.hpp.
// An Sa holds its key; OpenSSL's EVP cipher contexts live in a bounded per-thread cache and
// are keyed when an Sa takes a slot; each packet of a cached Sa only sets the 12-byte nonce
// (SPI || IV), feeds the AAD and runs GCM.
//
// Why per thread and not owned by the caller (the style guide's "no globals"): every Sa user
// (RxSaTable, TxSa, ied's and iesn's workers, tests) is already confined to one thread, and a
// cache object threaded through every seal/open call would change all of them for no gain in
// safety; the cache holds no state anyone else can observe but memory and timing.
#include "ie/crypto/psp.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace ie::crypto::psp {
namespace {

// One CMAC EVP_MAC fetched for the process (fetching is the expensive part).
EVP_MAC* cmac_algorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "CMAC", nullptr);
  return mac;
}

// An AES-256-CMAC context keyed with master (aborts if this OpenSSL cannot: unusable).
EVP_MAC_CTX* cmac_keyed(const Key32& master) {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(cmac_algorithm());
  if (ctx == nullptr) std::abort();  // out of memory or no CMAC in this OpenSSL: unusable
  char cipher[] = "AES-256-CBC";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
                         OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx, master.data(), master.size(), params) != 1) std::abort();
  return ctx;
}

// The PSP KDF (PSP spec 4.1): CMAC(master, counter || "Pv0"/"Pv1" || 0 || spi || bits) per
// 16 bytes of key. ctx is keyed; each block restarts it with that key (EVP_MAC_init with no
// key: CMAC_Init reuses the key schedule).
Key derive_with(EVP_MAC_CTX* ctx, std::uint32_t spi, Version version) {
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
    std::size_t len = 0;
    if (EVP_MAC_init(ctx, nullptr, 0, nullptr) != 1 || EVP_MAC_update(ctx, block, 16) != 1 ||
        EVP_MAC_final(ctx, key.bytes.data() + (counter - 1) * 16, &len, 16) != 1 || len != 16)
      std::abort();
  }
  secure_wipe(block, sizeof block);
  return key;
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
  MasterKey m((spi & 0x80000000u) != 0 ? master1 : master0);
  return m.derive(spi, version);
}

MasterKey::MasterKey(const Key32& master) : ctx_(cmac_keyed(master)) {}

MasterKey::~MasterKey() {
  EVP_MAC_CTX_free(ctx_);
}  // cleanses the key schedule

MasterKey& MasterKey::operator=(MasterKey&& o) noexcept {
  if (this != &o) {
    EVP_MAC_CTX_free(ctx_);
    ctx_ = o.ctx_;
    o.ctx_ = nullptr;
  }
  return *this;
}

Key MasterKey::derive(std::uint32_t spi, Version version) {
  return derive_with(ctx_, spi, version);
}

namespace {

// One slot of the per-thread cache: a context keyed for one (Sa, direction), or free.
struct Slot {
  EVP_CIPHER_CTX* ctx = nullptr;
  const EVP_CIPHER* cipher = nullptr;  // what ctx was set up with (null: nothing / reset)
  std::uint64_t tag = 0;               // (Sa id << 1) | open; 0: free
  bool referenced = false;             // used since the CLOCK hand last passed
};

class ContextCache {
 public:
  ~ContextCache() {
    for (Slot& s : slots_)
      EVP_CIPHER_CTX_free(s.ctx);  // frees and cleanses the expanded keys
  }

  EVP_CIPHER_CTX* get(std::uint64_t tag, std::uint32_t* hint, const std::uint8_t* key, Version v,
                      bool open) {
    if (*hint < slots_.size()) {
      Slot& s = slots_[*hint];
      if (s.tag == tag) {
        s.referenced = true;
        ++hits_;
        return s.ctx;
      }
    }
    return fill(tag, hint, key, v, open);
  }

  // Wipes and frees the context of `tag` if this thread holds it (hint says where).
  void release(std::uint64_t tag, std::uint32_t hint) {
    if (hint >= slots_.size() || slots_[hint].tag != tag) return;
    clear(slots_[hint]);
  }

  void set_capacity(std::size_t n) {
    capacity_ = n == 0 ? 1 : n;
    while (slots_.size() > capacity_) {
      clear(slots_.back());
      EVP_CIPHER_CTX_free(slots_.back().ctx);
      slots_.pop_back();
    }
    if (hand_ >= slots_.size()) hand_ = 0;
  }

  ContextCacheStats stats() const {
    ContextCacheStats st;
    st.capacity = capacity_;
    st.in_use = in_use_;
    st.hits = hits_;
    st.misses = misses_;
    return st;
  }

 private:
  void clear(Slot& s) {
    if (s.tag == 0) return;
    // reset frees (and cleanses) the provider's GCM state: the expanded key is gone now,
    // not when the slot is next taken.
    if (s.ctx != nullptr) EVP_CIPHER_CTX_reset(s.ctx);
    s.cipher = nullptr;
    s.tag = 0;
    s.referenced = false;
    --in_use_;
  }

  std::size_t victim() {
    if (slots_.size() < capacity_) {
      slots_.emplace_back();
      return slots_.size() - 1;
    }
    // CLOCK: a free slot or one not used since the hand last passed; at most two turns.
    for (;;) {
      Slot& s = slots_[hand_];
      const std::size_t i = hand_;
      hand_ = (hand_ + 1) % slots_.size();
      if (s.tag == 0 || !s.referenced) return i;
      s.referenced = false;
    }
  }

  EVP_CIPHER_CTX* fill(std::uint64_t tag, std::uint32_t* hint, const std::uint8_t* key, Version v,
                       bool open) {
    const std::size_t i = victim();
    Slot& s = slots_[i];
    if (s.tag != 0) {
      s.tag = 0;  // taken over: the new key overwrites (or reset frees) the old one below
      --in_use_;
    }
    if (s.ctx == nullptr) {
      s.ctx = EVP_CIPHER_CTX_new();
      if (s.ctx == nullptr) return nullptr;
    }
    const EVP_CIPHER* c = gcm_cipher(v);
    // Same cipher: only the key changes (no allocation). Otherwise (a new or reset context,
    // or the other AES key size) a full set-up, which frees the previous state first.
    const int enc = open ? 0 : 1;
    const int r = s.cipher == c ? EVP_CipherInit_ex(s.ctx, nullptr, nullptr, key, nullptr, enc)
                                : EVP_CipherInit_ex(s.ctx, c, nullptr, key, nullptr, enc);
    if (r != 1) {
      EVP_CIPHER_CTX_reset(s.ctx);
      s.cipher = nullptr;
      return nullptr;
    }
    s.cipher = c;
    s.tag = tag;
    s.referenced = true;
    ++in_use_;
    ++misses_;
    *hint = static_cast<std::uint32_t>(i);
    return s.ctx;
  }

  std::vector<Slot> slots_;
  std::size_t capacity_ = kDefaultContextCacheCapacity;
  std::size_t hand_ = 0;
  std::size_t in_use_ = 0;
  std::uint64_t hits_ = 0, misses_ = 0;
};

// The calling thread's cache: made on first use, freed at thread exit. The pointer and flag
// are trivially destructible, so an Sa destroyed after the reaper ran (a static Sa at exit)
// finds "gone" instead of a destroyed object.
thread_local ContextCache* t_cache = nullptr;
thread_local bool t_cache_gone = false;
struct CacheReaper {
  bool armed = false;
  ~CacheReaper() {
    delete t_cache;
    t_cache = nullptr;
    t_cache_gone = true;
  }
};
thread_local CacheReaper t_reaper;

ContextCache* thread_cache() {
  if (t_cache != nullptr) [[likely]]
    return t_cache;
  if (t_cache_gone) return nullptr;  // the thread is exiting
  t_cache = new ContextCache;
  t_reaper.armed = true;  // odr-use: constructs the reaper, which registers its destructor
  return t_cache;
}

std::atomic<std::uint64_t> g_next_sa_id{1};

std::uint64_t tag_of(std::uint64_t id, bool open) {
  return (id << 1) | (open ? 1u : 0u);
}

}  // namespace

void set_context_cache_capacity(std::size_t capacity) {
  if (ContextCache* c = thread_cache()) c->set_capacity(capacity);
}

ContextCacheStats context_cache_stats() {
  const ContextCache* c = thread_cache();
  return c != nullptr ? c->stats() : ContextCacheStats{};
}

Sa::Sa(const Key& key, Use use, std::uint64_t id)
    : key_(key.bytes.clone()),
      id_(id),
      hint_{UINT32_MAX, UINT32_MAX},
      version_(key.version),
      use_(use) {}

Sa::Sa(Sa&& o) noexcept
    : key_(std::move(o.key_)),
      id_(o.id_),
      hint_{o.hint_[0], o.hint_[1]},
      version_(o.version_),
      use_(o.use_) {
  o.id_ = 0;  // the cached contexts now belong to this Sa (same id)
}

Sa& Sa::operator=(Sa&& o) noexcept {
  if (this != &o) {
    release();
    key_ = std::move(o.key_);
    id_ = o.id_;
    hint_[0] = o.hint_[0];
    hint_[1] = o.hint_[1];
    version_ = o.version_;
    use_ = o.use_;
    o.id_ = 0;
  }
  return *this;
}

Sa::~Sa() {
  release();
}

void Sa::release() {
  if (id_ == 0 || t_cache == nullptr) return;
  t_cache->release(tag_of(id_, false), hint_[0]);
  t_cache->release(tag_of(id_, true), hint_[1]);
  id_ = 0;
}

Result<Sa> Sa::create(const Key& key, Use use) {
  // Whether this OpenSSL can do AES-GCM at all: checked once, so a broken build fails here
  // (as before, when every Sa set up its contexts) and not on the first packet.
  static const bool usable = [] {
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    const std::uint8_t zero[32] = {};
    const bool ok = c != nullptr &&
                    EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), nullptr, zero, nullptr) == 1 &&
                    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), nullptr, zero, nullptr) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok;
  }();
  if (!usable) return fail(Errc::crypto, "psp: AES-GCM key setup");
  return Sa(key, use, g_next_sa_id.fetch_add(1, std::memory_order_relaxed));
}

std::size_t Sa::seal(const wire::PspHeader& hdr, ConstByteSpan payload, ByteSpan out) {
  if (use_ == Use::open || id_ == 0) return 0;  // an open-only Sa: out is left untouched
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
  ContextCache* cache = thread_cache();
  EVP_CIPHER_CTX* ctx =
      cache != nullptr ? cache->get(tag_of(id_, false), &hint_[0], key_.data(), version_, false)
                       : nullptr;
  if (ctx == nullptr) return 0;
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
  if (use_ == Use::seal || id_ == 0) return wire::DropReason::auth_failed;  // a seal-only Sa
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
  ContextCache* cache = thread_cache();
  EVP_CIPHER_CTX* ctx = cache != nullptr
                            ? cache->get(tag_of(id_, true), &hint_[1], key_.data(), version_, true)
                            : nullptr;
  if (ctx == nullptr) return wire::DropReason::auth_failed;
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
