// Anycast SN discovery (ie/ied/anycast_probe.hpp): the info-answer parser on good and bad
// input, and the prober on a reactor against a HostLink posing as an SN over loopback (it
// answers XX first contact and the control service's info): the answer carries the name and
// endpoint the SN advertised and the key its handshake proved; the probe session is closed
// afterwards; a bad answer, a silent address, a responder refusing first contact and a bad
// endpoint end in the right errors within the timeout; destroying the prober cancels.
#include <gtest/gtest.h>
#include <sodium.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ie/crypto/key_file.hpp"
#include "ie/ied/anycast_probe.hpp"
#include "ie/io/udp.hpp"
#include "ie/link/host_link.hpp"

namespace ie::ied {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

TEST(SnInfo, ParsesNameAndEndpoint) {
  auto i = parse_sn_info(
      R"({"ok":true,"sn":"dom1.sn1","edomain":"dom1","services":["control"],"endpoint":"10.0.0.1:1000"})");
  ASSERT_TRUE(i) << i.error().to_string();
  EXPECT_EQ(i->name, "dom1.sn1");
  EXPECT_EQ(i->endpoint, "10.0.0.1:1000");
  auto v6 = parse_sn_info(R"({"ok":true,"sn":"a.b","endpoint":"[2001:db8::1]:1000"})");
  ASSERT_TRUE(v6) << v6.error().to_string();
  EXPECT_EQ(v6->endpoint, "[2001:db8::1]:1000");
}

TEST(SnInfo, RefusesMalformedAnswers) {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {"", "not a JSON object"},
      {"[1]", "not a JSON object"},
      {"{\"ok\":true,\"sn\":\"a.b\",\"endpoint\":\"10.0.0.1:1\"", "not a JSON object"},
      {R"({"ok":false,"error":"x"})", "not \"ok\":true"},
      {R"({"ok":"yes","sn":"a.b","endpoint":"10.0.0.1:1"})", "not \"ok\":true"},
      {R"({"ok":true,"endpoint":"10.0.0.1:1"})", "no \"sn\""},
      {R"({"ok":true,"sn":7,"endpoint":"10.0.0.1:1"})", "no \"sn\""},
      {R"({"ok":true,"sn":"A.b","endpoint":"10.0.0.1:1"})", "is not DOM.SN"},
      {R"({"ok":true,"sn":"ab","endpoint":"10.0.0.1:1"})", "is not DOM.SN"},
      {R"({"ok":true,"sn":"a.b"})", "SN a.b advertises no unicast endpoint"},
      {R"({"ok":true,"sn":"a.b","endpoint":1000})", "\"endpoint\" is not a string"},
      {R"({"ok":true,"sn":"a.b","endpoint":"sn.example:1000"})", "not a numeric IP:PORT"},
      {R"({"ok":true,"sn":"a.b","endpoint":"0.0.0.0:1000"})", "not a numeric IP:PORT"},
      {R"({"ok":true,"sn":"a.b","endpoint":"10.0.0.1:0"})", "not a numeric IP:PORT"},
      {R"({"ok":true,"sn":"a.b","endpoint":"[::]:1000"})", "not a numeric IP:PORT"},
  };
  for (const auto& c : cases) {
    auto r = parse_sn_info(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code, Errc::protocol);
    EXPECT_NE(r.error().context.find(c.expect), std::string::npos)
        << c.text << ": " << r.error().context;
  }
}

// A HostLink posing as an SN: answers XX first contact (or not), and info with `info`.
struct FakeSn {
  std::unique_ptr<link::HostLink> link;
  crypto::noise::PublicKey pub{};
  std::string endpoint;
  std::string info = R"({"ok":true,"sn":"dom1.sn9","endpoint":"192.0.2.9:1000"})";
  int infos = 0;

  explicit FakeSn(bool first_contact) {
    link::LinkOptions o;
    o.bind = "127.0.0.1:0";
    o.key = crypto::noise::KeyPair::generate();
    pub = o.key.pub;
    o.listen = true;
    o.accept_first_contact = first_contact;
    auto l = link::HostLink::create(std::move(o));
    EXPECT_TRUE(l);
    link = std::move(*l);
    socklen_t len = 0;
    auto a = link->socket().local_address(&len);
    endpoint = a ? io::endpoint_str(*a) : std::string();
    link->set_request_handler_for_test(
        [this](link::PeerId, std::string_view body) -> std::optional<std::string> {
          const Json j = Json::parse(body, nullptr, false);
          if (j.is_object() && j.value("op", "") == "info") {
            ++infos;
            return info;
          }
          return std::nullopt;
        });
  }
};

class Anycast : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    auto r = io::Reactor::create();
    ASSERT_TRUE(r);
    reactor_ = std::move(*r);
    opts_.timeout = 1500ms;
    opts_.timers.retry_initial = 100ms;
    opts_.timers.retry_max = 200ms;
  }
  // A fake SN owned by the fixture and served from the reactor until TearDown.
  FakeSn& make_sn(bool first_contact) {
    served_.push_back(std::make_unique<FakeSn>(first_contact));
    FakeSn& sn = *served_.back();
    EXPECT_TRUE(reactor_->add_fd(sn.link->fd(), io::Reactor::kReadable, [&sn](std::uint32_t) {
      sn.link->receive([](link::InPacket&) {});
      sn.link->service();
    }));
    if (served_.size() == 1) tick();
    return sn;
  }
  void tick() {
    for (const auto& sn : served_)
      sn->link->service();
    reactor_->add_timer(20ms, [this] { tick(); });
  }
  // Runs the loop until done() or the limit.
  template <typename F>
  bool run_until(F done, std::chrono::milliseconds limit = 5s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end)
      (void)reactor_->run_once(10ms);
    return done();
  }
  void TearDown() override {
    for (const auto& sn : served_)
      reactor_->remove_fd(sn->link->fd());
    served_.clear();
    reactor_.reset();  // with the tick timer
  }

  std::unique_ptr<io::Reactor> reactor_;
  AnycastOptions opts_;
  std::vector<std::unique_ptr<FakeSn>> served_;
};

TEST_F(Anycast, FindsTheResponderItsKeyAndEndpointThenCloses) {
  FakeSn& sn = make_sn(true);
  AnycastProber prober(*reactor_, opts_);
  std::optional<Result<AnycastAnswer>> got;
  prober.probe(sn.endpoint, [&](Result<AnycastAnswer> r) { got = std::move(r); });
  EXPECT_FALSE(got) << "never called inside probe()";
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  ASSERT_TRUE(*got) << got->error().to_string();
  const AnycastAnswer& a = **got;
  EXPECT_EQ(a.anycast, sn.endpoint);
  EXPECT_EQ(a.info.name, "dom1.sn9");
  EXPECT_EQ(a.info.endpoint, "192.0.2.9:1000");
  EXPECT_EQ(a.key, sn.pub) << "the key the handshake proved";
  EXPECT_EQ(sn.infos, 1);
  EXPECT_EQ(prober.in_flight(), 0u);
  // The probe session was closed: the SN saw CLOSE (a dead/closed event).
  EXPECT_TRUE(run_until([&] { return sn.link->stats().dead >= 1; }, 2s));
  EXPECT_EQ(sn.link->stats().associations, 1u);
}

TEST_F(Anycast, BadInfoAnswerIsAProtocolErrorNamingTheKey) {
  FakeSn& sn = make_sn(true);
  sn.info = R"({"ok":true,"sn":"dom1.sn9"})";
  AnycastProber prober(*reactor_, opts_);
  std::optional<Result<AnycastAnswer>> got;
  prober.probe(sn.endpoint, [&](Result<AnycastAnswer> r) { got = std::move(r); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error().code, Errc::protocol);
  EXPECT_NE(got->error().context.find("advertises no unicast endpoint"), std::string::npos)
      << got->error().context;
  EXPECT_NE(got->error().context.find(crypto::key_to_base64(sn.pub)), std::string::npos)
      << got->error().context;
}

TEST_F(Anycast, SilenceAndRefusedFirstContactTimeOut) {
  FakeSn& closed = make_sn(false);  // answers IK only: XX initiations are dropped
  auto silent = io::UdpSocket::bind("127.0.0.1:0", {});
  ASSERT_TRUE(silent);
  socklen_t len = 0;
  const std::string quiet = io::endpoint_str(*silent->local_address(&len));
  AnycastProber prober(*reactor_, opts_);
  std::optional<Result<AnycastAnswer>> a, b;
  const auto t0 = std::chrono::steady_clock::now();
  prober.probe(quiet, [&](Result<AnycastAnswer> r) { a = std::move(r); });
  prober.probe(closed.endpoint, [&](Result<AnycastAnswer> r) { b = std::move(r); });
  EXPECT_EQ(prober.in_flight(), 2u);
  ASSERT_TRUE(run_until([&] { return a.has_value() && b.has_value(); }));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, opts_.timeout);
  EXPECT_LT(took, opts_.timeout + 1s);
  for (auto* r : {&a, &b}) {
    ASSERT_FALSE(**r);
    EXPECT_EQ((*r)->error().code, Errc::timeout);
    EXPECT_NE((*r)->error().context.find("no SN answered at"), std::string::npos)
        << (*r)->error().context;
  }
  EXPECT_EQ(closed.infos, 0);
  EXPECT_EQ(closed.link->stats().associations, 0u);
}

TEST_F(Anycast, BadEndpointIsRefused) {
  AnycastProber prober(*reactor_, opts_);
  std::optional<Result<AnycastAnswer>> got;
  prober.probe("0.0.0.0:1000", [&](Result<AnycastAnswer> r) { got = std::move(r); });
  EXPECT_FALSE(got);
  ASSERT_TRUE(run_until([&] { return got.has_value(); }, 1s));
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error().code, Errc::invalid_argument);
}

TEST_F(Anycast, DestroyingTheProberCancels) {
  FakeSn& sn = make_sn(true);
  bool called = false;
  {
    AnycastProber prober(*reactor_, opts_);
    prober.probe(sn.endpoint, [&](Result<AnycastAnswer>) { called = true; });
    prober.probe("0.0.0.0:1", [&](Result<AnycastAnswer>) { called = true; });  // posted error
  }
  run_until([] { return false; }, 500ms);
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace ie::ied
