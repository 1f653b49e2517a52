// The server side of iesn's control socket: the read-only status methods and the admin-only
// reload on a ctl::Dispatcher (served by ctl::Server, ie/ctl/server.hpp).
#include <algorithm>

#include "ie/sn/status.hpp"
#include "ie/util/log.hpp"

namespace ie::sn {

using ctl::Json;

// ---- Methods ----

namespace {

Result<std::uint64_t> u64_param(const Json& params, const char* key, std::uint64_t dflt) {
  const auto it = params.find(key);
  if (it == params.end() || it->is_null()) return dflt;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_number_integer() && it->get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(it->get<std::int64_t>());
  return fail(Errc::invalid_argument, std::string("\"") + key + "\" must be an unsigned integer");
}

}  // namespace

Result<void> add_status_methods(ctl::Dispatcher& d, StatusProvider provider, ReloadHandler reload,
                                const std::string& server) {
  if (!provider) return fail(Errc::invalid_argument, "add_status_methods: no status provider");
  auto shared = std::make_shared<StatusProvider>(std::move(provider));
  auto summary = [shared](const Json&, const ctl::Caller&) -> Result<Json> {
    auto s = (*shared)(StatusQuery{});
    if (!s) return fail(s.error());
    return status_to_json(*s);
  };
  bool added = d.add_hello(server);
  added = d.add("status", summary) && added;
  added = d.add("counters", summary) && added;
  added = d.add("modules", [shared](const Json&, const ctl::Caller&) -> Result<Json> {
    auto s = (*shared)(StatusQuery{});
    if (!s) return fail(s.error());
    const Json j = status_to_json(*s);
    return Json{{"modules", j["modules"]}, {"module_counters", j["module_counters"]}};
  }) && added;
  added = d.add("pipes", [shared](const Json& params, const ctl::Caller&) -> Result<Json> {
    auto after = u64_param(params, "after", 0);
    if (!after) return fail(Errc::invalid_argument, "pipes: " + after.error().context);
    if (*after > 0xffffffffu)
      return fail(Errc::invalid_argument, "pipes: \"after\" must be a pipe id (32 bits)");
    auto limit = u64_param(params, "limit", kPipesPerPage);
    if (!limit) return fail(Errc::invalid_argument, "pipes: " + limit.error().context);
    if (*limit < 1 || *limit > kPipesPerPage)
      return fail(Errc::invalid_argument,
                  "pipes: \"limit\" must be 1.." + std::to_string(kPipesPerPage));
    StatusQuery q;
    q.pipes = true;
    q.pipes_after = static_cast<PipeId>(*after);
    q.pipe_limit = static_cast<std::size_t>(*limit);
    auto s = (*shared)(q);
    if (!s) return fail(s.error());
    // Enforce the page contract whatever the provider returned.
    auto& pipes = s->pipes;
    std::sort(pipes.begin(), pipes.end(),
              [](const PipeStatus& a, const PipeStatus& b) { return a.id < b.id; });
    pipes.erase(std::remove_if(pipes.begin(), pipes.end(),
                               [&](const PipeStatus& p) { return p.id <= q.pipes_after; }),
                pipes.end());
    bool more = pipes.size() >= q.pipe_limit;
    if (pipes.size() > q.pipe_limit) pipes.resize(q.pipe_limit);
    Json list = Json::array();
    for (const auto& p : pipes)
      list.push_back(pipe_to_json(p));
    const PipeSummary& ps = s->pipe_summary;
    return Json{{"pipes", std::move(list)},
                {"more", more},
                {"pipe_summary", Json{{"total", ps.total},
                                      {"hosts", ps.hosts},
                                      {"sns", ps.sns},
                                      {"established", ps.established}}}};
  }) && added;
  // Access::admin: the dispatcher refuses non-admins before this runs.
  added = d.add(
              "reload",
              [reload = std::move(reload)](const Json&, const ctl::Caller& who) -> Result<Json> {
                if (!reload) return fail(Errc::unsupported, "reload: not supported by this server");
                auto r = reload();
                if (!r) return fail(r.error());
                IE_LOG_INFO("configuration reloaded (requested by pid {})", who.pid);
                return Json{{"reloaded", true}};
              },
              ctl::Access::admin) &&
          added;
  if (!added) return fail(Errc::exists, "add_status_methods: a method name is already registered");
  return ok();
}

}  // namespace ie::sn
