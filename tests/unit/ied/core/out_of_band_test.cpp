// ied's out-of-band invocations without a daemon: the checks an entry passes before it is
// stored (service names, directions, prefixes canonicalised), the set's rules (duplicates
// are no change, at most 32, disabling what is absent is not_found, stored rows checked
// again), and their persistence in the state database (ordered rows, replaced whole, the
// migration from a database of the previous schema).
#include <gtest/gtest.h>
#include <sodium.h>
#include <unistd.h>

#include <filesystem>

#include "ie/ied/out_of_band.hpp"
#include "ie/ied/state.hpp"

namespace ie::ied {
namespace {

using link::Invocation;

TEST(OobValidation, CanonicalEntries) {
  struct Case {
    const char* service;
    const char* direction;
    const char* prefix;
    const char* canonical;
  };
  for (const Case& c : {
           Case{"block", "in", "198.51.100.0/24", "198.51.100.0/24"},
           Case{"block", "out", "10.3.0.7/24", "10.3.0.0/24"},  // host bits cleared
           Case{"qos_2", "both", "fd00:9::1/64", "fd00:9::/64"},
           Case{"a", "in", "10.0.0.1", "10.0.0.1/32"},  // a bare address: one host
           Case{"b", "in", "fd00::1", "fd00::1/128"},
           Case{"x0123456789abcdefghijklmnopqrstu", "in", "0.0.0.0/0", "0.0.0.0/0"},  // 32
           Case{"block", "in", "::/0", "::/0"},
           Case{"block", "in", "10.1.2.3/032", "10.1.2.3/32"},
       }) {
    auto r = make_invocation(c.service, c.direction, c.prefix);
    ASSERT_TRUE(r) << c.prefix << ": " << r.error().to_string();
    EXPECT_EQ(*r, (Invocation{c.service, c.direction, c.canonical}));
  }
}

TEST(OobValidation, BadEntriesNameTheField) {
  struct Case {
    std::string service, direction, prefix, field;
  };
  const std::vector<Case> cases = {
      {"", "in", "10.0.0.0/8", "service"},
      {"Block", "in", "10.0.0.0/8", "service"},
      {"bl-ock", "in", "10.0.0.0/8", "service"},
      {"bl ock", "in", "10.0.0.0/8", "service"},
      {"x0123456789abcdefghijklmnopqrstuv", "in", "10.0.0.0/8", "service"},  // 33
      {std::string("bl\0ck", 5), "in", "10.0.0.0/8", "service"},
      {"blöck", "in", "10.0.0.0/8", "service"},
      {"block", "", "10.0.0.0/8", "direction"},
      {"block", "IN", "10.0.0.0/8", "direction"},
      {"block", "inbound", "10.0.0.0/8", "direction"},
      {"block", "in ", "10.0.0.0/8", "direction"},
      {"block", "in", "", "prefix"},
      {"block", "in", "10.0.0.0/", "prefix"},
      {"block", "in", "10.0.0.0/33", "prefix"},
      {"block", "in", "fd00::/129", "prefix"},
      {"block", "in", "10.0.0.0/-1", "prefix"},
      {"block", "in", "10.0.0.0/+8", "prefix"},
      {"block", "in", "10.0.0.0/8/8", "prefix"},
      {"block", "in", "10.0.0/8", "prefix"},
      {"block", "in", "10.0.0.256/32", "prefix"},
      {"block", "in", "example.com/24", "prefix"},
      {"block", "in", "/24", "prefix"},
      {"block", "in", " 10.0.0.0/8", "prefix"},
      {"block", "in", "10.0.0.0/1000", "prefix"},
      {"block", "in", "10.0.0.0/08 ", "prefix"},
  };
  for (const Case& c : cases) {
    auto r = make_invocation(c.service, c.direction, c.prefix);
    ASSERT_FALSE(r) << c.service << " " << c.direction << " " << c.prefix;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_EQ(r.error().context.rfind(c.field + ": ", 0), 0u) << r.error().context;
  }
}

TEST(OobValidation, FromParams) {
  using Json = ctl::Json;
  auto r = invocation_from_params(Json{{"service", "block"}, {"prefix", "10.3.0.1/24"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (Invocation{"block", "in", "10.3.0.0/24"}));  // direction defaults to "in"
  r = invocation_from_params(
      Json{{"service", "block"}, {"direction", "out"}, {"prefix", "fd00::/8"}, {"x", 1}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->direction, "out");
  for (const auto& [params, field] : std::vector<std::pair<Json, std::string>>{
           {Json::object(), "service"},
           {Json{{"prefix", "10.0.0.0/8"}}, "service"},
           {Json{{"service", "block"}}, "prefix"},
           {Json{{"service", 1}, {"prefix", "10.0.0.0/8"}}, "service"},
           {Json{{"service", "block"}, {"prefix", nullptr}}, "prefix"},
           {Json{{"service", "block"}, {"prefix", "10.0.0.0/8"}, {"direction", nullptr}},
            "direction"},
           {Json{{"service", "block"}, {"prefix", "10.0.0.0/8"}, {"direction", ""}}, "direction"},
           {Json{{"service", Json::array({"block"})}, {"prefix", "10.0.0.0/8"}}, "service"},
       }) {
    auto e = invocation_from_params(params);
    ASSERT_FALSE(e) << params.dump();
    EXPECT_EQ(e.error().code, Errc::invalid_argument);
    EXPECT_EQ(e.error().context.rfind(field + ": ", 0), 0u) << e.error().context;
  }
}

// enable() that must not fail: true if it added inv.
bool added(InvocationSet& s, const Invocation& inv) {
  auto r = s.enable(inv);
  EXPECT_TRUE(r) << inv.str() << ": " << r.error().to_string();
  return r && *r;
}

TEST(OobSet, DuplicatesLimitAndDisable) {
  InvocationSet s;
  const Invocation a{"block", "in", "10.3.0.0/24"};
  const Invocation b{"block", "out", "10.3.0.0/24"};  // another direction: another entry
  EXPECT_TRUE(added(s, a));
  EXPECT_FALSE(added(s, a));  // already there: no change, no error
  EXPECT_TRUE(added(s, b));
  EXPECT_EQ(s.entries(), (std::vector<Invocation>{a, b}));
  for (std::size_t i = s.entries().size(); i < kMaxInvocations; ++i)
    ASSERT_TRUE(added(s, {"block", "in", "10.4." + std::to_string(i) + ".0/24"}));
  auto full = s.enable({"block", "in", "10.5.0.0/24"});
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, Errc::too_large);
  EXPECT_FALSE(added(s, a));  // a duplicate is still no change when full
  EXPECT_EQ(s.entries().size(), kMaxInvocations);

  auto gone = s.disable({"block", "both", "10.3.0.0/24"});
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::not_found);
  EXPECT_TRUE(s.disable(a));
  EXPECT_FALSE(s.contains(a));
  EXPECT_EQ(s.entries().front(), b);  // order kept
  EXPECT_TRUE(s.clear());
  EXPECT_FALSE(s.clear());
}

TEST(OobSet, StoredRowsAreCheckedAgain) {
  std::vector<Invocation> stored = {{"block", "in", "10.3.0.0/24"},
                                    {"Block", "in", "10.3.0.0/24"},   // bad name
                                    {"block", "in", "10.3.0.1/24"},   // not canonical
                                    {"block", "in", "10.3.0.0/24"}};  // a duplicate
  for (int i = 0; i < 40; ++i)
    stored.push_back({"block", "out", "10.6." + std::to_string(i) + ".0/24"});
  std::vector<std::string> dropped;
  const auto s = InvocationSet::from_stored(stored, &dropped);
  EXPECT_EQ(s.entries().size(), kMaxInvocations);
  EXPECT_EQ(s.entries().front(), stored.front());
  EXPECT_EQ(dropped.size(), 3u + (40u - (kMaxInvocations - 1)));
}

class OobState : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    char tmpl[] = "/tmp/ie-oob-state-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(OobState, OrderedRowsReplacedWholeAndKeptAcrossOpens) {
  const std::vector<Invocation> list = {{"block", "in", "198.51.100.0/24"},
                                        {"block", "both", "fd00:9::/64"},
                                        {"qos", "out", "10.0.0.0/8"}};
  {
    auto st = State::open(dir_);
    ASSERT_TRUE(st) << st.error().to_string();
    auto empty = st->invocations();
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->empty());
    ASSERT_TRUE(st->set_invocations(list));
    ASSERT_TRUE(st->set_invocations(list));  // idempotent
  }
  auto st = State::open(dir_);
  ASSERT_TRUE(st);
  auto got = st->invocations();
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, list);
  const std::vector<Invocation> reversed(list.rbegin(), list.rend());
  ASSERT_TRUE(st->set_invocations(reversed));
  EXPECT_EQ(*st->invocations(), reversed);
  ASSERT_TRUE(st->set_invocations({}));
  EXPECT_TRUE(st->invocations()->empty());
}

TEST_F(OobState, MigratesADatabaseOfTheFirstSchema) {
  // A state.db as the previous ied left it: schema version 1 with a pinned SN key.
  const std::string path = dir_ + "/state.db";
  {
    auto db = store::Database::open(path);
    ASSERT_TRUE(db);
    const store::Migration v1[] = {{1, R"sql(
      CREATE TABLE identity (id INTEGER PRIMARY KEY CHECK (id = 1), private_key BLOB NOT NULL,
                             created INTEGER NOT NULL);
      CREATE TABLE sn_pin (name TEXT PRIMARY KEY, public_key BLOB NOT NULL,
                           pinned_at INTEGER NOT NULL);
    )sql"}};
    ASSERT_TRUE(db->migrate(v1));
    ASSERT_TRUE(db->exec("INSERT INTO sn_pin VALUES ('dom1.sn1', zeroblob(32), 0)"));
  }
  {
    auto st = State::open(dir_);
    ASSERT_TRUE(st) << st.error().to_string();
    EXPECT_EQ(st->pinned("dom1.sn1").value_or(std::nullopt), crypto::noise::PublicKey{});
    auto none = st->invocations();
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
    ASSERT_TRUE(st->set_invocations({{"block", "in", "10.0.0.0/8"}}));
  }
  auto db = store::Database::open(path);
  ASSERT_TRUE(db);
  EXPECT_EQ(db->user_version().value_or(-1), 2);
  auto st = State::open(dir_);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st->invocations(), (std::vector<Invocation>{{"block", "in", "10.0.0.0/8"}}));
}

}  // namespace
}  // namespace ie::ied
