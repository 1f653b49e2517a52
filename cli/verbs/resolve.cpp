// `iectl resolve HOST`: the addresses of HOST (getaddrinfo: numeric, /etc/hosts, DNS) and
// what ied knows of each (`peer.resolve`): an InterEdge host or not, its first-hop SN(s),
// where that came from. What ie_resolve() does in libinteredge, for a person; while ied
// looks a peer record up in DNS it answers "pending" and the address is asked again, for at
// most 2 s in all.
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "format.hpp"
#include "verb.hpp"

// verb_resolve: the verbs build as one unity translation unit (cli/CMakeLists.txt), so each
// file's own names live in a namespace of their own.
namespace iectl::verb_resolve {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kPendingBudget = std::chrono::seconds(2);

struct Args {
  std::string host;
  bool v4 = false;
  bool v6 = false;
};

// The distinct numeric addresses of host, in getaddrinfo's order; an error text when none.
std::vector<std::string> addresses_of(const std::string& host, int family, std::string* error) {
  addrinfo hints{};
  hints.ai_family = family;
  addrinfo* res = nullptr;
  const int g = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (g != 0) {
    *error = gai_strerror(g);
    return {};
  }
  std::vector<std::string> out;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    char text[NI_MAXHOST];
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) !=
        0)
      continue;
    std::string a = text;
    if (const auto pct = a.find('%'); pct != std::string::npos) a.resize(pct);  // scope id
    bool seen = false;
    for (const auto& o : out)
      seen = seen || o == a;
    if (!seen) out.push_back(std::move(a));
  }
  freeaddrinfo(res);
  if (out.empty()) *error = "no IPv4 or IPv6 address";
  return out;
}

std::string human(const Json& r) {
  fmt::Table t({"address", "interedge", "sns", "source"});
  for (const Json& p : fmt::array(r, "results")) {
    std::string source = fmt::text(p, "source");
    if (fmt::flag(p, "pending").value_or(false)) source += " (DNS lookup pending)";
    t.row({fmt::text(p, "address"), fmt::text(p, "interedge"), fmt::list(p, "sns"), source});
  }
  return t.str();
}

IECTL_VERB({"resolve"}, "HOST's addresses: InterEdge hosts or not, and their first-hop SN(s)",
           [](CLI::App& cmd) -> Run {
             auto a = std::make_shared<Args>();
             cmd.add_option("host", a->host, "a name or a numeric address")->required();
             auto* v4 = cmd.add_flag("-4", a->v4, "IPv4 addresses only");
             cmd.add_flag("-6", a->v6, "IPv6 addresses only")->excludes(v4);
             return [a](Session& s) {
               const int family = a->v4 ? AF_INET : a->v6 ? AF_INET6 : AF_UNSPEC;
               std::string error;
               const auto addrs = addresses_of(a->host, family, &error);
               if (addrs.empty()) {
                 s.err() << "iectl: resolve: " << a->host << ": " << error << "\n";
                 return static_cast<int>(kExitFailed);
               }
               std::vector<Json> results(addrs.size());
               std::vector<bool> done(addrs.size(), false);
               const auto deadline = Clock::now() + kPendingBudget;
               auto pause = std::chrono::milliseconds(10);
               for (;;) {
                 bool pending = false;
                 for (std::size_t i = 0; i < addrs.size(); ++i) {
                   if (done[i]) continue;
                   auto r = s.call("peer.resolve", Json{{"address", addrs[i]}});
                   if (!r) return s.exit_code();
                   results[i] = std::move(*r);
                   done[i] = !fmt::flag(results[i], "pending").value_or(false);
                   pending = pending || !done[i];
                 }
                 if (!pending || Clock::now() >= deadline) break;
                 std::this_thread::sleep_for(pause);
                 pause = std::min(pause * 2, std::chrono::milliseconds(200));
               }
               Json out = {{"host", a->host}, {"results", Json::array()}};
               for (auto& r : results)
                 out["results"].push_back(std::move(r));
               return s.print(out, human);
             };
           });

}  // namespace
}  // namespace iectl::verb_resolve
