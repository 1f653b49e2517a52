// The built-in `passthrough` module (service 6): the allow-list firewall an operator imposes
// on every packet from and to the hosts of its pass-through SN (docs/sn.md "Imposed services").
//
//   [services]
//   imposed = ["passthrough"]
//   [modules.passthrough]
//   allow = "ip 10.2.0.0/16, ip fd00:2::/32, * 10.3.0.5"
//
// Each entry is "SERVICE PREFIX": SERVICE a registry name (ip, null, pubsub, ...), a number
// or "*"; PREFIX an IPv4/IPv6 prefix or "*". A packet from a host is allowed if its service
// and its inner DESTINATION match an entry; a packet to a host (arriving from an SN) if its
// service and its inner SOURCE do. Allowed: IE_SN_DEFAULT (the pipe-terminus carries on);
// everything else is dropped and counted. An empty or missing list allows nothing. A list
// that does not parse refuses the SN's start; on reload it is refused and the running list
// kept (both logged).
#include <charconv>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ie/sn/module.hpp"
#include "ie/sn/routing.hpp"
#include "ie/wire/service_id.hpp"

namespace ie::sn {
namespace {

constexpr std::size_t kMaxRules = 256;

struct Rule {
  std::optional<std::uint16_t> service;  // nullopt: any
  std::optional<Prefix> prefix;          // nullopt: any
};

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

Result<std::vector<Rule>> parse_rules(std::string_view text) {
  std::vector<Rule> rules;
  while (!trim(text).empty()) {
    const auto comma = text.find(',');
    const std::string_view entry = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const auto bad = [&](const std::string& why) {
      return fail(Errc::invalid_argument,
                  "allow entry \"" + std::string(entry.substr(0, 80)) + "\": " + why);
    };
    const auto space = entry.find_first_of(" \t");
    if (entry.empty() || space == std::string_view::npos) return bad("expected \"SERVICE PREFIX\"");
    const std::string_view svc = entry.substr(0, space);
    const std::string_view pre = trim(entry.substr(space));
    Rule r;
    if (svc != "*") {
      if (auto id = wire::service_from_name(svc)) {
        r.service = *id;
      } else {
        unsigned n = 0;
        const auto [ptr, ec] = std::from_chars(svc.data(), svc.data() + svc.size(), n);
        if (ec != std::errc{} || ptr != svc.data() + svc.size() || n > 0xffff)
          return bad("unknown service \"" + std::string(svc.substr(0, 32)) + "\"");
        r.service = static_cast<std::uint16_t>(n);
      }
    }
    if (pre != "*") {
      auto p = Prefix::parse(pre);
      if (!p) return bad(p.error().context);
      r.prefix = *p;
    }
    if (rules.size() == kMaxRules) return bad("more than 256 entries");
    rules.push_back(r);
  }
  return rules;
}

class PassthroughModule final : public Module {
 public:
  explicit PassthroughModule(const ModuleContext& ctx) : Module(ctx) {
    allowed_ = declare_counter("allowed", "packets the allow list let through");
    denied_ = declare_counter("denied", "packets dropped: no allow entry matches");
    bad_inner_ = declare_counter("bad_inner_packet", "packets dropped: inner packet not IP");
    auto r = parse_rules(config_or("allow", ""));
    if (!r) throw std::runtime_error("[modules.passthrough] " + r.error().context);
    rules_ = std::move(*r);
  }

  void on_config() override {
    auto r = parse_rules(config_or("allow", ""));
    if (!r) {
      log_error("reload refused, keeping the running allow list: [modules.passthrough] " +
                r.error().context);
      return;
    }
    rules_ = std::move(*r);
  }

  void on_packets(std::span<const ie_sn_packet> packets, std::span<ie_sn_decision> out) override {
    for (std::size_t i = 0; i < packets.size(); ++i)
      out[i] = decide(packets[i]);
  }

 private:
  ie_sn_decision decide(const ie_sn_packet& p) {
    const auto addrs = inner_addrs(p.inner, p.inner_len);
    if (!addrs) {
      count(bad_inner_);
      return drop();
    }
    const auto from = pipe_info(p.from_pipe);
    const bool from_host = from && from->kind == IE_SN_PIPE_HOST;
    const Addr16& other = from_host ? addrs->dst : addrs->src;
    for (const Rule& r : rules_) {
      if (r.service && *r.service != p.service_id) continue;
      if (r.prefix && !r.prefix->contains(other)) continue;
      count(allowed_);
      return by_destination();
    }
    count(denied_);
    return drop();
  }

  std::vector<Rule> rules_;
  ModuleCounter allowed_, denied_, bad_inner_;
};

}  // namespace

IE_SN_BUILTIN_MODULE(PassthroughModule, passthrough_module, "passthrough",
                     static_cast<std::uint16_t>(wire::ServiceId::passthrough),
                     "operator pass-through: allow-list firewall by service and destination")

}  // namespace ie::sn
