// iesn's status and control socket (ie/sn/status.hpp): JSON round trips, the human tables,
// the methods on a Dispatcher (with injected callers for the root-only reload), and the real
// thing: ctl::Server on a reactor thread and run_status_client over a Unix socket in a
// temporary directory, including paging through many pipes and the daemon-down exit code.
#include "ie/sn/status.hpp"
#include "../common/ctl_server_thread.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <thread>

#include "ie/ctl/client.hpp"
#include "ie/ctl/server.hpp"
#include "ie/sn/config.hpp"

namespace ie::sn {
namespace {

using ctl::Json;
using wire::DropReason;

std::size_t idx(DropReason r) {
  return static_cast<std::size_t>(r);
}

SnStatus sample_status() {
  SnStatus s;
  s.name = "dom1.sn1";
  s.edomain = "dom1";
  s.version = "9.9.9";
  s.uptime_s = 90061;  // 1d 01:01:01
  s.workers = 2;
  WorkerStatus w0;
  w0.index = 0;
  w0.drops[idx(DropReason::replayed)] = 10;
  w0.drops[idx(DropReason::unknown_service)] = 1;
  w0.cache = {100, 7, 7, 2, 1, 4, 500};
  w0.psp_contexts = {4000, 60, 40, 4096};
  WorkerStatus w1;
  w1.index = 1;
  w1.drops[idx(DropReason::replayed)] = 5;
  w1.drops[idx(DropReason::no_route)] = 3;
  w1.cache = {23, 3, 3, 0, 0, 3, 500};
  w1.psp_contexts = {900, 25, 20, 4096};
  s.per_worker = {w0, w1};
  s.pipe_summary = {3, 2, 1, 3};
  s.modules = {{"null", 0, "builtin"},
               {"ip", 1, "builtin"},
               {"fanout", 40, "/usr/lib/interedge/modules/libfanout.so"}};
  s.module_counters = {{"ip.forwarded", 123}, {"fanout.copies", 456}};
  s.association = {3, 17, 500, 12, 99, 33, 4, 2, 5, 1, 2, 7, 1};
  return s;
}

PipeStatus make_pipe(PipeId id) {
  PipeStatus p;
  p.id = id;
  p.kind = id % 5 == 0 ? IE_SN_PIPE_SN : IE_SN_PIPE_HOST;
  p.name = p.kind == IE_SN_PIPE_SN ? "dom2.sn" + std::to_string(id) : "";
  p.address = "10.0." + std::to_string(id / 256 % 256) + "." + std::to_string(id % 256) + ":1000";
  p.established = id % 7 != 0;
  p.rx_packets = id * 10;
  p.rx_bytes = id * 1000;
  p.tx_packets = id * 20;
  p.tx_bytes = id * 2000;
  if (p.kind == IE_SN_PIPE_HOST)
    p.addrs = {"10.1.0." + std::to_string(id % 250), "fd00::" + std::to_string(id)};
  p.standby = p.kind == IE_SN_PIPE_HOST && id % 2 == 0;
  if (id % 3 != 0) p.last_rx_age_ms = id * 3;
  p.on_demand = p.kind == IE_SN_PIPE_SN && id % 2 == 1;
  return p;
}

// ---- JSON and text ----

TEST(StatusJson, RoundTrip) {
  const SnStatus s = sample_status();
  const Json j = status_to_json(s);
  EXPECT_EQ(j["drops"]["replayed"], 15);
  EXPECT_EQ(j["drops"]["no_route"], 3);
  EXPECT_EQ(j["drops"]["truncated"], 0);  // every reason present, zero or not
  EXPECT_FALSE(j["drops"].contains("none"));
  EXPECT_EQ(j["cache"]["hits"], 123);
  EXPECT_EQ(j["cache"]["capacity"], 1000);
  EXPECT_EQ(j["psp_contexts"]["hits"], 4900);  // sums over the workers
  EXPECT_EQ(j["psp_contexts"]["misses"], 85);
  EXPECT_EQ(j["psp_contexts"]["in_use"], 60);
  EXPECT_EQ(j["psp_contexts"]["capacity"], 8192);
  EXPECT_EQ(j["per_worker"][1]["psp_contexts"]["misses"], 25);
  EXPECT_EQ(j["per_worker"][1]["psp_contexts"]["capacity"], 4096);
  EXPECT_EQ(j["module_counters"]["ip.forwarded"], 123);
  EXPECT_FALSE(j.contains("pipes"));
  auto back = status_from_json(j);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(*back, s);
  // Through text, as the client sees it.
  auto reparsed = status_from_json(Json::parse(j.dump()));
  ASSERT_TRUE(reparsed.ok());
  EXPECT_EQ(*reparsed, s);
}

TEST(StatusJson, PipeRoundTrip) {
  for (PipeId id : {1u, 3u, 5u, 7u, 0xffffffffu}) {
    const PipeStatus p = make_pipe(id);
    const Json j = pipe_to_json(p);
    EXPECT_EQ(j["kind"], p.kind == IE_SN_PIPE_SN ? "sn" : "host");
    EXPECT_EQ(j["last_rx_age_ms"].is_null(), !p.last_rx_age_ms.has_value());
    EXPECT_EQ(j["standby"], p.standby);
    EXPECT_EQ(j["on_demand"], p.on_demand);
    auto back = pipe_from_json(Json::parse(j.dump()));
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(*back, p);
  }
}

TEST(StatusJson, WrongTypesAreProtocolErrorsAndUnknownKeysIgnored) {
  Json j = status_to_json(sample_status());
  j["future_field"] = {{"x", 1}};
  j["drops"]["reason_from_the_future"] = 5;
  j["per_worker"][0]["drops"]["reason_from_the_future"] = 5;
  EXPECT_TRUE(status_from_json(j).ok());
  auto expect_bad = [](Json bad, const std::string& key) {
    auto r = status_from_json(bad);
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_EQ(r.error().code, Errc::protocol);
    EXPECT_NE(r.error().context.find("\"" + key + "\""), std::string::npos) << r.error().context;
  };
  Json a = j;
  a["uptime_s"] = "long";
  expect_bad(a, "uptime_s");
  Json b = j;
  b["per_worker"][1]["cache"]["hits"] = -1;
  expect_bad(b, "hits");
  Json b2 = j;
  b2["per_worker"][0]["psp_contexts"]["in_use"] = "many";
  expect_bad(b2, "in_use");
  Json b3 = j;
  b3["per_worker"][0]["psp_contexts"] = 5;
  expect_bad(b3, "psp_contexts");
  // A reply from an iesn without PSP context stats: zeros, not an error.
  Json old = j;
  old.erase("psp_contexts");
  for (auto& w : old["per_worker"])
    w.erase("psp_contexts");
  auto old_back = status_from_json(old);
  ASSERT_TRUE(old_back.ok());
  EXPECT_EQ(old_back->psp_contexts(), PspContextStatus{});
  Json c = j;
  c["modules"][0]["service_id"] = 70000;
  expect_bad(c, "service_id");
  Json d = j;
  d["module_counters"]["ip.forwarded"] = 1.5;
  expect_bad(d, "ip.forwarded");
  Json e = j;
  e["per_worker"] = Json::object();
  expect_bad(e, "per_worker");
  EXPECT_FALSE(status_from_json(Json::array()).ok());
  Json p = pipe_to_json(make_pipe(1));
  p["kind"] = "router";
  EXPECT_FALSE(pipe_from_json(p).ok());
  p = pipe_to_json(make_pipe(1));
  p["id"] = 1ull << 33;
  EXPECT_FALSE(pipe_from_json(p).ok());
  p = pipe_to_json(make_pipe(1));
  p["addrs"] = Json::array({1});
  EXPECT_FALSE(pipe_from_json(p).ok());
  p = pipe_to_json(make_pipe(1));
  p["standby"] = "yes";
  EXPECT_FALSE(pipe_from_json(p).ok());
}

TEST(StatusText, StatusSummary) {
  const std::string t = format_status(sample_status());
  EXPECT_EQ(t.rfind("iesn dom1.sn1 (edomain dom1), version 9.9.9\n", 0), 0u) << t;
  EXPECT_NE(t.find("uptime        1d 01:01:01\n"), std::string::npos) << t;
  EXPECT_NE(t.find("pipes         3 (2 hosts, 1 SNs), 3 established\n"), std::string::npos) << t;
  EXPECT_NE(t.find("associations  3 peers, 17 handshakes (budget 500/s)\n"), std::string::npos)
      << t;
  EXPECT_NE(t.find("cache         123 hits, 10 misses, 2 evictions; 7 of 1000 entries\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("psp contexts  4900 hits, 85 misses; 60 of 8192 in use\n"), std::string::npos)
      << t;
  EXPECT_NE(t.find("modules       null (0), ip (1), fanout (40)\n"), std::string::npos) << t;
  EXPECT_NE(t.find("drops         19\n"), std::string::npos) << t;
  // Non-zero reasons only, aligned, with their descriptions.
  EXPECT_NE(t.find("  replayed         15  sequence number"), std::string::npos) << t;
  EXPECT_NE(t.find("  unknown_service   1  service id not served here"), std::string::npos) << t;
  EXPECT_NE(t.find("  no_route          3  "), std::string::npos) << t;
  EXPECT_EQ(t.find("truncated"), std::string::npos) << t;
}

// Splits a table into rows of whitespace-separated cells, keyed by the first cell.
std::map<std::string, std::vector<std::string>> cells(const std::string& table,
                                                      std::vector<std::size_t>* widths = nullptr) {
  std::map<std::string, std::vector<std::string>> rows;
  std::istringstream in(table);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::vector<std::string> c;
    for (std::string w; ls >> w;)
      c.push_back(w);
    if (c.empty()) continue;
    if (widths != nullptr) widths->push_back(line.size());
    rows[c[0]] = std::vector<std::string>(c.begin() + 1, c.end());
  }
  return rows;
}

TEST(StatusText, CountersHaveTotalAndPerWorkerColumns) {
  const std::string t = format_counters(sample_status());
  std::vector<std::size_t> widths;
  auto rows = cells(t, &widths);
  using V = std::vector<std::string>;
  EXPECT_EQ(rows["COUNTER"], (V{"TOTAL", "W0", "W1"})) << t;
  EXPECT_EQ(rows["cache.hits"], (V{"123", "100", "23"})) << t;
  EXPECT_EQ(rows["cache.capacity"], (V{"1000", "500", "500"})) << t;
  EXPECT_EQ(rows["psp_contexts.hits"], (V{"4900", "4000", "900"})) << t;
  EXPECT_EQ(rows["psp_contexts.misses"], (V{"85", "60", "25"})) << t;
  EXPECT_EQ(rows["psp_contexts.in_use"], (V{"60", "40", "20"})) << t;
  EXPECT_EQ(rows["psp_contexts.capacity"], (V{"8192", "4096", "4096"})) << t;
  EXPECT_EQ(rows["drop.replayed"], (V{"15", "10", "5"})) << t;
  EXPECT_EQ(rows["drop.no_route"], (V{"3", "0", "3"})) << t;
  EXPECT_EQ(rows["drop.truncated"], (V{"0", "0", "0"})) << t;  // every reason is listed
  EXPECT_EQ(rows.count("drop.none"), 0u);
  EXPECT_EQ(rows["module.fanout.copies"], (V{"456"})) << t;
  EXPECT_EQ(rows["association.handshakes"], (V{"17"})) << t;
  EXPECT_EQ(rows["association.static_dh_reused"], (V{"12"})) << t;
  EXPECT_EQ(rows["association.probes_answered"], (V{"99"})) << t;
  EXPECT_EQ(rows["association.echoes_answered"], (V{"33"})) << t;
  EXPECT_EQ(rows["association.crossed_initiations_kept"], (V{"4"})) << t;
  EXPECT_EQ(rows["pipes.established"], (V{"3"})) << t;
  EXPECT_EQ(rows["direct.pipes"], (V{"2"})) << t;
  EXPECT_EQ(rows["direct.opened"], (V{"5"})) << t;
  EXPECT_EQ(rows["direct.failed"], (V{"1"})) << t;
  EXPECT_EQ(rows["direct.idle_closed"], (V{"2"})) << t;
  EXPECT_EQ(rows["direct.locates_relayed"], (V{"7"})) << t;
  EXPECT_EQ(rows["direct.hellos_refused"], (V{"1"})) << t;
  // header, cache 7, psp_contexts 4, drops, pipes 4, association 6, direct 6, module
  // counters 2
  EXPECT_EQ(rows.size(), 1 + 7 + 4 + (wire::kDropReasonCount - 1) + 4 + 6 + 6 + 2);
  // Right-aligned: every row with per-worker columns ends at the same column, and every total
  // ends under "TOTAL".
  std::istringstream in(t);
  std::string header;
  std::getline(in, header);
  const std::size_t total_end = header.find("TOTAL") + 5;
  for (std::string line; std::getline(in, line);) {
    if (line.size() > total_end) {
      EXPECT_EQ(line.size(), header.size()) << line;
    } else {
      EXPECT_EQ(line.size(), total_end) << line;
    }
  }
  // One worker: no per-worker columns.
  SnStatus one = sample_status();
  one.per_worker.resize(1);
  auto rows1 = cells(format_counters(one));
  EXPECT_EQ(rows1["COUNTER"], (V{"TOTAL"}));
  EXPECT_EQ(rows1["drop.replayed"], (V{"10"}));
}

TEST(StatusText, PipesTableIsAligned) {
  std::vector<PipeStatus> pipes{make_pipe(1), make_pipe(10), make_pipe(1234567)};
  const std::string t = format_pipes(pipes);
  std::istringstream in(t);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);)
    lines.push_back(l);
  ASSERT_EQ(lines.size(), 4u) << t;
  const auto state = lines[0].find("STATE");
  const auto rx = lines[0].find("RX PKTS");
  ASSERT_NE(state, std::string::npos);
  EXPECT_EQ(lines[1].substr(state, 2), "up") << t;
  EXPECT_EQ(lines[2].substr(state, 2), "up") << t;
  // Right-aligned numbers end where their header ends.
  const auto rx_end = rx + std::string("RX PKTS").size();
  EXPECT_EQ(lines[3].substr(rx_end - 8, 8), "12345670") << t;
  EXPECT_EQ(lines[1].substr(rx_end - 2, 2), "10") << t;
  EXPECT_NE(lines[1].find("10.1.0.1,fd00::1 "), std::string::npos) << t;
  EXPECT_EQ(lines[1].find("(standby)"), std::string::npos) << t;  // pipe 1: active
  const std::string t4 = format_pipes({make_pipe(4)});            // a standby host
  EXPECT_NE(t4.find("10.1.0.4,fd00::4 (standby)"), std::string::npos) << t4;
  EXPECT_NE(lines[2].find("dom2.sn10"), std::string::npos) << t;
  EXPECT_NE(lines[2].find(" sn "), std::string::npos) << t;  // a configured SN pipe
  const std::string t5 = format_pipes({make_pipe(5)});       // an on-demand direct one
  EXPECT_NE(t5.find(" sn*   dom2.sn5"), std::string::npos) << t5;
  EXPECT_EQ(format_pipes({}), "no pipes\n");
}

TEST(StatusText, Modules) {
  const std::string t = format_modules(sample_status());
  EXPECT_EQ(t.rfind("SERVICE  NAME    ORIGIN\n"
                    "      0  null    builtin\n"
                    "      1  ip      builtin\n"
                    "     40  fanout  /usr/lib/interedge/modules/libfanout.so\n"
                    "\n"
                    "COUNTER        VALUE\n"
                    "fanout.copies    456\n"
                    "ip.forwarded     123\n",
                    0),
            0u)
      << t;
}

// ---- Methods on a Dispatcher ----

struct Fake {
  SnStatus status = sample_status();
  std::vector<PipeStatus> pipes;  // ascending ids
  std::atomic<int> provider_calls{0};
  std::atomic<int> pipe_calls{0};
  std::atomic<int> reloads{0};
  std::atomic<bool> reload_fails{false};

  StatusProvider provider() {
    return [this](const StatusQuery& q) -> Result<SnStatus> {
      ++provider_calls;
      SnStatus s = status;
      if (q.pipes) {
        ++pipe_calls;
        for (const auto& p : pipes) {
          if (p.id > q.pipes_after && s.pipes.size() < q.pipe_limit) s.pipes.push_back(p);
        }
      }
      return s;
    };
  }
  ReloadHandler reload() {
    return [this]() -> Result<void> {
      if (reload_fails)
        return fail(Errc::invalid_argument,
                    "/etc/interedge/iesn.toml:3:11: sn.workers must be 0..256");
      ++reloads;
      return ok();
    };
  }
};

ctl::Request req(const std::string& method, Json params = Json::object()) {
  ctl::Request r;
  r.id = 9;
  r.method = method;
  r.params = std::move(params);
  return r;
}

TEST(StatusMethods, ReadOnlyForAnyoneReloadForRootOnly) {
  Fake f;
  ctl::Dispatcher d;
  ASSERT_TRUE(add_status_methods(d, f.provider(), f.reload(), "iesn 9.9.9").ok());
  const ctl::Caller root{0, 0, 1};
  const ctl::Caller user{1000, 1000, 2};
  auto hello = d.dispatch(req("hello"), user);
  ASSERT_TRUE(hello.ok);
  EXPECT_EQ(hello.result["server"], "iesn 9.9.9");
  EXPECT_EQ(hello.result["methods"],
            Json::array({"counters", "hello", "modules", "pipes", "reload", "status"}));
  for (const char* m : {"status", "counters", "modules", "pipes"}) {
    auto r = d.dispatch(req(m), user);
    EXPECT_TRUE(r.ok) << m << ": " << r.error.context;
  }
  auto refused = d.dispatch(req("reload"), user);
  ASSERT_FALSE(refused.ok);
  EXPECT_EQ(refused.error.code, Errc::permission);
  EXPECT_NE(refused.error.context.find("uid 1000"), std::string::npos);
  EXPECT_EQ(f.reloads, 0);
  auto allowed = d.dispatch(req("reload"), root);
  ASSERT_TRUE(allowed.ok) << allowed.error.context;
  EXPECT_EQ(allowed.result["reloaded"], true);
  EXPECT_EQ(f.reloads, 1);
  f.reload_fails = true;
  auto invalid = d.dispatch(req("reload"), root);
  ASSERT_FALSE(invalid.ok);
  EXPECT_EQ(invalid.error.code, Errc::invalid_argument);
  EXPECT_NE(invalid.error.context.find("iesn.toml:3:11"), std::string::npos);
  EXPECT_EQ(f.reloads, 1);
  auto unknown = d.dispatch(req("frobnicate"), root);
  EXPECT_FALSE(unknown.ok);
  EXPECT_EQ(unknown.error.code, Errc::not_found);
  // A second registration on the same dispatcher is refused.
  EXPECT_FALSE(add_status_methods(d, f.provider(), f.reload()).ok());
  ctl::Dispatcher none;
  EXPECT_FALSE(add_status_methods(none, nullptr, nullptr).ok());
}

TEST(StatusMethods, ReloadWithoutHandlerIsUnsupported) {
  Fake f;
  ctl::Dispatcher d;
  ASSERT_TRUE(add_status_methods(d, f.provider(), nullptr).ok());
  auto r = d.dispatch(req("reload"), ctl::Caller{0, 0, 1});
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.error.code, Errc::unsupported);
}

TEST(StatusMethods, PipesPagingAndParams) {
  Fake f;
  for (PipeId id = 1; id <= 10; ++id)
    f.pipes.push_back(make_pipe(id * 2));
  ctl::Dispatcher d;
  ASSERT_TRUE(add_status_methods(d, f.provider(), f.reload()).ok());
  const ctl::Caller user{1000, 1000, 2};
  auto page = d.dispatch(req("pipes", {{"after", 4}, {"limit", 3}}), user);
  ASSERT_TRUE(page.ok) << page.error.context;
  ASSERT_EQ(page.result["pipes"].size(), 3u);
  EXPECT_EQ(page.result["pipes"][0]["id"], 6);
  EXPECT_EQ(page.result["pipes"][2]["id"], 10);
  EXPECT_EQ(page.result["more"], true);
  EXPECT_EQ(page.result["pipe_summary"]["total"], 3);
  auto last = d.dispatch(req("pipes", {{"after", 18}, {"limit", 3}}), user);
  ASSERT_TRUE(last.ok);
  ASSERT_EQ(last.result["pipes"].size(), 1u);
  EXPECT_EQ(last.result["more"], false);
  for (const Json& bad :
       {Json{{"after", "x"}}, Json{{"after", -1}}, Json{{"after", 1ull << 32}}, Json{{"limit", 0}},
        Json{{"limit", kPipesPerPage + 1}}, Json{{"limit", 2.5}}}) {
    auto r = d.dispatch(req("pipes", bad), user);
    ASSERT_FALSE(r.ok) << bad.dump();
    EXPECT_EQ(r.error.code, Errc::invalid_argument) << bad.dump();
    EXPECT_EQ(r.error.context.rfind("pipes: \"", 0), 0u) << r.error.context;
  }
}

TEST(StatusMethods, PageContractHoldsEvenIfTheProviderIgnoresIt) {
  std::vector<PipeStatus> pipes;
  for (PipeId id = 40; id >= 1; --id)
    pipes.push_back(make_pipe(id));  // descending, all of them
  ctl::Dispatcher d;
  ASSERT_TRUE(add_status_methods(
                  d,
                  [&](const StatusQuery&) -> Result<SnStatus> {
                    SnStatus s;
                    s.pipes = pipes;
                    return s;
                  },
                  nullptr)
                  .ok());
  auto r = d.dispatch(req("pipes", {{"after", 10}, {"limit", 5}}), ctl::Caller{});
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.result["pipes"].size(), 5u);
  for (std::size_t i = 0; i < 5; ++i)
    EXPECT_EQ(r.result["pipes"][i]["id"], 11 + i);
  EXPECT_EQ(r.result["more"], true);
}

TEST(StatusMethods, ProviderErrorsArePassedOn) {
  ctl::Dispatcher d;
  ASSERT_TRUE(add_status_methods(
                  d,
                  [](const StatusQuery&) -> Result<SnStatus> {
                    return fail(Errc::busy, "workers did not answer");
                  },
                  nullptr)
                  .ok());
  auto r = d.dispatch(req("status"), ctl::Caller{});
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.error.code, Errc::busy);
  EXPECT_EQ(r.error.context, "workers did not answer");
}

// ---- Over a real socket ----

class StatusSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ie-sn-status-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/run/iesn.sock";  // run/ does not exist yet: the server creates it
    for (PipeId id = 1; id <= 600; ++id)
      fake_.pipes.push_back(make_pipe(id));
    ctl::Dispatcher d;
    ASSERT_TRUE(add_status_methods(d, fake_.provider(), fake_.reload(), "iesn test").ok());
    srv_.start(path_, std::move(d));
  }
  void TearDown() override {
    srv_.stop();
    std::filesystem::remove_all(dir_);
  }
  // Runs the client, returning its exit code; out/err in out_/err_.
  int run(const std::string& what, bool json, const std::string& socket = {}) {
    std::ostringstream out, err;
    const int rc = run_status_client(socket.empty() ? path_ : socket, what, json, out, err);
    out_ = out.str();
    err_ = err.str();
    return rc;
  }
  std::size_t connections() { return srv_.connections(); }

  std::string dir_, path_, out_, err_;
  Fake fake_;
  ie::testing::CtlServerThread srv_;
};

TEST_F(StatusSocket, SocketFileModeAndDirectory) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  EXPECT_EQ(srv_.server().path(), path_);
}

TEST_F(StatusSocket, StatusHumanAndJson) {
  ASSERT_EQ(run("status", false), kExitOk) << err_;
  EXPECT_EQ(out_, format_status(fake_.status));
  EXPECT_EQ(err_, "");
  ASSERT_EQ(run("status", true), kExitOk) << err_;
  const Json j = Json::parse(out_);
  auto s = status_from_json(j);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, fake_.status);
  EXPECT_EQ(j["drops"]["replayed"], 15);
}

TEST_F(StatusSocket, CountersHumanAndJson) {
  ASSERT_EQ(run("counters", false), kExitOk) << err_;
  EXPECT_EQ(out_, format_counters(fake_.status));
  EXPECT_EQ(cells(out_)["drop.replayed"], (std::vector<std::string>{"15", "10", "5"})) << out_;
  ASSERT_EQ(run("counters", true), kExitOk) << err_;
  const Json j = Json::parse(out_);
  EXPECT_EQ(j["per_worker"][1]["drops"]["no_route"], 3);
  EXPECT_EQ(j["module_counters"]["fanout.copies"], 456);
}

TEST_F(StatusSocket, PipesArePagedInOrder) {
  ASSERT_EQ(run("pipes", true), kExitOk) << err_;
  const Json j = Json::parse(out_);
  ASSERT_EQ(j["pipes"].size(), 600u);
  for (std::size_t i = 0; i < 600; ++i) {
    auto p = pipe_from_json(j["pipes"][i]);
    ASSERT_TRUE(p.ok());
    ASSERT_EQ(*p, fake_.pipes[i]);
  }
  EXPECT_EQ(fake_.pipe_calls, 3);  // 256 + 256 + 88
  ASSERT_EQ(run("pipes", false), kExitOk) << err_;
  EXPECT_EQ(out_, format_pipes(fake_.pipes));
  fake_.pipes.clear();
  ASSERT_EQ(run("pipes", false), kExitOk) << err_;
  EXPECT_EQ(out_, "no pipes\n");
}

TEST_F(StatusSocket, Modules) {
  ASSERT_EQ(run("modules", false), kExitOk) << err_;
  EXPECT_EQ(out_, format_modules(fake_.status));
  ASSERT_EQ(run("modules", true), kExitOk) << err_;
  const Json j = Json::parse(out_);
  EXPECT_EQ(j["modules"][2]["origin"], "/usr/lib/interedge/modules/libfanout.so");
  EXPECT_FALSE(j.contains("per_worker"));
}

TEST_F(StatusSocket, ReloadIsRootOnly) {
  // The server sees this process's real uid through SO_PEERCRED. CI runs tests as root;
  // either way the outcome is asserted (the other path is covered by StatusMethods).
  const int rc = run("reload", false);
  if (::geteuid() == 0) {
    EXPECT_EQ(rc, kExitOk) << err_;
    EXPECT_EQ(out_, "configuration reloaded\n");
    EXPECT_EQ(fake_.reloads, 1);
    fake_.reload_fails = true;
    EXPECT_EQ(run("reload", false), kExitFailure);
    EXPECT_EQ(err_,
              "iesn: reload: /etc/interedge/iesn.toml:3:11: sn.workers must be 0..256 "
              "(invalid_argument)\n");
    EXPECT_EQ(fake_.reloads, 1);
  } else {
    EXPECT_EQ(rc, kExitFailure);
    EXPECT_NE(err_.find("\"reload\" is an admin method; it needs root"), std::string::npos) << err_;
    EXPECT_NE(err_.find("(permission)"), std::string::npos) << err_;
    EXPECT_EQ(fake_.reloads, 0);
  }
}

TEST_F(StatusSocket, UsageErrors) {
  EXPECT_EQ(run("frobnicate", false), kExitUsage);
  EXPECT_NE(err_.find("unknown command \"frobnicate\""), std::string::npos) << err_;
  EXPECT_EQ(out_, "");
}

TEST_F(StatusSocket, DaemonDownNamesTheSocket) {
  const std::string missing = dir_ + "/nothing.sock";
  EXPECT_EQ(run("status", false, missing), kExitDaemonDown);
  EXPECT_NE(err_.find("cannot connect to " + missing), std::string::npos) << err_;
  EXPECT_NE(err_.find("is iesn running?"), std::string::npos) << err_;
  EXPECT_EQ(out_, "");
  // A stale socket file with nobody listening (ECONNREFUSED) is "down" too.
  const std::string stale = dir_ + "/stale.sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", stale.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::close(fd);  // bound, never listened: connect() is refused
  EXPECT_EQ(run("counters", true, stale), kExitDaemonDown);
  EXPECT_NE(err_.find("cannot connect to " + stale), std::string::npos) << err_;
}

TEST_F(StatusSocket, OneConnectionManyRequestsAndPipelining) {
  auto c = ctl::Client::connect(path_);
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 20; ++i) {
    auto r = c->call(i % 2 ? "status" : "hello");
    ASSERT_TRUE(r.ok()) << r.error().to_string();
  }
  EXPECT_EQ(connections(), 1u);
  // Two requests in one write get two replies.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string two =
      "{\"v\":1,\"id\":1,\"method\":\"hello\"}\n{\"v\":1,\"id\":2,\"method\":\"nope\"}\n";
  ASSERT_EQ(::send(fd, two.data(), two.size(), MSG_NOSIGNAL), static_cast<ssize_t>(two.size()));
  ctl::LineReader reader;
  std::vector<std::string> lines;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (lines.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) != 1) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    for (std::string l; reader.next(&l);)
      lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("\"id\":1"), std::string::npos);
  EXPECT_NE(lines[0].find("\"ok\":true"), std::string::npos);
  EXPECT_NE(lines[1].find("\"id\":2"), std::string::npos);
  EXPECT_NE(lines[1].find("not_found"), std::string::npos);
  ::close(fd);
}

TEST_F(StatusSocket, OversizedLineGetsTooLargeAndIsClosed) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::thread writer([fd] {
    const std::string chunk(65536, 'x');
    for (std::size_t sent = 0; sent < ctl::kMaxFrame + 2 * chunk.size();) {
      const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) break;  // the server closed the connection
      sent += static_cast<std::size_t>(n);
    }
  });
  std::string got;
  bool closed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) != 1) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      closed = true;
    } else {
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::shutdown(fd, SHUT_RDWR);
  writer.join();
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_NE(got.find("too_large"), std::string::npos) << got;
  EXPECT_NE(got.find("\"id\":0"), std::string::npos) << got;
}

TEST_F(StatusSocket, ManyClientsAtOnce) {
  std::vector<std::thread> clients;
  std::atomic<int> ok_count{0};
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      for (int k = 0; k < 5; ++k) {
        std::ostringstream out, err;
        if (run_status_client(path_, "counters", true, out, err) == kExitOk) ++ok_count;
      }
    });
  }
  for (auto& t : clients)
    t.join();
  EXPECT_EQ(ok_count, 40);
}

TEST_F(StatusSocket, StoppingTheServerRemovesTheSocket) {
  srv_.stop();  // the server is destroyed on the reactor's thread
  EXPECT_FALSE(std::filesystem::exists(path_));
  EXPECT_EQ(run("status", false), kExitDaemonDown);
}

// ---- check-config ----

class CheckConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ie-sn-check-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  std::string dir_;
};

TEST_F(CheckConfig, OkLineAndErrors) {
  const noise::KeyPair kp = noise::KeyPair::generate();
  const std::string key = dir_ + "/iesn.key";
  ASSERT_TRUE(write_private_key(key, kp).ok());
  const noise::KeyPair other = noise::KeyPair::generate();
  const std::string cfg =
      write("iesn.toml", "[sn]\nname = \"dom1.sn2\"\nprivate_key_file = \"" + key +
                             "\"\n[edomain]\ngateway = \"dom1.sn1\"\n[[edomain.sn]]\n"
                             "name = \"dom1.sn1\"\naddress = \"10.0.0.1:1000\"\npublic_key = \"" +
                             key_to_base64(other.pub) + "\"\n");
  std::ostringstream out;
  ASSERT_TRUE(check_config_file(cfg, out).ok()) << out.str();
  EXPECT_EQ(out.str(),
            "ok: dom1.sn2 (edomain dom1, member of dom1.sn1), 1 edomain SNs, 0 peers, 0 routes, "
            "0 modules; public key " +
                key_to_base64(kp.pub) + "\n");

  std::ostringstream bad;
  const std::string broken = write("broken.toml", "[sn]\nname = \"dom1.sn2\"\nworkers = \"x\"\n");
  auto r = check_config_file(broken, bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(bad.str(), broken + ":3:11: sn.workers must be an integer (got a string)\n");

  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  std::ostringstream mode;
  auto m = check_config_file(cfg, mode);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::permission);
  EXPECT_NE(mode.str().find("chmod 600"), std::string::npos) << mode.str();
}

}  // namespace
}  // namespace ie::sn
