// Fuzzes the SN's control service (host registration JSON) and the out-of-band request
// framing: arbitrary bytes from an associated host must get a JSON answer, never a crash,
// and the route table must stay consistent.
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
  ControlInfo info{"dom1.sn1", {"ip", "block"}, {{"block", 8}}, "192.0.2.11:1000"};
  const auto req = split_service_request(ie::ConstByteSpan(data, size));
  if (!req) return 0;
  // The same request from two hosts: the second may only succeed where the first failed.
  const ControlResult a = handle_control_request(table, 1, req->second, info);
  const ControlResult b = handle_control_request(table, 2, req->second, info);
  if (a.response.empty() || b.response.empty()) __builtin_trap();
  for (const auto& addr : table.registered(2)) {
    if (table.host_of(addr) != 2u) __builtin_trap();
  }
  return 0;
}
