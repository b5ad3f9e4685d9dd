// sync/futex_counter.cpp — FutexCounter's wait and wake (protocol: see the header).
#include <weft/runtime/error.hpp>
#include <weft/sync/futex_counter.hpp>

namespace weft {

using detail::LockWord;
using detail::Waiter;
using detail::WaiterQueue;
using detail::WakeList;

namespace {
std::uint32_t snapshot_of(const Waiter* w) noexcept {
  return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(w->payload));
}
}  // namespace

bool FutexCounter::has_waiters() const {
  (void)state_.lock();
  const bool any = !queue_.empty();
  state_.unlock_sub();
  return any;
}

FutexCounter::~FutexCounter() {
  if (has_waiters())
    binding_.die(binding_.what() +
                 " destroyed while fibers or threads are still waiting on it: they would wake into freed memory. "
                 "Wake them (increment_and_wake(FutexCounter::all)) and let them return before it goes.");
}

std::size_t FutexCounter::increment_and_wake(std::uint32_t n) {
  std::atomic<std::uint64_t>& word = state_.word();
  std::uint64_t w = word.load(std::memory_order_relaxed);  // relaxed: the CAS below synchronizes
  for (;;) {
    if (n == 0 || (w & kWaiterMask) == 0) {
      // Nobody to wake: this CAS is the whole call. release: what the incrementer
      // wrote before is visible to whoever sees the new value (acquire in value()).
      if (word.compare_exchange_weak(w, w + kOne, std::memory_order_release, std::memory_order_relaxed)) return 0;
      continue;
    }
    if (w & LockWord::kLocked) {  // a waiter (un)registering or another increment waking
      w = state_.wait_unlocked();
      continue;
    }
    if (state_.try_lock_update(w, w + kOne)) return wake_locked(value_of(w + kOne), n);
  }
}

std::size_t FutexCounter::wake_locked(std::uint32_t now, std::uint32_t n) {
  WakeList woken;     // wakes them after the unlock below: the counter is not touched again
  WaiterQueue later;  // snapshot == now: they have not seen a change yet
  std::size_t claimed = 0;
  std::uint64_t popped = 0;
  while (claimed < n) {
    Waiter* w = queue_.pop_front();
    if (!w) break;
    if (snapshot_of(w) == now) {  // only after exactly 2^32 increments (see the header)
      later.push_back(w);
      continue;
    }
    ++popped;
    if (woken.claim(w)) ++claimed;  // false: its deadline / cancellation won; it does not count
  }
  if (!later.empty()) {  // they go back in front, in their order
    while (Waiter* w = queue_.pop_front()) later.push_back(w);
    while (Waiter* w = later.pop_front()) queue_.push_back(w);
  }
  state_.unlock_sub(popped * kWaiter);  // release: publishes the pops; the last access
  return claimed;
}

bool FutexCounter::wait_slow(std::uint32_t snapshot, std::int64_t deadline) {
  Waiter w;  // binds to the caller: a fiber parks, a thread sleeps on a futex
  w.payload = reinterpret_cast<void*>(static_cast<std::uintptr_t>(snapshot));
  std::uint64_t cur = state_.lock() | LockWord::kLocked;
  // Register only while the value is the snapshot: the check and the registration
  // are one CAS, so an increment either came before it (we return) or sees it.
  // relaxed: the word's modification order is all that matters; the queue is
  // published by the unlock (release) to the increment's locking CAS (acquire).
  bool queued = false;
  while (!queued && value_of(cur) == snapshot)
    queued =
        state_.word().compare_exchange_weak(cur, cur + kWaiter, std::memory_order_relaxed, std::memory_order_relaxed);
  if (queued) queue_.push_back(&w);
  state_.unlock_sub();
  if (!queued) return true;  // changed by an increment that saw nobody registered: it is done
  const Waiter::Result r = w.wait(deadline);
  if (r == Waiter::Result::notified) return true;  // the counter is not touched again
  // Timed out or cancelled: unregister, unless an increment already popped us.
  cur = state_.lock();
  const bool linked = queue_.contains(&w);
  if (linked) queue_.erase(&w);
  state_.unlock_sub(linked ? kWaiter : 0);
  if (r == Waiter::Result::cancelled) throw FiberCancelled();
  // A change seen here is complete: made under the lock we then held (while we
  // were registered), or by a lone CAS (after an increment popped us).
  return value_of(cur) != snapshot;
}

}  // namespace weft
