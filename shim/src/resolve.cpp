// Name resolution for InterEdge (resolve.hpp): the name is resolved here, by the system's
// getaddrinfo (ied resolves no names); ied is then asked what it knows of each distinct
// address (`peer.resolve`, no descriptor passed). The first round asks about every address,
// which starts all of ied's DNS peer lookups at once; addresses whose answer is pending are
// asked again with a growing pause until they are answered or the budget is spent. Nothing is
// written to the caller's array until every answer is in.
#include "resolve.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <string>
#include <vector>

#include "control.hpp"

namespace ie::shim {
namespace {

constexpr int kFirstPauseMs = 10;
constexpr int kMaxPauseMs = 200;

long long now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void pause_ms(long long ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

struct Entry {
  ie_peer peer;
  std::string numeric;  // the address as ied parses it ("10.2.0.2", "fd00::2")
  bool done = false;
};

class AddrInfo {
 public:
  AddrInfo() = default;
  ~AddrInfo() {
    if (res_ != nullptr) freeaddrinfo(res_);
  }
  AddrInfo(const AddrInfo&) = delete;
  AddrInfo& operator=(const AddrInfo&) = delete;
  addrinfo** out() { return &res_; }
  const addrinfo* get() const { return res_; }

 private:
  addrinfo* res_ = nullptr;
};

bool copy_to(char* dst, std::size_t n, const std::string& s) {
  if (s.size() >= n) return false;
  memcpy(dst, s.c_str(), s.size() + 1);
  return true;
}

// The distinct addresses of getaddrinfo's list (one per socket type comes back for each), in
// its order, at most max.
int collect(const addrinfo* ai, std::size_t max, std::vector<Entry>* out) {
  for (; ai != nullptr && out->size() < max; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addr == nullptr ||
        ai->ai_addrlen > sizeof(sockaddr_storage))
      continue;
    const bool seen = std::any_of(out->begin(), out->end(), [&](const Entry& e) {
      return e.peer.addrlen == ai->ai_addrlen &&
             memcmp(&e.peer.addr, ai->ai_addr, ai->ai_addrlen) == 0;
    });
    if (seen) continue;
    Entry e;
    memset(&e.peer, 0, sizeof e.peer);
    e.peer.size = sizeof e.peer;
    memcpy(&e.peer.addr, ai->ai_addr, ai->ai_addrlen);
    e.peer.addrlen = ai->ai_addrlen;
    char text[INET6_ADDRSTRLEN];
    const void* a =
        ai->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr)
            : static_cast<const void*>(
                  &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr);
    if (inet_ntop(ai->ai_family, a, text, sizeof text) == nullptr) return errno;
    e.numeric = text;
    out->push_back(std::move(e));
  }
  return 0;
}

// Fills e from peer.resolve's result; EPROTO for a malformed one. Sets e->done unless ied
// said its answer is pending.
int fill(const Json& r, Entry* e) {
  ie_peer& p = e->peer;
  p.interedge = 0;
  p.sn_count = 0;
  memset(p.sns, 0, sizeof p.sns);
  memset(p.source, 0, sizeof p.source);
  if (const auto i = r.find("interedge"); i != r.end()) {
    if (!i->is_boolean()) return EPROTO;
    p.interedge = i->get<bool>() ? 1 : 0;
  }
  if (const auto s = r.find("sns"); s != r.end() && !s->is_null()) {
    if (!s->is_array()) return EPROTO;
    for (const Json& n : *s) {
      if (!n.is_string()) return EPROTO;
      if (p.sn_count == IE_MAX_SNS) break;  // the most recent ones
      if (!copy_to(p.sns[p.sn_count], sizeof p.sns[0], n.get_ref<const std::string&>()))
        return EPROTO;
      ++p.sn_count;
    }
  }
  std::string source = "none";
  if (const auto s = r.find("source"); s != r.end()) {
    if (!s->is_string()) return EPROTO;
    source = s->get<std::string>();
  }
  if (!copy_to(p.source, sizeof p.source, source)) return EPROTO;
  const auto pending = r.find("pending");
  if (pending != r.end() && !pending->is_boolean()) return EPROTO;
  e->done = pending == r.end() || !pending->get<bool>();
  return 0;
}

}  // namespace

int errno_for_gai(int gai, int sys_errno) {
  switch (gai) {
    case 0:
      return 0;
    case EAI_AGAIN:
      return EAGAIN;
    case EAI_MEMORY:
      return ENOMEM;
    case EAI_SYSTEM:
      return sys_errno != 0 ? sys_errno : EIO;
    case EAI_BADFLAGS:
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
    case EAI_SERVICE:
      return EINVAL;
    default:  // EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY, EAI_FAIL, ...
      return ENOENT;
  }
}

int resolve(const char* sock, const char* host, const char* port, int family, ie_peer* out,
            std::size_t max, std::size_t* count) {
  if (count != nullptr) *count = 0;
  if (host == nullptr || *host == '\0' || out == nullptr || count == nullptr || max == 0)
    return EINVAL;
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) return EINVAL;
  const std::uint32_t stride = out->size;
  if (stride < sizeof(ie_peer) || stride % alignof(ie_peer) != 0) return EINVAL;
  try {
    addrinfo hints{};
    hints.ai_family = family;
    AddrInfo res;
    errno = 0;
    const int g = getaddrinfo(host, port, &hints, res.out());
    if (g != 0) return errno_for_gai(g, errno);
    std::vector<Entry> entries;
    if (int e = collect(res.get(), max, &entries); e != 0) return e;

    const long long deadline = now_ms() + kResolveBudgetMs;
    int pause = kFirstPauseMs;
    for (bool first = true;; first = false) {
      for (Entry& e : entries) {
        if (e.done) continue;
        // The first round proves ied answers (its errors are the call's); a retry gets what is
        // left of the budget, and one that times out leaves the address pending.
        const long long left = deadline - now_ms();
        Json result;
        const int err = call(sock, -1, "peer.resolve", Json{{"address", e.numeric}}, &result,
                             first ? kReplyTimeoutMs : static_cast<int>(std::max(left, 50LL)));
        if (err == ETIMEDOUT && !first) break;
        if (err != 0) return err;
        if (int f = fill(result, &e); f != 0) return f;
      }
      const bool pending =
          std::any_of(entries.begin(), entries.end(), [](const Entry& e) { return !e.done; });
      const long long left = deadline - now_ms();
      if (!pending || left <= 0) break;
      pause_ms(std::min<long long>(pause, left));
      pause = std::min(pause * 2, kMaxPauseMs);
    }

    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (!entries[i].done)
        copy_to(entries[i].peer.source, sizeof entries[i].peer.source, "pending");
      auto* dst = reinterpret_cast<unsigned char*>(out) + i * stride;
      memcpy(dst, &entries[i].peer, sizeof(ie_peer));
      memset(dst + sizeof(ie_peer), 0, stride - sizeof(ie_peer));
    }
    *count = entries.size();
    return 0;
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  } catch (...) {
    return EPROTO;
  }
}

}  // namespace ie::shim
