// A test module written with the C++ wrapper (ie/sn/module.hpp), loaded by modules_test as a
// shared object. It decides packets by the first byte of their inner packet and answers
// text commands sent as control messages, so the test can drive every host call through
// the C ABI and observe the effects.
//
// Packets (inner[0]):  F p       forward to pipe p and cache the flow
//                      M p q ... forward to pipes p, q, ... (not cached)
//                      D         drop and cache the drop
//                      N         IE_SN_DEFAULT
//                      C         consumed: sends "echo" back on the arriving pipe
//                      X v       an invalid decision of kind v (0 9 z a u)
//                      T         throws (the wrapper turns the batch into drops)
// Control messages: see on_control.
#include <cstdlib>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

#include "ie/sn/module.hpp"

namespace {

class Good final : public ie::sn::Module {
 public:
  explicit Good(const ie::sn::ModuleContext& ctx) : Module(ctx) {
    if (config_or("fail_create", "no") == "yes") throw std::runtime_error("told to fail");
    seen_ = declare_counter("seen", "packets decided");
    config_changes_ = declare_counter("config_changes", "on_config calls");
    timer_fired_ = declare_counter("timer_fired", "timers run");
    pipes_down_ = declare_counter("pipes_down", "on_pipe_down calls");
  }

  void on_packets(std::span<const ie_sn_packet> packets, std::span<ie_sn_decision> out) override {
    for (std::size_t i = 0; i < packets.size(); ++i) {
      const ie_sn_packet& p = packets[i];
      flows_[p.connection_id] = flow_of(p);
      out[i] = decide(p, out[i]);
    }
    count(seen_, packets.size());
  }

  void on_control(ie_sn_pipe peer, std::uint32_t id, std::span<const std::uint8_t> data) override {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data.data()), data.size()));
    std::string cmd, a, b;
    in >> cmd >> a;
    std::getline(in >> std::ws, b);
    control_reply(peer, id, answer(cmd, a, b));
  }

  void on_pipe_down(ie_sn_pipe) override { count(pipes_down_); }
  void on_config() override { count(config_changes_); }

 private:
  ie_sn_decision decide(const ie_sn_packet& p, ie_sn_decision unwritten) {
    const std::uint8_t* in = p.inner;
    const std::size_t n = p.inner_len;
    if (n == 0) return drop();
    switch (in[0]) {
      case 'F': {
        const ie_sn_decision d = forward({n > 1 ? in[1] : 0u});
        cache_insert(flow_of(p), d);
        return d;
      }
      case 'M': {
        std::vector<ie_sn_pipe> hops(in + 1, in + n);
        return forward(hops);
      }
      case 'D':
        cache_insert(flow_of(p), drop());
        return drop();
      case 'N':
        return by_destination();
      case 'C': {
        static const std::uint8_t kEcho[] = {'e', 'c', 'h', 'o'};
        send(p.from_pipe, OutPacket{p.service_id, p.connection_id, kEcho, {}, 0});
        return consumed();
      }
      case 'X': {
        ie_sn_decision d{};
        d.action = IE_SN_FORWARD;
        switch (n > 1 ? in[1] : 0) {
          case '0':
            d.hop_count = 0;
            break;
          case '9':
            d.hop_count = 9;
            for (auto& h : d.hops)
              h = 1;
            break;
          case 'z':
            d.hop_count = 2;
            d.hops[0] = 1;
            d.hops[1] = 0;
            break;
          case 'a':
            d.action = 77;
            break;
          default:
            return unwritten;  // leaves out[i] as it found it
        }
        return d;
      }
      case 'T':
        throw std::runtime_error("boom");
      default:
        return drop();
    }
  }

  std::string answer(const std::string& cmd, const std::string& a, const std::string& b) {
    auto key = [&]() -> const ie_sn_flow_key* {
      const auto it = flows_.find(std::strtoull(a.c_str(), nullptr, 10));
      return it == flows_.end() ? nullptr : &it->second;
    };
    if (cmd == "worker") return std::to_string(worker_index());
    if (cmd == "config") return config(a).value_or("<none>");
    if (cmd == "set") return set_config(a, b) ? "ok" : "fail";
    if (cmd == "save") return save_state(a, b) ? "ok" : "fail";
    if (cmd == "load") {
      const auto v = load_state(a);
      return v ? std::string(v->begin(), v->end()) : "<none>";
    }
    if (cmd == "hits") {
      const auto h = key() ? cache_hit_count(*key()) : std::nullopt;
      return h ? std::to_string(*h) : "<none>";
    }
    if (cmd == "recent")
      return key() && cache_recently_used(*key(), std::strtoull(b.c_str(), nullptr, 10)) ? "1"
                                                                                         : "0";
    if (cmd == "remove") return key() && cache_remove(*key()) ? "ok" : "<none>";
    if (cmd == "timer") {
      const auto id = add_timer(std::chrono::milliseconds(std::atoi(a.c_str())),
                                [this] { count(timer_fired_); });
      return std::to_string(id);
    }
    if (cmd == "cancel")
      return cancel_timer(std::strtoull(a.c_str(), nullptr, 10)) ? "ok" : "<none>";
    if (cmd == "pending") return std::to_string(pending_timers());
    if (cmd == "log") {
      log_info(a + (b.empty() ? "" : " " + b));
      return "ok";
    }
    if (cmd == "counter") return std::to_string(declare_counter(a).id);
    if (cmd == "pipe") {
      const auto info = pipe_info(static_cast<ie_sn_pipe>(std::strtoul(a.c_str(), nullptr, 10)));
      if (!info) return "<none>";
      return info->kind == IE_SN_PIPE_HOST ? "host" : "sn:" + std::string(info->sn_name);
    }
    if (cmd == "route") {
      const auto addr = parse_addr(a);
      const auto p = addr ? route(*addr) : std::nullopt;
      return p ? std::to_string(*p) : "<none>";
    }
    if (cmd == "snroute") {
      const auto p = sn_route(a);
      return p ? std::to_string(*p) : "<none>";
    }
    if (cmd == "now") return std::to_string(now_ns());
    if (cmd == "throw") throw std::runtime_error("control boom");
    return "unknown command";
  }

  std::map<std::uint64_t, ie_sn_flow_key> flows_;  // last flow seen per connection id
  ie::sn::ModuleCounter seen_, config_changes_, timer_fired_, pipes_down_;
};

}  // namespace

IE_SN_MODULE(Good, "test_good", 0x8100, "test module written with the C++ wrapper")
