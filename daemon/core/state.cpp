// ied's state database (state.hpp).
#include "ie/ied/state.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <ctime>

#include "ie/util/secret.hpp"

namespace ie::ied {
namespace {

constexpr store::Migration kMigrations[] = {
    {1, R"sql(
      CREATE TABLE identity (id INTEGER PRIMARY KEY CHECK (id = 1), private_key BLOB NOT NULL,
                             created INTEGER NOT NULL);
      CREATE TABLE sn_pin (name TEXT PRIMARY KEY, public_key BLOB NOT NULL,
                           pinned_at INTEGER NOT NULL);
    )sql"},
    // Out-of-band invocations wanted from the first-hop SNs, in the order they were enabled.
    {2, R"sql(
      CREATE TABLE oob_invocation (position INTEGER PRIMARY KEY, service TEXT NOT NULL,
                                   direction TEXT NOT NULL, prefix TEXT NOT NULL);
    )sql"},
};

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

}  // namespace

Result<State> State::open(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return fail(errno == EACCES ? Errc::permission : Errc::io, "create state directory " + dir,
                errno);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return fail(Errc::invalid_argument, "state directory " + dir + " is not a directory");
  const std::string path = dir + "/state.db";
  auto db = store::Database::open(path);
  if (!db) return fail(db.error());
  if (auto m = db->migrate(kMigrations); !m) return fail(m.error());
  return State(std::move(*db), path);
}

Result<crypto::noise::KeyPair> State::identity() {
  auto q = db_.cached("SELECT private_key FROM identity WHERE id = 1");
  if (!q) return fail(q.error());
  auto row = (*q)->step();
  if (!row) return fail(row.error());
  if (*row) {
    Bytes b = (*q)->column_blob(0);
    (*q)->reset();
    if (b.size() != 32) {
      secure_wipe(b.data(), b.size());
      return fail(Errc::parse, path_ + ": identity key is not 32 bytes");
    }
    Key32 priv;
    std::copy(b.begin(), b.end(), priv.data());
    secure_wipe(b.data(), b.size());
    return crypto::noise::KeyPair::from_private(priv.span());
  }
  (*q)->reset();
  auto kp = crypto::noise::KeyPair::generate();
  auto ins = db_.cached("INSERT INTO identity (id, private_key, created) VALUES (1, ?, ?)");
  if (!ins) return fail(ins.error());
  if (auto r = (*ins)->bind(1, ConstByteSpan(kp.priv.data(), kp.priv.size())); !r)
    return fail(r.error());
  if (auto r = (*ins)->bind(2, unix_now()); !r) return fail(r.error());
  if (auto r = (*ins)->run(); !r) return fail(r.error());
  return kp;
}

Result<std::optional<crypto::noise::PublicKey>> State::pinned(const std::string& sn_name) {
  auto q = db_.cached("SELECT public_key FROM sn_pin WHERE name = ?");
  if (!q) return fail(q.error());
  if (auto r = (*q)->bind(1, sn_name); !r) return fail(r.error());
  auto row = (*q)->step();
  if (!row) return fail(row.error());
  std::optional<crypto::noise::PublicKey> out;
  if (*row) {
    const Bytes b = (*q)->column_blob(0);
    if (b.size() == 32) {
      crypto::noise::PublicKey k{};
      std::copy(b.begin(), b.end(), k.begin());
      out = k;
    }
  }
  (*q)->reset();
  return out;
}

Result<PinResult> State::check_pin(const std::string& sn_name,
                                   const crypto::noise::PublicKey& key) {
  auto have = pinned(sn_name);
  if (!have) return fail(have.error());
  if (*have) return **have == key ? PinResult::matches : PinResult::mismatch;
  if (auto r = repin(sn_name, key); !r) return fail(r.error());
  return PinResult::pinned_now;
}

Result<void> State::repin(const std::string& sn_name, const crypto::noise::PublicKey& key) {
  auto q = db_.cached(
      "INSERT INTO sn_pin (name, public_key, pinned_at) VALUES (?, ?, ?) "
      "ON CONFLICT(name) DO UPDATE SET public_key = excluded.public_key, "
      "pinned_at = excluded.pinned_at");
  if (!q) return fail(q.error());
  if (auto r = (*q)->bind(1, sn_name); !r) return fail(r.error());
  if (auto r = (*q)->bind(2, ConstByteSpan(key.data(), key.size())); !r) return fail(r.error());
  if (auto r = (*q)->bind(3, unix_now()); !r) return fail(r.error());
  return (*q)->run();
}

}  // namespace ie::ied

namespace ie::ied {

Result<std::vector<link::Invocation>> State::invocations() {
  auto q = db_.cached("SELECT service, direction, prefix FROM oob_invocation ORDER BY position");
  if (!q) return fail(q.error());
  std::vector<link::Invocation> out;
  for (;;) {
    auto row = (*q)->step();
    if (!row) {
      (*q)->reset();
      return fail(row.error());
    }
    if (!*row) break;
    out.push_back({(*q)->column_text(0), (*q)->column_text(1), (*q)->column_text(2)});
  }
  (*q)->reset();
  return out;
}

Result<void> State::set_invocations(const std::vector<link::Invocation>& list) {
  auto tx = store::Transaction::begin(db_);
  if (!tx) return fail(tx.error());
  if (auto r = db_.exec("DELETE FROM oob_invocation"); !r) return fail(r.error());
  auto ins = db_.cached(
      "INSERT INTO oob_invocation (position, service, direction, prefix) VALUES (?, ?, ?, ?)");
  if (!ins) return fail(ins.error());
  for (std::size_t i = 0; i < list.size(); ++i) {
    store::Statement& q = **ins;
    q.reset();
    if (auto r = q.bind(1, static_cast<std::int64_t>(i)); !r) return fail(r.error());
    if (auto r = q.bind(2, list[i].service); !r) return fail(r.error());
    if (auto r = q.bind(3, list[i].direction); !r) return fail(r.error());
    if (auto r = q.bind(4, list[i].prefix); !r) return fail(r.error());
    if (auto r = q.run(); !r) return fail(r.error());
  }
  return tx->commit();
}

}  // namespace ie::ied
