// Fuzzes the SN's control service (host registration JSON, sn.locate / sn.hello between SNs)
// and the out-of-band request framing: arbitrary bytes from an associated host or SN must
// get a JSON answer (or, from the SN, a relay / hello deferred with what it needs), never a
// crash, and the route table must stay consistent. The same bytes also go through the
// locate-answer parser.
#include <cstddef>
#include <cstdint>

#include "ie/sn/routing.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ie::sn;
  static const Prefix kPrefix = *Prefix::parse("10.0.0.0/8");
  RouteConfig cfg;
  cfg.self = "dom1.sn1";
  cfg.gateway = "dom1.sn1";
  cfg.host_prefixes = {kPrefix};
  RouteTable table(cfg);
  RouteOp up;
  up.pipe = 1;
  (void)table.apply(up);
  up.pipe = 2;
  (void)table.apply(up);
  up.pipe = 3;
  up.pipe_kind = IE_SN_PIPE_SN;
  up.sn_name = "dom1.sn2";
  (void)table.apply(up);
  noise::PublicKey k{};
  k.fill(7);
  ControlInfo info{"dom1.sn1",
                   {"ip", "block"},
                   {{"block", 8}},
                   "192.0.2.11:1000",
                   true,
                   k,
                   {SnRef{"dom1.sn2", "192.0.2.12:1000", k}}};
  (void)parse_locate_answer(std::string_view(reinterpret_cast<const char*>(data), size),
                            "dom1.sn2");
  const auto req = split_service_request(ie::ConstByteSpan(data, size));
  if (!req) return 0;
  // The same request from two hosts: the second may only succeed where the first failed.
  const ControlResult a = handle_control_request(table, 1, req->second, info);
  const ControlResult b = handle_control_request(table, 2, req->second, info);
  if (a.response.empty() && a.hello_name.empty()) __builtin_trap();
  if (b.response.empty() && b.hello_name.empty()) __builtin_trap();
  // From the SN pipe: an answer, a relay somewhere else, or a hello to verify.
  const ControlResult c = handle_control_request(table, 3, req->second, info);
  if (c.response.empty() && c.hello_name.empty() &&
      (c.relay_name.empty() || c.relay_via == 3u || c.relay_via == 0u))
    __builtin_trap();
  for (const auto& addr : table.registered(2)) {
    if (table.host_of(addr) != 2u) __builtin_trap();
  }
  return 0;
}
