// A small SQLite wrapper for the state InterEdge keeps on disk (pinned keys, group state,
// checkpoints): RAII handles, prepared statements cached per SQL text, transactions that
// roll back unless committed, and schema migrations numbered by PRAGMA user_version.
// Databases run in WAL mode (readers never block the writer) and files are created 0600.
//
// Errors come back as Result with Errc and SQLite's message in the context; nothing throws.
// Not thread-safe: one Database per thread (SQLite's own locking covers several processes
// or several connections to one file).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "ie/util/bytes.hpp"
#include "ie/util/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace ie::store {

class Database;

// A prepared statement. Bind parameters are 1-based, columns 0-based (as in SQLite).
class Statement {
 public:
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) noexcept;
  ~Statement();

  Result<void> bind(int index, std::int64_t v);
  Result<void> bind(int index, double v);
  Result<void> bind(int index, std::string_view text);
  Result<void> bind(int index, ConstByteSpan blob);
  Result<void> bind_null(int index);

  // Runs one step: true if a row is available, false when done.
  Result<bool> step();
  // Runs to completion (statements without rows).
  Result<void> run();
  // Clears bindings and rewinds, ready for reuse.
  void reset();

  bool column_is_null(int col) const;
  std::int64_t column_int(int col) const;
  double column_double(int col) const;
  std::string column_text(int col) const;
  Bytes column_blob(int col) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* s, sqlite3* db) : stmt_(s), db_(db) {}
  Result<void> check(int rc, const char* what) const;

  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;
};

struct OpenOptions {
  bool read_only = false;
  bool create = true;
  int busy_timeout_ms = 5000;
};

using Options = OpenOptions;

struct Migration {
  int version;           // 1, 2, 3... in order
  std::string_view sql;  // may hold several statements
};

class Database {
 public:
  // Opens (creating it 0600 unless opts.create is false or read_only) a database file and
  // sets journal_mode=WAL (verified; not for ":memory:" or read-only handles, which use the
  // file's mode), synchronous=NORMAL, foreign_keys=ON and the busy timeout.
  static Result<Database> open(const std::string& path, OpenOptions opts = {});

  Database(Database&&) noexcept;
  Database& operator=(Database&&) noexcept;
  ~Database();

  // Runs SQL without results (may hold several statements).
  Result<void> exec(std::string_view sql);
  // A new prepared statement (the caller owns it).
  Result<Statement> prepare(std::string_view sql);
  // A prepared statement from this database's cache, reset and ready; valid until the
  // Database is destroyed or the same SQL is fetched again.
  Result<Statement*> cached(const std::string& sql);

  std::int64_t last_insert_rowid() const;
  int changes() const;
  Result<std::string> journal_mode();
  Result<int> user_version();

  // Applies the migrations whose version is above the database's user_version, each in its
  // own transaction, in order. Fails (leaving the database at the last good version) if a
  // step fails, and refuses a database newer than the newest migration.
  Result<void> migrate(std::span<const Migration> migrations);

  sqlite3* handle() { return db_; }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
  std::map<std::string, std::unique_ptr<Statement>> cache_;
};

// Free-function spelling of Database::migrate.
inline Result<void> migrate(Database& db, std::span<const Migration> migrations) {
  return db.migrate(migrations);
}

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> begin(Database& db);
  Transaction(Transaction&& o) noexcept : db_(o.db_), done_(o.done_) { o.done_ = true; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Result<void> commit();

 private:
  explicit Transaction(Database& db) : db_(&db) {}
  Database* db_;
  bool done_ = false;
};

}  // namespace ie::store
