// Checks PSP known-answer vectors (format: tests/vectors/data/psp/README.md) against libie:
// key derivation entries must derive the expected key; "accept" packets must open to the
// payload and seal back to the packet byte for byte; "reject" packets must fail to open.
#include <optional>
#include <string>

#include "ie/crypto/psp.hpp"
#include "ie/util/bytes.hpp"
#include "vector_check.hpp"

namespace ie::vectors {
namespace {

namespace psp = ie::crypto::psp;
using nlohmann::json;

std::optional<Bytes> hex(const json& v, const char* key) {
  if (!v.contains(key) || !v[key].is_string()) return std::nullopt;
  return from_hex(v[key].get<std::string>());
}

std::optional<std::uint32_t> spi_field(const json& v) {
  auto b = hex(v, "spi");
  if (!b || b->size() != 4) return std::nullopt;
  return load_be32(b->data());
}

std::optional<psp::Version> version_field(const json& v) {
  if (!v.contains("version") || !v["version"].is_number_integer()) return std::nullopt;
  const int n = v["version"].get<int>();
  if (n == 0) return psp::Version::aes_gcm_128;
  if (n == 1) return psp::Version::aes_gcm_256;
  return std::nullopt;
}

std::string check_kdf(const json& v) {
  auto m0 = hex(v, "master_key_0");
  auto m1 = hex(v, "master_key_1");
  auto expect = hex(v, "derived_key");
  auto spi = spi_field(v);
  auto ver = version_field(v);
  if (!m0 || !m1 || !expect || !spi || !ver || m0->size() != 32 || m1->size() != 32) {
    return "malformed entry";
  }
  const Key32 k0(std::span<const std::uint8_t, 32>(m0->data(), 32));
  const Key32 k1(std::span<const std::uint8_t, 32>(m1->data(), 32));
  const psp::Key key = psp::derive_key(k0, k1, *spi, *ver);
  const auto got = key.span();
  if (Bytes(got.begin(), got.end()) != *expect) {
    return "derived key differs (got " + to_hex(got) + ")";
  }
  return {};
}

std::string check_packet(const json& v) {
  auto key_bytes = hex(v, "key");
  auto iv = hex(v, "iv");
  auto payload = hex(v, "payload");
  auto packet = hex(v, "packet");
  auto spi = spi_field(v);
  auto ver = version_field(v);
  const std::string expect = v.value("expect", "");
  if (!key_bytes || !iv || !payload || !packet || !spi || !ver || iv->size() != 8 ||
      key_bytes->size() != psp::key_len(*ver) || !v.contains("next_header") ||
      !v.contains("crypt_offset") || (expect != "accept" && expect != "reject")) {
    return "malformed entry";
  }
  psp::Key key;
  key.version = *ver;
  std::copy(key_bytes->begin(), key_bytes->end(), key.bytes.data());
  auto sa = psp::Sa::create(key);
  if (!sa) return sa.error().to_string();

  Bytes out(packet->size() + 64);
  psp::Opened opened;
  const auto verdict = sa->open(*packet, out, &opened);
  if (expect == "reject") {
    if (verdict == wire::DropReason::none) return "tampered packet was accepted";
    return {};
  }
  if (verdict != wire::DropReason::none) {
    return std::string("open failed: ") + std::string(wire::drop_reason_name(verdict));
  }
  if (Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(opened.payload_len)) !=
      *payload) {
    return "opened payload differs";
  }
  wire::PspHeader h;
  h.next_header = static_cast<std::uint8_t>(v["next_header"].get<int>());
  h.crypt_offset = static_cast<std::uint8_t>(v["crypt_offset"].get<int>());
  h.spi = *spi;
  h.iv = load_be64(iv->data());
  Bytes sealed(payload->size() + 64);
  const std::size_t n = sa->seal(h, *payload, sealed);
  if (n == 0) return "seal failed";
  sealed.resize(n);
  if (sealed != *packet) return "sealed packet differs (got " + to_hex(sealed) + ")";
  return {};
}

}  // namespace

bool is_psp_vectors(const json& doc) {
  return doc.is_object() && (doc.contains("kdf") || doc.contains("packets")) &&
         !doc.contains("vectors");
}

void check_psp_vectors(const json& doc, const std::string& file, Report& report) {
  for (const char* section : {"kdf", "packets"}) {
    if (!doc.contains(section)) continue;
    if (!doc[section].is_array()) {
      report.fail(file + ": \"" + section + "\" is not an array");
      continue;
    }
    std::size_t index = 0;
    for (const auto& v : doc[section]) {
      const std::string id = file + " " + section + "[" + std::to_string(index++) + "]" +
                             (v.is_object() && v.contains("source") && v["source"].is_string()
                                  ? " (" + v["source"].get<std::string>() + ")"
                                  : "");
      if (!v.is_object()) {
        report.fail(id + ": not an object");
        continue;
      }
      const std::string err = std::string(section) == "kdf" ? check_kdf(v) : check_packet(v);
      if (err.empty()) {
        report.pass();
      } else {
        report.fail(id + ": " + err);
      }
    }
  }
}

}  // namespace ie::vectors
