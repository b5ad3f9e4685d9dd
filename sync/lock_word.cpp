// sync/lock_word.cpp — LockWord's contended path (see lock_word.hpp).
#include <sched.h>

#include <weft/sync/lock_word.hpp>

namespace weft::detail {

namespace {
/// One round of waiting for a holder: `pause` at first, then yield the thread
/// (the holder's thread may be preempted).
void back_off(unsigned& spins) noexcept {
  if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    ++spins;
  } else {
    sched_yield();
  }
}
}  // namespace

std::uint64_t LockWord::lock_contended() noexcept {
  for (unsigned spins = 0;;) {
    std::uint64_t w = word_.load(std::memory_order_relaxed);  // relaxed: watching; the CAS re-acquires
    if (!(w & kLocked)) {
      if (word_.compare_exchange_weak(w, w | kLocked, std::memory_order_acquire, std::memory_order_relaxed)) return w;
      continue;  // the word moved (a lock-free update or another locker): look again
    }
    back_off(spins);
  }
}

std::uint64_t LockWord::wait_unlocked() const noexcept {
  for (unsigned spins = 0;;) {
    const std::uint64_t w = word_.load(std::memory_order_relaxed);  // relaxed: see the header
    if (!(w & kLocked)) return w;
    back_off(spins);
  }
}

}  // namespace weft::detail
