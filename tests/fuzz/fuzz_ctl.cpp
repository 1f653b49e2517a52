// Fuzz target: control-protocol framing and decoding (LineReader + decode + dispatch) on
// arbitrary bytes. Must never crash, hang or grow without bound.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ie/ctl/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const ie::ctl::Dispatcher* dispatcher = [] {
    auto* d = new ie::ctl::Dispatcher();
    d->add("echo", [](const ie::ctl::Json& p, const ie::ctl::Caller&) -> ie::Result<ie::ctl::Json> {
      return p;
    });
    return d;
  }();
  ie::ctl::LineReader reader(4096);
  // Feed in two pieces so framing across reads is exercised.
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  reader.feed(all.substr(0, size / 2));
  reader.feed(all.substr(size / 2));
  std::string line;
  while (reader.next(&line)) {
    auto m = ie::ctl::decode(line);
    if (m.ok()) {
      if (auto* req = std::get_if<ie::ctl::Request>(&*m))
        (void)ie::ctl::encode(dispatcher->dispatch(*req, {}));
    }
    (void)dispatcher->handle_line(line, {});
  }
  (void)ie::ctl::decode(all);
  return 0;
}
