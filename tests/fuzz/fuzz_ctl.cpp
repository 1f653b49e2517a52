// Fuzz target: control-protocol framing and decoding (LineReader + decode_message + the
// Dispatcher's reply path, salvage_id) on arbitrary bytes. Must never crash, hang or grow
// without bound; every decoded message must re-encode to one line that decodes again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "ie/ctl/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const ie::ctl::Dispatcher* dispatcher = [] {
    auto* d = new ie::ctl::Dispatcher();
    d->add("echo", [](const ie::ctl::Json& p, const ie::ctl::Caller&) -> ie::Result<ie::ctl::Json> {
      return p;
    });
    d->add_hello("fuzz");
    return d;
  }();
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  // Feed in chunks whose size comes from the first byte, so framing across reads varies.
  const std::size_t chunk = size == 0 ? 1 : std::size_t{data[0]} % 64 + 1;
  ie::ctl::LineReader reader(4096);
  std::string line;
  for (std::size_t off = 0; off < size; off += chunk) {
    reader.feed(all.substr(off, chunk));
    while (reader.next(&line)) {
      if (line.size() > 4096) std::abort();  // the frame limit was not enforced
      auto m = ie::ctl::decode_message(line);
      if (m.ok()) {
        std::string again;
        if (auto* req = std::get_if<ie::ctl::Request>(&*m)) {
          again = ie::ctl::encode_request(*req);
          (void)ie::ctl::encode_response(dispatcher->dispatch(*req, {}));
        } else if (auto* resp = std::get_if<ie::ctl::Response>(&*m)) {
          again = ie::ctl::encode_response(*resp);
        } else {
          again = ie::ctl::encode_event(std::get<ie::ctl::Event>(*m));
        }
        if (again.find('\n') != again.size() - 1) std::abort();  // not exactly one line
        if (!ie::ctl::decode_message(again).ok()) std::abort();
      }
      (void)ie::ctl::salvage_id(line);
      (void)dispatcher->handle_line(line, {});
    }
  }
  (void)ie::ctl::decode_message(all);
  return 0;
}
