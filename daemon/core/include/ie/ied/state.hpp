// ied's persistent state: one SQLite database (WAL, mode 0600) in the state directory,
// `state.db`. It holds the host's identity (its X25519 static key, created on first start,
// never logged), the SN keys pinned on first use (like SSH's known hosts: a discovered SN
// whose key differs from its pinned key is refused until re-pinned) and the out-of-band
// invocations wanted from the first-hop SNs (`iectl service enable`). Schema changes are
// migrations (ie/store/sqlite.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ie/crypto/noise.hpp"
#include "ie/link/invocation.hpp"
#include "ie/store/sqlite.hpp"
#include "ie/util/result.hpp"

namespace ie::ied {

enum class PinResult { pinned_now, matches, mismatch };

class State {
 public:
  // Opens (creating the directory 0700 and the database 0600 if needed) dir/state.db.
  static Result<State> open(const std::string& dir);

  // The identity key pair: created (and stored) on first call.
  Result<crypto::noise::KeyPair> identity();

  // Trust on first use: pins the key of an SN name the first time it is seen; afterwards
  // tells whether a key matches the pinned one.
  Result<PinResult> check_pin(const std::string& sn_name, const crypto::noise::PublicKey& key);
  // Replaces a pin (an operator accepted a new key).
  Result<void> repin(const std::string& sn_name, const crypto::noise::PublicKey& key);
  Result<std::optional<crypto::noise::PublicKey>> pinned(const std::string& sn_name);

  // The out-of-band invocations, in their order; set_invocations replaces them all (one
  // transaction: all or nothing). Stored as given: the caller checks them.
  Result<std::vector<link::Invocation>> invocations();
  Result<void> set_invocations(const std::vector<link::Invocation>& list);

  const std::string& path() const { return path_; }

 private:
  State(store::Database db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}
  store::Database db_;
  std::string path_;
};

}  // namespace ie::ied
