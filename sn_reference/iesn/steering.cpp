// The reuseport steering program (ie/sn/worker.hpp): a classic BPF program attached to the
// workers' SO_REUSEPORT group that picks the socket, hence the worker, for every datagram.
// For UDP the kernel runs it with the packet data starting at the UDP payload (it pulls the
// UDP header first), so absolute loads read the InterEdge datagram itself:
//   byte 1 == 0 -> a control-plane datagram: socket 0 (the control worker);
//   else PSP: the 32-bit SPI at offset 4 (loads are big-endian, as on the wire) mod N.
// A load past the end aborts the program with return value 0: short datagrams go to socket
// 0, which drops them. An index >= the group size makes the kernel fall back to its hash.
#include <linux/filter.h>
#include <sys/socket.h>

#include <cerrno>

#include "ie/sn/worker.hpp"

namespace ie::sn {

Result<void> attach_reuseport_steering(int fd, unsigned workers) {
  if (workers == 0) return fail(Errc::invalid_argument, "steering: 0 workers");
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 1),         // A = payload[1]
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),  // control plane?
      BPF_STMT(BPF_RET | BPF_K, 0),                  //   -> socket 0
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4),         // A = SPI
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, workers),  // A %= N
      BPF_STMT(BPF_RET | BPF_A, 0),                  // -> socket A
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) != 0)
    return fail(Errc::io, "setsockopt SO_ATTACH_REUSEPORT_CBPF", errno);
  return ok();
}

unsigned steering_index(ConstByteSpan payload, unsigned workers) {
  if (workers == 0 || payload.size() < 2 || payload[1] == 0 || payload.size() < 8) return 0;
  return load_be32(payload.data() + 4) % workers;
}

}  // namespace ie::sn
