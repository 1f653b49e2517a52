// HostLink's out-of-band invocations (docs/sn.md "Out-of-band requests"): two HostLinks over
// loopback, one listening and answering service.set as an SN would (through its request
// hook), the other treating it as its SN. The set reaches the SN after registration (at once
// with no addresses), follows every change (a new generation), is sent again after the SN
// restarts, and a refusal is reported and not retried until the set changes; a plain host
// refuses service.set. Also the Invocation JSON form, and the host's role (set_standby).
#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../common/loopback_link.hpp"
#include "ie/link/host_link.hpp"

namespace ie::link {
namespace {

using Json = nlohmann::json;

using ie::testing::endpoint_of;
using ie::testing::fast_link;

// A listening link that answers the control service like an SN: it records every request's
// op (and each service.set's invocations) and accepts service.set, echoing the set with
// host bits cleared as an SN would ... unless `refuse` is set.
struct FakeSn {
  std::unique_ptr<HostLink> link;
  std::vector<std::string> ops;
  std::vector<Json> sets;       // the "invocations" of each service.set received
  std::vector<Json> registers;  // each register request
  std::string refuse;           // non-empty: refuse service.set with this error

  static std::unique_ptr<FakeSn> start(LinkOptions o) {
    auto f = std::make_unique<FakeSn>();
    auto l = HostLink::create(std::move(o));
    if (!l) return nullptr;
    f->link = std::move(*l);
    FakeSn* self = f.get();
    f->link->set_request_handler_for_test(
        [self](PeerId, std::string_view body) -> std::optional<std::string> {
          const Json j = Json::parse(body, nullptr, false);
          const std::string op = j.is_object() ? j.value("op", "") : "";
          self->ops.push_back(op);
          if (op == "register") self->registers.push_back(j);
          if (op != "service.set") return std::nullopt;
          self->sets.push_back(j.value("invocations", Json::array()));
          if (!self->refuse.empty()) return Json{{"ok", false}, {"error", self->refuse}}.dump();
          Json applied = Json::array();
          for (Json e : j["invocations"]) {
            auto p = e["prefix"].get<std::string>();
            if (p == "10.3.0.7/24") p = "10.3.0.0/24";  // canonical, as the SN would
            e["prefix"] = p;
            applied.push_back(e);
          }
          return Json{{"ok", true}, {"sn", "dom1.sn1"}, {"invocations", applied}}.dump();
        });
    return f;
  }
  std::size_t count(const std::string& op) const {
    return static_cast<std::size_t>(std::count(ops.begin(), ops.end(), op));
  }
};

class Oob : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    auto lo = fast_link(/*listen=*/true);
    lo.close_on_exit = false;
    sn_key_ = lo.key.clone();
    sn_ = FakeSn::start(std::move(lo));
    ASSERT_TRUE(sn_);
    where_ = endpoint_of(*sn_->link);
    auto c = HostLink::create(fast_link(false));
    ASSERT_TRUE(c);
    host_ = std::move(*c);
  }

  // Runs both links until done() or the limit; returns done().
  template <typename F>
  bool run_until(F done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto ignore = [](InPacket&) {};
    const auto end = Clock::now() + limit;
    while (!done() && Clock::now() < end) {
      host_->poll_once(std::chrono::milliseconds(5), ignore);
      if (sn_) sn_->link->poll_once(std::chrono::milliseconds(1), ignore);
    }
    return done();
  }
  void run_for(std::chrono::milliseconds d) {
    run_until([] { return false; }, d);
  }
  HostLink::SnState state() { return *host_->sn_state(sn_peer_); }

  crypto::noise::KeyPair sn_key_;
  std::unique_ptr<FakeSn> sn_;
  std::string where_;
  std::unique_ptr<HostLink> host_;
  PeerId sn_peer_ = 0;
};

const std::vector<Invocation> kBlock = {{"block", "in", "10.3.0.7/24"},
                                        {"block", "both", "fd00:9::/64"}};

TEST_F(Oob, ReachesTheSnAfterRegistrationAndFollowsEveryChange) {
  // Set before the association exists: nothing can be sent yet.
  host_->set_invocations(kBlock);
  EXPECT_EQ(host_->invocation_generation(), 1u);
  auto p = host_->add_sn(where_, sn_key_.pub, {"10.1.0.2"});
  ASSERT_TRUE(p);
  sn_peer_ = *p;
  ASSERT_TRUE(run_until([&] { return state().oob_acked == 1; })) << state().oob_error;
  // Registered first, then the set, once.
  ASSERT_GE(sn_->ops.size(), 2u);
  EXPECT_EQ(sn_->ops[0], "register");
  EXPECT_EQ(sn_->count("service.set"), 1u);
  ASSERT_EQ(sn_->sets.size(), 1u);
  EXPECT_EQ(sn_->sets[0],
            Json::parse(R"([{"service":"block","direction":"in","prefix":"10.3.0.7/24"},
      {"service":"block","direction":"both","prefix":"fd00:9::/64"}])"));
  // What the SN says applies, canonical.
  const std::vector<Invocation> applied = {{"block", "in", "10.3.0.0/24"},
                                           {"block", "both", "fd00:9::/64"}};
  EXPECT_EQ(state().oob_applied, applied);
  EXPECT_EQ(state().oob_refused, 0u);
  EXPECT_EQ(host_->stats().oob_applied, 1u);
  EXPECT_EQ(host_->stats().oob_refusals, 0u);

  // A change: a new generation, sent at once, the whole set ([] clears).
  host_->set_invocations({});
  EXPECT_EQ(host_->invocation_generation(), 2u);
  EXPECT_EQ(state().oob_acked, 1u);  // not yet answered
  ASSERT_TRUE(run_until([&] { return state().oob_acked == 2; }));
  ASSERT_EQ(sn_->sets.size(), 2u);
  EXPECT_EQ(sn_->sets[1], Json::array());
  EXPECT_TRUE(state().oob_applied.empty());
  // Answered: nothing more is sent.
  run_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(sn_->count("service.set"), 2u);
  EXPECT_EQ(host_->stats().oob_requests, 2u);
}

TEST_F(Oob, NothingSentBeforeTheFirstSetAndAtOnceWithoutAddresses) {
  auto p = host_->add_sn(where_, sn_key_.pub, {});  // no addresses: no registration
  ASSERT_TRUE(p);
  sn_peer_ = *p;
  ASSERT_TRUE(run_until([&] { return host_->sn_ready(); }));
  run_for(std::chrono::milliseconds(300));
  EXPECT_EQ(sn_->count("service.set"), 0u);  // generation 0: nothing wanted
  host_->set_invocations({kBlock[0]});
  ASSERT_TRUE(run_until([&] { return state().oob_acked == 1; }));
  EXPECT_EQ(sn_->count("register"), 0u);
  EXPECT_EQ(sn_->count("service.set"), 1u);
}

TEST_F(Oob, SentAgainAfterTheSnRestarts) {
  host_->set_invocations(kBlock);
  auto p = host_->add_sn(where_, sn_key_.pub, {"10.1.0.2"});
  ASSERT_TRUE(p);
  sn_peer_ = *p;
  ASSERT_TRUE(run_until([&] { return state().oob_acked == 1; }));

  // The SN goes away without a word and comes back with no memory of the host.
  sn_.reset();
  run_for(std::chrono::milliseconds(300));
  LinkOptions again = fast_link(true);
  again.key = sn_key_.clone();
  again.bind = where_;
  again.close_on_exit = false;
  sn_ = FakeSn::start(std::move(again));
  ASSERT_TRUE(sn_);
  ASSERT_TRUE(run_until([&] { return host_->stats().reassociations >= 1; }));
  ASSERT_TRUE(run_until([&] { return state().oob_acked == 1 && sn_->count("service.set") == 1; }))
      << "acked " << state().oob_acked << ", requests " << sn_->count("service.set");
  // Same generation (the set did not change), registered again first.
  EXPECT_EQ(host_->invocation_generation(), 1u);
  EXPECT_EQ(sn_->ops.front(), "register");
  EXPECT_EQ(sn_->sets.back().size(), 2u);
  EXPECT_EQ(host_->stats().oob_applied, 2u);
}

TEST_F(Oob, RefusalIsReportedAndNotRetriedUntilTheSetChanges) {
  sn_->refuse =
      R"(invocations[0]: service "qos" is not offered for out-of-band use by dom1.sn1 (offered: block))";
  host_->set_invocations({{"qos", "out", "10.9.0.0/16"}});
  auto p = host_->add_sn(where_, sn_key_.pub, {"10.1.0.2"});
  ASSERT_TRUE(p);
  sn_peer_ = *p;
  ASSERT_TRUE(run_until([&] { return state().oob_refused == 1; }));
  EXPECT_EQ(state().oob_error, sn_->refuse);
  EXPECT_EQ(state().oob_acked, 0u);
  EXPECT_EQ(host_->stats().oob_refusals, 1u);
  // Past the retry period: not sent again.
  run_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(sn_->count("service.set"), 1u);
  EXPECT_EQ(host_->stats().oob_requests, 1u);

  // A new set is a new chance.
  sn_->refuse.clear();
  host_->set_invocations({kBlock[0]});
  ASSERT_TRUE(run_until([&] { return state().oob_acked == 2; }));
  EXPECT_EQ(sn_->count("service.set"), 2u);
  EXPECT_EQ(state().oob_refused, 1u);  // the old refusal's generation, no longer current
  EXPECT_EQ(state().oob_error, "");
}

TEST_F(Oob, AHostRefusesServiceSet) {
  // A plain listening host (ied's direct-path role) has no out-of-band services.
  auto lo = fast_link(/*listen=*/true);
  const auto pub = lo.key.pub;
  auto plain = HostLink::create(std::move(lo));
  ASSERT_TRUE(plain);
  host_->set_invocations({kBlock[0]});
  auto p = host_->add_sn(endpoint_of(**plain), pub, {"10.1.0.2"});
  ASSERT_TRUE(p);
  sn_peer_ = *p;
  auto ignore = [](InPacket&) {};
  const auto end = Clock::now() + std::chrono::seconds(10);
  while (state().oob_refused != 1 && Clock::now() < end) {
    host_->poll_once(std::chrono::milliseconds(5), ignore);
    (*plain)->poll_once(std::chrono::milliseconds(1), ignore);
  }
  EXPECT_EQ(state().oob_refused, 1u);
  EXPECT_EQ(state().oob_error, "out-of-band services are not served by a host");
  EXPECT_TRUE(state().registered);
}

// ied's RTT survey (daemon/core/rtt_survey.cpp): an association only to measure the SN's
// round trip gets neither registration nor the invocations, and answers PROBEs.
TEST_F(Oob, AnRttOnlyAssociationIsNotRegisteredAndGetsNoInvocations) {
  // An SN like iesn keeps alive only the peers it connects to, so it answers a host's PROBEs.
  auto lo = fast_link(/*listen=*/true);
  lo.close_on_exit = false;
  lo.timers.idle_keepalive = crypto::assoc::IdleKeepalive::kept_peers;
  sn_key_ = lo.key.clone();
  sn_ = FakeSn::start(std::move(lo));
  ASSERT_TRUE(sn_);
  where_ = endpoint_of(*sn_->link);
  host_->set_invocations(kBlock);
  auto p = host_->add_sn_for_rtt(where_, sn_key_.pub);
  ASSERT_TRUE(p);
  sn_peer_ = *p;
  ASSERT_TRUE(run_until([&] { return state().established; }));
  host_->probe(sn_peer_);
  ASSERT_TRUE(run_until([&] { return state().rtt_samples == 1; }));
  ASSERT_TRUE(state().rtt_ms.has_value());
  EXPECT_GT(*state().rtt_ms, 0.0);
  host_->probe(sn_peer_);
  ASSERT_TRUE(run_until([&] { return state().rtt_samples == 2; }));
  run_for(std::chrono::milliseconds(300));
  EXPECT_EQ(sn_->count("service.set"), 0u);
  EXPECT_EQ(sn_->count("register"), 0u);
  EXPECT_EQ(state().oob_acked, 0u);
}

// An SN removed (its association closed) can be added again: the survey closes its
// association before ied associates for real, and ied drops a standby that may come back.
TEST_F(Oob, AnSnRemovedCanBeAddedAgain) {
  auto p = host_->add_sn(where_, sn_key_.pub, {});
  ASSERT_TRUE(p);
  sn_peer_ = *p;
  ASSERT_TRUE(run_until([&] { return state().established; }));
  // The same key twice while it is ours: refused.
  auto twice = host_->add_sn(where_, sn_key_.pub, {});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Errc::exists);
  host_->remove_sn(sn_peer_);
  EXPECT_FALSE(host_->sn_state(sn_peer_).has_value());
  auto again = host_->add_sn(where_, sn_key_.pub, {});
  ASSERT_TRUE(again) << again.error().to_string();
  sn_peer_ = *again;
  ASSERT_TRUE(run_until([&] { return state().established && host_->can_send(sn_peer_); }));
}

TEST(Invocation, JsonForm) {
  const Invocation inv{"block", "both", "198.51.100.0/24"};
  const Json j = inv.to_json();
  EXPECT_EQ(j, Json::parse(R"({"service":"block","direction":"both","prefix":"198.51.100.0/24"})"));
  EXPECT_EQ(Invocation::from_json(j), inv);
  Json extra = j;
  extra["options"] = Json::object();  // unknown keys are ignored
  EXPECT_EQ(Invocation::from_json(extra), inv);
  EXPECT_EQ(inv.str(), "block both 198.51.100.0/24");
  for (const char* bad : {R"([])", R"("block")", R"({})", R"({"service":"block","direction":"in"})",
                          R"({"service":1,"direction":"in","prefix":"10.0.0.0/8"})",
                          R"({"service":"block","direction":null,"prefix":"10.0.0.0/8"})",
                          R"({"service":"block","direction":"in","prefix":["10.0.0.0/8"]})"})
    EXPECT_FALSE(Invocation::from_json(Json::parse(bad))) << bad;
}

// The host's role at an SN (set_standby): the first registration carries the role wanted
// by then; a change is registered again (the SN's answer confirms it in SnState::standby);
// setting the same role again sends nothing.
TEST_F(Oob, TheRoleIsRegisteredAndEveryChangeAgain) {
  auto p = host_->add_sn(where_, sn_key_.pub, {"10.1.0.2"});
  ASSERT_TRUE(p);
  sn_peer_ = *p;
  host_->set_standby(sn_peer_, true);  // before the association: no request yet
  ASSERT_TRUE(run_until([&] { return state().registered; }));
  ASSERT_EQ(sn_->registers.size(), 1u);
  EXPECT_EQ(sn_->registers[0].value("standby", false), true);
  EXPECT_TRUE(state().standby);

  host_->set_standby(sn_peer_, false);
  ASSERT_TRUE(run_until([&] { return !state().standby; }));
  ASSERT_EQ(sn_->registers.size(), 2u);
  EXPECT_EQ(sn_->registers[1].value("standby", true), false);
  EXPECT_EQ(sn_->registers[1]["addrs"], Json::array({"10.1.0.2"}));
  EXPECT_TRUE(state().registered);  // registered all along: the SN stayed ready

  host_->set_standby(sn_peer_, false);
  run_for(std::chrono::milliseconds(300));
  EXPECT_EQ(sn_->registers.size(), 2u);
  host_->set_standby(sn_peer_, true);
  ASSERT_TRUE(run_until([&] { return state().standby; }));
  EXPECT_EQ(sn_->registers.size(), 3u);
}

}  // namespace
}  // namespace ie::link
