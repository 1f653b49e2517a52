// Test helper: a ctl::Server on a reactor running in a thread of its own, as the daemons run
// it, for tests that talk to it over its real Unix socket (iectl, the SN's status client).
// The server is created and destroyed on the reactor's thread.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "ie/ctl/server.hpp"
#include "ie/io/reactor.hpp"

namespace ie::testing {

class CtlServerThread {
 public:
  ~CtlServerThread() { stop(); }

  // Starts the reactor thread and the server at path; fails the test if it does not start.
  void start(const std::string& path, ctl::Dispatcher d, ctl::ServerOptions o = {0666, {}}) {
    auto r = io::Reactor::create();
    ASSERT_TRUE(r.ok());
    reactor_ = std::move(*r);
    std::promise<Result<std::unique_ptr<ctl::Server>>> started;
    auto fut = started.get_future();
    thread_ = std::thread([this, &started, &path, o, d = std::move(d)]() mutable {
      reactor_->post(
          [&]() { started.set_value(ctl::Server::start(*reactor_, path, std::move(d), o)); });
      (void)reactor_->run();
      server_.reset();  // on the reactor's thread, after the loop
    });
    ASSERT_EQ(fut.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    auto s = fut.get();
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    server_ = std::move(*s);
  }

  // Stops the loop and joins; the server (and its socket file) is gone afterwards.
  void stop() {
    if (thread_.joinable()) {
      reactor_->stop();
      thread_.join();
    }
  }

  ctl::Server& server() { return *server_; }
  // The server's connection count, read on its thread (9999 if it does not answer).
  std::size_t connections() {
    std::promise<std::size_t> p;
    auto f = p.get_future();
    reactor_->post([&] { p.set_value(server_->connection_count()); });
    return f.wait_for(std::chrono::seconds(5)) == std::future_status::ready ? f.get() : 9999;
  }

 private:
  std::unique_ptr<io::Reactor> reactor_;
  std::unique_ptr<ctl::Server> server_;
  std::thread thread_;
};

}  // namespace ie::testing
