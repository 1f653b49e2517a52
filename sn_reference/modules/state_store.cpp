// Module checkpoints (ie_sn_host.state_save / state_load): named blobs per module in the SN's
// state database (sqlite through ie::store, WAL mode), kept across restarts.
//
// The schema is versioned with ie::store migrations (PRAGMA user_version): the database file
// belongs to this runtime's schema; anything else that wants to keep state in the same file
// must append its tables to this migration list.
#include <ctime>

#include "runtime_internal.hpp"

namespace ie::sn::detail {
namespace {

constexpr store::Migration kMigrations[] = {
    {1,
     "CREATE TABLE module_state ("
     "  module  TEXT NOT NULL,"
     "  name    TEXT NOT NULL,"
     "  value   BLOB NOT NULL,"
     "  updated INTEGER NOT NULL,"  // unix seconds
     "  PRIMARY KEY (module, name)"
     ") WITHOUT ROWID;"},
};

}  // namespace

Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& path) {
  auto db = store::Database::open(path);
  if (!db) {
    auto e = db.error();
    e.context = "module state database: " + e.context;
    return fail(std::move(e));
  }
  if (auto m = db->migrate(kMigrations); !m) {
    auto e = m.error();
    e.context = "module state database " + path + ": " + e.context;
    return fail(std::move(e));
  }
  return std::unique_ptr<StateStore>(new StateStore(std::move(*db)));
}

Result<void> StateStore::save(std::string_view module, std::string_view name, ConstByteSpan data) {
  std::lock_guard lock(mu_);
  auto st = db_.cached(
      "INSERT INTO module_state (module, name, value, updated) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT (module, name) DO UPDATE SET value = excluded.value, "
      "updated = excluded.updated");
  if (!st) return fail(st.error());
  IE_TRY((*st)->bind(1, module));
  IE_TRY((*st)->bind(2, name));
  IE_TRY((*st)->bind(3, data));
  IE_TRY((*st)->bind(4, static_cast<std::int64_t>(std::time(nullptr))));
  return (*st)->run();
}

Result<std::optional<Bytes>> StateStore::load(std::string_view module, std::string_view name) {
  std::lock_guard lock(mu_);
  auto st = db_.cached("SELECT value FROM module_state WHERE module = ?1 AND name = ?2");
  if (!st) return fail(st.error());
  IE_TRY((*st)->bind(1, module));
  IE_TRY((*st)->bind(2, name));
  auto row = (*st)->step();
  if (!row) return fail(row.error());
  if (!*row) return std::optional<Bytes>();
  std::optional<Bytes> out((*st)->column_blob(0));
  (*st)->reset();
  return out;
}

}  // namespace ie::sn::detail
