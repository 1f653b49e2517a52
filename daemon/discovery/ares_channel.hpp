// c-ares on the io::Reactor: one ares channel whose sockets are watched through
// Reactor::add_fd (c-ares tells us which through its socket-state callback) and whose
// retransmission timeouts run on one reactor timer re-armed from ares_timeout() after every
// call into c-ares. Private to ied_discovery.
//
// Threading: the reactor's thread only. Done callbacks run inside c-ares processing (from a
// reactor fd or timer callback, or synchronously inside query() when c-ares fails at once);
// they may start new queries but must not destroy the channel. Destroying the channel drops
// every pending query without calling its Done.
#pragma once

#include <ares.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "ie/ied/dns_resolver.hpp"
#include "ie/io/reactor.hpp"
#include "ie/util/bytes.hpp"
#include "ie/util/result.hpp"

namespace ie::ied {

class AresChannel {
 public:
  // status: an ARES_* code; answer: the raw response (valid during the call only).
  using Done = std::function<void(int status, ConstByteSpan answer)>;

  static Result<std::unique_ptr<AresChannel>> create(io::Reactor& reactor,
                                                     const ResolverOptions& opts);
  ~AresChannel();
  AresChannel(const AresChannel&) = delete;
  AresChannel& operator=(const AresChannel&) = delete;

  // Class IN query of `type` for `name` (no search domains).
  void query(const std::string& name, int type, Done done);

  // A readable text for an ARES_* status, naming what it means for DNS (e.g. "NXDOMAIN").
  static const char* status_text(int status);

 private:
  explicit AresChannel(io::Reactor& reactor) : reactor_(reactor) {}
  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable);
  static void on_answer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  void on_fd(int fd, std::uint32_t events);
  void rearm_timer();

  io::Reactor& reactor_;
  ares_channel channel_ = nullptr;
  std::unordered_set<int> fds_;  // sockets registered with the reactor
  io::Reactor::TimerId timer_{};
  bool destroying_ = false;
};

}  // namespace ie::ied
