// Control protocol: codec round trips and every error path, line framing split at every
// byte, the dispatcher, and a real client/server exchange over a Unix socket.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "ie/ctl/client.hpp"
#include "ie/ctl/protocol.hpp"

namespace ie::ctl {
namespace {

// JSON text holds no raw NUL; the parser would stop at one and run the request before it.
TEST(Protocol, RefusesANulByteAnywhere) {
  const std::string good = R"({"v":1,"id":43,"method":"status"})";
  for (const std::string& line : {good + std::string(1, '\0'), good + std::string("\0garbage", 8),
                                  std::string(1, '\0') + good}) {
    auto m = decode(line);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, Errc::parse);
    EXPECT_EQ(salvage_id(line), 0u);
  }
  EXPECT_TRUE(decode(good));
  EXPECT_EQ(salvage_id(good), 43u);
}

TEST(Codec, RequestRoundTrip) {
  Request r{42, "qos.set", Json{{"rate", "100mbit"}, {"classes", Json::array({1, 2})}}};
  const std::string line = encode(r);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line
  auto m = decode(line);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  auto& got = std::get<Request>(*m);
  EXPECT_EQ(got.id, 42u);
  EXPECT_EQ(got.method, "qos.set");
  EXPECT_EQ(got.params, r.params);
}

TEST(Codec, ResponsesAndEvents) {
  Response ok;
  ok.id = 7;
  ok.result = Json{{"peers", 3}};
  auto m = decode(encode(ok));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(std::get<Response>(*m).ok);
  EXPECT_EQ(std::get<Response>(*m).result["peers"], 3);

  Response err;
  err.id = 8;
  err.ok = false;
  err.error = Error{Errc::not_found, 0, "no such peer \"x\""};
  const std::string line = encode(err);
  EXPECT_NE(line.find("\"code\":\"not_found\""), std::string::npos);
  EXPECT_NE(line.find("\"errno\":2"), std::string::npos);
  m = decode(line);
  ASSERT_TRUE(m.ok());
  const auto& r = std::get<Response>(*m);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.code, Errc::not_found);
  EXPECT_EQ(r.error.sys_errno, ENOENT);
  EXPECT_EQ(r.error.context, "no such peer \"x\"");

  m = decode(encode(Event{"peer_up", Json{{"peer", "sn1"}}}));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(std::get<Event>(*m).name, "peer_up");
}

TEST(Codec, RejectsBadInputWithUsefulErrors) {
  struct Case {
    const char* line;
    Errc code;
    const char* mentions;
  } cases[] = {
      {"not json", Errc::parse, "JSON"},
      {"[1,2]", Errc::parse, "object"},
      {R"({"id":1,"method":"x"})", Errc::parse, "\"v\""},
      {R"({"v":2,"id":1,"method":"x"})", Errc::unsupported, "version"},
      {R"({"v":1,"method":"x"})", Errc::parse, "\"id\""},
      {R"({"v":1,"id":-1,"method":"x"})", Errc::parse, "\"id\""},
      {R"({"v":1,"id":1,"method":5})", Errc::parse, "\"method\""},
      {R"({"v":1,"id":1,"method":"x","params":[]})", Errc::parse, "\"params\""},
      {R"({"v":1,"id":1,"ok":"yes"})", Errc::parse, "\"ok\""},
      {R"({"v":1,"id":1,"ok":false,"error":{"errno":1}})", Errc::parse, "\"code\""},
      {R"({"v":1,"id":1})", Errc::parse, "neither"},
  };
  for (const auto& c : cases) {
    auto m = decode(c.line);
    ASSERT_FALSE(m.ok()) << c.line;
    EXPECT_EQ(m.error().code, c.code) << c.line;
    EXPECT_NE(m.error().context.find(c.mentions), std::string::npos)
        << c.line << " -> " << m.error().context;
  }
  std::string deep = R"({"v":1,"id":1,"method":"x","params":{"a":)";
  for (int i = 0; i < 40; ++i)
    deep += "[";
  for (int i = 0; i < 40; ++i)
    deep += "]";
  deep += "}}";
  auto m = decode(deep);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().context.find("deeper"), std::string::npos);
  // Brackets inside strings do not count as nesting.
  EXPECT_TRUE(
      decode(R"({"v":1,"id":1,"method":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})").ok());
  const std::string huge(kMaxFrame + 1, ' ');
  EXPECT_EQ(decode(huge).error().code, Errc::too_large);
}

TEST(LineReader, SplitsAtEveryByteBoundary) {
  const std::string stream =
      encode(Request{1, "a", {}}) + encode(Request{2, "bb", {}}) + encode(Request{3, "ccc", {}});
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    LineReader r;
    r.feed(std::string_view(stream).substr(0, cut));
    r.feed(std::string_view(stream).substr(cut));
    std::string line;
    for (std::uint64_t id = 1; id <= 3; ++id) {
      ASSERT_TRUE(r.next(&line)) << cut;
      EXPECT_EQ(std::get<Request>(decode(line).value()).id, id);
    }
    EXPECT_FALSE(r.next(&line));
  }
}

TEST(LineReader, OverlongLinePoisonsWithoutGrowing) {
  LineReader r(100);
  r.feed(std::string(60, 'x'));
  EXPECT_FALSE(r.overflowed());
  r.feed(std::string(60, 'x'));
  EXPECT_TRUE(r.overflowed());
  r.feed("\n{}\n");
  std::string line;
  EXPECT_FALSE(r.next(&line));
}

TEST(Dispatcher, RoutesAndContainsFailures) {
  Dispatcher d;
  ASSERT_TRUE(d.add("echo", [](const Json& p, const Caller& c) -> Result<Json> {
    return Json{{"params", p}, {"uid", c.uid}};
  }));
  ASSERT_FALSE(d.add("echo", [](const Json&, const Caller&) -> Result<Json> { return Json{}; }));
  d.add("fails", [](const Json&, const Caller&) -> Result<Json> {
    return fail(Errc::permission, "root only");
  });
  d.add("throws",
        [](const Json&, const Caller&) -> Result<Json> { throw std::runtime_error("boom"); });
  const Caller caller{1000, 1000, 1};
  auto r = d.dispatch(Request{1, "echo", Json{{"x", 1}}}, caller);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.result["uid"], 1000);
  r = d.dispatch(Request{2, "fails", {}}, caller);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.code, Errc::permission);
  r = d.dispatch(Request{3, "throws", {}}, caller);
  EXPECT_EQ(r.error.code, Errc::internal);
  EXPECT_NE(r.error.context.find("boom"), std::string::npos);
  r = d.dispatch(Request{4, "nope", {}}, caller);
  EXPECT_EQ(r.error.code, Errc::not_found);
  auto line = decode(d.handle_line("garbage", caller)).value();
  EXPECT_EQ(std::get<Response>(line).error.code, Errc::parse);
}

TEST(Dispatcher, HelloListsMethodsAndErrorRepliesKeepTheId) {
  Dispatcher d;
  ASSERT_TRUE(d.add("status", [](const Json&, const Caller&) -> Result<Json> { return Json{}; }));
  ASSERT_TRUE(d.add_hello("ied test"));
  EXPECT_FALSE(d.add_hello("again"));
  EXPECT_FALSE(d.add("hello", [](const Json&, const Caller&) -> Result<Json> { return Json{}; }));
  const Caller caller{0, 0, 1};
  auto hello = decode_message(d.handle_line(encode_request(Request{5, "hello", {}}), caller));
  ASSERT_TRUE(hello.ok());
  const auto& h = std::get<Response>(*hello);
  ASSERT_TRUE(h.ok);
  EXPECT_EQ(h.id, 5u);
  EXPECT_EQ(h.result["protocol"], 1);
  EXPECT_EQ(h.result["server"], "ied test");
  EXPECT_EQ(h.result["methods"], Json::array({"hello", "status"}));

  // Another protocol version: "unsupported", and the client can still match the id.
  auto v2 = decode(d.handle_line(R"({"v":2,"id":77,"method":"status"})", caller)).value();
  EXPECT_EQ(std::get<Response>(v2).id, 77u);
  EXPECT_EQ(std::get<Response>(v2).error.code, Errc::unsupported);
  EXPECT_EQ(std::get<Response>(v2).error.sys_errno, ENOTSUP);
  // A mistyped field: parse error naming the field, id kept.
  auto bad = decode(d.handle_line(R"({"v":1,"id":78,"method":"status","params":3})", caller));
  EXPECT_EQ(std::get<Response>(bad.value()).id, 78u);
  EXPECT_NE(std::get<Response>(bad.value()).error.context.find("\"params\""), std::string::npos);
  // A response or event sent to a server is a protocol error.
  auto ev = decode(d.handle_line(encode_event(Event{"x", {}}), caller)).value();
  EXPECT_EQ(std::get<Response>(ev).error.code, Errc::protocol);
  Response stray;
  stray.id = 9;
  auto rs = decode(d.handle_line(encode_response(stray), caller)).value();
  EXPECT_EQ(std::get<Response>(rs).id, 9u);
  EXPECT_EQ(std::get<Response>(rs).error.code, Errc::protocol);
  // Too long: too_large (the caller then closes the connection).
  auto big = decode(d.handle_line(std::string(kMaxFrame + 10, 'x'), caller)).value();
  EXPECT_EQ(std::get<Response>(big).error.code, Errc::too_large);
  EXPECT_EQ(std::get<Response>(big).id, 0u);
  EXPECT_EQ(salvage_id("not json"), 0u);
  EXPECT_EQ(salvage_id(R"({"id":"7"})"), 0u);
  EXPECT_EQ(salvage_id(R"({"id":18446744073709551615})"), 18446744073709551615u);
}

TEST(LineReader, ManyLinesInOneFeedThenAnOverlongOne) {
  LineReader r(64);
  std::string in;
  for (int i = 0; i < 1000; ++i)
    in += std::to_string(i) + "\n";
  in += std::string(65, 'y') + "\n" + "after\n";
  r.feed(in);
  EXPECT_TRUE(r.overflowed());
  std::string line;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(r.next(&line));
    EXPECT_EQ(line, std::to_string(i));
  }
  EXPECT_FALSE(r.next(&line));  // neither the overlong line nor anything after it

  LineReader exact(64);
  exact.feed(std::string(64, 'z'));  // a full-size partial line is still acceptable
  EXPECT_FALSE(exact.overflowed());
  exact.feed("\n\n");
  ASSERT_TRUE(exact.next(&line));
  EXPECT_EQ(line.size(), 64u);
  ASSERT_TRUE(exact.next(&line));
  EXPECT_TRUE(line.empty());
}

class UnixSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ie-ctl-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/ied.sock";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

TEST_F(UnixSocketTest, DaemonDownErrorNamesTheSocket) {
  auto c = Client::connect(path_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::not_found);
  EXPECT_NE(c.error().to_string().find(path_), std::string::npos);
  EXPECT_NE(c.error().to_string().find("is ied running"), std::string::npos);
}

TEST_F(UnixSocketTest, ClientServerExchangeWithEventsAndCredentials) {
  auto lfd = listen_unix(path_, 0660);
  ASSERT_TRUE(lfd.ok()) << lfd.error().to_string();
  Dispatcher d;
  d.add("whoami", [](const Json&, const Caller& c) -> Result<Json> {
    return Json{{"uid", c.uid}, {"pid", c.pid}};
  });
  d.add("stale", [](const Json&, const Caller&) -> Result<Json> { return Json{{"late", false}}; });
  d.add("missing", [](const Json&, const Caller&) -> Result<Json> {
    return fail(Errc::not_found, "no such group");
  });
  // A one-connection server: an event before every reply; ignores "silent" (for timeouts).
  std::thread server([&] {
    pollfd p{*lfd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    const int fd = ::accept4(*lfd, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(fd, 0);
    auto caller = peer_credentials(fd);
    ASSERT_TRUE(caller.ok());
    LineReader r;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      r.feed(std::string_view(buf, static_cast<std::size_t>(n)));
      std::string line;
      while (r.next(&line)) {
        if (line.find("\"silent\"") != std::string::npos) continue;
        std::string out = encode(Event{"tick", {}});
        if (line.find("\"stale\"") != std::string::npos) {
          // A late reply to an earlier call, then an event, before the real reply.
          Response late;
          late.id = 1;
          late.result = Json{{"late", true}};
          out += encode(late) + encode(Event{"tick", {}});
        }
        out += d.handle_line(line, *caller);
        ASSERT_EQ(::send(fd, out.data(), out.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(out.size()));
      }
    }
    ::close(fd);
  });
  {
    auto c = Client::connect(path_);
    ASSERT_TRUE(c.ok()) << c.error().to_string();
    int events = 0;
    c->on_event = [&](const Event& e) { events += e.name == "tick"; };
    auto r = c->call("whoami");
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ((*r)["uid"], ::getuid());
    EXPECT_EQ((*r)["pid"], ::getpid());
    auto e = c->call("missing");
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().code, Errc::not_found);
    EXPECT_EQ(e.error().context, "no such group");
    auto t = c->call("silent", Json::object(), std::chrono::milliseconds(100));
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, Errc::timeout);
    auto s = c->call("stale");
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    EXPECT_EQ((*s)["late"], false);  // the reply with the stale id was skipped
    EXPECT_EQ(events, 4);
  }
  server.join();
  ::close(*lfd);
}

}  // namespace
}  // namespace ie::ctl
