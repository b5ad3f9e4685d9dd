// sync/channel.cpp — the non-template parts of Channel<T>: the out-of-line throws
// (kept off the inlined hot paths).
#include <weft/sync/channel.hpp>

#include <weft/runtime/domain.hpp>

namespace weft::detail {

void throw_channel_closed() { throw ChannelClosed(); }
void throw_fiber_cancelled() { throw FiberCancelled(); }
void throw_channel_blocking_in_scheduler(const char* op) { throw_blocking_in_scheduler("weft::Channel", op); }

}  // namespace weft::detail
