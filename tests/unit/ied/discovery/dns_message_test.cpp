// The DNS response reader: SRV/TXT/A/AAAA/CNAME with TTLs, compression, sections, and
// malformed input (truncation, pointer loops, bad rdata) rejected without crashing.
#include "ie/ied/dns_message.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ie::ied::dns {
namespace {

// Builds a response: header, one question, then records appended by the test.
class Builder {
 public:
  Builder(const std::string& qname, std::uint16_t qtype, std::uint16_t flags = 0x8180) {
    u16(0x1234);
    u16(flags);
    u16(1);
    u16(0);
    u16(0);
    u16(0);
    qname_at_ = b_.size();
    name(qname);
    u16(qtype);
    u16(1);
  }
  std::size_t qname_at() const { return qname_at_; }
  void u8(std::uint8_t v) { b_.push_back(v); }
  void u16(std::uint16_t v) {
    b_.push_back(static_cast<std::uint8_t>(v >> 8));
    b_.push_back(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  void name(const std::string& n) {
    std::size_t p = 0;
    while (p < n.size()) {
      std::size_t e = n.find('.', p);
      if (e == std::string::npos) e = n.size();
      u8(static_cast<std::uint8_t>(e - p));
      for (std::size_t i = p; i < e; ++i)
        u8(static_cast<std::uint8_t>(n[i]));
      p = e + 1;
    }
    u8(0);
  }
  void pointer(std::size_t to) { u16(static_cast<std::uint16_t>(0xC000 | to)); }
  // A record header with the owner as a pointer to `owner_at`; returns where rdlength is.
  std::size_t rr(std::size_t owner_at, std::uint16_t type, std::uint32_t ttl,
                 std::uint16_t cls = 1) {
    pointer(owner_at);
    u16(type);
    u16(cls);
    u32(ttl);
    const std::size_t at = b_.size();
    u16(0);
    return at;
  }
  void end_rdata(std::size_t rdlen_at) {
    const std::size_t len = b_.size() - rdlen_at - 2;
    b_[rdlen_at] = static_cast<std::uint8_t>(len >> 8);
    b_[rdlen_at + 1] = static_cast<std::uint8_t>(len);
  }
  void counts(std::uint16_t an, std::uint16_t ns, std::uint16_t ar) {
    b_[6] = static_cast<std::uint8_t>(an >> 8);
    b_[7] = static_cast<std::uint8_t>(an);
    b_[8] = static_cast<std::uint8_t>(ns >> 8);
    b_[9] = static_cast<std::uint8_t>(ns);
    b_[10] = static_cast<std::uint8_t>(ar >> 8);
    b_[11] = static_cast<std::uint8_t>(ar);
  }
  Bytes& bytes() { return b_; }

 private:
  Bytes b_;
  std::size_t qname_at_ = 0;
};

TEST(DnsMessage, SrvWithCompressedTargetAndAdditionalAddresses) {
  Builder b("_interedge._udp.Example.TEST", kSrv);
  const std::size_t q = b.qname_at();
  // SRV 10 90 1000 sn1.<pointer to example.test inside the question>
  auto at = b.rr(q, kSrv, 300);
  b.u16(10);
  b.u16(90);
  b.u16(1000);
  const std::size_t target_at = b.bytes().size();
  b.u8(3);
  b.u8('s');
  b.u8('n');
  b.u8('1');
  b.pointer(q + 1 + 10 + 1 + 4);  // "example.test" in the question
  b.end_rdata(at);
  // authority: an SOA-ish record of unknown type, walked past
  at = b.rr(q, 6, 50);
  b.u8(0);
  b.end_rdata(at);
  // additional: A and AAAA of the target, and a record of another class (skipped)
  at = b.rr(target_at, kA, 0x80000001u);  // top bit set: TTL reads as 0
  for (std::uint8_t x : {192, 0, 2, 1})
    b.u8(x);
  b.end_rdata(at);
  at = b.rr(target_at, kAaaa, 60);
  for (std::uint8_t x : {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
    b.u8(x);
  b.end_rdata(at);
  at = b.rr(target_at, kA, 60, /*cls=*/3);
  for (std::uint8_t x : {1, 2, 3, 4})
    b.u8(x);
  b.end_rdata(at);
  b.counts(1, 1, 3);

  auto m = parse_message(b.bytes());
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_EQ(m->rcode, kNoError);
  EXPECT_EQ(m->qname, "_interedge._udp.example.test");
  ASSERT_EQ(m->answers.size(), 1u);
  EXPECT_EQ(m->answers[0].owner, "_interedge._udp.example.test");
  EXPECT_EQ(m->answers[0].ttl, 300u);
  EXPECT_EQ(m->answers[0].srv.priority, 10);
  EXPECT_EQ(m->answers[0].srv.weight, 90);
  EXPECT_EQ(m->answers[0].srv.port, 1000);
  EXPECT_EQ(m->answers[0].srv.target, "sn1.example.test");
  ASSERT_EQ(m->additional.size(), 2u);
  EXPECT_EQ(m->additional[0].owner, "sn1.example.test");
  EXPECT_EQ(m->additional[0].address, "192.0.2.1");
  EXPECT_EQ(m->additional[0].ttl, 0u);
  EXPECT_EQ(m->additional[1].address, "2001:db8::1");
  EXPECT_EQ(m->skipped, 1u);
  EXPECT_EQ(answers_for(*m, "_INTEREDGE._udp.example.test.", kSrv).size(), 1u);
  EXPECT_TRUE(answers_for(*m, "other.test", kSrv).empty());
}

TEST(DnsMessage, TxtStringsConcatenatedAndCnameFollowed) {
  Builder b("alias.test", kTxt);
  const std::size_t q = b.qname_at();
  auto at = b.rr(q, kCname, 100);
  const std::size_t real_at = b.bytes().size();
  b.name("real.test");
  b.end_rdata(at);
  at = b.rr(real_at, kTxt, 77);
  for (const std::string s : {"v=ie1 name=a ", "key=xyz"}) {
    b.u8(static_cast<std::uint8_t>(s.size()));
    for (char c : s)
      b.u8(static_cast<std::uint8_t>(c));
  }
  b.end_rdata(at);
  at = b.rr(real_at, kTxt, 77);  // bad: string length past the rdata -> skipped
  b.u8(9);
  b.u8('x');
  b.end_rdata(at);
  b.counts(3, 0, 0);
  auto m = parse_message(b.bytes());
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_EQ(m->skipped, 1u);
  const auto txt = answers_for(*m, "alias.test", kTxt);
  ASSERT_EQ(txt.size(), 1u);
  EXPECT_EQ(txt[0]->text, "v=ie1 name=a key=xyz");
  EXPECT_EQ(txt[0]->ttl, 77u);
}

TEST(DnsMessage, CnameLoopEnds) {
  Builder b("a.test", kTxt);
  const std::size_t q = b.qname_at();
  auto at = b.rr(q, kCname, 1);
  const std::size_t b_at = b.bytes().size();
  b.name("b.test");
  b.end_rdata(at);
  at = b.rr(b_at, kCname, 1);
  b.pointer(q);
  b.end_rdata(at);
  b.counts(2, 0, 0);
  auto m = parse_message(b.bytes());
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(answers_for(*m, "a.test", kTxt).empty());
}

TEST(DnsMessage, NxDomainAndHeaderFields) {
  Builder b("nope.test", kSrv, 0x8383);  // response, TC, rcode 3
  auto m = parse_message(b.bytes());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->rcode, kNxDomain);
  EXPECT_TRUE(m->truncated);
  EXPECT_TRUE(m->answers.empty());
}

TEST(DnsMessage, MalformedRejected) {
  EXPECT_FALSE(parse_message({}).ok());
  Builder query("x.test", kA, 0x0100);  // a query, not a response
  EXPECT_FALSE(parse_message(query.bytes()).ok());

  Builder b("x.test", kA);
  const std::size_t q = b.qname_at();
  auto at = b.rr(q, kA, 5);
  for (std::uint8_t x : {1, 2, 3, 4})
    b.u8(x);
  b.end_rdata(at);
  b.counts(1, 0, 0);
  ASSERT_TRUE(parse_message(b.bytes()).ok());
  // Every truncation of a valid message fails cleanly.
  for (std::size_t n = 0; n < b.bytes().size(); ++n)
    EXPECT_FALSE(parse_message(ConstByteSpan(b.bytes().data(), n)).ok()) << n;
  // More records announced than present.
  Bytes more = b.bytes();
  more[7] = 2;
  EXPECT_FALSE(parse_message(more).ok());

  // A name pointing at itself, and one pointing forward.
  Builder self("x.test", kA);
  self.bytes().resize(12);
  self.pointer(12);
  self.u16(kA);
  self.u16(1);
  EXPECT_FALSE(parse_message(self.bytes()).ok());
  Builder fwd("x.test", kA);
  fwd.bytes().resize(12);
  fwd.pointer(20);
  fwd.u16(kA);
  fwd.u16(1);
  fwd.name("x.test");
  EXPECT_FALSE(parse_message(fwd.bytes()).ok());

  // Wrong rdata lengths for A / AAAA, and an SRV whose name overruns its rdata: skipped.
  Builder r("x.test", kA);
  at = r.rr(r.qname_at(), kA, 5);
  r.u8(1);
  r.end_rdata(at);
  at = r.rr(r.qname_at(), kAaaa, 5);
  for (int i = 0; i < 4; ++i)
    r.u8(0);
  r.end_rdata(at);
  at = r.rr(r.qname_at(), kSrv, 5);
  r.u16(1);
  r.u16(1);
  r.u16(1);
  r.u8(3);
  r.u8('a');
  r.end_rdata(at);
  r.u8('b');
  r.u8('c');
  r.u8(0);
  r.counts(1, 0, 0);
  // The SRV name reads past its rdlength into bytes after the record: the count says 1 answer
  // (the A with a bad length is skipped); the others are trailing garbage.
  auto m = parse_message(r.bytes());
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->answers.empty());
  EXPECT_EQ(m->skipped, 1u);
  r.counts(3, 0, 0);
  auto m3 = parse_message(r.bytes());
  ASSERT_TRUE(m3.ok()) << m3.error().to_string();
  EXPECT_TRUE(m3->answers.empty());
  EXPECT_EQ(m3->skipped, 3u);
}

TEST(DnsMessage, OddCharactersInNamesDropTheRecord) {
  Builder b("x.test", kSrv);
  auto at = b.rr(b.qname_at(), kSrv, 5);
  b.u16(1);
  b.u16(1);
  b.u16(1);
  b.name("a.b\\.c d.test");  // label "b\.c d" holds '\', '.', ' '
  b.end_rdata(at);
  b.counts(1, 0, 0);
  auto m = parse_message(b.bytes());
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->answers.empty());
  EXPECT_EQ(m->skipped, 1u);
}

}  // namespace
}  // namespace ie::ied::dns
