// store::Database on real files in a temporary directory: WAL, file mode, every column type,
// statement reuse, transactions, migrations, two connections, errors.
#include "ie/store/sqlite.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

namespace ie::store {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ie-store-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/state.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

const Migration kSchema[] = {
    {1,
     "CREATE TABLE peers(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, key BLOB, score "
     "REAL);"},
    {2,
     "ALTER TABLE peers ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;"
     "CREATE INDEX peers_pinned ON peers(pinned);"},
};

TEST_F(StoreTest, OpensInWalModeWithPrivateFile) {
  auto db = Database::open(path_);
  ASSERT_TRUE(db.ok()) << db.error().to_string();
  EXPECT_EQ(db->journal_mode().value(), "wal");
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// Reads a one-row, one-column integer query.
std::int64_t query_int(Database& db, const std::string& sql) {
  auto st = db.prepare(sql);
  EXPECT_TRUE(st.ok()) << sql;
  if (!st.ok()) return -1;
  auto row = st->step();
  EXPECT_TRUE(row.ok() && *row) << sql;
  return st->column_int(0);
}

TEST_F(StoreTest, ConnectionSettingsAndWalFileArePrivate) {
  Options o;
  o.busy_timeout_ms = 1234;
  auto db = Database::open(path_, o);
  ASSERT_TRUE(db.ok()) << db.error().to_string();
  EXPECT_EQ(query_int(*db, "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(query_int(*db, "PRAGMA synchronous"), 1);  // NORMAL
  EXPECT_EQ(query_int(*db, "PRAGMA busy_timeout"), 1234);
  ASSERT_TRUE(migrate(*db, kSchema).ok());
  ASSERT_TRUE(db->exec("INSERT INTO peers(name) VALUES('a')").ok());
  for (const char* suffix : {"-wal", "-shm"}) {
    struct stat st {};
    ASSERT_EQ(::stat((path_ + suffix).c_str(), &st), 0) << suffix;
    EXPECT_EQ(st.st_mode & 0077, 0u) << suffix;  // sqlite copies the main file's mode
  }
}

TEST_F(StoreTest, ForeignKeysAreEnforced) {
  auto db = Database::open(path_);
  ASSERT_TRUE(db->exec("CREATE TABLE g(id INTEGER PRIMARY KEY);"
                       "CREATE TABLE m(g INTEGER NOT NULL REFERENCES g(id));")
                  .ok());
  auto r = db->exec("INSERT INTO m VALUES(5)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().context.find("FOREIGN KEY"), std::string::npos) << r.error().context;
  ASSERT_TRUE(db->exec("INSERT INTO g VALUES(5); INSERT INTO m VALUES(5);").ok());
}

TEST_F(StoreTest, ReadOnlyHandleCannotWrite) {
  {
    auto db = Database::open(path_);
    ASSERT_TRUE(db->migrate(kSchema).ok());
  }
  Options ro;
  ro.read_only = true;
  auto db = Database::open(path_, ro);
  ASSERT_TRUE(db.ok()) << db.error().to_string();
  EXPECT_EQ(db->user_version().value(), 2);
  auto w = db->exec("INSERT INTO peers(name) VALUES('x')");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, Errc::permission);
}

TEST_F(StoreTest, SecondWriterGetsBusyAfterTheTimeout) {
  auto a = Database::open(path_);
  Options o;
  o.busy_timeout_ms = 50;
  auto b = Database::open(path_, o);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(a->migrate(kSchema).ok());
  auto tx = Transaction::begin(*a);
  ASSERT_TRUE(tx.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto tb = Transaction::begin(*b);
  ASSERT_FALSE(tb.ok());
  EXPECT_EQ(tb.error().code, Errc::busy);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(40));
  ASSERT_TRUE(tx->commit().ok());
  auto again = Transaction::begin(*b);
  EXPECT_TRUE(again.ok());
}

TEST_F(StoreTest, MissingFileWithoutCreateIsNotFound) {
  OpenOptions o;
  o.create = false;
  auto db = Database::open(dir_ + "/nope.db", o);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, Errc::not_found);
  EXPECT_NE(db.error().context.find("nope.db"), std::string::npos);
}

TEST_F(StoreTest, EveryColumnTypeRoundTrips) {
  auto db = Database::open(path_);
  ASSERT_TRUE(db->migrate(kSchema).ok());
  auto ins = db->prepare("INSERT INTO peers(name, key, score) VALUES(?, ?, ?)");
  ASSERT_TRUE(ins.ok());
  const Bytes blob = {0, 1, 0, 255, 0};
  ASSERT_TRUE(ins->bind(1, std::string_view("sn1")).ok());
  ASSERT_TRUE(ins->bind(2, ConstByteSpan(blob)).ok());
  ASSERT_TRUE(ins->bind(3, 2.5).ok());
  ASSERT_TRUE(ins->run().ok());
  ins->reset();
  ASSERT_TRUE(ins->bind(1, std::string_view("sn2")).ok());
  ASSERT_TRUE(ins->bind(2, ConstByteSpan()).ok());
  ASSERT_TRUE(ins->bind_null(3).ok());
  ASSERT_TRUE(ins->run().ok());
  EXPECT_EQ(db->last_insert_rowid(), 2);

  auto sel = db->prepare("SELECT name, key, score, pinned, length(key) FROM peers ORDER BY id");
  ASSERT_TRUE(sel->step().value());
  EXPECT_EQ(sel->column_text(0), "sn1");
  EXPECT_EQ(sel->column_blob(1), blob);
  EXPECT_DOUBLE_EQ(sel->column_double(2), 2.5);
  EXPECT_EQ(sel->column_int(3), 0);
  ASSERT_TRUE(sel->step().value());
  EXPECT_EQ(sel->column_text(0), "sn2");
  EXPECT_FALSE(sel->column_is_null(1));  // an empty blob, not NULL
  EXPECT_EQ(sel->column_int(4), 0);
  EXPECT_TRUE(sel->column_is_null(2));
  EXPECT_FALSE(sel->step().value());
}

TEST_F(StoreTest, CachedStatementsAreReused) {
  auto db = Database::open(path_);
  ASSERT_TRUE(db->migrate(kSchema).ok());
  const std::string sql = "INSERT INTO peers(name) VALUES(?)";
  Statement* first = nullptr;
  for (int i = 0; i < 100; ++i) {
    auto st = db->cached(sql);
    ASSERT_TRUE(st.ok());
    if (first == nullptr) first = *st;
    EXPECT_EQ(*st, first);
    ASSERT_TRUE((*st)->bind(1, std::string_view("p" + std::to_string(i))).ok());
    ASSERT_TRUE((*st)->run().ok());
  }
  auto count = db->prepare("SELECT count(*) FROM peers");
  ASSERT_TRUE(count->step().value());
  EXPECT_EQ(count->column_int(0), 100);
}

TEST_F(StoreTest, TransactionRollsBackUnlessCommitted) {
  auto db = Database::open(path_);
  ASSERT_TRUE(db->migrate(kSchema).ok());
  {
    auto tx = Transaction::begin(*db);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(db->exec("INSERT INTO peers(name) VALUES('gone')").ok());
  }
  {
    auto tx = Transaction::begin(*db);
    ASSERT_TRUE(db->exec("INSERT INTO peers(name) VALUES('kept')").ok());
    ASSERT_TRUE(tx->commit().ok());
    EXPECT_FALSE(tx->commit().ok());
  }
  auto sel = db->prepare("SELECT group_concat(name) FROM peers");
  ASSERT_TRUE(sel->step().value());
  EXPECT_EQ(sel->column_text(0), "kept");
}

TEST_F(StoreTest, MigrationsApplyOnceInOrder) {
  {
    auto db = Database::open(path_);
    ASSERT_TRUE(db->migrate(std::span(kSchema, 1)).ok());
    EXPECT_EQ(db->user_version().value(), 1);
  }
  auto db = Database::open(path_);
  ASSERT_TRUE(db->migrate(kSchema).ok());
  EXPECT_EQ(db->user_version().value(), 2);
  ASSERT_TRUE(db->migrate(kSchema).ok());  // idempotent
  EXPECT_EQ(db->user_version().value(), 2);
  EXPECT_TRUE(db->exec("INSERT INTO peers(name, pinned) VALUES('x', 1)").ok());
}

TEST_F(StoreTest, RefusesANewerDatabaseAndKeepsVersionOnFailure) {
  auto db = Database::open(path_);
  ASSERT_TRUE(db->migrate(kSchema).ok());
  auto older = db->migrate(std::span(kSchema, 1));
  ASSERT_FALSE(older.ok());
  EXPECT_EQ(older.error().code, Errc::unsupported);

  const Migration broken[] = {kSchema[0], kSchema[1], {3, "CREATE TABLE t(a); THIS IS NOT SQL;"}};
  auto r = db->migrate(broken);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().context.find("migration 3"), std::string::npos);
  EXPECT_EQ(db->user_version().value(), 2);
  // The half-applied step was rolled back: table t does not exist.
  EXPECT_FALSE(db->exec("INSERT INTO t VALUES(1)").ok());
  const Migration gap[] = {{1, "SELECT 1"}, {3, "SELECT 1"}};
  EXPECT_FALSE(db->migrate(gap).ok());
}

TEST_F(StoreTest, ReaderSeesCommittedDataWhileWriterHoldsATransaction) {
  auto w = Database::open(path_);
  ASSERT_TRUE(w->migrate(kSchema).ok());
  ASSERT_TRUE(w->exec("INSERT INTO peers(name) VALUES('a')").ok());
  OpenOptions ro;
  ro.read_only = true;
  auto r = Database::open(path_, ro);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  auto tx = Transaction::begin(*w);
  ASSERT_TRUE(w->exec("INSERT INTO peers(name) VALUES('b')").ok());
  auto count = r->prepare("SELECT count(*) FROM peers");
  ASSERT_TRUE(count->step().value());  // WAL: the reader is not blocked by the writer
  EXPECT_EQ(count->column_int(0), 1);
  ASSERT_TRUE(tx->commit().ok());
  count->reset();
  ASSERT_TRUE(count->step().value());
  EXPECT_EQ(count->column_int(0), 2);
}

TEST_F(StoreTest, BadSqlAndConstraintsReportErrors) {
  auto db = Database::open(path_);
  ASSERT_TRUE(db->migrate(kSchema).ok());
  auto bad = db->prepare("SELEKT 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().context.find("syntax error"), std::string::npos);
  ASSERT_TRUE(db->exec("INSERT INTO peers(name) VALUES('dup')").ok());
  auto dup = db->exec("INSERT INTO peers(name) VALUES('dup')");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::exists);
}

}  // namespace
}  // namespace ie::store
