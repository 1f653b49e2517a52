// The control protocol shared by ied (server), iectl and the shim (clients): newline-delimited
// JSON over a Unix stream socket, one message per line (docs/control-protocol.md).
//
//   request   {"v":1,"id":7,"method":"status","params":{...}}
//   response  {"v":1,"id":7,"ok":true,"result":{...}}
//             {"v":1,"id":7,"ok":false,"error":{"code":"not_found","errno":2,"message":"..."}}
//   event     {"v":1,"event":"peer_up","data":{...}}            (server push, no id)
//
// Limits: a line is at most kMaxFrame bytes and nests at most kMaxDepth levels. Unknown
// fields are ignored; wrong types are parse errors naming the field. Nothing here throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "ie/util/error.hpp"
#include "ie/util/result.hpp"

namespace ie::ctl {

using Json = nlohmann::json;

inline constexpr int kProtocolVersion = 1;
inline constexpr std::size_t kMaxFrame = 1 << 20;  // bytes per line, newline excluded
inline constexpr int kMaxDepth = 32;

struct Request {
  std::uint64_t id = 0;
  std::string method;
  Json params = Json::object();
};

struct Response {
  std::uint64_t id = 0;
  bool ok = true;
  Json result = Json::object();  // when ok
  Error error;                   // when !ok (code, errno, message in context)
};

struct Event {
  std::string name;
  Json data = Json::object();
};

using Message = std::variant<Request, Response, Event>;

// Each returns one line including the trailing '\n'.
std::string encode(const Request& r);
std::string encode(const Response& r);
std::string encode(const Event& e);

// Decodes one line (without or with its '\n'). Errors: Errc::parse (bad JSON, too deep,
// missing/mistyped field: the context names it), Errc::unsupported (another "v"),
// Errc::too_large (over kMaxFrame).
Result<Message> decode(std::string_view line);

// The same, under the names used in docs/control-protocol.md.
inline std::string encode_request(const Request& r) {
  return encode(r);
}
inline std::string encode_response(const Response& r) {
  return encode(r);
}
inline std::string encode_event(const Event& e) {
  return encode(e);
}
inline Result<Message> decode_message(std::string_view line) {
  return decode(line);
}

// The request id of a line that failed to decode, if the line is a JSON object of
// acceptable size and depth whose "id" is an unsigned integer (so an error reply, e.g.
// "unsupported" for another protocol version, can still be matched by the client); else 0.
std::uint64_t salvage_id(std::string_view line);

// The errno-style number for an error code (ENOENT for not_found, ...), sent as "errno".
int errno_for(Errc code);
// The Errc for a code name ("not_found"); Errc::internal if unknown.
Errc errc_from_name(std::string_view name);

// Incremental framing for a nonblocking stream: feed bytes, pop complete lines. A line over
// max_frame (or a partial line already over it) poisons the reader: complete lines before it
// can still be popped, everything after is dropped, and the caller answers with a
// "too_large" error and closes the connection. The partial-line buffer never exceeds
// max_frame + one feed; popped-but-unread lines are bounded by what the caller feeds before
// popping, so pop after every feed. Cost is linear in the bytes fed.
class LineReader {
 public:
  explicit LineReader(std::size_t max_frame = kMaxFrame) : max_(max_frame) {}
  void feed(std::string_view bytes);
  // The next complete line (without '\n'), or false if none yet.
  bool next(std::string* line);
  bool overflowed() const { return overflow_; }
  // Bytes of the line not yet complete (0 when everything fed ended with a newline).
  std::size_t partial_size() const { return buf_.size(); }

 private:
  void poison();

  std::size_t max_;
  std::string buf_;
  std::size_t scan_ = 0;  // bytes of buf_ already known to hold no '\n'
  std::deque<std::string> lines_;
  bool overflow_ = false;
};

// Who is calling (from SO_PEERCRED on the server's socket). `admin` is decided by the
// server when the connection is accepted (peer_credentials with the admin group): uid 0 is
// always admin, whatever `admin` says.
struct Caller {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int32_t pid = 0;
  bool admin = false;  // in the server's admin group (primary or supplementary)
  // The file descriptors the client passed with this request (SCM_RIGHTS; ctl::Server says
  // which request a descriptor belongs to), empty if none. Valid only during the handler
  // call: the server closes every one of them when the handler returns, so a handler that
  // keeps one dup()s it (F_DUPFD_CLOEXEC). At most Server::kMaxFdsPerRequest.
  std::span<const int> fds{};

  bool may_admin() const { return uid == 0 || admin; }
};

// Who may call a method: `read` methods (status, listings) answer anyone who can connect;
// `admin` methods (anything that changes state) answer only Caller::may_admin().
enum class Access : std::uint8_t { read, admin };

// The server's method table: one handler per method name. dispatch() never throws: a
// handler's exception becomes an internal error reply, an unknown method "not_found", an
// admin method called by a non-admin "permission" (the handler is not called).
class Dispatcher {
 public:
  using Handler = std::function<Result<Json>(const Json& params, const Caller& caller)>;
  // Registers a method; a duplicate name is a programming error and returns false.
  bool add(std::string method, Handler h, Access access = Access::read);
  // Registers the conventional "hello" method: it answers anyone with
  // {"protocol":1,"server":<server>,"methods":[<sorted method names>]}.
  bool add_hello(std::string server);
  // How a refusal names what is required: "root" alone (the default), or e.g.
  // "root or a member of group \"interedge\"" (ctl::Server sets it from its admin group).
  void set_admin_requirement(std::string who) { admin_requirement_ = std::move(who); }
  // The access a method was registered with (nullopt: no such method).
  std::optional<Access> access_of(std::string_view method) const;
  Response dispatch(const Request& req, const Caller& caller) const;
  // Decodes a request line and dispatches it, returning the reply line. Malformed input gets
  // an error reply carrying the request's id when it could be read (salvage_id), else id 0;
  // a response or event sent to a server gets a "protocol" error.
  std::string handle_line(std::string_view line, const Caller& caller) const;

 private:
  struct Entry {
    Handler handler;
    Access access = Access::read;
  };
  std::map<std::string, Entry, std::less<>> handlers_;
  std::optional<std::string> hello_server_;
  std::string admin_requirement_ = "root";
};

}  // namespace ie::ctl
