// SQLite wrapper (ie/store/sqlite.hpp).
#include "ie/store/sqlite.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ie::store {
namespace {

// Result codes are extended (sqlite3_extended_result_codes is on for every handle).
Errc errc_for(int rc) {
  if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) return Errc::exists;
  if ((rc & 0xff) == SQLITE_CONSTRAINT) return Errc::invalid_argument;  // NOT NULL, FK, CHECK
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Errc::busy;
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_READONLY:
      return Errc::permission;
    case SQLITE_NOTFOUND:
    case SQLITE_CANTOPEN:
      return Errc::not_found;
    case SQLITE_TOOBIG:
    case SQLITE_FULL:
      return Errc::too_large;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Errc::parse;
    case SQLITE_ERROR:
      return Errc::invalid_argument;
    default:
      return Errc::io;
  }
}

Unexpected sqlite_fail(sqlite3* db, int rc, std::string_view what) {
  std::string ctx(what);
  ctx += ": ";
  ctx += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return fail(errc_for(rc), std::move(ctx));
}

}  // namespace

// ---- Statement -------------------------------------------------------------------------

Statement::Statement(Statement&& o) noexcept : stmt_(o.stmt_), db_(o.db_) {
  o.stmt_ = nullptr;
}
Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    sqlite3_finalize(stmt_);
    stmt_ = o.stmt_;
    db_ = o.db_;
    o.stmt_ = nullptr;
  }
  return *this;
}
Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

Result<void> Statement::check(int rc, const char* what) const {
  if (rc == SQLITE_OK) return ok();
  return sqlite_fail(db_, rc, what);
}

Result<void> Statement::bind(int i, std::int64_t v) {
  return check(sqlite3_bind_int64(stmt_, i, v), "bind");
}
Result<void> Statement::bind(int i, double v) {
  return check(sqlite3_bind_double(stmt_, i, v), "bind");
}
Result<void> Statement::bind(int i, std::string_view t) {
  return check(sqlite3_bind_text64(stmt_, i, t.data(), t.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
               "bind");
}
Result<void> Statement::bind(int i, ConstByteSpan b) {
  // A zero-length blob is still a blob (not NULL): SQLite needs a non-null pointer for that.
  static const std::uint8_t kEmpty = 0;
  return check(
      sqlite3_bind_blob64(stmt_, i, b.empty() ? &kEmpty : b.data(), b.size(), SQLITE_TRANSIENT),
      "bind");
}
Result<void> Statement::bind_null(int i) {
  return check(sqlite3_bind_null(stmt_, i), "bind");
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_fail(db_, rc, "step");
}

Result<void> Statement::run() {
  for (;;) {
    auto r = step();
    if (!r) return fail(r.error());
    if (!*r) return ok();
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Statement::column_is_null(int c) const {
  return sqlite3_column_type(stmt_, c) == SQLITE_NULL;
}
std::int64_t Statement::column_int(int c) const {
  return sqlite3_column_int64(stmt_, c);
}
double Statement::column_double(int c) const {
  return sqlite3_column_double(stmt_, c);
}
std::string Statement::column_text(int c) const {
  const auto* p = sqlite3_column_text(stmt_, c);
  const int n = sqlite3_column_bytes(stmt_, c);
  return p == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}
Bytes Statement::column_blob(int c) const {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, c));
  const int n = sqlite3_column_bytes(stmt_, c);
  return p == nullptr ? Bytes() : Bytes(p, p + n);
}

// ---- Database --------------------------------------------------------------------------

Result<Database> Database::open(const std::string& path, OpenOptions opts) {
  if (opts.create && !opts.read_only && path != ":memory:") {
    // Create the file ourselves so it is 0600 from the first byte (it may hold keys).
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return fail(errno == EACCES ? Errc::permission : Errc::io, "open " + path, errno);
    ::close(fd);
  }
  int flags = opts.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (opts.create && !opts.read_only) flags |= SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    auto err = sqlite_fail(db, rc, "open " + path);
    sqlite3_close(db);
    return err;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, opts.busy_timeout_ms);
  Database d(db);
  if (!opts.read_only) {
    IE_TRY(d.exec("PRAGMA journal_mode=WAL;"));
    auto mode = d.journal_mode();
    if (!mode) return fail(mode.error());
    if (*mode != "wal" && path != ":memory:")
      return fail(Errc::unsupported, "open " + path + ": WAL mode refused");
  }
  IE_TRY(d.exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"));
  return d;
}

Database::Database(Database&& o) noexcept : db_(o.db_), cache_(std::move(o.cache_)) {
  o.db_ = nullptr;
}
Database& Database::operator=(Database&& o) noexcept {
  if (this != &o) {
    cache_.clear();
    sqlite3_close(db_);
    db_ = o.db_;
    cache_ = std::move(o.cache_);
    o.db_ = nullptr;
  }
  return *this;
}
Database::~Database() {
  cache_.clear();  // statements first: sqlite3_close refuses while any is open
  sqlite3_close(db_);
}

Result<void> Database::exec(std::string_view sql) {
  char* msg = nullptr;
  const std::string s(sql);
  const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &msg);
  if (rc == SQLITE_OK) return ok();
  std::string ctx = "exec: ";
  ctx += msg != nullptr ? msg : sqlite3_errstr(rc);
  sqlite3_free(msg);
  return fail(errc_for(rc), std::move(ctx));
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* st = nullptr;
  const char* tail = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &st, &tail);
  if (rc != SQLITE_OK) return sqlite_fail(db_, rc, "prepare");
  if (st == nullptr) return fail(Errc::invalid_argument, "prepare: empty statement");
  return Statement(st, db_);
}

Result<Statement*> Database::cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto st = prepare(sql);
    if (!st) return fail(st.error());
    it = cache_.emplace(sql, std::make_unique<Statement>(std::move(*st))).first;
  }
  it->second->reset();
  return it->second.get();
}

std::int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}
int Database::changes() const {
  return sqlite3_changes(db_);
}

Result<std::string> Database::journal_mode() {
  auto st = prepare("PRAGMA journal_mode");
  if (!st) return fail(st.error());
  auto row = st->step();
  if (!row) return fail(row.error());
  return *row ? st->column_text(0) : std::string();
}

Result<int> Database::user_version() {
  auto st = prepare("PRAGMA user_version");
  if (!st) return fail(st.error());
  auto row = st->step();
  if (!row) return fail(row.error());
  return *row ? static_cast<int>(st->column_int(0)) : 0;
}

Result<void> Database::migrate(std::span<const Migration> migrations) {
  auto cur = user_version();
  if (!cur) return fail(cur.error());
  int newest = 0;
  for (const auto& m : migrations) {
    if (m.version != newest + 1)
      return fail(Errc::invalid_argument, "migrate: versions must be 1, 2, 3...");
    newest = m.version;
  }
  if (*cur > newest) {
    return fail(Errc::unsupported, "migrate: database schema version " + std::to_string(*cur) +
                                       " is newer than this program's " + std::to_string(newest));
  }
  for (const auto& m : migrations) {
    if (m.version <= *cur) continue;
    auto tx = Transaction::begin(*this);
    if (!tx) return fail(tx.error());
    if (auto r = exec(m.sql); !r) {
      return fail(r.error().code,
                  "migration " + std::to_string(m.version) + ": " + r.error().context);
    }
    IE_TRY(exec("PRAGMA user_version=" + std::to_string(m.version)));
    IE_TRY(tx->commit());
  }
  return ok();
}

// ---- Transaction -----------------------------------------------------------------------

Result<Transaction> Transaction::begin(Database& db) {
  IE_TRY(db.exec("BEGIN IMMEDIATE"));
  return Transaction(db);
}

Result<void> Transaction::commit() {
  if (done_) return fail(Errc::invalid_argument, "commit: transaction already finished");
  IE_TRY(db_->exec("COMMIT"));
  done_ = true;
  return ok();
}

Transaction::~Transaction() {
  if (!done_) (void)db_->exec("ROLLBACK");
}

}  // namespace ie::store
