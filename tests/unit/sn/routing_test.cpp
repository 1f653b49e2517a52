// Routing decisions: the route table (hosts, SN pipes, gateways, static routes), the control
// service's host registration, and the ip module driven through the C ABI.
#include "ie/sn/routing.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "ie/wire/service_id.hpp"
#include "ie/wire/tlv.hpp"

namespace ie::sn {
namespace {

using nlohmann::json;

Addr16 A(std::string_view s) {
  auto a = parse_addr(s);
  EXPECT_TRUE(a.has_value()) << s;
  return a.value_or(Addr16{});
}

Prefix P(const std::string& s) {
  auto p = Prefix::parse(s);
  EXPECT_TRUE(p.ok()) << s;
  return p.ok() ? *p : Prefix{};
}

RouteOp up(PipeId id, ie_sn_pipe_kind kind, std::string name = {}) {
  RouteOp op;
  op.kind = RouteOp::Kind::pipe_up;
  op.pipe = id;
  op.pipe_kind = kind;
  op.sn_name = std::move(name);
  return op;
}

RouteOp reg(PipeId id, std::vector<Addr16> addrs, bool add = true) {
  RouteOp op;
  op.kind = add ? RouteOp::Kind::register_host : RouteOp::Kind::unregister_host;
  op.pipe = id;
  op.addrs = std::move(addrs);
  return op;
}

RouteOp standby_reg(PipeId id, std::vector<Addr16> addrs, bool standby) {
  RouteOp op = reg(id, std::move(addrs));
  op.standby = standby;
  return op;
}

RouteOp down(PipeId id) {
  RouteOp op;
  op.kind = RouteOp::Kind::pipe_down;
  op.pipe = id;
  return op;
}

TEST(Addr, ParseFormatAndInnerHeaders) {
  EXPECT_EQ(addr_str(A("10.1.0.2")), "10.1.0.2");
  EXPECT_EQ(addr_str(A("fd00::2")), "fd00::2");
  EXPECT_EQ(A("10.1.0.2"), mapped_v4(0x0a010002));
  EXPECT_FALSE(parse_addr("10.1.0").has_value());
  EXPECT_FALSE(parse_addr("host.example").has_value());
  EXPECT_FALSE(parse_addr("").has_value());

  std::uint8_t v4[28] = {0x45};
  store_be32(v4 + 12, 0x0a010002);
  store_be32(v4 + 16, 0x0a020002);
  auto ia = inner_addrs(v4, sizeof v4);
  ASSERT_TRUE(ia.has_value());
  EXPECT_EQ(ia->src, A("10.1.0.2"));
  EXPECT_EQ(ia->dst, A("10.2.0.2"));
  EXPECT_FALSE(inner_addrs(v4, 19).has_value());  // shorter than a header
  v4[0] = 0x4f;                                   // IHL 60 > length
  EXPECT_FALSE(inner_addrs(v4, sizeof v4).has_value());
  v4[0] = 0x44;  // IHL 16 < 20
  EXPECT_FALSE(inner_addrs(v4, sizeof v4).has_value());

  std::uint8_t v6[40] = {0x60};
  const Addr16 s6 = A("fd00::1"), d6 = A("fd00::2");
  std::memcpy(v6 + 8, s6.data(), 16);
  std::memcpy(v6 + 24, d6.data(), 16);
  ia = inner_addrs(v6, sizeof v6);
  ASSERT_TRUE(ia.has_value());
  EXPECT_EQ(ia->src, s6);
  EXPECT_EQ(ia->dst, d6);
  EXPECT_FALSE(inner_addrs(v6, 39).has_value());
  v6[0] = 0x50;  // version 5
  EXPECT_FALSE(inner_addrs(v6, sizeof v6).has_value());
  EXPECT_FALSE(inner_addrs(nullptr, 0).has_value());
}

TEST(Addr, EdomainOf) {
  EXPECT_EQ(edomain_of("dom1.sn1"), "dom1");
  EXPECT_EQ(edomain_of("dom1"), "");
  EXPECT_EQ(edomain_of(".sn1"), "");
  EXPECT_EQ(edomain_of("dom1."), "");
}

// dom1: sn1 (gateway), sn2; dom2: sn1 (gateway); dom3: gateway g.
RouteConfig dom1(std::string self) {
  RouteConfig c;
  c.self = std::move(self);
  c.gateway = "dom1.sn1";
  c.peer_gateways = {{"dom2", "dom2.sn1"}, {"dom3", "dom3.g"}};
  return c;
}

TEST(RouteTable, NonGatewaySendsEverythingElsewhereViaItsGateway) {
  RouteTable t(dom1("dom1.sn2"));
  ASSERT_TRUE(t.apply(up(10, IE_SN_PIPE_SN, "dom1.sn1")));
  EXPECT_EQ(t.sn_route("dom1.sn1"), 10u);           // direct
  EXPECT_EQ(t.sn_route("dom2.sn1"), 10u);           // remote edomain: via our gateway
  EXPECT_EQ(t.sn_route("dom2.sn7"), 10u);           // any SN of a remote edomain
  EXPECT_EQ(t.sn_route("dom1.sn3"), 10u);           // an SN of ours we have no pipe to
  EXPECT_EQ(t.sn_route("dom1.sn2"), std::nullopt);  // ourselves
  EXPECT_EQ(t.sn_route("nodot"), std::nullopt);
  // A direct pipe wins over the gateway.
  ASSERT_TRUE(t.apply(up(11, IE_SN_PIPE_SN, "dom2.sn1")));
  EXPECT_EQ(t.sn_route("dom2.sn1"), 11u);
  EXPECT_EQ(t.sn_route("dom2.sn9"), 10u);
  // The gateway pipe goes down: nothing routes through it any more.
  ASSERT_TRUE(t.apply(down(10)));
  EXPECT_EQ(t.sn_route("dom1.sn1"), std::nullopt);
  EXPECT_EQ(t.sn_route("dom3.g"), std::nullopt);
  EXPECT_EQ(t.sn_route("dom2.sn1"), 11u);
}

TEST(RouteTable, GatewayRoutesToPeerGatewaysAndItsOwnSns) {
  RouteTable t(dom1("dom1.sn1"));
  ASSERT_TRUE(t.apply(up(20, IE_SN_PIPE_SN, "dom1.sn2")));
  ASSERT_TRUE(t.apply(up(21, IE_SN_PIPE_SN, "dom2.sn1")));
  EXPECT_EQ(t.sn_route("dom1.sn2"), 20u);
  EXPECT_EQ(t.sn_route("dom1.sn3"), std::nullopt);  // unknown SN of our edomain
  EXPECT_EQ(t.sn_route("dom2.sn1"), 21u);
  EXPECT_EQ(t.sn_route("dom2.sn5"), 21u);         // via dom2's gateway
  EXPECT_EQ(t.sn_route("dom3.x"), std::nullopt);  // dom3's gateway has no pipe yet
  EXPECT_EQ(t.sn_route("dom4.x"), std::nullopt);  // no peering with dom4
  ASSERT_TRUE(t.apply(up(22, IE_SN_PIPE_SN, "dom3.g")));
  EXPECT_EQ(t.sn_route("dom3.x"), 22u);
}

TEST(RouteTable, HostsRegisterAndRouteAndVanishWithTheirPipe) {
  RouteConfig c = dom1("dom1.sn2");
  c.host_prefixes = {P("10.1.0.0/16"), P("fd01::/64")};
  c.routes = {{P("10.2.0.0/16"), "dom2.sn1"}, {P("10.2.5.0/24"), "dom2.sn5"}};
  c.max_addrs_per_host = 3;
  RouteTable t(c);
  ASSERT_TRUE(t.apply(up(1, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(up(2, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(up(10, IE_SN_PIPE_SN, "dom1.sn1")));
  ASSERT_TRUE(t.apply(up(11, IE_SN_PIPE_SN, "dom2.sn5")));

  ASSERT_TRUE(t.apply(reg(1, {A("10.1.0.2"), A("fd01::2")})));
  EXPECT_EQ(t.route(A("10.1.0.2")), 1u);
  EXPECT_EQ(t.route(A("fd01::2")), 1u);
  EXPECT_EQ(t.host_of(A("10.1.0.2")), 1u);
  EXPECT_EQ(t.registered(1).size(), 2u);

  // Conflicts, prefixes, SN pipes and limits are refused, all or nothing.
  auto r = t.apply(reg(2, {A("10.1.0.3"), A("10.1.0.2")}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::exists);
  EXPECT_EQ(t.route(A("10.1.0.3")), std::nullopt);  // nothing of it applied
  r = t.apply(reg(2, {A("192.168.1.1")}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::permission);
  r = t.apply(reg(10, {A("10.1.0.9")}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  r = t.apply(reg(99, {A("10.1.0.9")}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::not_found);
  r = t.apply(reg(1, {A("10.1.0.7"), A("10.1.0.8")}));  // 2 + 2 > 3
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::too_large);
  ASSERT_TRUE(t.apply(reg(1, {A("10.1.0.2"), A("10.1.0.7")})));  // re-registering is free

  // Static routes: longest prefix, resolved through sn_route.
  EXPECT_EQ(t.route(A("10.2.0.9")), 10u);  // dom2.sn1: via our gateway
  EXPECT_EQ(t.route(A("10.2.5.9")), 11u);  // dom2.sn5: direct pipe
  EXPECT_EQ(t.route(A("10.3.0.1")), std::nullopt);

  ASSERT_TRUE(t.apply(reg(1, {A("10.1.0.7")}, false)));
  EXPECT_EQ(t.route(A("10.1.0.7")), std::nullopt);
  ASSERT_TRUE(t.apply(down(1)));
  EXPECT_EQ(t.route(A("10.1.0.2")), std::nullopt);
  EXPECT_EQ(t.pipe_info(1), std::nullopt);
  // Now another host may take the address.
  ASSERT_TRUE(t.apply(reg(2, {A("10.1.0.2")})));
  EXPECT_EQ(t.route(A("10.1.0.2")), 2u);
  const auto info = t.pipe_info(11);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->kind, static_cast<std::uint32_t>(IE_SN_PIPE_SN));
  EXPECT_STREQ(info->sn_name, "dom2.sn5");
}

TEST(RouteTable, SameOpsGiveSameTables) {
  // The replication model: worker copies apply the master's ops in order.
  RouteTable master(dom1("dom1.sn1")), copy(dom1("dom1.sn1"));
  std::vector<RouteOp> ops = {up(1, IE_SN_PIPE_HOST),
                              reg(1, {A("10.1.0.2")}),
                              up(5, IE_SN_PIPE_SN, "dom2.sn1"),
                              up(2, IE_SN_PIPE_HOST),
                              down(1),
                              reg(2, {A("10.1.0.2")})};
  for (const auto& op : ops) {
    if (master.apply(op)) {
      ASSERT_TRUE(copy.apply(op));
    }
  }
  for (const char* a : {"10.1.0.2", "10.1.0.3"})
    EXPECT_EQ(master.route(A(a)), copy.route(A(a)));
  EXPECT_EQ(copy.route(A("10.1.0.2")), 2u);
  EXPECT_EQ(master.sn_route("dom2.x"), copy.sn_route("dom2.x"));
}

// A host's role (active or warm standby) is the pipe's, set by every registration and
// reported by pipe_info's flags; the copies see it too.
TEST(RouteTable, StandbyRoleIsInPipeInfo) {
  RouteTable t(dom1("dom1.sn2")), copy(dom1("dom1.sn2"));
  const std::vector<RouteOp> ops = {up(1, IE_SN_PIPE_HOST), up(2, IE_SN_PIPE_HOST),
                                    up(10, IE_SN_PIPE_SN, "dom1.sn1"),
                                    standby_reg(1, {A("10.1.0.2")}, true), reg(2, {A("10.1.0.3")})};
  for (const auto& op : ops) {
    ASSERT_TRUE(t.apply(op));
    ASSERT_TRUE(copy.apply(op));
  }
  for (RouteTable* r : {&t, &copy}) {
    EXPECT_TRUE(r->standby_of(1));
    EXPECT_EQ(r->pipe_info(1)->flags, IE_SN_PIPE_F_STANDBY);
    EXPECT_FALSE(r->standby_of(2));
    EXPECT_EQ(r->pipe_info(2)->flags, 0u);
    EXPECT_EQ(r->pipe_info(10)->flags, 0u);
    EXPECT_EQ(r->route(A("10.1.0.2")), 1u);  // a standby host is still routed to
  }
  EXPECT_EQ(t.pipe_info(1)->struct_size, sizeof(ie_sn_pipe_info));
  EXPECT_FALSE(t.standby_of(99));
  // Registering again (the same addresses) switches the role; a refused one changes nothing.
  ASSERT_TRUE(t.apply(reg(1, {A("10.1.0.2")})));
  EXPECT_FALSE(t.standby_of(1));
  EXPECT_EQ(t.pipe_info(1)->flags, 0u);
  ASSERT_FALSE(t.apply(standby_reg(1, {A("10.1.0.3")}, true)));  // 2's address
  EXPECT_FALSE(t.standby_of(1));
  ASSERT_TRUE(t.apply(standby_reg(1, {A("10.1.0.2")}, true)));
  EXPECT_TRUE(t.standby_of(1));
  ASSERT_TRUE(t.apply(reg(1, {A("10.1.0.2")}, false)));  // unregister: the role stays
  EXPECT_TRUE(t.standby_of(1));
  ASSERT_TRUE(t.apply(down(1)));
  EXPECT_FALSE(t.standby_of(1));
}

// --- the control service ---------------------------------------------------------------

json ask(RouteTable& t, PipeId from, std::string_view body, ControlResult* out = nullptr) {
  ControlInfo info{"dom1.sn2", {"null", "ip", "control"}, {}, "192.0.2.12:1000", false, {}, {}};
  ControlResult r = handle_control_request(t, from, body, info);
  auto j = json::parse(r.response, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.response;
  if (out) *out = std::move(r);
  return j;
}

TEST(ControlService, RegisterInfoAndErrors) {
  RouteConfig c = dom1("dom1.sn2");
  c.host_prefixes = {P("10.1.0.0/16")};
  RouteTable t(c);
  ASSERT_TRUE(t.apply(up(1, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(up(2, IE_SN_PIPE_HOST)));

  ControlResult res;
  json j = ask(t, 1, R"({"op":"register","addrs":["10.1.0.2"]})", &res);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["sn"], "dom1.sn2");
  EXPECT_EQ(j["addrs"], json::array({"10.1.0.2"}));
  ASSERT_EQ(res.applied.size(), 1u);
  EXPECT_EQ(res.applied[0].kind, RouteOp::Kind::register_host);
  EXPECT_EQ(t.route(A("10.1.0.2")), 1u);

  j = ask(t, 1, R"({"op":"info"})");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["edomain"], "dom1");
  EXPECT_EQ(j["services"].size(), 3u);
  EXPECT_EQ(j["endpoint"], "192.0.2.12:1000");  // [sn] advertise (anycast discovery)
  {
    ControlInfo none{"dom1.sn2", {"control"}, {}, "", false, {}, {}};
    const auto k = json::parse(handle_control_request(t, 1, R"({"op":"info"})", none).response);
    EXPECT_EQ(k["sn"], "dom1.sn2");
    EXPECT_FALSE(k.contains("endpoint")) << "no advertise: no endpoint";
  }

  const std::pair<const char*, const char*> bad[] = {
      {"", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {"{\"op\":", "not a JSON object"},
      {"{}", "missing \"op\""},
      {R"({"op":7})", "missing \"op\""},
      {R"({"op":"fly"})", "unknown op"},
      {R"({"op":"register"})", "missing \"addrs\""},
      {R"({"op":"register","addrs":"10.1.0.3"})", "must be an array"},
      {R"({"op":"register","addrs":[]})", "empty"},
      {R"({"op":"register","addrs":[3]})", "must be strings"},
      {R"({"op":"register","addrs":["10.1.0"]})", "not an IP address"},
      {R"({"op":"register","addrs":["10.9.0.1"]})", "not served here"},
      {R"({"op":"register","addrs":["10.1.0.2"]})", "registered by another host"},
  };
  for (const auto& [body, expect] : bad) {
    ControlResult r2;
    j = ask(t, 2, body, &r2);
    EXPECT_EQ(j["ok"], false) << body;
    EXPECT_NE(j.value("error", "").find(expect), std::string::npos) << body << " -> " << j.dump();
    EXPECT_TRUE(r2.applied.empty()) << body;
  }
  // Oversized and invalid UTF-8 in the op: a clean error, no exception.
  j = ask(t, 2, std::string(kMaxControlRequest + 1, ' '));
  EXPECT_EQ(j["ok"], false);
  j = ask(t, 2,
          "{\"op\":\"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
          "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"}");
  EXPECT_EQ(j["ok"], false);

  j = ask(t, 1, R"({"op":"unregister","addrs":["10.1.0.2"]})");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(t.route(A("10.1.0.2")), std::nullopt);
}

// "standby": a register sets the pipe's role (default active) and the answer says which is
// in force; the same addresses again with another value switch it; unregister ignores it.
TEST(ControlService, RegisterStandby) {
  RouteTable t(dom1("dom1.sn2"));
  ASSERT_TRUE(t.apply(up(1, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(up(2, IE_SN_PIPE_HOST)));

  ControlResult res;
  json j = ask(t, 1, R"({"op":"register","addrs":["10.1.0.2"]})", &res);
  ASSERT_EQ(j["ok"], true) << j.dump();
  EXPECT_EQ(j["standby"], false);
  ASSERT_EQ(res.applied.size(), 1u);
  EXPECT_FALSE(res.applied[0].standby);
  EXPECT_FALSE(t.standby_of(1));

  j = ask(t, 1, R"({"op":"register","addrs":["10.1.0.2"],"standby":true})", &res);
  ASSERT_EQ(j["ok"], true) << j.dump();
  EXPECT_EQ(j["standby"], true);
  EXPECT_EQ(j["addrs"], json::array({"10.1.0.2"}));  // still idempotent
  ASSERT_EQ(res.applied.size(), 1u);
  EXPECT_EQ(res.applied[0].kind, RouteOp::Kind::register_host);
  EXPECT_TRUE(res.applied[0].standby);  // what the other workers replay
  EXPECT_TRUE(t.standby_of(1));
  EXPECT_EQ(t.pipe_info(1)->flags, IE_SN_PIPE_F_STANDBY);

  // Not a boolean: refused, the role stays.
  for (const char* v : {"\"yes\"", "1", "0", "null", "{}", "[true]"}) {
    ControlResult r2;
    j = ask(t, 1, std::string(R"({"op":"register","addrs":["10.1.0.2"],"standby":)") + v + "}",
            &r2);
    EXPECT_EQ(j["ok"], false) << v;
    EXPECT_EQ(j.value("error", ""), "\"standby\" must be a boolean") << v;
    EXPECT_TRUE(r2.applied.empty()) << v;
    EXPECT_TRUE(t.standby_of(1)) << v;
  }
  // A refused registration changes no role either.
  ask(t, 2, R"({"op":"register","addrs":["10.1.0.3"]})");
  j = ask(t, 2, R"({"op":"register","addrs":["10.1.0.2"],"standby":true})");
  EXPECT_EQ(j["ok"], false);
  EXPECT_FALSE(t.standby_of(2));

  // Unregister ignores the field (even a bad one) and keeps the role.
  j = ask(t, 1, R"({"op":"unregister","addrs":["10.9.0.9"],"standby":"x"})");
  EXPECT_EQ(j["ok"], true) << j.dump();
  EXPECT_FALSE(j.contains("standby"));
  EXPECT_TRUE(t.standby_of(1));

  // Back to active: explicitly, or by leaving the field out.
  j = ask(t, 1, R"({"op":"register","addrs":["10.1.0.2"],"standby":false})");
  EXPECT_EQ(j["standby"], false);
  EXPECT_FALSE(t.standby_of(1));
  ask(t, 1, R"({"op":"register","addrs":["10.1.0.2"],"standby":true})");
  j = ask(t, 1, R"({"op":"register","addrs":["10.1.0.2"]})");
  EXPECT_EQ(j["standby"], false);
  EXPECT_FALSE(t.standby_of(1));
}

// Out-of-band invocations (service.set / service.list) and what the route table keeps.
TEST(ControlService, OutOfBandInvocations) {
  RouteConfig c = dom1("dom1.sn2");
  RouteTable t(c);
  ASSERT_TRUE(t.apply(up(1, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(up(2, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(up(10, IE_SN_PIPE_SN, "dom1.sn1")));
  ControlInfo info{"dom1.sn2", {"null", "ip", "block", "control"}, {{"block", 8}}, "", false, {},
                   {}};
  auto call = [&](PipeId from, std::string_view body, ControlResult* out = nullptr) {
    ControlResult r = handle_control_request(t, from, body, info);
    auto j = json::parse(r.response, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.response;
    if (out) *out = std::move(r);
    return j;
  };

  ControlResult res;
  // Host bits are cleared, the same entry twice kept once, options {} accepted.
  json j = call(1,
                R"({"op":"service.set","invocations":[
                  {"service":"block","direction":"in","prefix":"10.3.0.7/24"},
                  {"service":"block","direction":"in","prefix":"10.3.0.0/24","options":{}},
                  {"service":"block","direction":"out","prefix":"fd00:9::1/32"}]})",
                &res);
  ASSERT_EQ(j["ok"], true) << j.dump();
  EXPECT_EQ(j["sn"], "dom1.sn2");
  EXPECT_EQ(j["invocations"],
            json::parse(R"([{"service":"block","direction":"in","prefix":"10.3.0.0/24"},
                            {"service":"block","direction":"out","prefix":"fd00:9::/32"}])"));
  ASSERT_EQ(res.applied.size(), 1u);
  EXPECT_EQ(res.applied[0].kind, RouteOp::Kind::set_invocations);
  ASSERT_EQ(t.invocations(1).size(), 2u);
  EXPECT_EQ(t.invocations(1)[0].service_id, 8u);
  EXPECT_EQ(t.invoking_pipes(), 1u);
  EXPECT_TRUE(t.invocations(1)[0].applies(Direction::in, A("10.3.0.200")));
  EXPECT_FALSE(t.invocations(1)[0].applies(Direction::out, A("10.3.0.200")));
  EXPECT_FALSE(t.invocations(1)[0].applies(Direction::in, A("10.3.1.1")));
  EXPECT_TRUE(t.invocations(1)[1].applies(Direction::out, A("fd00:9:1::5")));

  j = call(1, R"({"op":"service.list"})");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["invocations"].size(), 2u);
  EXPECT_EQ(j["offered"], json::array({"block"}));
  j = call(2, R"({"op":"service.list"})");
  EXPECT_EQ(j["invocations"], json::array());

  // Refusals change nothing.
  const std::pair<const char*, const char*> bad[] = {
      {R"({"op":"service.set"})", "missing \"invocations\""},
      {R"({"op":"service.set","invocations":{}})", "missing \"invocations\""},
      {R"({"op":"service.set","invocations":[3]})", "invocations[0] must be an object"},
      {R"({"op":"service.set","invocations":[{"direction":"in","prefix":"10.0.0.0/8"}]})",
       "missing \"service\""},
      {R"({"op":"service.set","invocations":[{"service":"qos","direction":"in","prefix":"10.0.0.0/8"}]})",
       "service \"qos\" is not offered for out-of-band use by dom1.sn2 (offered: block)"},
      {R"({"op":"service.set","invocations":[{"service":"block","prefix":"10.0.0.0/8"}]})",
       "missing \"direction\""},
      {R"({"op":"service.set","invocations":[{"service":"block","direction":"up","prefix":"10.0.0.0/8"}]})",
       "must be \"in\", \"out\" or \"both\""},
      {R"({"op":"service.set","invocations":[{"service":"block","direction":"in"}]})",
       "missing \"prefix\""},
      {R"({"op":"service.set","invocations":[{"service":"block","direction":"in","prefix":"10.0.0.0/33"}]})",
       "length must be 0..32"},
      {R"({"op":"service.set","invocations":[{"service":"block","direction":"in","prefix":"example.com"}]})",
       "not a numeric"},
      {R"({"op":"service.set","invocations":[{"service":"block","direction":"in","prefix":"10.0.0.0/8","options":{"rate":1}}]})",
       "takes no options"},
      {R"({"op":"service.set","invocations":[{"service":"block","direction":"in","prefix":"10.0.0.0/8","options":[]}]})",
       "\"options\" must be an object"},
      {R"({"op":"service.set","invocations":[{"service":"block","direction":"in","prefix":"10.0.0.0/8","colour":"red"}]})",
       "unknown key \"colour\""},
  };
  for (const auto& [body, expect] : bad) {
    ControlResult r2;
    j = call(1, body, &r2);
    EXPECT_EQ(j["ok"], false) << body;
    EXPECT_NE(j.value("error", "").find(expect), std::string::npos) << body << " -> " << j.dump();
    EXPECT_TRUE(r2.applied.empty()) << body;
  }
  EXPECT_EQ(t.invocations(1).size(), 2u);
  std::string many = R"({"op":"service.set","invocations":[)";
  for (int i = 0; i < 33; ++i)
    many += std::string(i ? "," : "") + R"({"service":"block","direction":"in","prefix":"10.0.)" +
            std::to_string(i) + R"(.0/24"})";
  j = call(1, many + "]}");
  EXPECT_NE(j.value("error", "").find("more than 32"), std::string::npos) << j.dump();
  // Only hosts invoke services.
  j = call(10, R"({"op":"service.set","invocations":[]})");
  EXPECT_NE(j.value("error", "").find("only hosts"), std::string::npos) << j.dump();

  // [] clears; a pipe going down takes its invocations with it.
  j = call(1, R"({"op":"service.set","invocations":[]})");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(t.invoking_pipes(), 0u);
  j = call(
      2,
      R"({"op":"service.set","invocations":[{"service":"block","direction":"both","prefix":"0.0.0.0/0"}]})");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(t.invoking_pipes(), 1u);
  ASSERT_TRUE(t.apply(down(2)));
  EXPECT_EQ(t.invoking_pipes(), 0u);
  EXPECT_TRUE(t.invocations(2).empty());
}

noise::PublicKey test_key(std::uint8_t b) {
  noise::PublicKey k{};
  k.fill(b);
  return k;
}

// sn.locate: answered to SN pipes from what the SN knows, else relayed towards the name
// while the ttl lasts; the answer is checked by the asker (parse_locate_answer).
TEST(ControlService, LocateAnswersKnownSnsAndRelaysTheRest) {
  RouteTable t(dom1("dom1.sn1"));  // the gateway of dom1
  ASSERT_TRUE(t.apply(up(1, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(up(20, IE_SN_PIPE_SN, "dom1.sn2")));
  ASSERT_TRUE(t.apply(up(21, IE_SN_PIPE_SN, "dom2.sn1")));
  ControlInfo info{"dom1.sn1",
                   {"control"},
                   {},
                   "192.0.2.11:1000",
                   true,
                   test_key(1),
                   {SnRef{"dom1.sn2", "192.0.2.12:1000", test_key(2)},
                    SnRef{"dom2.sn1", "[2001:db8::21]:1000", test_key(3)}}};
  auto call = [&](PipeId from, const std::string& body) {
    ControlResult r = handle_control_request(t, from, body, info);
    return r;
  };
  // Known: from the configuration, and itself.
  ControlResult r = call(20, locate_request("dom2.sn1", 4));
  auto c = parse_locate_answer(r.response, "dom2.sn1");
  ASSERT_TRUE(c) << r.response;
  EXPECT_EQ(c->address, "[2001:db8::21]:1000");
  EXPECT_EQ(c->public_key, test_key(3));
  EXPECT_TRUE(r.relay_name.empty());
  r = call(21, locate_request("dom1.sn1", 0));
  c = parse_locate_answer(r.response, "dom1.sn1");
  ASSERT_TRUE(c) << r.response;
  EXPECT_EQ(c->address, "192.0.2.11:1000");
  EXPECT_EQ(c->public_key, test_key(1));
  // Unknown here: relayed towards it (dom2's gateway), one ttl less; never back.
  r = call(20, locate_request("dom2.sn5", 3));
  EXPECT_TRUE(r.response.empty());
  EXPECT_EQ(r.relay_name, "dom2.sn5");
  EXPECT_EQ(r.relay_via, 21u);
  EXPECT_EQ(r.relay_ttl, 2u);
  r = call(21, locate_request("dom2.sn5", 3));
  EXPECT_NE(r.response.find("does not know dom2.sn5"), std::string::npos) << r.response;
  EXPECT_TRUE(r.relay_name.empty());
  r = call(20, locate_request("dom2.sn5", 0));
  EXPECT_NE(r.response.find("does not know"), std::string::npos) << r.response;
  r = call(20, locate_request("dom9.x", 4));  // no route at all
  EXPECT_NE(r.response.find("does not know dom9.x"), std::string::npos) << r.response;
  EXPECT_FALSE(parse_locate_answer(r.response, "dom9.x"));
  // Hosts are not told; bad requests get a reason.
  const std::pair<PipeId, std::string> bad[] = {
      {1, locate_request("dom2.sn1", 1)},
      {20, R"({"op":"sn.locate"})"},
      {20, R"({"op":"sn.locate","name":7})"},
      {20, R"({"op":"sn.locate","name":"nodot"})"},
      {20, R"({"op":"sn.locate","name":"dom2.sn1","ttl":5})"},
      {20, R"({"op":"sn.locate","name":"dom2.sn1","ttl":-1})"},
      {20, R"({"op":"sn.locate","name":"dom2.sn1","ttl":"1"})"},
  };
  const char* why[] = {"SNs only", "missing \"name\"", "missing \"name\"", "not an SN name",
                       "\"ttl\"",  "\"ttl\"",          "\"ttl\""};
  for (std::size_t i = 0; i < std::size(bad); ++i) {
    r = call(bad[i].first, bad[i].second);
    const auto j = json::parse(r.response, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << bad[i].second;
    EXPECT_EQ(j["ok"], false) << bad[i].second;
    EXPECT_NE(j["error"].get<std::string>().find(why[i]), std::string::npos)
        << bad[i].second << " -> " << r.response;
    EXPECT_TRUE(r.relay_name.empty());
  }
  // Without an advertised endpoint an SN cannot say where it is.
  info.endpoint.clear();
  r = call(21, locate_request("dom1.sn1", 0));
  EXPECT_NE(r.response.find("no advertised endpoint"), std::string::npos) << r.response;
}

TEST(ControlService, LocateAnswerIsChecked) {
  const std::string k = key_to_base64(test_key(4));
  auto ans = [&](const std::string& name, const std::string& addr, const std::string& key) {
    return json{{"ok", true}, {"name", name}, {"address", addr}, {"public_key", key}}.dump();
  };
  EXPECT_TRUE(parse_locate_answer(ans("dom2.sn2", "10.0.0.1:1000", k), "dom2.sn2"));
  EXPECT_TRUE(parse_locate_answer(ans("dom2.sn2", "[fd00::1]:7", k), "dom2.sn2"));
  const std::string bad[] = {
      ans("dom2.sn3", "10.0.0.1:1000", k),  // another SN than asked for
      ans("dom2.sn2", "10.0.0.1:0", k),     // no port
      ans("dom2.sn2", "0.0.0.0:1000", k),   // wildcard
      ans("dom2.sn2", "[::]:1000", k),      // wildcard
      ans("dom2.sn2", "host.example:1000", k),
      ans("dom2.sn2", "10.0.0.1:1000", "AAAA"),
      R"({"ok":false,"error":"dom1.sn1 does not know dom2.sn2"})",
      R"({"name":"dom2.sn2"})",
      "[]",
      "{",
  };
  for (const auto& b : bad)
    EXPECT_FALSE(parse_locate_answer(b, "dom2.sn2")) << b;
  const auto e = parse_locate_answer(bad[6], "dom2.sn2");
  EXPECT_NE(e.error().context.find("does not know"), std::string::npos);
}

// sn.hello: a pipe from an unknown key says which SN it is; the SN verifies it (deferred)
// only if it takes direct pipes, and never for a pipe that registered host addresses.
TEST(ControlService, HelloIsDeferredForVerification) {
  RouteTable t(dom1("dom2.sn1"));
  ASSERT_TRUE(t.apply(up(5, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(up(6, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(reg(6, {A("10.2.0.9")})));
  ASSERT_TRUE(t.apply(up(7, IE_SN_PIPE_SN, "dom1.sn2")));
  ControlInfo info{"dom2.sn1", {"control"}, {}, "192.0.2.21:1000", true, test_key(1), {}};
  ControlResult r = handle_control_request(t, 5, hello_request("dom1.sn2"), info);
  EXPECT_TRUE(r.response.empty());
  EXPECT_EQ(r.hello_name, "dom1.sn2");
  auto err = [&](PipeId from, const std::string& body) {
    const ControlResult x = handle_control_request(t, from, body, info);
    EXPECT_TRUE(x.hello_name.empty()) << body;
    const auto j = json::parse(x.response, nullptr, false);
    return j.is_discarded() || j["ok"] != false ? std::string("?") : j["error"].get<std::string>();
  };
  EXPECT_NE(err(6, hello_request("dom1.sn2")).find("host pipe"), std::string::npos);
  EXPECT_NE(err(5, hello_request("dom2.sn1")).find("this SN's name"), std::string::npos);
  EXPECT_NE(err(5, R"({"op":"sn.hello","name":"x"})").find("not an SN name"), std::string::npos);
  EXPECT_NE(err(7, hello_request("dom1.sn9")).find("this pipe is dom1.sn2"), std::string::npos);
  // An unnamed SN pipe (a direct pipe being closed whose SN came back): verified again.
  ASSERT_TRUE(t.apply(up(8, IE_SN_PIPE_SN, "")));
  r = handle_control_request(t, 8, hello_request("dom1.sn3"), info);
  EXPECT_TRUE(r.response.empty()) << r.response;
  EXPECT_EQ(r.hello_name, "dom1.sn3");
  // Already an SN pipe of that name: ok at once.
  r = handle_control_request(t, 7, hello_request("dom1.sn2"), info);
  EXPECT_NE(r.response.find("\"ok\":true"), std::string::npos) << r.response;
  info.direct_pipes = false;
  EXPECT_NE(err(5, hello_request("dom1.sn2")).find("takes no direct pipes"), std::string::npos);
}

TEST(RouteTable, StaticRouteSnAndDirectPipes) {
  RouteConfig c = dom1("dom1.sn2");
  c.routes = {{P("10.2.0.0/16"), "dom2.sn1"}, {P("10.2.3.0/24"), "dom2.sn3"}};
  RouteTable t(c);
  ASSERT_TRUE(t.apply(up(10, IE_SN_PIPE_SN, "dom1.sn1")));
  ASSERT_NE(t.static_route_sn(A("10.2.9.9")), nullptr);
  EXPECT_EQ(*t.static_route_sn(A("10.2.9.9")), "dom2.sn1");
  EXPECT_EQ(*t.static_route_sn(A("10.2.3.4")), "dom2.sn3");  // the most specific
  EXPECT_EQ(t.static_route_sn(A("10.3.0.1")), nullptr);
  EXPECT_FALSE(t.has_sn_pipe("dom2.sn3"));
  EXPECT_EQ(t.route(A("10.2.3.4")), 10u);  // through the gateway
  ASSERT_TRUE(t.apply(up(11, IE_SN_PIPE_SN, "dom2.sn3")));
  EXPECT_TRUE(t.has_sn_pipe("dom2.sn3"));
  EXPECT_EQ(t.route(A("10.2.3.4")), 11u);  // straight
  // Unnamed (a direct pipe being closed): still an SN pipe, but nothing routes to it.
  ASSERT_TRUE(t.apply(up(11, IE_SN_PIPE_SN, "")));
  EXPECT_FALSE(t.has_sn_pipe("dom2.sn3"));
  EXPECT_EQ(t.route(A("10.2.3.4")), 10u);
  EXPECT_EQ(t.pipe_info(11)->kind, IE_SN_PIPE_SN);
  // A renamed pipe does not take another pipe's name away.
  ASSERT_TRUE(t.apply(up(12, IE_SN_PIPE_SN, "dom2.sn1")));
  ASSERT_TRUE(t.apply(up(13, IE_SN_PIPE_SN, "dom2.sn1")));  // the newest wins
  ASSERT_TRUE(t.apply(up(12, IE_SN_PIPE_SN, "")));
  EXPECT_EQ(t.sn_route("dom2.sn1"), 13u);
}

TEST(ControlService, Framing) {
  const Bytes b = make_service_request(7, R"({"op":"info"})");
  const auto s = split_service_request(b);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->first, 7u);
  EXPECT_EQ(s->second, R"({"op":"info"})");
  const std::uint8_t one[1] = {0};
  EXPECT_FALSE(split_service_request(ConstByteSpan(one, 1)).has_value());
}

// --- the ip module through the C ABI ------------------------------------------------------

// A minimal host table over a RouteTable and a DecisionCache (the real one is the module
// runtime's; this keeps the test about the module's decisions).
struct FakeEnv {
  RouteTable* routes = nullptr;
  DecisionCache cache{64};
  std::map<std::string, std::uint64_t> counters;
  std::vector<std::string> counter_names;
};
FakeEnv* fe(ie_sn_env* e) {
  return reinterpret_cast<FakeEnv*>(e);
}

ie_sn_host fake_host() {
  ie_sn_host h{};
  h.struct_size = sizeof h;
  h.abi_version = IE_SN_MODULE_ABI_VERSION;
  h.cache_insert = [](ie_sn_env* e, const ie_sn_flow_key* k, const ie_sn_decision* d) {
    Decision dec = Decision::forward_to(std::span<const NextHop>(d->hops, d->hop_count));
    return fe(e)->cache.insert(to_flow_key(*k), dec, 0) ? IE_SN_OK : IE_SN_EINVAL;
  };
  h.route_lookup = [](ie_sn_env* e, const ie_sn_addr* a, ie_sn_pipe* p) {
    auto r = fe(e)->routes->route(to_addr16(*a));
    if (!r) return IE_SN_ENOENT;
    *p = *r;
    return IE_SN_OK;
  };
  h.sn_lookup = [](ie_sn_env* e, const char* name, ie_sn_pipe* p) {
    auto r = fe(e)->routes->sn_route(name);
    if (!r) return IE_SN_ENOENT;
    *p = *r;
    return IE_SN_OK;
  };
  h.pipe_info = [](ie_sn_env* e, ie_sn_pipe pipe, ie_sn_pipe_info* info) {
    auto r = fe(e)->routes->pipe_info(pipe);
    if (!r) return IE_SN_ENOENT;
    *info = *r;
    return IE_SN_OK;
  };
  h.counter_declare = [](ie_sn_env* e, const char* name, const char*) -> std::uint32_t {
    fe(e)->counter_names.push_back(name);
    return static_cast<std::uint32_t>(fe(e)->counter_names.size());
  };
  h.counter_add = [](ie_sn_env* e, std::uint32_t id, std::uint64_t n) {
    fe(e)->counters[fe(e)->counter_names.at(id - 1)] += n;
  };
  return h;
}

struct Pkt {
  std::vector<std::uint8_t> inner;
  std::vector<std::uint8_t> tlvs;
  ie_sn_packet p{};
};

Pkt packet(PipeId from, const char* src, const char* dst, std::string dest_sn = {},
           std::uint64_t conn = 1, bool no_cache = false) {
  Pkt k;
  k.inner.assign(28, 0);
  k.inner[0] = 0x45;
  const Addr16 s = A(src), d = A(dst);
  std::memcpy(k.inner.data() + 12, s.data() + 12, 4);
  std::memcpy(k.inner.data() + 16, d.data() + 12, 4);
  if (!dest_sn.empty()) {
    k.tlvs.push_back(static_cast<std::uint8_t>(wire::TlvType::dest_sn));
    k.tlvs.push_back(static_cast<std::uint8_t>(dest_sn.size()));
    k.tlvs.insert(k.tlvs.end(), dest_sn.begin(), dest_sn.end());
  }
  if (no_cache) {
    k.tlvs.insert(k.tlvs.end(), {static_cast<std::uint8_t>(wire::TlvType::cache_control), 1, 1});
  }
  k.p.struct_size = sizeof k.p;
  k.p.from_pipe = from;
  k.p.src = to_sn_addr(A("192.0.2.1"));
  k.p.service_id = static_cast<std::uint16_t>(wire::ServiceId::ip);
  k.p.connection_id = conn;
  k.p.tlvs = k.tlvs.data();
  k.p.tlvs_len = static_cast<std::uint32_t>(k.tlvs.size());
  k.p.inner = k.inner.data();
  k.p.inner_len = static_cast<std::uint32_t>(k.inner.size());
  return k;
}

// Whether the flow of packet() with connection id conn is in env's cache.
bool is_cached(FakeEnv& env, std::uint64_t conn) {
  ie_sn_flow_key k{};
  k.src = to_sn_addr(A("192.0.2.1"));
  k.service_id = 1;
  k.connection_id = conn;
  return env.cache.lookup(to_flow_key(k), 0) != nullptr;
}

// The ip module created over a route table (a FakeEnv around it), as the SN would.
struct IpHarness {
  FakeEnv env;
  ie_sn_host host = fake_host();
  const ie_sn_module_descriptor* d = ip_module();
  ie_sn_env* e = reinterpret_cast<ie_sn_env*>(&env);
  void* inst = nullptr;

  explicit IpHarness(RouteTable& t) {
    env.routes = &t;
    inst = d->create(&host, e, 0);
  }
  ~IpHarness() {
    if (inst != nullptr) d->destroy(inst);
  }
  IpHarness(const IpHarness&) = delete;
  IpHarness& operator=(const IpHarness&) = delete;
  ie_sn_decision decide_one(const Pkt& k) {
    ie_sn_decision out{};
    d->on_packets(inst, e, &k.p, &out, 1);
    return out;
  }
  bool cached(std::uint64_t conn) { return is_cached(env, conn); }
};

TEST(IpModule, DecidesRoutesCachesAndRefusesSpoofing) {
  const ie_sn_module_descriptor* d = ip_module();
  ASSERT_EQ(d->abi_version, IE_SN_MODULE_ABI_VERSION);
  EXPECT_STREQ(d->name, "ip");
  EXPECT_EQ(d->service_id, 1u);

  RouteTable t(dom1("dom1.sn2"));
  ASSERT_TRUE(t.apply(up(1, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(up(2, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(up(10, IE_SN_PIPE_SN, "dom1.sn1")));
  ASSERT_TRUE(t.apply(reg(1, {A("10.1.0.2")})));
  ASSERT_TRUE(t.apply(reg(2, {A("10.1.0.3")})));
  IpHarness h(t);
  ASSERT_NE(h.inst, nullptr);
  FakeEnv& env = h.env;

  std::vector<Pkt> pk;
  pk.push_back(packet(1, "10.1.0.2", "10.1.0.3", "", 1));           // local host
  pk.push_back(packet(1, "10.1.0.2", "10.2.0.2", "dom2.sn1", 2));   // via gateway
  pk.push_back(packet(1, "10.1.0.9", "10.1.0.3", "", 3));           // spoofed source
  pk.push_back(packet(1, "10.1.0.2", "10.9.9.9", "", 4));           // no route
  pk.push_back(packet(10, "10.2.0.2", "10.1.0.2", "dom1.sn2", 5));  // from an SN: no spoof check
  pk.push_back(packet(1, "10.1.0.2", "10.1.0.2", "", 6));           // back to itself: loop
  pk.push_back(packet(1, "10.1.0.2", "10.1.0.3", "", 7, true));     // do not cache
  pk.push_back(packet(1, "10.1.0.2", "10.1.0.9", "dom1.sn2", 8));   // names us, host absent
  Pkt junk = packet(1, "10.1.0.2", "10.1.0.3", "", 9);
  junk.inner.resize(10);
  junk.p.inner_len = 10;
  pk.push_back(std::move(junk));
  std::vector<ie_sn_packet> in;
  for (auto& k : pk)
    in.push_back(k.p);
  std::vector<ie_sn_decision> out(in.size());
  d->on_packets(h.inst, h.e, in.data(), out.data(), in.size());

  auto fwd_to = [&](std::size_t i, ie_sn_pipe pipe) {
    EXPECT_EQ(out[i].action, static_cast<std::uint32_t>(IE_SN_FORWARD)) << i;
    EXPECT_EQ(out[i].hop_count, 1u) << i;
    EXPECT_EQ(out[i].hops[0], pipe) << i;
  };
  fwd_to(0, 2);
  fwd_to(1, 10);
  EXPECT_EQ(out[2].action, static_cast<std::uint32_t>(IE_SN_DROP));
  EXPECT_EQ(out[3].action, static_cast<std::uint32_t>(IE_SN_DROP));
  fwd_to(4, 1);
  EXPECT_EQ(out[5].action, static_cast<std::uint32_t>(IE_SN_DROP));
  fwd_to(6, 2);
  EXPECT_EQ(out[7].action, static_cast<std::uint32_t>(IE_SN_DROP));
  EXPECT_EQ(out[8].action, static_cast<std::uint32_t>(IE_SN_DROP));

  // Forwarded flows were cached (except the cache_control=1 one), drops were not.
  auto cached = [&](std::uint64_t conn) { return h.cached(conn); };
  EXPECT_TRUE(cached(1));
  EXPECT_TRUE(cached(2));
  EXPECT_TRUE(cached(5));
  EXPECT_FALSE(cached(3));
  EXPECT_FALSE(cached(4));
  EXPECT_FALSE(cached(7));
  EXPECT_EQ(env.counters["forwarded"], 4u);
  EXPECT_EQ(env.counters["spoofed_source"], 1u);
  EXPECT_EQ(env.counters["no_route"], 2u);
  EXPECT_EQ(env.counters["loop"], 1u);
  EXPECT_EQ(env.counters["bad_inner_packet"], 1u);
}

// dom1.sn1 has a static route 10.1.0.0/24 -> dom1.sn2. A packet naming dom1.sn1 (dest_sn)
// for a host that is not registered there (its daemon restarting) goes by the static route,
// but is not cached: once the host registers again, the flow's next packet reaches it. (A
// cached guess sent the flow on to dom1.sn2, which dropped it as a loop, for good.) A route
// by the static table alone (no dest_sn) is cached as before.
TEST(IpModule, AStaticRouteGuessAfterDestSnFailedIsNotCached) {
  RouteConfig c = dom1("dom1.sn1");
  c.routes.push_back({P("10.1.0.0/24"), "dom1.sn2"});
  RouteTable t(c);
  ASSERT_TRUE(t.apply(up(20, IE_SN_PIPE_SN, "dom1.sn2")));
  ASSERT_TRUE(t.apply(up(21, IE_SN_PIPE_SN, "dom2.sn1")));
  ASSERT_TRUE(t.apply(up(1, IE_SN_PIPE_HOST)));
  IpHarness h(t);
  ASSERT_NE(h.inst, nullptr);
  auto decide_one = [&](const Pkt& k) { return h.decide_one(k); };
  auto cached = [&](std::uint64_t conn) { return h.cached(conn); };
  // Host 10.1.0.2 absent: named us, sent by the static route to dom1.sn2, not cached.
  ie_sn_decision r = decide_one(packet(21, "10.2.0.2", "10.1.0.2", "dom1.sn1", 1));
  EXPECT_EQ(r.action, static_cast<std::uint32_t>(IE_SN_FORWARD));
  EXPECT_EQ(r.hops[0], 20u);
  EXPECT_FALSE(cached(1));
  // An SN we have no way to (dom4 is not peered): the same.
  r = decide_one(packet(21, "10.2.0.2", "10.1.0.2", "dom4.x", 2));
  EXPECT_EQ(r.hops[0], 20u);
  EXPECT_FALSE(cached(2));
  // No dest_sn: the static route is the decision, cached.
  r = decide_one(packet(21, "10.2.0.2", "10.1.0.2", "", 3));
  EXPECT_EQ(r.hops[0], 20u);
  EXPECT_TRUE(cached(3));
  // The host registers: the same flow (connection 1) now reaches it.
  ASSERT_TRUE(t.apply(reg(1, {A("10.1.0.2")})));
  r = decide_one(packet(21, "10.2.0.2", "10.1.0.2", "dom1.sn1", 1));
  EXPECT_EQ(r.action, static_cast<std::uint32_t>(IE_SN_FORWARD));
  EXPECT_EQ(r.hops[0], 1u);
  EXPECT_TRUE(cached(1));
}

// A host registered here as its warm standby (host 2, whose active SN is dom1.sn2) is
// reached through the SN the sender names in dest_sn when that is another SN we can reach:
// forwarded there, uncached, counted. Naming us, an SN we cannot reach, the SN the packet
// came from, or no SN at all: delivered here as to an active host (cached). An active host
// (host 1) gets its packets here whatever dest_sn says.
TEST(IpModule, StandbyHostIsReachedThroughDestSnUncached) {
  RouteTable t(dom1("dom1.sn1"));  // the gateway: unknown SNs do not resolve
  ASSERT_TRUE(t.apply(up(1, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(up(2, IE_SN_PIPE_HOST)));
  ASSERT_TRUE(t.apply(up(20, IE_SN_PIPE_SN, "dom1.sn2")));
  ASSERT_TRUE(t.apply(up(21, IE_SN_PIPE_SN, "dom2.sn1")));
  ASSERT_TRUE(t.apply(reg(1, {A("10.1.0.2")})));
  ASSERT_TRUE(t.apply(standby_reg(2, {A("10.1.0.3")}, true)));
  IpHarness h(t);
  ASSERT_NE(h.inst, nullptr);
  FakeEnv& env = h.env;
  auto decide_one = [&](const Pkt& k) { return h.decide_one(k); };
  auto cached = [&](std::uint64_t conn) { return h.cached(conn); };
  auto to = [](const ie_sn_decision& r) {
    return r.action == static_cast<std::uint32_t>(IE_SN_FORWARD) && r.hop_count == 1 ? r.hops[0]
                                                                                     : 0u;
  };

  // Named another reachable SN: sent there (from a local host, and from another SN).
  EXPECT_EQ(to(decide_one(packet(1, "10.1.0.2", "10.1.0.3", "dom1.sn2", 1))), 20u);
  EXPECT_FALSE(cached(1));
  EXPECT_EQ(to(decide_one(packet(21, "10.2.0.2", "10.1.0.3", "dom1.sn2", 2))), 20u);
  EXPECT_FALSE(cached(2));
  EXPECT_EQ(env.counters["standby_bypass"], 2u);
  // Named us, an SN we cannot reach, the SN it came from, or none: delivered here, cached.
  EXPECT_EQ(to(decide_one(packet(1, "10.1.0.2", "10.1.0.3", "dom1.sn1", 3))), 2u);
  EXPECT_TRUE(cached(3));
  EXPECT_EQ(to(decide_one(packet(1, "10.1.0.2", "10.1.0.3", "dom4.x", 4))), 2u);
  EXPECT_TRUE(cached(4));
  EXPECT_EQ(to(decide_one(packet(20, "10.2.0.2", "10.1.0.3", "dom1.sn2", 5))), 2u);
  EXPECT_TRUE(cached(5));
  EXPECT_EQ(to(decide_one(packet(1, "10.1.0.2", "10.1.0.3", "", 6))), 2u);
  EXPECT_TRUE(cached(6));
  // An active host: here, whatever the sender named (as before standby existed).
  EXPECT_EQ(to(decide_one(packet(2, "10.1.0.3", "10.1.0.2", "dom1.sn2", 7))), 1u);
  EXPECT_TRUE(cached(7));
  EXPECT_EQ(env.counters["standby_bypass"], 2u);
  EXPECT_EQ(env.counters["forwarded"], 7u);
  // The host fails over to us (active here now): the same flow reaches it here.
  ASSERT_TRUE(t.apply(reg(2, {A("10.1.0.3")})));
  EXPECT_EQ(to(decide_one(packet(1, "10.1.0.2", "10.1.0.3", "dom1.sn2", 1))), 2u);
  EXPECT_TRUE(cached(1));
  EXPECT_EQ(env.counters["standby_bypass"], 2u);
}

}  // namespace
}  // namespace ie::sn
