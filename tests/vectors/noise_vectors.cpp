// Checks Noise test vectors (the cacophony / snow JSON format) against libie's Noise engine:
// both sides of every handshake are run from the vector's fixed keys, every handshake and
// transport ciphertext is compared byte for byte, every payload is decrypted back, and the
// handshake hash (when the vector has one) must match.
#include <optional>
#include <string>

#include "ie/crypto/noise.hpp"
#include "ie/util/bytes.hpp"
#include "vector_check.hpp"

namespace ie::vectors {
namespace {

namespace noise = ie::crypto::noise;
using nlohmann::json;

std::optional<Bytes> hex_field(const json& v, const char* key) {
  if (!v.contains(key) || !v[key].is_string()) return std::nullopt;
  return from_hex(v[key].get<std::string>());
}

std::optional<noise::PublicKey> pub_field(const json& v, const char* key) {
  auto b = hex_field(v, key);
  if (!b || b->size() != noise::kDhLen) return std::nullopt;
  noise::PublicKey k;
  std::copy(b->begin(), b->end(), k.begin());
  return k;
}

std::optional<noise::KeyPair> pair_field(const json& v, const char* key) {
  auto b = hex_field(v, key);
  if (!b || b->size() != noise::kDhLen) return std::nullopt;
  return noise::KeyPair::from_private(
      std::span<const std::uint8_t, noise::kDhLen>(b->data(), noise::kDhLen));
}

noise::HandshakeConfig side_config(const json& v, bool initiator) {
  const std::string p = initiator ? "init_" : "resp_";
  noise::HandshakeConfig cfg;
  cfg.protocol_name = v.value("protocol_name", "");
  cfg.initiator = initiator;
  cfg.prologue = hex_field(v, (p + "prologue").c_str()).value_or(Bytes{});
  cfg.s = pair_field(v, (p + "static").c_str());
  cfg.e = pair_field(v, (p + "ephemeral").c_str());
  cfg.rs = pub_field(v, (p + "remote_static").c_str());
  cfg.re = pub_field(v, (p + "remote_ephemeral").c_str());
  if (v.contains(p + "psks") && v[p + "psks"].is_array()) {
    for (const auto& k : v[p + "psks"]) {
      auto b = k.is_string() ? from_hex(k.get<std::string>()) : std::nullopt;
      if (b && b->size() == 32) {
        cfg.psks.emplace_back(std::span<const std::uint8_t, 32>(b->data(), 32));
      }
    }
  }
  return cfg;
}

// Runs one vector; returns an empty string on success, else what went wrong.
std::string run_vector(const json& v) {
  auto init = noise::HandshakeState::create(side_config(v, true));
  if (!init) return "initiator: " + init.error().to_string();
  auto resp = noise::HandshakeState::create(side_config(v, false));
  if (!resp) return "responder: " + resp.error().to_string();
  if (!v.contains("messages") || !v["messages"].is_array()) return "no messages";

  std::optional<std::pair<noise::CipherState, noise::CipherState>> ik, rk;
  std::size_t handshake_messages = 0;
  Bytes out(noise::kMaxMessageLen), plain(noise::kMaxMessageLen);
  std::size_t i = 0;
  for (const auto& m : v["messages"]) {
    auto payload = hex_field(m, "payload");
    auto expect = hex_field(m, "ciphertext");
    if (!payload || !expect) return "message " + std::to_string(i) + ": bad hex";
    const std::string where = "message " + std::to_string(i);
    if (!ik) {
      noise::HandshakeState& tx = init->my_turn_to_write() ? *init : *resp;
      noise::HandshakeState& rx = init->my_turn_to_write() ? *resp : *init;
      auto w = tx.write_message(*payload, out);
      if (!w) return where + " write: " + w.error().to_string();
      if (Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*w)) != *expect) {
        return where + ": ciphertext differs";
      }
      auto r = rx.read_message(*expect, plain);
      if (!r) return where + " read: " + r.error().to_string();
      if (Bytes(plain.begin(), plain.begin() + static_cast<std::ptrdiff_t>(*r)) != *payload) {
        return where + ": decrypted payload differs";
      }
      ++handshake_messages;
      if (init->is_complete() && resp->is_complete()) {
        auto a = init->split();
        auto b = resp->split();
        if (!a || !b) return "split failed";
        ik.emplace(std::move(*a));
        rk.emplace(std::move(*b));
        if (v.contains("handshake_hash")) {
          auto hh = hex_field(v, "handshake_hash");
          const auto ih = init->handshake_hash();
          const auto rh = resp->handshake_hash();
          if (!hh || Bytes(ih.begin(), ih.end()) != *hh || Bytes(rh.begin(), rh.end()) != *hh) {
            return "handshake hash differs";
          }
        }
      }
    } else {
      // Transport: one-way patterns send initiator -> responder only; otherwise the sender
      // alternates with the message index, as in the handshake.
      const bool from_initiator = handshake_messages == 1 || i % 2 == 0;
      noise::CipherState& enc = from_initiator ? ik->first : rk->second;
      noise::CipherState& dec = from_initiator ? rk->first : ik->second;
      auto w = enc.encrypt_with_ad({}, *payload, out);
      if (!w) return where + " encrypt: " + w.error().to_string();
      if (Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*w)) != *expect) {
        return where + ": transport ciphertext differs";
      }
      auto r = dec.decrypt_with_ad({}, *expect, plain);
      if (!r) return where + " decrypt: " + r.error().to_string();
      if (Bytes(plain.begin(), plain.begin() + static_cast<std::ptrdiff_t>(*r)) != *payload) {
        return where + ": transport payload differs";
      }
    }
    ++i;
  }
  if (!ik) return "handshake did not complete";
  return {};
}

}  // namespace

bool is_noise_vectors(const json& doc) {
  return doc.is_object() && doc.contains("vectors") && doc["vectors"].is_array();
}

void check_noise_vectors(const json& doc, const std::string& file, Report& report) {
  std::size_t index = 0;
  for (const auto& v : doc["vectors"]) {
    const std::string name = v.is_object() ? v.value("protocol_name", "?") : "?";
    const std::string id = file + "#" + std::to_string(index) + " " + name;
    ++index;
    if (!v.is_object()) {
      report.fail(id + ": not an object");
      continue;
    }
    if (name.find("_25519_ChaChaPoly_BLAKE2b") == std::string::npos) {
      report.skip(id + ": only 25519/ChaChaPoly/BLAKE2b is implemented");
      continue;
    }
    if (v.contains("fallback") || v.contains("fail")) {
      report.skip(id + ": fallback/failure vectors are not implemented");
      continue;
    }
    const std::string err = run_vector(v);
    if (err.empty()) {
      report.pass();
    } else {
      report.fail(id + ": " + err);
    }
  }
}

}  // namespace ie::vectors
