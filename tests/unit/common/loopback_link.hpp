// Test helper: HostLink options for two links talking over loopback with short timers (a
// keepalive of 200 ms, dead after 800 ms, retries from 50 ms), and the endpoint a link's
// socket is bound to, for tests that pair a listening link with one treating it as its SN
// (tests/unit/link/host_link_oob_test.cpp, tests/tools/testhost_test.cpp).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <string>

#include "ie/crypto/noise.hpp"
#include "ie/io/udp.hpp"
#include "ie/link/host_link.hpp"

namespace ie::testing {

// A new key, bound to 127.0.0.1 on any port; `listen`: accepts associations (an SN's side).
inline link::LinkOptions fast_link(bool listen) {
  link::LinkOptions o;
  o.bind = "127.0.0.1:0";
  o.key = crypto::noise::KeyPair::generate();
  o.listen = listen;
  o.timers.keepalive = std::chrono::milliseconds(200);
  o.timers.dead_after = std::chrono::milliseconds(800);
  o.timers.retry_initial = std::chrono::milliseconds(50);
  o.timers.retry_max = std::chrono::milliseconds(200);
  return o;
}

// "127.0.0.1:PORT" of the link's socket ("" if it cannot be read).
inline std::string endpoint_of(link::HostLink& l) {
  socklen_t len = 0;
  auto a = l.socket().local_address(&len);
  return a ? io::endpoint_str(*a) : std::string();
}

}  // namespace ie::testing
