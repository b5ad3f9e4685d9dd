// sync/channel.cpp — the non-template parts of Channel<T>: the out-of-line throws
// (kept off the inlined hot paths).
#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/sync/channel.hpp>

namespace weft::detail {

void throw_channel_closed() {
  throw ChannelClosed();
}
void throw_fiber_cancelled() {
  throw FiberCancelled();
}
void throw_channel_blocking_in_scheduler(const char* op) {
  throw_blocking_in_scheduler("weft::Channel", op);
}

void die_channel_destroyed(std::size_t capacity, std::size_t receivers, std::size_t senders) noexcept {
  fatalf(
      "weft::Channel (capacity %zu) destroyed while %zu receiver(s) and %zu sender(s) are blocked on it: they would "
      "wake into freed memory. close() it and let them return (or cancel them) before the Channel goes.",
      capacity, receivers, senders);
}

}  // namespace weft::detail
