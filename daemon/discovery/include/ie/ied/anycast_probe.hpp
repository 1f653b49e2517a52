// SN discovery at an anycast address (docs/discovery.md "Anycast"): whichever SN the routing
// leads to is asked who it is, over an authenticated session, and named with a unicast
// endpoint the daemon then associates with like any other candidate.
//
//   probe("192.0.2.1:1000"): a HostLink of its own, with a throwaway static key, runs Noise XX
//     first contact to the address (the responder's key is not known in advance: the
//     handshake proves whatever key it has); over that session it asks the control service
//     for `info`, whose answer names the SN ("sn") and its unicast endpoint ("endpoint",
//     iesn's [sn] advertise). Then the session is closed (CLOSE) and the link destroyed.
//     The first responder whose handshake completes is the answer; the key it proved is the
//     one the caller pins and runs IK against at the endpoint, so a later routing change of
//     the anycast prefix cannot move an established association to another SN.
//
// Threading: single-threaded, on the reactor's thread (create, calls, destruction).
// Callbacks run from the reactor loop, never inside probe(), exactly once per probe while the
// prober lives; destroying the prober cancels probes in flight (callbacks never called, their
// sessions closed, fds and timers removed).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "ie/crypto/association.hpp"
#include "ie/crypto/noise.hpp"
#include "ie/io/reactor.hpp"
#include "ie/util/result.hpp"

namespace ie::ied {

// What an SN's info answer says about it.
struct SnInfo {
  std::string name;      // DOM.SN
  std::string endpoint;  // its unicast ip:port / [v6]:port
};

// Parses the control service's info answer (JSON text): "ok" true, "sn" a DOM.SN name,
// "endpoint" a numeric IP:PORT / [IPv6]:PORT, port and address not 0. Errors name what is
// wrong (Errc::protocol), e.g. an SN that advertises no endpoint.
Result<SnInfo> parse_sn_info(std::string_view json);

struct AnycastAnswer {
  std::string anycast;  // the address probed
  SnInfo info;
  crypto::noise::PublicKey key{};  // proved in the XX handshake
};

struct AnycastOptions {
  // The whole probe (handshake with its retransmissions, then info) ends by then.
  std::chrono::milliseconds timeout{3000};
  crypto::assoc::Timers timers;  // of the probe's session (retry_initial: handshake retries)
};

class AnycastProber {
 public:
  using Done = std::function<void(Result<AnycastAnswer>)>;

  AnycastProber(io::Reactor& reactor, AnycastOptions options);
  ~AnycastProber();
  AnycastProber(const AnycastProber&) = delete;
  AnycastProber& operator=(const AnycastProber&) = delete;

  // Probes one anycast endpoint. done gets the answer, or Errc::timeout (nothing answered,
  // or the handshake completed but no info came), Errc::protocol (a bad info answer: the
  // responder's key is in the message), Errc::invalid_argument (not an endpoint), Errc::io.
  void probe(const std::string& endpoint, Done done);
  std::size_t in_flight() const { return probes_.size(); }

 private:
  struct Probe;
  void drive(std::uint64_t id);  // receive, service, check for an end
  void finish(std::uint64_t id, Result<AnycastAnswer> r);

  io::Reactor& reactor_;
  AnycastOptions opts_;
  std::map<std::uint64_t, std::unique_ptr<Probe>> probes_;
  std::uint64_t next_id_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for posted callbacks
};

}  // namespace ie::ied
