// The two replay window sizes (ie/crypto/replay_window.hpp), instantiated once here.
#include "ie/crypto/replay_window.hpp"

namespace ie::crypto {

template class BasicReplayWindow<64>;
template class BasicReplayWindow<4>;

}  // namespace ie::crypto
