// sync/futex_counter.cpp — FutexCounter's wait and wake (protocol: see the header).
#include <weft/sync/futex_counter.hpp>

#include <weft/runtime/error.hpp>

namespace weft {

using detail::LockGuard;
using detail::Waiter;
using detail::WaiterQueue;

namespace {
std::uint32_t snapshot_of(const Waiter* w) noexcept {
  return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(w->payload));
}
}  // namespace

bool FutexCounter::has_waiters() const {
  LockGuard g(qmu_);
  return !queue_.empty();
}

FutexCounter::~FutexCounter() {
  if (has_waiters())
    binding_.die(binding_.what() +
                 " destroyed while fibers or threads are still waiting on it: they would wake into freed memory. "
                 "Wake them (increment_and_wake(FutexCounter::all)) and let them return before it goes.");
}

std::size_t FutexCounter::increment_and_wake(std::uint32_t n) {
  value_.fetch_add(1, std::memory_order_seq_cst);  // wraps (unsigned); seq_cst: Dekker with waiting_
  if (n == 0 || waiting_.load(std::memory_order_seq_cst) == 0) return 0;
  std::size_t woken = 0;
  LockGuard g(qmu_);
  // relaxed: qmu_ orders it after the value each queued waiter re-read (see the top).
  const std::uint32_t now = value_.load(std::memory_order_relaxed);
  WaiterQueue later;  // snapshot == now: no change seen yet
  while (woken < n) {
    Waiter* w = queue_.pop_front();
    if (!w) break;
    if (snapshot_of(w) == now) {
      later.push_back(w);
      continue;
    }
    waiting_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: a stale high count only costs a lock
    if (w->notify()) ++woken;                          // false: its deadline / cancellation won; it does not count
  }
  if (!later.empty()) {  // back in front, in their order
    while (Waiter* w = queue_.pop_front()) later.push_back(w);
    while (Waiter* w = later.pop_front()) queue_.push_back(w);
  }
  return woken;
}

bool FutexCounter::wait_slow(std::uint32_t snapshot, std::int64_t deadline) {
  Waiter w;  // binds to the caller: a fiber parks, a thread sleeps on a futex
  w.payload = reinterpret_cast<void*>(static_cast<std::uintptr_t>(snapshot));
  {
    LockGuard g(qmu_);
    waiting_.fetch_add(1, std::memory_order_seq_cst);  // before the re-read (see the header)
    if (value_.load(std::memory_order_seq_cst) != snapshot) {
      waiting_.fetch_sub(1, std::memory_order_relaxed);
      return true;
    }
    queue_.push_back(&w);
  }
  const Waiter::Result r = w.wait(deadline);
  if (r == Waiter::Result::notified) return true;
  {
    LockGuard g(qmu_);
    if (queue_.contains(&w)) {
      queue_.erase(&w);
      waiting_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  if (r == Waiter::Result::cancelled) throw FiberCancelled();
  // Timed out: report a change that raced with the deadline as a change.
  return value() != snapshot;
}

}  // namespace weft
