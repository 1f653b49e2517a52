// X25519 key files and the text form of public keys, shared by iesn, ied and the test tools.
// A key file is one line: the base64 (standard alphabet, padded: 44 characters) of the
// 32-byte private key, optionally followed by one '\n', in a regular file only its owner may
// read or write. Everything that held key bytes (read buffers, base64 text) is wiped.
#pragma once

#include <string>
#include <string_view>

#include "ie/crypto/noise.hpp"
#include "ie/util/result.hpp"

namespace ie::crypto {

// Refuses a file readable or writable by group/other (Errc::permission, naming the chmod to
// run), anything but a regular file, and any other content (Errc::parse); a missing file is
// Errc::not_found. The public key is derived with crypto_scalarmult_base.
Result<noise::KeyPair> load_private_key(const std::string& path);
// Writes kp's private key to a new file of mode 0600: a temporary file created with O_EXCL
// next to path, fsynced, then linked into place; refuses to replace an existing file
// (Errc::exists). Never logs the key.
Result<void> write_private_key(const std::string& path, const noise::KeyPair& kp);
std::string key_to_base64(const noise::PublicKey& k);
// Exactly 44 characters of padded standard base64 decoding to 32 bytes, not all zero.
Result<noise::PublicKey> key_from_base64(std::string_view text);

}  // namespace ie::crypto
