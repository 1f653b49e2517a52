// Fuzz target: the Noise handshake engine fed attacker-chosen handshake and transport
// messages. Input layout: byte 0 picks a handshake pattern (IK, XX, NK, KK, IKpsk2, ...),
// bit 0 of byte 1 picks our role (0 responder, 1 initiator); the rest is a sequence of frames
// (2-byte big-endian length, then that many bytes, the last frame clipped to what is left).
// With fixed statics, ephemerals and psks, our side writes its own messages and reads each
// frame as the peer's next handshake message; once complete, further frames are decrypted as
// transport messages. Nothing may crash or leak, a failed read or write must poison the state
// (later reads refused, no split), and lengths returned must fit what was read.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "ie/crypto/noise.hpp"

namespace {

namespace noise = ie::crypto::noise;

struct Case {
  const char* pattern;
  std::size_t psks;
};

constexpr Case kCases[] = {
    {"IK", 0}, {"XX", 0},          {"NK", 0},     {"KK", 0},   {"IKpsk2", 1}, {"NN", 0},
    {"XK", 0}, {"IX", 0},          {"NNpsk0", 1}, {"X1K1", 0}, {"KN", 0},     {"I1X1", 0},
    {"N", 0},  {"XXpsk0+psk3", 2}, {"K", 0},      {"NX1", 0},
};
constexpr std::size_t kNumCases = sizeof kCases / sizeof kCases[0];
constexpr std::size_t kMaxFrames = 16;

noise::KeyPair fixed_key(std::uint8_t seed) {
  std::array<std::uint8_t, noise::kDhLen> priv;
  for (std::size_t i = 0; i < priv.size(); ++i)
    priv[i] = static_cast<std::uint8_t>(seed * 31 + i);
  return noise::KeyPair::from_private(priv);
}

ie::Key32 fixed_psk(std::size_t n) {
  ie::Key32 k;
  for (std::size_t i = 0; i < k.size(); ++i)
    k.data()[i] = static_cast<std::uint8_t>(0xa0 + n + i);
  return k;
}

// Both roles' configuration for a case: initiator static 1, responder static 2, ephemerals
// 3 (initiator) and 4 (responder); each side gets the keys its pattern calls for.
noise::HandshakeConfig config(const Case& c, bool initiator) {
  const std::string pattern = c.pattern;
  const std::string base = pattern.substr(0, pattern.find("psk"));
  const bool one_way = base.size() == 1;
  const bool init_static = base[0] != 'N';
  const bool init_pre_s = base[0] == 'K';
  const bool resp_pre_s = one_way || base.find('K', 1) != std::string::npos;
  const bool resp_static = one_way || base.find_first_of("KX", 1) != std::string::npos;
  noise::HandshakeConfig cfg;
  cfg.protocol_name = "Noise_" + pattern + "_25519_ChaChaPoly_BLAKE2b";
  cfg.initiator = initiator;
  cfg.prologue = ie::Bytes{'f', 'u', 'z', 'z'};
  if (initiator) {
    if (init_static) cfg.s = fixed_key(1);
    if (resp_pre_s) cfg.rs = fixed_key(2).pub;
    cfg.e = fixed_key(3);
  } else {
    if (resp_static) cfg.s = fixed_key(2);
    if (init_pre_s) cfg.rs = fixed_key(1).pub;
    cfg.e = fixed_key(4);
  }
  for (std::size_t n = 0; n < c.psks; ++n)
    cfg.psks.push_back(fixed_psk(n));
  return cfg;
}

class Frames {
 public:
  Frames(const std::uint8_t* data, std::size_t size) : p_(data), left_(size) {}
  std::optional<ie::ConstByteSpan> next() {
    if (left_ < 2) return std::nullopt;
    std::size_t len = (std::size_t{p_[0]} << 8) | p_[1];
    p_ += 2;
    left_ -= 2;
    if (len > left_) len = left_;
    ie::ConstByteSpan f(p_, len);
    p_ += len;
    left_ -= len;
    return f;
  }

 private:
  const std::uint8_t* p_;
  std::size_t left_;
};

std::uint8_t g_out[noise::kMaxMessageLen + 64];
std::uint8_t g_plain[noise::kMaxMessageLen + 64];

// A failed call must leave the state unusable.
void check_poisoned(noise::HandshakeState& hs, ie::ConstByteSpan last) {
  if (hs.my_turn_to_write() || hs.split().ok()) std::abort();
  if (hs.read_message(last, g_plain).ok()) std::abort();
  if (hs.write_message({}, g_out).ok()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const Case& c = kCases[data[0] % kNumCases];
  const bool as_initiator = (data[1] & 1) != 0;
  auto hs = noise::HandshakeState::create(config(c, as_initiator));
  if (!hs) std::abort();  // the configurations are fixed and complete
  Frames frames(data + 2, size - 2);
  std::size_t used = 0;
  const ie::Bytes payload{'p', 'l'};
  while (!hs->is_complete()) {
    if (hs->my_turn_to_write()) {
      auto w = hs->write_message(payload, g_out);
      if (!w) {  // e.g. a DH with a low-order ephemeral the peer sent
        check_poisoned(*hs, {});
        return 0;
      }
      if (*w > noise::kMaxMessageLen) std::abort();
      continue;
    }
    if (used == kMaxFrames) return 0;
    auto f = frames.next();
    if (!f) return 0;
    ++used;
    auto r = hs->read_message(*f, g_plain);
    if (!r) {
      check_poisoned(*hs, *f);
      return 0;
    }
    if (*r > f->size()) std::abort();
  }
  auto split = hs->split();
  if (!split) std::abort();
  noise::CipherState& rx = as_initiator ? split->second : split->first;
  const noise::CipherState& tx = as_initiator ? split->first : split->second;
  while (used < kMaxFrames) {
    auto f = frames.next();
    if (!f) break;
    ++used;
    auto r = rx.decrypt_with_ad({}, *f, g_plain);
    if (r && *r + noise::kTagLen != f->size()) std::abort();
    // Explicit-nonce round trip of the frame through our sending direction.
    auto w = tx.encrypt_with_nonce(used, {}, *f, g_out);
    if (!w || *w != f->size() + noise::kTagLen) std::abort();
    auto d = tx.decrypt_with_nonce(used, {}, ie::ConstByteSpan(g_out, *w), g_plain);
    if (!d || *d != f->size()) std::abort();
  }
  return 0;
}
