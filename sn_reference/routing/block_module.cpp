// The built-in `block` module (service 8): drops every packet it is handed. Hosts invoke it
// out of band for a portion of their traffic (docs/sn.md "Out-of-band invocation"), e.g.
//   iectl service enable block --direction in --prefix 198.51.100.0/24
// and their first-hop SN then drops that traffic before it reaches the host's access link.
// Packets sent to service 8 explicitly are dropped as well. Written with the C++ wrapper.
#include "ie/sn/module.hpp"
#include "ie/sn/routing.hpp"
#include "ie/wire/service_id.hpp"

namespace ie::sn {
namespace {

class BlockModule final : public Module {
 public:
  explicit BlockModule(const ModuleContext& ctx) : Module(ctx) {
    dropped_ = declare_counter("dropped", "packets dropped for an out-of-band invocation");
  }

  void on_packets(std::span<const ie_sn_packet> packets, std::span<ie_sn_decision> out) override {
    for (std::size_t i = 0; i < packets.size(); ++i)
      out[i] = drop();
    count(dropped_, packets.size());
  }

 private:
  ModuleCounter dropped_;
};

}  // namespace

IE_SN_BUILTIN_MODULE(BlockModule, block_module, "block",
                     static_cast<std::uint16_t>(wire::ServiceId::block),
                     "drops the traffic a host's out-of-band invocation names")

}  // namespace ie::sn
