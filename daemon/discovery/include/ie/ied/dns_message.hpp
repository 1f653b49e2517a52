// A bounds-checked reader of DNS response messages (RFC 1035), for the records SN discovery
// needs: SRV, TXT, A, AAAA and CNAME, each with its TTL. c-ares 1.18's ares_parse_*_reply
// give no TTL for SRV or TXT, so discovery parses answers itself with this one walker (fuzzed
// by tests/fuzz/fuzz_dns_answer.cpp). Input is untrusted: every read is checked against the
// message length, compression pointers must point strictly backwards (so a name always ends),
// and nothing throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ie/util/bytes.hpp"
#include "ie/util/result.hpp"

namespace ie::ied::dns {

enum RrType : std::uint16_t { kA = 1, kCname = 5, kTxt = 16, kAaaa = 28, kSrv = 33 };
enum Rcode : std::uint8_t { kNoError = 0, kServFail = 2, kNxDomain = 3 };

// Records kept per section; a bigger answer is read only this far (discovery needs a few).
inline constexpr std::size_t kMaxRecordsPerSection = 256;

struct SrvData {
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  std::uint16_t port = 0;
  std::string target;  // lower case, no trailing dot; empty for "." (service not offered)
};

// One class-IN resource record of a type listed in RrType; other types and classes are
// skipped. Names are lower case without the trailing dot.
struct Record {
  std::string owner;
  std::uint16_t type = 0;
  std::uint32_t ttl = 0;  // seconds; a TTL with the top bit set reads as 0 (RFC 2181 8)
  SrvData srv;            // kSrv
  std::string text;       // kTxt: the character-strings concatenated; kCname: the target
  std::string address;    // kA / kAaaa: the address in text form (inet_ntop)
};

struct Message {
  std::uint8_t rcode = 0;
  bool truncated = false;
  std::string qname;  // the (single) question
  std::uint16_t qtype = 0;
  std::vector<Record> answers;
  std::vector<Record> additional;
  std::size_t skipped = 0;  // records dropped: unknown type/class, bad rdata, odd names
};

// Parses a whole response. Errors (Errc::parse) say what was malformed and where; a record
// whose rdata is malformed is skipped (counted), not fatal, so one bad record cannot hide
// good ones from the same answer.
Result<Message> parse_message(ConstByteSpan msg);

// Records of `type` answering `qname`, following a CNAME chain inside the answer section
// (bounded to 8 links). Comparison is case-insensitive.
std::vector<const Record*> answers_for(const Message& m, std::string_view qname,
                                       std::uint16_t type);

// Lower-cases a name and removes one trailing dot.
std::string canonical_name(std::string_view name);

}  // namespace ie::ied::dns
