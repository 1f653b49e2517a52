// Fuzz target: ied's DNS response reader (daemon/discovery/dns_message.cpp) and the
// InterEdge TXT parsers on whatever it yields - the whole path an answer from the network
// takes through SN discovery. Invariants: no crash or sanitizer report; kept records are
// within the per-section bound; names fit DNS limits; every TXT parse either succeeds with a
// 32-byte non-zero key or fails with a reason.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ie/ied/dns_message.hpp"
#include "ie/ied/ie_txt_record.hpp"

namespace {

void check_name(const std::string& n) {
  if (n.size() > 254) std::abort();  // 255 wire bytes at most
}

void check(const ie::ied::dns::Record& r) {
  using namespace ie::ied;
  check_name(r.owner);
  check_name(r.srv.target);
  if (r.type == dns::kA && r.address.empty()) std::abort();
  if (r.type == dns::kAaaa && r.address.empty()) std::abort();
  if (r.type == dns::kTxt || r.type == dns::kCname) {
    auto sn = parse_sn_txt(r.text);
    if (!sn.ok() && sn.error().context.empty()) std::abort();
    auto peer = parse_peer_txt(r.text);
    if (!peer.ok() && peer.error().context.empty()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 65535) return 0;  // a DNS message over TCP is at most 64 KiB
  auto m = ie::ied::dns::parse_message(ie::ConstByteSpan(data, size));
  if (!m.ok()) {
    if (m.error().context.empty()) std::abort();
    return 0;
  }
  if (m->answers.size() > ie::ied::dns::kMaxRecordsPerSection ||
      m->additional.size() > ie::ied::dns::kMaxRecordsPerSection)
    std::abort();
  for (const auto& r : m->answers)
    check(r);
  for (const auto& r : m->additional)
    check(r);
  for (std::uint16_t t : {ie::ied::dns::kSrv, ie::ied::dns::kTxt, ie::ied::dns::kA})
    for (const auto* r : ie::ied::dns::answers_for(*m, m->qname, t))
      if (r->type != t) std::abort();
  return 0;
}
