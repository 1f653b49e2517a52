// The built-in null module (service 0, the paper's null service): every packet goes back to
// the pipe-terminus, which forwards it by its inner destination address. It never installs a
// cache entry, so every null-service packet crosses the module boundary: the benchmark of
// that boundary's cost. Written with the same C++ wrapper as an out-of-tree module.
#include "ie/sn/module.hpp"
#include "ie/sn/modules.hpp"

namespace ie::sn {
namespace {

class NullModule final : public Module {
 public:
  using Module::Module;

  void on_packets(std::span<const ie_sn_packet> packets, std::span<ie_sn_decision> out) override {
    const ie_sn_decision d = by_destination();
    for (std::size_t i = 0; i < packets.size(); ++i)
      out[i] = d;
  }
};

}  // namespace

IE_SN_BUILTIN_MODULE(NullModule, null_module, "null", 0,
                     "no service: forwards every packet by its inner destination")

}  // namespace ie::sn
