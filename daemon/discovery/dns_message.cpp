// A bounds-checked DNS response reader (see dns_message.hpp).
#include "ie/ied/dns_message.hpp"

#include <arpa/inet.h>

#include <cctype>

namespace ie::ied::dns {

namespace {

constexpr std::size_t kHeaderLen = 12;
constexpr std::size_t kMaxNameLen = 255;  // wire length, RFC 1035 2.3.4
constexpr std::uint16_t kClassIn = 1;

// A cursor over the whole message (names may point anywhere before them).
class Reader {
 public:
  explicit Reader(ConstByteSpan msg) : msg_(msg) {}

  std::size_t pos() const { return pos_; }
  bool has(std::size_t n) const { return pos_ <= msg_.size() && msg_.size() - pos_ >= n; }
  bool u8(std::uint8_t* v) {
    if (!has(1)) return false;
    *v = msg_[pos_++];
    return true;
  }
  bool u16(std::uint16_t* v) {
    if (!has(2)) return false;
    *v = load_be16(msg_.data() + pos_);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t* v) {
    if (!has(4)) return false;
    *v = load_be32(msg_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool skip(std::size_t n) {
    if (!has(n)) return false;
    pos_ += n;
    return true;
  }

  // Reads a possibly compressed name at the cursor, lower-cased, labels joined by '.'.
  // *clean is false when a label holds a byte outside [A-Za-z0-9-_] (the name is then not
  // one we would ever query or match; the caller drops the record). False if malformed.
  bool name(std::string* out, bool* clean) {
    out->clear();
    *clean = true;
    std::size_t p = pos_;
    std::size_t wire_len = 0;
    bool jumped = false;
    std::size_t lowest = pos_;  // every pointer must go strictly below this
    for (;;) {
      if (p >= msg_.size()) return false;
      const std::uint8_t len = msg_[p];
      if ((len & 0xC0) == 0xC0) {
        if (p + 1 >= msg_.size()) return false;
        const std::size_t target = (std::size_t{len & 0x3Fu} << 8) | msg_[p + 1];
        if (target >= lowest) return false;  // forward or self pointer: could loop
        if (!jumped) pos_ = p + 2;
        jumped = true;
        lowest = target;
        p = target;
        continue;
      }
      if ((len & 0xC0) != 0) return false;  // 0x40 / 0x80 label types are obsolete
      wire_len += 1u + len;
      if (wire_len > kMaxNameLen) return false;
      if (len == 0) {
        if (!jumped) pos_ = p + 1;
        return true;
      }
      if (p + 1 + len > msg_.size()) return false;
      if (!out->empty()) out->push_back('.');
      for (std::size_t i = 0; i < len; ++i) {
        const auto c = static_cast<unsigned char>(msg_[p + 1 + i]);
        if (!(std::isalnum(c) != 0 || c == '-' || c == '_')) *clean = false;
        out->push_back(static_cast<char>(std::tolower(c)));
      }
      p += 1u + len;
    }
  }

 private:
  ConstByteSpan msg_;
  std::size_t pos_ = 0;
};

// Decodes the rdata of a kept type into *rec; false if it is malformed.
bool decode_rdata(ConstByteSpan msg, std::size_t start, std::size_t len, Record* rec) {
  const ConstByteSpan rdata = msg.subspan(start, len);
  switch (rec->type) {
    case kA:
    case kAaaa: {
      const std::size_t want = rec->type == kA ? 4 : 16;
      if (len != want) return false;
      char buf[INET6_ADDRSTRLEN];
      if (inet_ntop(rec->type == kA ? AF_INET : AF_INET6, rdata.data(), buf, sizeof buf) == nullptr)
        return false;
      rec->address = buf;
      return true;
    }
    case kTxt: {
      // One or more <length><bytes> strings filling the rdata exactly.
      std::size_t p = 0;
      while (p < len) {
        const std::size_t n = rdata[p];
        if (p + 1 + n > len) return false;
        rec->text.append(reinterpret_cast<const char*>(rdata.data() + p + 1), n);
        p += 1 + n;
      }
      return true;
    }
    case kSrv:
    case kCname: {
      Reader r(msg);
      if (!r.skip(start)) return false;
      if (rec->type == kSrv) {
        if (!r.u16(&rec->srv.priority) || !r.u16(&rec->srv.weight) || !r.u16(&rec->srv.port))
          return false;
      }
      bool clean = true;
      std::string* out = rec->type == kSrv ? &rec->srv.target : &rec->text;
      if (!r.name(out, &clean) || !clean) return false;
      return r.pos() == start + len;  // the name must end exactly at the end of the rdata
    }
    default:
      return false;
  }
}

bool kept_type(std::uint16_t t) {
  return t == kA || t == kAaaa || t == kTxt || t == kSrv || t == kCname;
}

Result<void> read_section(Reader& r, ConstByteSpan msg, std::uint16_t count, const char* what,
                          std::vector<Record>* out, std::size_t* skipped) {
  for (std::uint16_t i = 0; i < count; ++i) {
    Record rec;
    bool clean = true;
    std::uint16_t cls = 0, rdlen = 0;
    if (!r.name(&rec.owner, &clean) || !r.u16(&rec.type) || !r.u16(&cls) || !r.u32(&rec.ttl) ||
        !r.u16(&rdlen) || !r.has(rdlen))
      return fail(Errc::parse, std::string("dns: truncated record ") + std::to_string(i) +
                                   " in the " + what + " section");
    const std::size_t start = r.pos();
    (void)r.skip(rdlen);
    if (rec.ttl & 0x80000000u) rec.ttl = 0;  // RFC 2181 8: treat as zero
    if (out == nullptr) continue;            // a section we only walk past
    if (cls != kClassIn || !kept_type(rec.type) || !clean || out->size() >= kMaxRecordsPerSection ||
        !decode_rdata(msg, start, rdlen, &rec)) {
      ++*skipped;
      continue;
    }
    out->push_back(std::move(rec));
  }
  return ok();
}

}  // namespace

std::string canonical_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<Message> parse_message(ConstByteSpan msg) {
  Reader r(msg);
  std::uint16_t id = 0, flags = 0, qd = 0, an = 0, ns = 0, ar = 0;
  if (!r.u16(&id) || !r.u16(&flags) || !r.u16(&qd) || !r.u16(&an) || !r.u16(&ns) || !r.u16(&ar))
    return fail(Errc::parse, "dns: message shorter than its header (" + std::to_string(msg.size()) +
                                 " of " + std::to_string(kHeaderLen) + " bytes)");
  if ((flags & 0x8000u) == 0) return fail(Errc::parse, "dns: not a response");
  if (qd != 1) return fail(Errc::parse, "dns: " + std::to_string(qd) + " questions, expected 1");
  Message m;
  m.rcode = static_cast<std::uint8_t>(flags & 0x0Fu);
  m.truncated = (flags & 0x0200u) != 0;
  bool clean = true;
  std::uint16_t qclass = 0;
  if (!r.name(&m.qname, &clean) || !r.u16(&m.qtype) || !r.u16(&qclass))
    return fail(Errc::parse, "dns: truncated question");
  IE_TRY(read_section(r, msg, an, "answer", &m.answers, &m.skipped));
  IE_TRY(read_section(r, msg, ns, "authority", nullptr, &m.skipped));
  IE_TRY(read_section(r, msg, ar, "additional", &m.additional, &m.skipped));
  return m;
}

std::vector<const Record*> answers_for(const Message& m, std::string_view qname,
                                       std::uint16_t type) {
  std::string name = canonical_name(qname);
  std::vector<const Record*> out;
  // Follow CNAMEs: at most 8 links, so a CNAME loop in a hostile answer ends.
  for (int link = 0; link <= 8; ++link) {
    const Record* cname = nullptr;
    for (const auto& rec : m.answers) {
      if (rec.owner != name) continue;
      if (rec.type == type)
        out.push_back(&rec);
      else if (rec.type == kCname && cname == nullptr)
        cname = &rec;
    }
    if (!out.empty() || cname == nullptr || type == kCname) break;
    name = cname->text;
  }
  return out;
}

}  // namespace ie::ied::dns
