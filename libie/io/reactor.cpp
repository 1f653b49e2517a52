// epoll + timer wheel + eventfd + signalfd event loop (ie/io/reactor.hpp).
#include "ie/io/reactor.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

namespace ie::io {

Result<std::unique_ptr<Reactor>> Reactor::create() {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return fail(Errc::io, "epoll_create1", errno);
  const int ev = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (ev < 0) {
    const int e = errno;
    ::close(ep);
    return fail(Errc::io, "eventfd", e);
  }
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.fd = ev;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) != 0) {
    const int err = errno;
    ::close(ep);
    ::close(ev);
    return fail(Errc::io, "epoll_ctl eventfd", err);
  }
  return std::unique_ptr<Reactor>(new Reactor(ep, ev));
}

Reactor::Reactor(int epfd, int evfd) : epfd_(epfd), evfd_(evfd), epoch_(Clock::now()), wheel_(0) {}

Reactor::~Reactor() {
  ::close(epfd_);
  ::close(evfd_);
  if (sigfd_ >= 0) ::close(sigfd_);
}

std::uint64_t Reactor::tick_now() const {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - epoch_).count());
}

static std::uint32_t to_epoll(std::uint32_t interest) {
  std::uint32_t e = 0;
  if (interest & Reactor::kReadable) e |= EPOLLIN;
  if (interest & Reactor::kWritable) e |= EPOLLOUT;
  return e;
}

Result<void> Reactor::add_fd(int fd, std::uint32_t interest, FdCallback cb) {
  epoll_event e{};
  e.events = to_epoll(interest);
  e.data.fd = fd;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &e) != 0) return fail(Errc::io, "epoll_ctl add", errno);
  fds_[fd] = std::make_shared<FdCallback>(std::move(cb));
  return ok();
}

Result<void> Reactor::modify_fd(int fd, std::uint32_t interest) {
  epoll_event e{};
  e.events = to_epoll(interest);
  e.data.fd = fd;
  if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &e) != 0) return fail(Errc::io, "epoll_ctl mod", errno);
  return ok();
}

void Reactor::remove_fd(int fd) {
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  fds_.erase(fd);
}

Reactor::TimerId Reactor::add_timer(std::chrono::milliseconds delay, std::function<void()> fn) {
  // Catch the wheel up first so a delay is measured from now, not from the last iteration.
  wheel_.advance(tick_now());
  // The wheel's ticks are whole milliseconds since epoch_, rounded down, so "now" may be up
  // to 1 ms behind the clock: one more tick keeps a timer from ever firing early.
  const auto d = delay.count() < 0 ? 0 : static_cast<std::uint64_t>(delay.count());
  return wheel_.add(wheel_.now() + d + 1, std::move(fn));
}

bool Reactor::cancel_timer(TimerId id) {
  return wheel_.cancel(id);
}

void Reactor::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  const std::uint64_t one = 1;
  (void)!::write(evfd_, &one, sizeof one);
}

void Reactor::stop() {
  stopping_ = true;
  const std::uint64_t one = 1;
  (void)!::write(evfd_, &one, sizeof one);
}

Result<void> Reactor::stop_on_signals(std::function<void(int)> on_signal,
                                      std::function<void()> on_hangup) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (on_hangup) sigaddset(&set, SIGHUP);
  if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) return fail(Errc::io, "pthread_sigmask");
  sigfd_ = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd_ < 0) return fail(Errc::io, "signalfd", errno);
  return add_fd(sigfd_, kReadable,
                [this, cb = std::move(on_signal), hup = std::move(on_hangup)](std::uint32_t) {
                  signalfd_siginfo si{};
                  while (::read(sigfd_, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGHUP && hup) {
                      hup();
                      continue;
                    }
                    if (cb) cb(static_cast<int>(si.ssi_signo));
                    stop();
                  }
                });
}

Result<void> Reactor::run() {
  // A stop() that came before run() still counts; the flag is re-armed on the way out.
  while (!stopping_)
    IE_TRY(run_once(std::chrono::milliseconds(1000)));
  stopping_ = false;
  return ok();
}

Result<void> Reactor::run_once(std::chrono::milliseconds max_wait) {
  long timeout = max_wait.count();
  if (auto w = wheel_.next_wakeup()) {
    const std::uint64_t now = tick_now();
    const long until = *w > now ? static_cast<long>(*w - now) : 0;
    if (until < timeout) timeout = until;
  }
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    if (!posted_.empty()) timeout = 0;
  }
  epoll_event events[64];
  const int n = ::epoll_wait(epfd_, events, 64, static_cast<int>(timeout));
  if (n < 0 && errno != EINTR) return fail(Errc::io, "epoll_wait", errno);
  for (int i = 0; i < n; ++i) {
    const int fd = events[i].data.fd;
    if (fd == evfd_) {
      std::uint64_t v;
      (void)!::read(evfd_, &v, sizeof v);
      continue;
    }
    auto it = fds_.find(fd);
    if (it == fds_.end()) continue;  // removed by an earlier callback in this batch
    const auto cb = it->second;      // keep it alive even if the callback removes itself
    std::uint32_t ev = 0;
    if (events[i].events & EPOLLIN) ev |= kReadable;
    if (events[i].events & EPOLLOUT) ev |= kWritable;
    if (events[i].events & (EPOLLERR | EPOLLHUP)) ev |= kError;
    (*cb)(ev);
  }
  wheel_.advance(tick_now());
  std::vector<std::function<void()>> posted;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted.swap(posted_);
  }
  for (auto& fn : posted)
    fn();
  return ok();
}

}  // namespace ie::io
