// sync/semaphore.cpp — Semaphore's queueing and hand-off (protocol: see the header).
#include <stdexcept>
#include <string>

#include <weft/runtime/error.hpp>
#include <weft/sync/semaphore.hpp>

namespace weft {

using detail::LockGuard;
using detail::Waiter;
using detail::WakeList;

namespace {
std::ptrdiff_t checked_initial(std::ptrdiff_t initial) {
  if (initial < 0)
    throw std::invalid_argument("weft::Semaphore: initial count must be >= 0, got " + std::to_string(initial));
  return initial;
}
}  // namespace

Semaphore::Semaphore(std::ptrdiff_t initial, std::string_view name)
    : binding_("weft::Semaphore", name), count_(checked_initial(initial)) {}
Semaphore::Semaphore(Runtime& rt, std::ptrdiff_t initial, std::string_view name)
    : binding_("weft::Semaphore", rt, name), count_(checked_initial(initial)) {}
Semaphore::Semaphore(ThreadedTag t, std::ptrdiff_t initial, std::string_view name)
    : binding_("weft::Semaphore", t, name), count_(checked_initial(initial)) {}

bool Semaphore::has_waiters() const {
  LockGuard g(qmu_);
  return !queue_.empty();
}

Semaphore::~Semaphore() {
  // has_waiters() takes qmu_: a release() still unlocking it is done before we go.
  if (has_waiters())
    binding_.die(binding_.what() +
                 " destroyed while fibers or threads are still waiting to acquire it: they would wake into freed "
                 "memory. Release enough permits (or cancel the waiters) before the Semaphore goes.");
}

void Semaphore::release(std::ptrdiff_t n) {
  if (n < 0) throw std::invalid_argument(binding_.what() + ": release(n) with n < 0 (" + std::to_string(n) + ")");
  WakeList woken;  // wakes them after g's unlock: the Semaphore is not touched again
  LockGuard g(qmu_);
  while (n > 0) {
    Waiter* w = queue_.pop_front();
    if (!w) break;
    if (woken.claim(w)) --n;  // the permit is handed over; false: its deadline/cancel won
  }
  // release: pairs with try_take's acquire CAS.
  if (n > 0) count_.fetch_add(n, std::memory_order_release);
}

bool Semaphore::acquire_slow(std::int64_t deadline) {
  Waiter w;  // binds to the caller: a fiber parks, a thread sleeps on a futex
  {
    LockGuard g(qmu_);
    if (try_take()) return true;  // a release() ran since the fast path
    queue_.push_back(&w);
  }
  const Waiter::Result r = w.wait(deadline);
  if (r == Waiter::Result::notified) return true;  // a permit was handed to us; not touched again
  {
    LockGuard g(qmu_);
    if (queue_.contains(&w)) queue_.erase(&w);
  }
  if (r == Waiter::Result::cancelled) throw FiberCancelled();
  return false;
}

}  // namespace weft
