// The module execution environment: descriptor checks, loading shared objects (a module
// written with the C++ wrapper, one with a wrong ABI version whose code aborts if ever run,
// one without the entry symbol), and the round trip through the C ABI against a fake worker:
// decisions, the decision cache, configuration, checkpoints, counters over two workers,
// timers, invalid decisions, argument checks of every host call, the null module and the
// fanout example.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "ie/sn/module.hpp"
#include "ie/sn/modules.hpp"
#include "ie/store/sqlite.hpp"

namespace ie::sn {
namespace {

constexpr std::uint16_t kGood = 0x8100;
constexpr std::uint16_t kProbe = 0x8200;
constexpr std::uint16_t kFanout = 0x8001;

ie_sn_addr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  ie_sn_addr r{};
  r.bytes[10] = r.bytes[11] = 0xff;
  r.bytes[12] = a, r.bytes[13] = b, r.bytes[14] = c, r.bytes[15] = d;
  return r;
}

bool same_addr(const ie_sn_addr& a, const ie_sn_addr& b) {
  return std::memcmp(a.bytes, b.bytes, 16) == 0;
}

// ---- A fake worker -----------------------------------------------------------------------

class FakeWorker : public WorkerServices {
 public:
  explicit FakeWorker(unsigned index, std::size_t cache_capacity = 64)
      : index_(index), cache_(cache_capacity) {}

  unsigned worker_index() const override { return index_; }
  DecisionCache& cache() override { return cache_; }
  bool cache_insert(const FlowKey& key, Decision d) override { return cache_.insert(key, d, now_); }
  std::uint64_t now_ns() override { return now_; }
  std::optional<PipeId> route(const ie_sn_addr& dst) override {
    for (const auto& [addr, pipe] : routes)
      if (same_addr(addr, dst)) return pipe;
    return std::nullopt;
  }
  std::optional<PipeId> sn_route(std::string_view name) override {
    const auto it = sn_routes.find(std::string(name));
    if (it == sn_routes.end()) return std::nullopt;
    return it->second;
  }
  std::optional<ie_sn_pipe_info> pipe_info(PipeId pipe) override {
    const auto it = pipes.find(pipe);
    if (it == pipes.end()) return std::nullopt;
    return it->second;
  }
  bool send(PipeId pipe, const ie_sn_out_packet& p) override {
    if (!pipes.count(pipe)) return false;
    sent.push_back(Sent{pipe, p.service_id, p.connection_id,
                        std::string(reinterpret_cast<const char*>(p.inner), p.inner_len)});
    return true;
  }
  bool control_reply(PipeId peer, std::uint32_t id, ConstByteSpan data) override {
    replies.push_back(Reply{peer, id, std::string(data.begin(), data.end())});
    return true;
  }
  std::uint64_t add_timer(std::chrono::milliseconds delay, std::function<void()> fn) override {
    const std::uint64_t id = next_timer_++;
    timers[id] = Timer{now_ + static_cast<std::uint64_t>(delay.count()) * 1000000, std::move(fn)};
    return id;
  }
  bool cancel_timer(std::uint64_t id) override { return timers.erase(id) > 0; }

  // Moves the clock on, running due timers in deadline order (bounded).
  void advance(std::chrono::milliseconds d) {
    const std::uint64_t until = now_ + static_cast<std::uint64_t>(d.count()) * 1000000;
    for (int guard = 0; guard < 10000; ++guard) {
      auto next = timers.end();
      for (auto it = timers.begin(); it != timers.end(); ++it)
        if (it->second.due <= until && (next == timers.end() || it->second.due < next->second.due))
          next = it;
      if (next == timers.end()) break;
      now_ = std::max(now_, next->second.due);
      auto fn = std::move(next->second.fn);
      timers.erase(next);
      fn();
    }
    now_ = until;
  }
  void set_now(std::uint64_t t) { now_ = t; }

  void add_host(PipeId pipe, const ie_sn_addr& addr) {
    ie_sn_pipe_info info{};
    info.struct_size = sizeof info;
    info.kind = IE_SN_PIPE_HOST;
    pipes[pipe] = info;
    routes.emplace_back(addr, pipe);
  }
  void add_sn(PipeId pipe, const std::string& name) {
    ie_sn_pipe_info info{};
    info.struct_size = sizeof info;
    info.kind = IE_SN_PIPE_SN;
    std::snprintf(info.sn_name, sizeof info.sn_name, "%s", name.c_str());
    pipes[pipe] = info;
    sn_routes[name] = pipe;
  }

  struct Sent {
    PipeId pipe;
    std::uint16_t service_id;
    std::uint64_t connection_id;
    std::string inner;
  };
  struct Reply {
    PipeId peer;
    std::uint32_t id;
    std::string body;
  };
  struct Timer {
    std::uint64_t due;
    std::function<void()> fn;
  };
  std::vector<std::pair<ie_sn_addr, PipeId>> routes;
  std::map<std::string, PipeId> sn_routes;
  std::map<PipeId, ie_sn_pipe_info> pipes;
  std::vector<Sent> sent;
  std::vector<Reply> replies;
  std::map<std::uint64_t, Timer> timers;

 private:
  unsigned index_;
  DecisionCache cache_;
  std::uint64_t now_ = 1000000000;  // 1 s
  std::uint64_t next_timer_ = 1;
};

// ---- Packets -------------------------------------------------------------------------------

struct TestPacket {
  std::vector<std::uint8_t> inner;
  ie_sn_packet p{};
};

// Packets whose inner bytes are the given strings, from one source on one pipe.
std::vector<TestPacket> packets(std::uint16_t service, std::vector<std::string> inners,
                                ie_sn_pipe from = 5, std::uint64_t first_conn = 1) {
  std::vector<TestPacket> v(inners.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i].inner.assign(inners[i].begin(), inners[i].end());
    ie_sn_packet& p = v[i].p;
    p.struct_size = sizeof p;
    p.from_pipe = from;
    p.src = v4(192, 0, 2, 1);
    p.src_port = 1000;
    p.service_id = service;
    p.connection_id = first_conn + i;
    p.inner = v[i].inner.data();
    p.inner_len = static_cast<std::uint32_t>(v[i].inner.size());
  }
  return v;
}

// Runs packets through a worker's modules; returns the decisions.
std::vector<ie_sn_decision> run(WorkerModules& wm, std::uint16_t service,
                                const std::vector<TestPacket>& tp) {
  std::vector<ie_sn_packet> ps;
  for (const auto& t : tp)
    ps.push_back(t.p);
  std::vector<ie_sn_decision> out(ps.size());
  EXPECT_TRUE(wm.on_packets(service, ps, out));
  return out;
}

FlowKey key_of(const TestPacket& t) {
  ie_sn_flow_key k{};
  k.src = t.p.src;
  k.service_id = t.p.service_id;
  k.connection_id = t.p.connection_id;
  return to_flow_key(k);
}

// Sends a text command to the test module's on_control and returns its reply.
std::string ask(WorkerModules& wm, FakeWorker& w, const std::string& cmd) {
  const std::size_t before = w.replies.size();
  const auto* b = reinterpret_cast<const std::uint8_t*>(cmd.data());
  EXPECT_TRUE(wm.on_control(kGood, 5, 42, ConstByteSpan(b, cmd.size())));
  if (w.replies.size() != before + 1) return "<no reply>";
  EXPECT_EQ(w.replies.back().peer, 5u);
  EXPECT_EQ(w.replies.back().id, 42u);
  return w.replies.back().body;
}

// ---- A built-in probe module that hands the test its host table and env ---------------------

struct Probe {
  const ie_sn_host* host = nullptr;
  ie_sn_env* env[4] = {};
  int created = 0, destroyed = 0;
  std::function<void(const ie_sn_packet*, ie_sn_decision*, std::size_t)> on_packets;
};
Probe g_probe;

void* probe_create(const ie_sn_host* host, ie_sn_env* env, std::uint32_t worker) {
  g_probe.host = host;
  if (worker < 4) g_probe.env[worker] = env;
  ++g_probe.created;
  return &g_probe;
}
void probe_destroy(void*) {
  ++g_probe.destroyed;
}
void probe_on_packets(void*, ie_sn_env*, const ie_sn_packet* p, ie_sn_decision* out,
                      std::size_t n) {
  if (g_probe.on_packets) g_probe.on_packets(p, out, n);
}

ie_sn_module_descriptor probe_descriptor() {
  ie_sn_module_descriptor d{};
  d.abi_version = IE_SN_MODULE_ABI_VERSION;
  d.struct_size = sizeof d;
  d.name = "probe";
  d.service_id = kProbe;
  d.description = "test probe";
  d.create = probe_create;
  d.destroy = probe_destroy;
  d.on_packets = probe_on_packets;
  return d;
}
const ie_sn_module_descriptor kProbeDescriptor = probe_descriptor();

std::unique_ptr<ModuleRuntime> make_runtime(RuntimeOptions o = {}) {
  auto rt = ModuleRuntime::create(std::move(o));
  EXPECT_TRUE(rt.ok()) << (rt.ok() ? "" : rt.error().to_string());
  return rt.ok() ? std::move(*rt) : nullptr;
}

class Modules : public ::testing::Test {
 protected:
  void SetUp() override { g_probe = Probe{}; }
  // A runtime with probe + null built in and the good test module loaded.
  std::unique_ptr<ModuleRuntime> standard(RuntimeOptions o = {}) {
    auto rt = make_runtime(std::move(o));
    if (!rt) return nullptr;
    EXPECT_TRUE(rt->add_builtin(&kProbeDescriptor).ok());
    EXPECT_TRUE(rt->add_builtin(null_module()).ok());
    auto r = rt->load(IE_TEST_MODULE_GOOD);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    return rt;
  }
  std::unique_ptr<WorkerModules> instantiate(ModuleRuntime& rt, FakeWorker& w) {
    auto wm = rt.instantiate(w);
    EXPECT_TRUE(wm.ok()) << (wm.ok() ? "" : wm.error().to_string());
    return wm.ok() ? std::move(*wm) : nullptr;
  }
};

// ---- Descriptor checks ---------------------------------------------------------------------

std::string check_error(const ie_sn_module_descriptor* d) {
  const auto r = check_descriptor(d);
  return r.ok() ? "ok" : r.error().context;
}

TEST(CheckDescriptor, AcceptsValidAndLargerStruct) {
  ie_sn_module_descriptor d = probe_descriptor();
  EXPECT_EQ(check_error(&d), "ok");
  d.struct_size = sizeof d + 64;  // a newer minor version appended fields
  EXPECT_EQ(check_error(&d), "ok");
  d.on_control = nullptr;  // optional callbacks
  d.description = nullptr;
  EXPECT_EQ(check_error(&d), "ok");
}

TEST(CheckDescriptor, RefusesNullWrongVersionAndSmallStruct) {
  EXPECT_NE(check_error(nullptr).find("NULL"), std::string::npos);
  ie_sn_module_descriptor d = probe_descriptor();
  d.abi_version = 2;
  EXPECT_NE(check_error(&d).find("ABI version 2"), std::string::npos) << check_error(&d);
  d.abi_version = 0;
  EXPECT_NE(check_error(&d).find("ABI version 0"), std::string::npos);
  d = probe_descriptor();
  d.struct_size = sizeof d - 8;
  EXPECT_NE(check_error(&d).find("struct_size"), std::string::npos) << check_error(&d);
  d.struct_size = 0;
  EXPECT_NE(check_error(&d).find("struct_size 0"), std::string::npos);
  const auto r = check_descriptor(&d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
}

TEST(CheckDescriptor, RefusesBadNames) {
  const std::string long_name(33, 'a');
  const std::string ok_long(32, 'a');
  const char* bad[] = {nullptr,   "",       "Upper", "with-dash",
                       "dot.ted", "sp ace", "é",     long_name.c_str()};
  ie_sn_module_descriptor d = probe_descriptor();
  for (const char* n : bad) {
    d.name = n;
    EXPECT_NE(check_error(&d).find("name"), std::string::npos) << (n ? n : "(null)");
  }
  d.name = ok_long.c_str();
  EXPECT_EQ(check_error(&d), "ok");
  d.name = "a_1";
  EXPECT_EQ(check_error(&d), "ok");
}

TEST(CheckDescriptor, RefusesMissingCallbacks) {
  ie_sn_module_descriptor d = probe_descriptor();
  d.create = nullptr;
  EXPECT_NE(check_error(&d).find("create"), std::string::npos);
  d = probe_descriptor();
  d.destroy = nullptr;
  EXPECT_NE(check_error(&d).find("destroy"), std::string::npos);
  d = probe_descriptor();
  d.on_packets = nullptr;
  EXPECT_NE(check_error(&d).find("on_packets"), std::string::npos);
}

TEST_F(Modules, RefusesDuplicateNameAndServiceAndLateAdds) {
  auto rt = make_runtime();
  ASSERT_TRUE(rt);
  ASSERT_TRUE(rt->add_builtin(&kProbeDescriptor).ok());
  ie_sn_module_descriptor same_name = probe_descriptor();
  same_name.service_id = 0x9999;
  auto r = rt->add_builtin(&same_name);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::exists);
  EXPECT_NE(r.error().context.find("probe"), std::string::npos);
  ie_sn_module_descriptor same_service = probe_descriptor();
  same_service.name = "other";
  r = rt->add_builtin(&same_service);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().context.find(std::to_string(kProbe)), std::string::npos);
  ie_sn_module_descriptor bad = probe_descriptor();
  bad.abi_version = 7;
  EXPECT_FALSE(rt->add_builtin(&bad).ok());
  ASSERT_EQ(rt->modules().size(), 1u);
  EXPECT_EQ(rt->modules()[0].origin, "builtin");

  FakeWorker w(0);
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  ie_sn_module_descriptor late = probe_descriptor();
  late.name = "late";
  late.service_id = 0x7777;
  r = rt->add_builtin(&late);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::busy);
  EXPECT_FALSE(rt->load(IE_TEST_MODULE_GOOD).ok());
}

// ---- Loading shared objects ------------------------------------------------------------------

TEST_F(Modules, LoadsGoodModule) {
  auto rt = standard();
  ASSERT_TRUE(rt);
  const auto mods = rt->modules();
  ASSERT_EQ(mods.size(), 3u);
  EXPECT_EQ(mods[2].name, "test_good");
  EXPECT_EQ(mods[2].service_id, kGood);
  EXPECT_EQ(mods[2].origin, IE_TEST_MODULE_GOOD);
  EXPECT_EQ(mods[2].description, "test module written with the C++ wrapper");
  EXPECT_EQ(mods[1].name, "null");
  EXPECT_EQ(mods[1].service_id, 0);
  // The same object (same name and service) again is refused.
  const auto again = rt->load(IE_TEST_MODULE_GOOD);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::exists);
}

TEST_F(Modules, WrongAbiVersionRefusedBeforeAnyModuleCode) {
  auto rt = make_runtime();
  ASSERT_TRUE(rt);
  // The module's create/destroy/on_packets abort(): getting past this line alive, with the
  // module refused, shows none of them ran.
  const auto r = rt->load(IE_TEST_MODULE_BAD_ABI);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().context.find("ABI version 99"), std::string::npos) << r.error().context;
  EXPECT_NE(r.error().context.find(IE_TEST_MODULE_BAD_ABI), std::string::npos);
  EXPECT_TRUE(rt->modules().empty());
  FakeWorker w(0);
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  EXPECT_FALSE(wm->has(0x8101));
}

TEST_F(Modules, RefusesObjectWithoutEntrySymbolAndMissingFile) {
  auto rt = make_runtime();
  ASSERT_TRUE(rt);
  auto r = rt->load(IE_TEST_MODULE_NO_SYMBOL);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().context.find("no ie_sn_module_v1"), std::string::npos) << r.error().context;
  EXPECT_NE(r.error().context.find("undefined symbol"), std::string::npos)  // dlerror()
      << r.error().context;
  r = rt->load("/nonexistent/libnothing.so");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().context.find("/nonexistent/libnothing.so"), std::string::npos);
  EXPECT_NE(r.error().context.find("No such file"), std::string::npos) << r.error().context;
  EXPECT_TRUE(rt->modules().empty());
}

// ---- The round trip through the C ABI ----------------------------------------------------------

TEST_F(Modules, DecisionsAndCacheEntries) {
  auto rt = standard();
  ASSERT_TRUE(rt);
  FakeWorker w(0);
  w.add_host(5, v4(10, 1, 0, 2));
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  EXPECT_TRUE(wm->has(kGood));
  EXPECT_FALSE(wm->has(0x1234));

  auto tp = packets(kGood, {"F\x07", std::string("M\x02\x03\x04", 4), "D", "N", "C"});
  const auto out = run(*wm, kGood, tp);
  EXPECT_EQ(out[0].action, IE_SN_FORWARD);
  ASSERT_EQ(out[0].hop_count, 1u);
  EXPECT_EQ(out[0].hops[0], 7u);
  EXPECT_EQ(out[1].action, IE_SN_FORWARD);
  ASSERT_EQ(out[1].hop_count, 3u);
  EXPECT_EQ(out[1].hops[2], 4u);
  EXPECT_EQ(out[2].action, IE_SN_DROP);
  EXPECT_EQ(out[3].action, IE_SN_DEFAULT);
  EXPECT_EQ(out[4].action, IE_SN_CONSUMED);
  // C: the module sent "echo" back on the arriving pipe.
  ASSERT_EQ(w.sent.size(), 1u);
  EXPECT_EQ(w.sent[0].pipe, 5u);
  EXPECT_EQ(w.sent[0].inner, "echo");
  EXPECT_EQ(w.sent[0].connection_id, tp[4].p.connection_id);

  // F and D installed entries through the host table; M, N, C did not.
  const Decision* f = w.cache().lookup(key_of(tp[0]), 1);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->action, Action::forward);
  ASSERT_EQ(f->hop_count, 1);
  EXPECT_EQ(f->hops[0], 7u);
  const Decision* d = w.cache().lookup(key_of(tp[2]), 1);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->action, Action::drop);
  EXPECT_EQ(w.cache().lookup(key_of(tp[1]), 1), nullptr);
  EXPECT_EQ(w.cache().lookup(key_of(tp[3]), 1), nullptr);
  EXPECT_EQ(w.cache().size(), 2u);

  const auto c = rt->counters();
  EXPECT_EQ(c.at("test_good.seen"), 5u);
  EXPECT_EQ(c.at("test_good.packets"), 5u);
  EXPECT_EQ(c.at("test_good.invalid_decisions"), 0u);
  EXPECT_EQ(c.at("test_good.timer_fired"), 0u);  // declared counters show from 0

  // Unknown services are the caller's to drop.
  std::vector<ie_sn_packet> ps{tp[0].p};
  std::vector<ie_sn_decision> o(1);
  EXPECT_FALSE(wm->on_packets(0x1234, ps, o));
  EXPECT_FALSE(wm->on_control(0x1234, 5, 1, {}));
  EXPECT_FALSE(wm->on_control(0, 5, 1, {}));  // null takes no control messages
}

TEST_F(Modules, CacheHitCountRecentlyUsedRemoveThroughHost) {
  auto rt = standard();
  ASSERT_TRUE(rt);
  FakeWorker w(0);
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  auto tp = packets(kGood, {"F\x09"}, 5, 77);
  run(*wm, kGood, tp);
  EXPECT_EQ(ask(*wm, w, "hits 77"), "0");
  ASSERT_NE(w.cache().lookup(key_of(tp[0]), 2000), nullptr);
  ASSERT_NE(w.cache().lookup(key_of(tp[0]), 3000), nullptr);
  EXPECT_EQ(ask(*wm, w, "hits 77"), "2");
  EXPECT_EQ(ask(*wm, w, "recent 77 3000"), "1");
  EXPECT_EQ(ask(*wm, w, "recent 77 3001"), "0");
  EXPECT_EQ(ask(*wm, w, "remove 77"), "ok");
  EXPECT_EQ(w.cache().lookup(key_of(tp[0]), 4000), nullptr);
  EXPECT_EQ(ask(*wm, w, "hits 77"), "<none>");
  EXPECT_EQ(ask(*wm, w, "remove 77"), "<none>");
  EXPECT_EQ(ask(*wm, w, "now"), std::to_string(w.now_ns()));
}

TEST_F(Modules, RoutingAndPipeInfoThroughHost) {
  auto rt = standard();
  ASSERT_TRUE(rt);
  FakeWorker w(0);
  w.add_host(11, v4(10, 1, 0, 2));
  w.add_sn(12, "dom2.sn1");
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  EXPECT_EQ(ask(*wm, w, "route 10.1.0.2"), "11");
  EXPECT_EQ(ask(*wm, w, "route 10.1.0.3"), "<none>");
  EXPECT_EQ(ask(*wm, w, "snroute dom2.sn1"), "12");
  EXPECT_EQ(ask(*wm, w, "snroute dom3.sn1"), "<none>");
  EXPECT_EQ(ask(*wm, w, "pipe 11"), "host");
  EXPECT_EQ(ask(*wm, w, "pipe 12"), "sn:dom2.sn1");
  EXPECT_EQ(ask(*wm, w, "pipe 13"), "<none>");
  EXPECT_EQ(ask(*wm, w, "worker"), "0");
  EXPECT_EQ(ask(*wm, w, "nonsense"), "unknown command");
  // An exception in on_control stays in the module (logged): no reply, no crash.
  const std::string cmd = "throw";
  EXPECT_TRUE(wm->on_control(
      kGood, 5, 1, ConstByteSpan(reinterpret_cast<const std::uint8_t*>(cmd.data()), cmd.size())));
}

TEST_F(Modules, ConfigGetSetAndOnConfigOnEveryWorker) {
  RuntimeOptions o;
  o.module_config["test_good"]["mode"] = "a";
  auto rt = standard(o);
  ASSERT_TRUE(rt);
  FakeWorker w0(0), w1(1);
  auto m0 = instantiate(*rt, w0);
  auto m1 = instantiate(*rt, w1);
  ASSERT_TRUE(m0 && m1);
  EXPECT_EQ(ask(*m1, w1, "worker"), "1");
  EXPECT_EQ(ask(*m0, w0, "config mode"), "a");
  EXPECT_EQ(ask(*m0, w0, "config other"), "<none>");
  m0->poll_config();
  m1->poll_config();
  EXPECT_EQ(rt->counters().at("test_good.config_changes"), 0u);  // nothing changed yet

  // A long value exercises the wrapper's grow-and-retry (ENOSPC) path.
  const std::string long_value(300, 'x');
  EXPECT_EQ(ask(*m0, w0, "set mode " + long_value), "ok");
  EXPECT_EQ(ask(*m1, w1, "config mode"), long_value);            // visible at once
  EXPECT_EQ(rt->counters().at("test_good.config_changes"), 0u);  // on_config waits for a poll
  m0->poll_config();
  m1->poll_config();
  EXPECT_EQ(rt->counters().at("test_good.config_changes"), 2u);  // both instances, caller too
  m0->poll_config();
  EXPECT_EQ(rt->counters().at("test_good.config_changes"), 2u);  // once per change

  EXPECT_EQ(ask(*m0, w0, "set mode " + long_value), "ok");  // same value: no change
  m0->poll_config();
  m1->poll_config();
  EXPECT_EQ(rt->counters().at("test_good.config_changes"), 2u);
  EXPECT_EQ(rt->module_config().at("test_good").at("mode"), long_value);
  EXPECT_EQ(ask(*m0, w0, "set bad/key x"), "fail");

  // A reload (SIGHUP): only modules whose values changed hear about it.
  auto cfg = rt->module_config();
  cfg["test_good"]["mode"] = "c";
  cfg["null"]["unused"] = "1";
  rt->set_module_config(cfg);
  m0->poll_config();
  m1->poll_config();
  EXPECT_EQ(rt->counters().at("test_good.config_changes"), 4u);
  EXPECT_EQ(ask(*m1, w1, "config mode"), "c");
  rt->set_module_config(cfg);
  m0->poll_config();
  m1->poll_config();
  EXPECT_EQ(rt->counters().at("test_good.config_changes"), 4u);
}

TEST_F(Modules, StateSurvivesANewRuntimeOverTheSameFile) {
  char dir_template[] = "/tmp/ie_modules_test_XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::filesystem::path dir(dir_template);
  const std::string db = (dir / "state.db").string();
  {
    RuntimeOptions o;
    o.state_db = db;
    auto rt = standard(o);
    ASSERT_TRUE(rt);
    FakeWorker w(0);
    auto wm = instantiate(*rt, w);
    ASSERT_TRUE(wm);
    EXPECT_EQ(ask(*wm, w, "load k"), "<none>");
    EXPECT_EQ(ask(*wm, w, "save k hello world"), "ok");
    EXPECT_EQ(ask(*wm, w, "save k hello again"), "ok");  // replaces
    EXPECT_EQ(ask(*wm, w, "load k"), "hello again");
    const std::string big(1000, 'z');  // larger than the wrapper's first buffer
    EXPECT_EQ(ask(*wm, w, "save big " + big), "ok");
    EXPECT_EQ(ask(*wm, w, "load big"), big);
  }
  {
    RuntimeOptions o;
    o.state_db = db;
    auto rt = standard(o);
    ASSERT_TRUE(rt);
    FakeWorker w(0);
    auto wm = instantiate(*rt, w);
    ASSERT_TRUE(wm);
    EXPECT_EQ(ask(*wm, w, "load k"), "hello again");
    EXPECT_EQ(ask(*wm, w, "load big"), std::string(1000, 'z'));
  }
  {
    // The schema the doc describes: module_state(module, name, value, updated), WAL.
    auto d = store::Database::open(db);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->journal_mode().value(), "wal");
    auto st = d->prepare(
        "SELECT value, updated FROM module_state WHERE module = 'test_good' AND name = 'k'");
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE(st->step().value());
    const Bytes v = st->column_blob(0);
    EXPECT_EQ(std::string(v.begin(), v.end()), "hello again");
    EXPECT_GT(st->column_int(1), 1600000000);
  }
  std::filesystem::remove_all(dir);
}

TEST_F(Modules, CountersSumOverWorkersWithOneIdPerName) {
  auto rt = standard();
  ASSERT_TRUE(rt);
  FakeWorker w0(0), w1(1);
  auto m0 = instantiate(*rt, w0);
  auto m1 = instantiate(*rt, w1);
  ASSERT_TRUE(m0 && m1);
  run(*m0, kGood, packets(kGood, {"N", "N", "N"}));
  run(*m1, kGood, packets(kGood, {"N", "N", "N", "N", "N"}));
  auto c = rt->counters();
  EXPECT_EQ(c.at("test_good.seen"), 8u);
  EXPECT_EQ(c.at("test_good.packets"), 8u);
  // A name declared later on one worker gets the same id on the other.
  const std::string id1 = ask(*m1, w1, "counter extra");
  EXPECT_NE(id1, "0");
  EXPECT_EQ(ask(*m0, w0, "counter extra"), id1);
  EXPECT_EQ(ask(*m0, w0, "counter seen"), ask(*m1, w1, "counter seen"));
  EXPECT_EQ(ask(*m0, w0, "counter packets"), "0");  // reserved
  EXPECT_EQ(ask(*m0, w0, "counter Bad"), "0");
  EXPECT_EQ(rt->counters().at("test_good.extra"), 0u);
  // Counting continues after a worker's instances are gone.
  m1.reset();
  EXPECT_EQ(rt->counters().at("test_good.seen"), 8u);
}

TEST_F(Modules, TimersFireCancelAndDieWithTheInstance) {
  auto rt = standard();
  ASSERT_TRUE(rt);
  FakeWorker w(0);
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  const std::string id = ask(*wm, w, "timer 50");
  EXPECT_NE(id, "0");
  w.advance(std::chrono::milliseconds(49));
  EXPECT_EQ(rt->counters().at("test_good.timer_fired"), 0u);
  w.advance(std::chrono::milliseconds(1));
  EXPECT_EQ(rt->counters().at("test_good.timer_fired"), 1u);
  EXPECT_EQ(ask(*wm, w, "pending"), "0");
  EXPECT_EQ(ask(*wm, w, "cancel " + id), "<none>");  // already fired

  const std::string id2 = ask(*wm, w, "timer 10");
  EXPECT_NE(id2, id);
  EXPECT_EQ(ask(*wm, w, "cancel " + id2), "ok");
  EXPECT_TRUE(w.timers.empty());  // cancelled in the worker too
  w.advance(std::chrono::milliseconds(100));
  EXPECT_EQ(rt->counters().at("test_good.timer_fired"), 1u);

  ask(*wm, w, "timer 10");
  ask(*wm, w, "timer 20");
  EXPECT_EQ(w.timers.size(), 2u);
  wm.reset();  // destroying the instances cancels their timers
  EXPECT_TRUE(w.timers.empty());
  EXPECT_EQ(rt->counters().at("test_good.timer_fired"), 1u);
}

TEST_F(Modules, TimerFiringAfterInstanceGoneDoesNothing) {
  auto rt = standard();
  ASSERT_TRUE(rt);
  FakeWorker w(0);
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  ask(*wm, w, "timer 10");
  ASSERT_EQ(w.timers.size(), 1u);
  auto stale = w.timers.begin()->second.fn;  // a reactor that already dequeued it
  wm.reset();
  stale();  // must not touch the destroyed instance (ASan would tell)
  EXPECT_EQ(rt->counters().at("test_good.timer_fired"), 0u);
}

TEST_F(Modules, InvalidDecisionsBecomeCountedDrops) {
  auto rt = standard();
  ASSERT_TRUE(rt);
  FakeWorker w(0);
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  auto tp = packets(kGood, {"X0", "X9", "Xz", "Xa", "Xu", "F\x03"});
  std::vector<ie_sn_packet> ps;
  for (const auto& t : tp)
    ps.push_back(t.p);
  std::vector<ie_sn_decision> out(ps.size());
  for (auto& d : out) {  // stale garbage from an earlier batch
    d.action = IE_SN_FORWARD;
    d.hop_count = 2;
    d.hops[0] = d.hops[1] = 9;
  }
  ASSERT_TRUE(wm->on_packets(kGood, ps, out));
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(out[i].action, IE_SN_DROP) << i;
    EXPECT_EQ(out[i].hop_count, 0u) << i;
  }
  EXPECT_EQ(out[5].action, IE_SN_FORWARD);
  EXPECT_EQ(rt->counters().at("test_good.invalid_decisions"), 5u);

  // An exception out of on_packets: the wrapper drops the batch (valid drops, not counted).
  const auto thrown = run(*wm, kGood, packets(kGood, {"T", "F\x03"}));
  EXPECT_EQ(thrown[0].action, IE_SN_DROP);
  EXPECT_EQ(thrown[1].action, IE_SN_DROP);
  EXPECT_EQ(rt->counters().at("test_good.invalid_decisions"), 5u);
}

TEST_F(Modules, InvalidDecisionsFromCModule) {
  auto rt = standard();
  ASSERT_TRUE(rt);
  FakeWorker w(0);
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  g_probe.on_packets = [](const ie_sn_packet*, ie_sn_decision* out, std::size_t n) {
    ASSERT_EQ(n, 4u);
    out[0] = ie_sn_decision{IE_SN_FORWARD, 8, {1, 2, 3, 4, 5, 6, 7, 8}};  // ok: 8 hops
    out[1] = ie_sn_decision{IE_SN_DEFAULT, 5, {}};   // ok: hop_count ignored (-> 0)
    out[2] = ie_sn_decision{4, 0, {}};               // action out of range
    out[3] = ie_sn_decision{IE_SN_FORWARD, 1, {0}};  // hop 0
  };
  const auto out = run(*wm, kProbe, packets(kProbe, {"a", "b", "c", "d"}));
  EXPECT_EQ(out[0].action, IE_SN_FORWARD);
  EXPECT_EQ(out[0].hop_count, 8u);
  EXPECT_EQ(out[1].action, IE_SN_DEFAULT);
  EXPECT_EQ(out[1].hop_count, 0u);
  EXPECT_EQ(out[2].action, IE_SN_DROP);
  EXPECT_EQ(out[3].action, IE_SN_DROP);
  EXPECT_EQ(rt->counters().at("probe.invalid_decisions"), 2u);
  EXPECT_EQ(rt->counters().at("probe.packets"), 4u);
  EXPECT_EQ(rt->counters().at("test_good.invalid_decisions"), 0u);
}

TEST_F(Modules, PipeDownReachesEveryInstance) {
  auto rt = standard();
  ASSERT_TRUE(rt);
  FakeWorker w0(0), w1(1);
  auto m0 = instantiate(*rt, w0);
  auto m1 = instantiate(*rt, w1);
  ASSERT_TRUE(m0 && m1);
  m0->on_pipe_down(9);
  m1->on_pipe_down(9);
  EXPECT_EQ(rt->counters().at("test_good.pipes_down"), 2u);
}

TEST_F(Modules, FailedCreateFailsInstantiateAndUndoesTheOthers) {
  RuntimeOptions o;
  o.module_config["test_good"]["fail_create"] = "yes";
  auto rt = standard(o);
  ASSERT_TRUE(rt);
  FakeWorker w(3);
  auto wm = rt->instantiate(w);
  ASSERT_FALSE(wm.ok());
  EXPECT_NE(wm.error().context.find("test_good"), std::string::npos) << wm.error().context;
  EXPECT_NE(wm.error().context.find("worker 3"), std::string::npos);
  EXPECT_EQ(g_probe.created, 1);    // probe was created first...
  EXPECT_EQ(g_probe.destroyed, 1);  // ...and destroyed when test_good failed
}

TEST_F(Modules, DestroyOrderAndCreateArguments) {
  auto rt = standard();
  ASSERT_TRUE(rt);
  FakeWorker w0(0), w2(2);
  {
    auto m0 = instantiate(*rt, w0);
    auto m2 = instantiate(*rt, w2);
    ASSERT_TRUE(m0 && m2);
    EXPECT_EQ(g_probe.created, 2);
    ASSERT_NE(g_probe.host, nullptr);
    EXPECT_EQ(g_probe.host->abi_version, IE_SN_MODULE_ABI_VERSION);
    EXPECT_EQ(g_probe.host->struct_size, sizeof(ie_sn_host));
    EXPECT_NE(g_probe.env[0], nullptr);
    EXPECT_NE(g_probe.env[2], nullptr);
    EXPECT_NE(g_probe.env[0], g_probe.env[2]);  // one env per instance
  }
  EXPECT_EQ(g_probe.destroyed, 2);
}

TEST_F(Modules, LogIsPrefixedCutAndSanitised) {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  {
    auto rt = standard();
    ASSERT_TRUE(rt);
    FakeWorker w(0);
    auto wm = instantiate(*rt, w);
    ASSERT_TRUE(wm);
    ask(*wm, w, "log hello modules");
    g_probe.host->log(g_probe.env[0], IE_SN_LOG_WARN, "line1\nforged line");
    g_probe.host->log(g_probe.env[0], 99, "odd level");
    g_probe.host->log(g_probe.env[0], IE_SN_LOG_INFO, nullptr);
    g_probe.host->log(nullptr, IE_SN_LOG_INFO, "no env");
    const std::string huge(5000, 'q');
    g_probe.host->log(g_probe.env[0], IE_SN_LOG_ERROR, huge.c_str());
  }
  spdlog::set_default_logger(previous);
  const std::string text = captured.str();
  EXPECT_NE(text.find("[test_good] hello modules"), std::string::npos) << text;
  EXPECT_NE(text.find("[probe] line1?forged line"), std::string::npos) << text;
  EXPECT_NE(text.find("[probe] odd level"), std::string::npos);
  EXPECT_EQ(text.find("no env"), std::string::npos);
  EXPECT_NE(text.find("[probe] " + std::string(IE_SN_MAX_LOG_LEN, 'q') + "..."), std::string::npos);
  EXPECT_EQ(text.find(std::string(IE_SN_MAX_LOG_LEN + 1, 'q')), std::string::npos);
}

// ---- Every host call checks its arguments -------------------------------------------------------

TEST_F(Modules, HostCallsRefuseBadArguments) {
  RuntimeOptions o;
  o.module_config["probe"]["key"] = "value";
  auto rt = standard(o);
  ASSERT_TRUE(rt);
  FakeWorker w(0);
  w.add_host(5, v4(10, 1, 0, 2));
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  const ie_sn_host* h = g_probe.host;
  ie_sn_env* env = g_probe.env[0];
  ASSERT_TRUE(h && env);

  ie_sn_flow_key key{};
  key.src = v4(192, 0, 2, 1);
  key.service_id = kProbe;
  key.connection_id = 1;
  ie_sn_decision fwd{IE_SN_FORWARD, 1, {5}};
  EXPECT_EQ(h->cache_insert(nullptr, &key, &fwd), IE_SN_EINVAL);
  EXPECT_EQ(h->cache_insert(env, nullptr, &fwd), IE_SN_EINVAL);
  EXPECT_EQ(h->cache_insert(env, &key, nullptr), IE_SN_EINVAL);
  ie_sn_flow_key other = key;
  other.service_id = kGood;  // another module's service
  EXPECT_EQ(h->cache_insert(env, &other, &fwd), IE_SN_EINVAL);
  ie_sn_flow_key reserved = key;
  reserved.reserved = 1;
  EXPECT_EQ(h->cache_insert(env, &reserved, &fwd), IE_SN_EINVAL);
  reserved = key;
  reserved.reserved2 = 1;
  EXPECT_EQ(h->cache_insert(env, &reserved, &fwd), IE_SN_EINVAL);
  for (const ie_sn_decision bad :
       {ie_sn_decision{IE_SN_FORWARD, 0, {}}, ie_sn_decision{IE_SN_FORWARD, 9, {1}},
        ie_sn_decision{IE_SN_FORWARD, 2, {1, 0}}, ie_sn_decision{IE_SN_CONSUMED, 0, {}},
        ie_sn_decision{IE_SN_DEFAULT, 0, {}}, ie_sn_decision{9, 0, {}}})
    EXPECT_EQ(h->cache_insert(env, &key, &bad), IE_SN_EINVAL) << bad.action << bad.hop_count;
  EXPECT_EQ(w.cache().size(), 0u);
  EXPECT_EQ(h->cache_insert(env, &key, &fwd), IE_SN_OK);
  EXPECT_EQ(w.cache().size(), 1u);
  std::uint64_t hits = 99;
  EXPECT_EQ(h->cache_hit_count(env, &key, nullptr), IE_SN_EINVAL);
  EXPECT_EQ(h->cache_hit_count(env, &other, &hits), IE_SN_EINVAL);
  EXPECT_EQ(h->cache_hit_count(env, &key, &hits), IE_SN_OK);
  EXPECT_EQ(hits, 0u);
  EXPECT_EQ(h->cache_recently_used(env, nullptr, 0), IE_SN_EINVAL);
  EXPECT_EQ(h->cache_remove(env, &other), IE_SN_EINVAL);
  EXPECT_EQ(h->cache_remove(nullptr, &key), IE_SN_EINVAL);
  EXPECT_EQ(h->cache_remove(env, &key), IE_SN_OK);
  EXPECT_EQ(h->cache_remove(env, &key), IE_SN_ENOENT);

  ie_sn_pipe pipe = 0;
  const ie_sn_addr a = v4(10, 1, 0, 2);
  EXPECT_EQ(h->route_lookup(env, nullptr, &pipe), IE_SN_EINVAL);
  EXPECT_EQ(h->route_lookup(env, &a, nullptr), IE_SN_EINVAL);
  EXPECT_EQ(h->route_lookup(env, &a, &pipe), IE_SN_OK);
  EXPECT_EQ(pipe, 5u);
  EXPECT_EQ(h->sn_lookup(env, nullptr, &pipe), IE_SN_EINVAL);
  EXPECT_EQ(h->sn_lookup(env, "", &pipe), IE_SN_EINVAL);
  EXPECT_EQ(h->sn_lookup(env, std::string(200, 'd').c_str(), &pipe), IE_SN_EINVAL);
  EXPECT_EQ(h->sn_lookup(env, "dom1.sn1", nullptr), IE_SN_EINVAL);
  EXPECT_EQ(h->sn_lookup(env, "dom1.sn1", &pipe), IE_SN_ENOENT);

  w.pipes[5].flags = IE_SN_PIPE_F_STANDBY;
  ie_sn_pipe_info info{};
  info.struct_size = offsetof(ie_sn_pipe_info, flags) - 1;  // not even the first version's
  EXPECT_EQ(h->pipe_info(env, 5, &info), IE_SN_EINVAL);
  info.struct_size = sizeof info;
  EXPECT_EQ(h->pipe_info(env, 0, &info), IE_SN_EINVAL);
  EXPECT_EQ(h->pipe_info(env, 5, nullptr), IE_SN_EINVAL);
  EXPECT_EQ(h->pipe_info(env, 6, &info), IE_SN_ENOENT);
  EXPECT_EQ(h->pipe_info(env, 5, &info), IE_SN_OK);
  EXPECT_EQ(info.struct_size, sizeof info);
  EXPECT_EQ(info.kind, IE_SN_PIPE_HOST);
  EXPECT_EQ(info.flags, IE_SN_PIPE_F_STANDBY);
  // A module built before flags existed: served up to sn_name, flags left alone.
  ie_sn_pipe_info older{};
  older.struct_size = offsetof(ie_sn_pipe_info, flags);
  older.flags = 0xabcd;
  EXPECT_EQ(h->pipe_info(env, 5, &older), IE_SN_OK);
  EXPECT_EQ(older.struct_size, offsetof(ie_sn_pipe_info, flags));
  EXPECT_EQ(older.kind, IE_SN_PIPE_HOST);
  EXPECT_EQ(older.flags, 0xabcdu);
  // A larger struct (newer module): what we know is filled, the rest left alone.
  struct {
    ie_sn_pipe_info v1;
    std::uint32_t future;
  } bigger{};
  bigger.v1.struct_size = sizeof bigger;
  bigger.future = 0xabcd;
  EXPECT_EQ(h->pipe_info(env, 5, &bigger.v1), IE_SN_OK);
  EXPECT_EQ(bigger.v1.struct_size, sizeof(ie_sn_pipe_info));
  EXPECT_EQ(bigger.v1.kind, IE_SN_PIPE_HOST);
  EXPECT_EQ(bigger.v1.flags, IE_SN_PIPE_F_STANDBY);
  EXPECT_EQ(bigger.future, 0xabcdu);
  w.pipes[5].flags = 0;

  const std::uint8_t inner[4] = {1, 2, 3, 4};
  ie_sn_out_packet out{};
  out.struct_size = sizeof out;
  out.service_id = kProbe;
  out.inner = inner;
  out.inner_len = 4;
  EXPECT_EQ(h->send(env, 5, nullptr), IE_SN_EINVAL);
  EXPECT_EQ(h->send(env, 0, &out), IE_SN_EINVAL);
  ie_sn_out_packet bad_out = out;
  bad_out.struct_size = 8;
  EXPECT_EQ(h->send(env, 5, &bad_out), IE_SN_EINVAL);
  bad_out = out;
  bad_out.tlvs_len = 3;  // tlvs NULL
  EXPECT_EQ(h->send(env, 5, &bad_out), IE_SN_EINVAL);
  bad_out = out;
  bad_out.inner = nullptr;
  EXPECT_EQ(h->send(env, 5, &bad_out), IE_SN_EINVAL);
  bad_out = out;
  bad_out.inner_len = 70000;
  EXPECT_EQ(h->send(env, 5, &bad_out), IE_SN_EINVAL);
  EXPECT_EQ(h->send(env, 6, &out), IE_SN_ENOENT);  // no such pipe
  EXPECT_TRUE(w.sent.empty());
  EXPECT_EQ(h->send(env, 5, &out), IE_SN_OK);
  ASSERT_EQ(w.sent.size(), 1u);
  EXPECT_EQ(w.sent[0].inner, std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(h->control_reply(env, 5, 1, nullptr, 3), IE_SN_EINVAL);
  EXPECT_EQ(h->control_reply(env, 0, 1, inner, 4), IE_SN_EINVAL);
  EXPECT_EQ(h->control_reply(nullptr, 5, 1, inner, 4), IE_SN_EINVAL);
  EXPECT_EQ(h->control_reply(env, 5, 1, nullptr, 0), IE_SN_OK);

  EXPECT_EQ(h->now_ns(nullptr), 0u);
  EXPECT_EQ(h->now_ns(env), w.now_ns());
  auto noop = [](void*, ie_sn_env*, std::uint64_t, void*) {};
  EXPECT_EQ(h->timer_add(env, 10, nullptr, nullptr), 0u);
  EXPECT_EQ(h->timer_add(nullptr, 10, noop, nullptr), 0u);
  EXPECT_EQ(h->timer_add(env, (std::uint64_t{1} << 31) + 1, noop, nullptr), 0u);
  EXPECT_TRUE(w.timers.empty());
  EXPECT_EQ(h->timer_cancel(env, 0), IE_SN_EINVAL);
  EXPECT_EQ(h->timer_cancel(env, 12345), IE_SN_ENOENT);
  const std::uint64_t t = h->timer_add(env, 10, noop, nullptr);
  EXPECT_NE(t, 0u);
  EXPECT_EQ(h->timer_cancel(env, t), IE_SN_OK);
  EXPECT_EQ(h->timer_cancel(env, t), IE_SN_ENOENT);

  char buf[8];
  std::size_t len = sizeof buf;
  EXPECT_EQ(h->config_get(env, nullptr, buf, &len), IE_SN_EINVAL);
  EXPECT_EQ(h->config_get(env, "key", buf, nullptr), IE_SN_EINVAL);
  EXPECT_EQ(h->config_get(env, "key", nullptr, &len), IE_SN_EINVAL);  // NULL with len 8
  EXPECT_EQ(h->config_get(env, "bad key", buf, &len), IE_SN_EINVAL);
  EXPECT_EQ(h->config_get(env, std::string(65, 'k').c_str(), buf, &len), IE_SN_EINVAL);
  EXPECT_EQ(h->config_get(env, "missing", buf, &len), IE_SN_ENOENT);
  len = 0;
  EXPECT_EQ(h->config_get(env, "key", nullptr, &len), IE_SN_ENOSPC);
  EXPECT_EQ(len, 6u);  // "value" + NUL
  len = 5;
  EXPECT_EQ(h->config_get(env, "key", buf, &len), IE_SN_ENOSPC);
  EXPECT_EQ(len, 6u);
  EXPECT_EQ(h->config_get(env, "key", buf, &len), IE_SN_OK);
  EXPECT_STREQ(buf, "value");
  EXPECT_EQ(h->config_set(env, "key", nullptr), IE_SN_EINVAL);
  EXPECT_EQ(h->config_set(env, nullptr, "v"), IE_SN_EINVAL);
  EXPECT_EQ(h->config_set(env, "key", std::string(4097, 'v').c_str()), IE_SN_EINVAL);
  EXPECT_EQ(h->config_set(env, "key", std::string(4096, 'v').c_str()), IE_SN_OK);
  EXPECT_EQ(rt->module_config().at("probe").at("key").size(), 4096u);

  const std::uint8_t blob[5] = {0, 1, 0, 2, 0};  // binary, with NULs
  EXPECT_EQ(h->state_save(env, nullptr, blob, 5), IE_SN_EINVAL);
  EXPECT_EQ(h->state_save(env, "", blob, 5), IE_SN_EINVAL);
  EXPECT_EQ(h->state_save(env, "b", nullptr, 5), IE_SN_EINVAL);
  EXPECT_EQ(h->state_save(env, std::string(129, 'n').c_str(), blob, 5), IE_SN_EINVAL);
  std::vector<std::uint8_t> too_big(IE_SN_MAX_STATE_LEN + 1);
  EXPECT_EQ(h->state_save(env, "b", too_big.data(), too_big.size()), IE_SN_EINVAL);
  EXPECT_EQ(h->state_save(env, "b", blob, 5), IE_SN_OK);
  EXPECT_EQ(h->state_save(env, "empty", nullptr, 0), IE_SN_OK);
  std::uint8_t lb[8];
  len = 0;
  EXPECT_EQ(h->state_load(env, "b", nullptr, &len), IE_SN_ENOSPC);
  EXPECT_EQ(len, 5u);
  EXPECT_EQ(h->state_load(env, "b", lb, nullptr), IE_SN_EINVAL);
  len = sizeof lb;
  EXPECT_EQ(h->state_load(env, "b", lb, &len), IE_SN_OK);
  ASSERT_EQ(len, 5u);
  EXPECT_EQ(std::memcmp(lb, blob, 5), 0);
  len = sizeof lb;
  EXPECT_EQ(h->state_load(env, "empty", lb, &len), IE_SN_OK);
  EXPECT_EQ(len, 0u);
  len = sizeof lb;
  EXPECT_EQ(h->state_load(env, "never", lb, &len), IE_SN_ENOENT);
  // State is per module: test_good does not see probe's "b".
  EXPECT_EQ(ask(*wm, w, "load b"), "<none>");

  EXPECT_EQ(h->counter_declare(env, nullptr, "h"), 0u);
  EXPECT_EQ(h->counter_declare(env, "", "h"), 0u);
  EXPECT_EQ(h->counter_declare(env, "Caps", "h"), 0u);
  EXPECT_EQ(h->counter_declare(env, std::string(49, 'c').c_str(), "h"), 0u);
  EXPECT_EQ(h->counter_declare(env, "invalid_decisions", "h"), 0u);
  EXPECT_EQ(h->counter_declare(nullptr, "fine", "h"), 0u);
  const std::uint32_t first = h->counter_declare(env, std::string(48, 'c').c_str(), nullptr);
  EXPECT_EQ(first, 3u);  // after the SN's own two
  for (std::uint32_t i = 1; i < IE_SN_MAX_COUNTERS - 2; ++i)
    EXPECT_EQ(h->counter_declare(env, ("c" + std::to_string(i)).c_str(), "h"), first + i);
  EXPECT_EQ(h->counter_declare(env, "one_too_many", "h"), 0u);
  EXPECT_EQ(h->counter_declare(env, "c1", "h"), first + 1);  // existing names still resolve
  h->counter_add(env, 0, 5);                                 // ignored
  h->counter_add(env, 999, 5);                               // ignored
  h->counter_add(nullptr, first, 5);
  h->counter_add(env, first, 7);
  const auto c = rt->counters();
  EXPECT_EQ(c.at("probe." + std::string(48, 'c')), 7u);
  EXPECT_EQ(c.count("probe.one_too_many"), 0u);
  std::size_t probe_counters = 0;
  for (const auto& [name, v] : c)
    probe_counters += name.rfind("probe.", 0) == 0;
  EXPECT_EQ(probe_counters, IE_SN_MAX_COUNTERS);
}

// ---- The null module and the fanout example ---------------------------------------------------

TEST_F(Modules, NullModuleReturnsEveryPacketAndNeverCaches) {
  auto rt = standard();
  ASSERT_TRUE(rt);
  FakeWorker w(0);
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  const auto null = null_module();
  EXPECT_EQ(check_error(null), "ok");
  EXPECT_STREQ(null->name, "null");
  EXPECT_EQ(null->service_id, 0);
  EXPECT_EQ(null->on_control, nullptr);  // the wrapper only reports overridden callbacks
  for (int round = 0; round < 3; ++round) {
    const auto out = run(*wm, 0, packets(0, {"a", "b", "c", "d"}));
    for (const auto& d : out)
      EXPECT_EQ(d.action, IE_SN_DEFAULT);
  }
  EXPECT_EQ(w.cache().size(), 0u);
  EXPECT_EQ(rt->counters().at("null.packets"), 12u);
  EXPECT_EQ(rt->counters().at("null.invalid_decisions"), 0u);
}

class Fanout : public Modules {
 protected:
  // dom2.sn1 -> pipe 20; host 10.1.0.3 -> pipe 31; fd00::3 is served by dom2.sn1 -> 20;
  // host 10.1.0.4 -> pipe 32.
  void topology(FakeWorker& w) {
    w.add_sn(20, "dom2.sn1");
    w.add_host(31, v4(10, 1, 0, 3));
    w.add_host(32, v4(10, 1, 0, 4));
    ie_sn_addr v6{};
    v6.bytes[0] = 0xfd;
    v6.bytes[15] = 3;
    w.routes.emplace_back(v6, 20);
  }
  std::unique_ptr<ModuleRuntime> runtime(const std::string& to, const std::string& idle = "") {
    RuntimeOptions o;
    o.module_config["fanout"]["to"] = to;
    if (!idle.empty()) o.module_config["fanout"]["idle_seconds"] = idle;
    auto rt = make_runtime(std::move(o));
    if (!rt) return nullptr;
    const auto r = rt->load(IE_TEST_MODULE_FANOUT);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    return rt;
  }
  static std::vector<ie_sn_pipe> hops(const ie_sn_decision& d) {
    return std::vector<ie_sn_pipe>(d.hops, d.hops + (d.action == IE_SN_FORWARD ? d.hop_count : 0));
  }
};

TEST_F(Fanout, ForwardsToEveryResolvedPipeOnceAndCaches) {
  auto rt = runtime(" dom2.sn1, 10.1.0.3,fd00::3 ,10.9.9.9, dom9.sn9,, ");
  ASSERT_TRUE(rt);
  ASSERT_EQ(rt->modules().size(), 1u);
  EXPECT_EQ(rt->modules()[0].name, "fanout");
  EXPECT_EQ(rt->modules()[0].service_id, kFanout);
  FakeWorker w(0);
  topology(w);
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);

  auto from_elsewhere = packets(kFanout, {"x"}, /*from=*/40, /*conn=*/1);
  auto out = run(*wm, kFanout, from_elsewhere);
  EXPECT_EQ(hops(out[0]), (std::vector<ie_sn_pipe>{20, 31}));  // fd00::3 also -> 20: one copy
  const Decision* cached = w.cache().lookup(key_of(from_elsewhere[0]), w.now_ns());
  ASSERT_NE(cached, nullptr);
  EXPECT_EQ(cached->action, Action::forward);
  EXPECT_EQ(std::vector<NextHop>(cached->next_hops().begin(), cached->next_hops().end()),
            (std::vector<NextHop>{20, 31}));

  auto from_31 = packets(kFanout, {"x"}, /*from=*/31, /*conn=*/2);
  out = run(*wm, kFanout, from_31);
  EXPECT_EQ(hops(out[0]), (std::vector<ie_sn_pipe>{20}));  // never back where it came from

  const auto c = rt->counters();
  EXPECT_EQ(c.at("fanout.copies"), 3u);
  EXPECT_EQ(c.at("fanout.unresolved"), 4u);  // 10.9.9.9 and dom9.sn9, twice
  EXPECT_EQ(c.at("fanout.no_target"), 0u);
  EXPECT_EQ(c.at("fanout.packets"), 2u);
  EXPECT_EQ(c.at("fanout.invalid_decisions"), 0u);
}

TEST_F(Fanout, ConfigChangeRemovesCachedFlowsAndRedecides) {
  auto rt = runtime("dom2.sn1,10.1.0.3");
  ASSERT_TRUE(rt);
  FakeWorker w(0);
  topology(w);
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  auto tp = packets(kFanout, {"a", "b"}, 40, 1);
  run(*wm, kFanout, tp);
  EXPECT_EQ(w.cache().size(), 2u);

  auto cfg = rt->module_config();
  cfg["fanout"]["to"] = "10.1.0.4";
  rt->set_module_config(cfg);
  wm->poll_config();
  EXPECT_EQ(w.cache().size(), 0u);  // old destinations gone from the cache
  const auto out = run(*wm, kFanout, tp);
  EXPECT_EQ(hops(out[0]), (std::vector<ie_sn_pipe>{32}));
  EXPECT_EQ(hops(out[1]), (std::vector<ie_sn_pipe>{32}));

  cfg["fanout"]["to"] = "";
  rt->set_module_config(cfg);
  wm->poll_config();
  const auto none = run(*wm, kFanout, tp);
  EXPECT_EQ(none[0].action, IE_SN_DROP);
  EXPECT_EQ(rt->counters().at("fanout.no_target"), 2u);
}

TEST_F(Fanout, AtMostEightPipes) {
  std::string to;
  FakeWorker w(0);
  for (int i = 1; i <= 10; ++i) {
    w.add_host(100 + i, v4(10, 3, 0, static_cast<std::uint8_t>(i)));
    to += "10.3.0." + std::to_string(i) + ",";
  }
  auto rt = runtime(to);
  ASSERT_TRUE(rt);
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  const auto out = run(*wm, kFanout, packets(kFanout, {"x"}, 40));
  EXPECT_EQ(hops(out[0]), (std::vector<ie_sn_pipe>{101, 102, 103, 104, 105, 106, 107, 108}));
  EXPECT_EQ(rt->counters().at("fanout.truncated"), 2u);
}

TEST_F(Fanout, IdleFlowsExpireActiveOnesStay) {
  auto rt = runtime("10.1.0.3", /*idle=*/"1");
  ASSERT_TRUE(rt);
  FakeWorker w(0);
  topology(w);
  auto wm = instantiate(*rt, w);
  ASSERT_TRUE(wm);
  auto tp = packets(kFanout, {"idle", "busy"}, 40, 1);
  run(*wm, kFanout, tp);
  ASSERT_EQ(w.cache().size(), 2u);
  for (int s = 0; s < 3; ++s) {  // the busy flow is hit every 500 ms, the idle one never
    w.advance(std::chrono::milliseconds(500));
    ASSERT_NE(w.cache().lookup(key_of(tp[1]), w.now_ns()), nullptr) << s;
    w.advance(std::chrono::milliseconds(500));
    w.cache().lookup(key_of(tp[1]), w.now_ns());
  }
  EXPECT_EQ(w.cache().lookup(key_of(tp[0]), w.now_ns()), nullptr);
  EXPECT_NE(w.cache().lookup(key_of(tp[1]), w.now_ns()), nullptr);
  EXPECT_EQ(rt->counters().at("fanout.flows_expired"), 1u);
  EXPECT_EQ(w.timers.size(), 1u);  // the sweep re-arms itself
}

TEST_F(Fanout, InstancesOnTwoWorkersShareNothingButCounters) {
  auto rt = runtime("10.1.0.3");
  ASSERT_TRUE(rt);
  FakeWorker w0(0), w1(1);
  topology(w0);
  topology(w1);
  auto m0 = instantiate(*rt, w0);
  auto m1 = instantiate(*rt, w1);
  ASSERT_TRUE(m0 && m1);
  run(*m0, kFanout, packets(kFanout, {"a"}, 40, 1));
  run(*m1, kFanout, packets(kFanout, {"b", "c"}, 40, 5));
  EXPECT_EQ(w0.cache().size(), 1u);  // each worker's own shard
  EXPECT_EQ(w1.cache().size(), 2u);
  EXPECT_EQ(rt->counters().at("fanout.copies"), 3u);
}

}  // namespace
}  // namespace ie::sn
