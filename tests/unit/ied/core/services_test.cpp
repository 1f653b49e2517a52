// Services and bundles (services.hpp): names, options, bundle expansion, and clear errors.
#include <gtest/gtest.h>

#include "ie/ied/services.hpp"

namespace ie::ied {
namespace {

TEST(Services, IpWithDefaults) {
  auto c = resolve_service("ip");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->service, "ip");
  EXPECT_EQ(c->requested, "ip");
  EXPECT_EQ(c->options.at("direct"), "allow");
  EXPECT_TRUE(c->allows_direct());
}

TEST(Services, BundleExpandsToServiceAndOptions) {
  auto c = resolve_service("ip-via-sn");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->service, "ip");
  EXPECT_EQ(c->requested, "ip-via-sn");
  EXPECT_EQ(c->options.at("direct"), "never");
  EXPECT_FALSE(c->allows_direct());
  // The caller's options go on top of the bundle's.
  auto o = resolve_service("ip-via-sn", {{"direct", "allow"}});
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->allows_direct());
  // Same service, different options: different choices (different marks).
  EXPECT_FALSE(*resolve_service("ip") == *c);
  EXPECT_TRUE(*resolve_service("ip", {{"direct", "never"}}) ==
              *resolve_service("ip", {{"direct", "never"}}));
}

TEST(Services, SnCacheIsTheOptionCarriedToSns) {
  auto plain = resolve_service("ip");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->options.at("sn_cache"), "on");
  EXPECT_FALSE(plain->sn_cache_off());
  EXPECT_FALSE(plain->carried_to_sns());  // direct= is ied's own business
  auto b = resolve_service("ip-uncached");
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(b->service, "ip");
  EXPECT_TRUE(b->sn_cache_off());
  EXPECT_TRUE(b->carried_to_sns());
  EXPECT_TRUE(b->allows_direct());
  auto o = resolve_service("ip", {{"sn_cache", "off"}, {"direct", "never"}});
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->carried_to_sns());
  EXPECT_FALSE(o->allows_direct());
  auto bad = resolve_service("ip", {{"sn_cache", "maybe"}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().context.find("is not one of on, off"), std::string::npos)
      << bad.error().context;
}

TEST(Services, Errors) {
  struct Case {
    std::string name;
    ServiceOptions opts;
    Errc code;
    std::string expect;
  };
  ServiceOptions many;
  for (int i = 0; i < 17; ++i)
    many["k" + std::to_string(i)] = "v";
  const Case cases[] = {
      {"", {}, Errc::invalid_argument, "is not 1..63 characters"},
      {std::string(64, 'a'), {}, Errc::invalid_argument, "is not 1..63 characters"},
      {"IP", {}, Errc::invalid_argument, "is not 1..63 characters"},
      {"ip\n", {}, Errc::invalid_argument, "is not 1..63"},
      {"teleport",
       {},
       Errc::not_found,
       "unknown service \"teleport\" (known: ip, ip-via-sn, ip-uncached)"},
      {"ip", many, Errc::invalid_argument, "at most 16"},
      {"ip", {{"Direct", "allow"}}, Errc::invalid_argument, "option key \"Direct\""},
      {"ip", {{std::string(32, 'k'), "v"}}, Errc::invalid_argument, "option key"},
      {"ip",
       {{"colour", "blue"}},
       Errc::invalid_argument,
       "has no option \"colour\" (known: direct, sn_cache)"},
      {"ip",
       {{"direct", "sometimes"}},
       Errc::invalid_argument,
       "\"sometimes\" is not one of allow, never"},
      {"ip", {{"direct", std::string(128, 'a')}}, Errc::invalid_argument, "at most 127"},
      {"ip", {{"direct", "al\x01low"}}, Errc::invalid_argument, "printable ASCII"},
  };
  for (const auto& c : cases) {
    auto r = resolve_service(c.name, c.opts);
    ASSERT_FALSE(r) << c.name;
    EXPECT_EQ(r.error().code, c.code) << c.name;
    EXPECT_NE(r.error().context.find(c.expect), std::string::npos)
        << "got: " << r.error().context << "\nwanted: " << c.expect;
  }
}

}  // namespace
}  // namespace ie::ied
