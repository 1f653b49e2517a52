// The InterEdge TXT records (see ie_txt_record.hpp and docs/discovery.md).
#include "ie/ied/ie_txt_record.hpp"

#include "ie/conf/names.hpp"
#include "ie/io/udp.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>

#include <cctype>
#include <optional>
#include <vector>

namespace ie::ied {

namespace {

constexpr std::size_t kKeyB64Len = 44;  // 32 bytes, standard alphabet, one '=' of padding
constexpr std::size_t kMaxTxtLen = 2048;

struct Field {
  std::string_view key;
  std::string_view value;
};

// Splits "k=v k=v" on runs of spaces; every token must be k=v with a non-empty key, keys
// must not repeat, and the first must be v.
Result<std::vector<Field>> split_fields(std::string_view text) {
  if (text.size() > kMaxTxtLen) return fail(Errc::too_large, "record longer than 2048 bytes");
  std::vector<Field> fields;
  std::size_t p = 0;
  while (p < text.size()) {
    if (text[p] == ' ') {
      ++p;
      continue;
    }
    std::size_t e = text.find(' ', p);
    if (e == std::string_view::npos) e = text.size();
    const std::string_view token = text.substr(p, e - p);
    const std::size_t eq = token.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return fail(Errc::parse, "field \"" + std::string(token.substr(0, 32)) + "\" is not k=v");
    Field f{token.substr(0, eq), token.substr(eq + 1)};
    for (const auto& g : fields)
      if (g.key == f.key) return fail(Errc::parse, "field " + std::string(f.key) + " repeated");
    fields.push_back(f);
    p = e;
  }
  if (fields.empty() || fields.front().key != "v")
    return fail(Errc::parse, "missing v= (must be the first field)");
  if (fields.front().value != "ie1")
    return fail(Errc::unsupported,
                "version v=" + std::string(fields.front().value.substr(0, 16)) + " (want ie1)");
  return fields;
}

std::optional<std::string_view> find(const std::vector<Field>& fields, std::string_view key) {
  for (const auto& f : fields)
    if (f.key == key) return f.value;
  return std::nullopt;
}

Result<crypto::noise::PublicKey> required_key(const std::vector<Field>& fields) {
  const auto v = find(fields, "key");
  if (!v) return fail(Errc::parse, "missing key=");
  auto k = key_from_base64(*v);
  if (!k) return fail(k.error());
  return k;
}

Result<std::string> required_name(const std::vector<Field>& fields, std::string_view which) {
  const auto v = find(fields, which);
  if (!v) return fail(Errc::parse, "missing " + std::string(which) + "=");
  if (!conf::valid_sn_name(*v))
    return fail(Errc::parse, std::string(which) + "=\"" + std::string(v->substr(0, 64)) +
                                 "\" is not a valid name");
  return std::string(*v);
}

// ep=: a numeric endpoint a host can be associated with (not an address that reaches no one
// host or every host), in its canonical form.
Result<std::string> optional_endpoint(const std::vector<Field>& fields) {
  const auto v = find(fields, "ep");
  if (!v) return std::string();
  const std::string text(v->substr(0, 64));
  const auto bad = [&](const char* why) { return fail(Errc::parse, "ep=\"" + text + "\" " + why); };
  if (v->size() > 64) return bad("is too long");
  socklen_t len = 0;
  const auto ep = io::parse_endpoint(text, &len);
  if (!ep) return bad("is not ip:port");
  if (ep->ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&*ep);
    const std::uint32_t ip = ntohl(a->sin_addr.s_addr);
    if (a->sin_port == 0) return bad("has port 0");
    if (ip == 0 || ip == 0xffffffffu || (ip >> 28) == 0xe) return bad("is not a unicast address");
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&*ep);
    if (a->sin6_port == 0) return bad("has port 0");
    if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr) || IN6_IS_ADDR_MULTICAST(&a->sin6_addr))
      return bad("is not a unicast address");
  }
  return io::endpoint_str(*ep);
}

}  // namespace

bool is_ie_txt(std::string_view text) {
  std::size_t p = 0;
  while (p < text.size() && text[p] == ' ')
    ++p;
  return text.substr(p, 4) == "v=ie";
}

Result<SnTxt> parse_sn_txt(std::string_view text) {
  auto fields = split_fields(text);
  if (!fields) return fail(fields.error());
  auto name = required_name(*fields, "name");
  if (!name) return fail(name.error());
  auto key = required_key(*fields);
  if (!key) return fail(key.error());
  return SnTxt{std::move(*name), *key};
}

Result<PeerTxt> parse_peer_txt(std::string_view text) {
  auto fields = split_fields(text);
  if (!fields) return fail(fields.error());
  auto sn = required_name(*fields, "sn");
  if (!sn) return fail(sn.error());
  auto key = required_key(*fields);
  if (!key) return fail(key.error());
  auto ep = optional_endpoint(*fields);
  if (!ep) return fail(ep.error());
  return PeerTxt{std::move(*sn), *key, std::move(*ep)};
}

}  // namespace ie::ied
