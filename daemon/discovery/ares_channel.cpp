// c-ares on the io::Reactor (see ares_channel.hpp).
#include "ares_channel.hpp"

#include <mutex>
#include <string>
#include <utility>

#include "ie/util/log.hpp"

namespace ie::ied {

namespace {

constexpr int kClassIn = 1;

// One query in flight; owned by c-ares (as its callback argument) until on_answer.
struct PendingQuery {
  AresChannel* channel;
  AresChannel::Done done;
};

}  // namespace

Result<std::unique_ptr<AresChannel>> AresChannel::create(io::Reactor& reactor,
                                                         const ResolverOptions& opts) {
  // ares_library_init is a no-op on Linux today, but the API requires it once per process
  // and it is not thread-safe: do it exactly once, and never clean up (nothing to free).
  static std::once_flag once;
  static int init_status = ARES_SUCCESS;
  std::call_once(once, [] { init_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (init_status != ARES_SUCCESS)
    return fail(Errc::internal, std::string("ares_library_init: ") + ares_strerror(init_status));
  if (opts.tries < 1 || opts.timeout.count() < 1)
    return fail(Errc::invalid_argument, "dns resolver: timeout and tries must be positive");

  std::unique_ptr<AresChannel> self(new AresChannel(reactor));
  ares_options o{};
  o.sock_state_cb = &AresChannel::on_sock_state;
  o.sock_state_cb_data = self.get();
  o.timeout = static_cast<int>(opts.timeout.count());  // milliseconds with ARES_OPT_TIMEOUTMS
  o.tries = opts.tries;
  const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  if (int rc = ares_init_options(&self->channel_, &o, mask); rc != ARES_SUCCESS)
    return fail(Errc::internal, std::string("ares_init_options: ") + ares_strerror(rc));

  if (!opts.servers.empty()) {
    std::string csv;
    for (const auto& s : opts.servers) {
      if (s.empty() || s.find(',') != std::string::npos)
        return fail(Errc::invalid_argument, "dns server \"" + s + "\"");
      if (!csv.empty()) csv += ',';
      csv += s;
    }
    if (int rc = ares_set_servers_ports_csv(self->channel_, csv.c_str()); rc != ARES_SUCCESS)
      return fail(Errc::invalid_argument,
                  "dns servers \"" + csv + "\": " + std::string(ares_strerror(rc)));
  }
  return self;
}

AresChannel::~AresChannel() {
  destroying_ = true;
  if (timer_.valid()) reactor_.cancel_timer(timer_);
  // Calls every pending on_answer with ARES_EDESTRUCTION (which frees it without calling
  // Done) and closes the sockets, reporting each through on_sock_state (which unregisters it).
  if (channel_ != nullptr) ares_destroy(channel_);
  // Belt and braces: nothing may stay registered with a callback pointing at us.
  for (int fd : fds_)
    reactor_.remove_fd(fd);
}

void AresChannel::query(const std::string& name, int type, Done done) {
  auto* q = new PendingQuery{this, std::move(done)};
  ares_query(channel_, name.c_str(), kClassIn, type, &AresChannel::on_answer, q);
  rearm_timer();
}

void AresChannel::on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf,
                            int alen) {
  std::unique_ptr<PendingQuery> q(static_cast<PendingQuery*>(arg));
  if (status == ARES_EDESTRUCTION || q->channel->destroying_) return;
  const ConstByteSpan answer = abuf != nullptr && alen > 0
                                   ? ConstByteSpan(abuf, static_cast<std::size_t>(alen))
                                   : ConstByteSpan();
  q->done(status, answer);
}

void AresChannel::on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
  auto* self = static_cast<AresChannel*>(data);
  if (readable == 0 && writable == 0) {
    if (self->fds_.erase(fd) != 0) self->reactor_.remove_fd(fd);
    return;
  }
  if (self->destroying_) return;
  const std::uint32_t interest =
      (readable != 0 ? io::Reactor::kReadable : 0u) | (writable != 0 ? io::Reactor::kWritable : 0u);
  if (self->fds_.count(fd) != 0) {
    if (auto r = self->reactor_.modify_fd(fd, interest); !r)
      IE_LOG_WARN("dns: watch socket {}: {}", fd, r.error().to_string());
    return;
  }
  auto r = self->reactor_.add_fd(fd, interest,
                                 [self, fd](std::uint32_t events) { self->on_fd(fd, events); });
  // Not fatal: the query then ends by its timeout, which the timer still drives.
  if (!r) {
    IE_LOG_WARN("dns: watch socket {}: {}", fd, r.error().to_string());
    return;
  }
  self->fds_.insert(fd);
}

void AresChannel::on_fd(int fd, std::uint32_t events) {
  // An error or hang-up is handed to c-ares as readable: its read then sees the error.
  const bool rd = (events & (io::Reactor::kReadable | io::Reactor::kError)) != 0;
  const bool wr = (events & io::Reactor::kWritable) != 0;
  ares_process_fd(channel_, rd ? fd : ARES_SOCKET_BAD, wr ? fd : ARES_SOCKET_BAD);
  rearm_timer();
}

void AresChannel::rearm_timer() {
  if (destroying_) return;
  if (timer_.valid()) {
    reactor_.cancel_timer(timer_);
    timer_ = {};
  }
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) == nullptr) return;  // nothing pending
  // Round up: a timer that fires a little early would only find nothing due and re-arm.
  const long ms = tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
  timer_ = reactor_.add_timer(std::chrono::milliseconds(ms < 1 ? 1 : ms), [this] {
    timer_ = {};
    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // handles timeouts
    rearm_timer();
  });
}

const char* AresChannel::status_text(int status) {
  switch (status) {
    case ARES_ENOTFOUND:
      return "NXDOMAIN (no such name)";
    case ARES_ENODATA:
      return "no record of that type";
    case ARES_ETIMEOUT:
      return "timed out (no answer from the DNS servers)";
    case ARES_ECONNREFUSED:
      return "connection refused by the DNS server";
    case ARES_ESERVFAIL:
      return "SERVFAIL from the DNS server";
    case ARES_EREFUSED:
      return "REFUSED by the DNS server";
    case ARES_EFORMERR:
    case ARES_EBADRESP:
      return "malformed DNS response";
    default:
      return ares_strerror(status);
  }
}

}  // namespace ie::ied
