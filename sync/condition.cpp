// sync/condition.cpp — Condition's wait and notify (protocol: see the header).
#include <system_error>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/sync/condition.hpp>

namespace weft {

using detail::LockGuard;
using detail::Waiter;
using detail::WakeList;

bool Condition::has_waiters() const {
  LockGuard g(qmu_);
  return !queue_.empty();
}

Condition::~Condition() {
  if (has_waiters())
    binding_.die(binding_.what() +
                 " destroyed while fibers or threads are still waiting on it: they would wake into freed memory. "
                 "notify_all() and let the waiters return (or cancel them) before the Condition goes.");
}

bool Condition::wait_impl(std::unique_lock<Mutex>& lk, const char* op, std::int64_t deadline) {
  binding_.check_acquire(op);
  Mutex* m = lk.mutex();
  if (!m || !lk.owns_lock() || !m->owned_by_caller())
    throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                            binding_.what() + ": " + op + " by " + describe_caller() +
                                ", which does not hold the weft::Mutex it passed (lock it first)");
  Waiter w;  // binds to the caller: a fiber parks, a thread sleeps on a futex
  {
    LockGuard g(qmu_);
    queue_.push_back(&w);  // before the unlock: a later notify finds us
  }
  m->unlock();
  const Waiter::Result r = w.wait(deadline);
  if (r != Waiter::Result::notified) {  // notified: the Condition is not touched again
    LockGuard g(qmu_);
    if (queue_.contains(&w)) queue_.erase(&w);
  }
  m->lock_uncancellable();  // the caller owns the Mutex again on every way out
  if (r == Waiter::Result::cancelled) throw FiberCancelled();
  return r == Waiter::Result::notified;
}

void Condition::notify_one() {
  WakeList woken;  // wakes it after g's unlock: the Condition is not touched again
  LockGuard g(qmu_);
  while (Waiter* w = queue_.pop_front())
    if (woken.claim(w)) return;  // false: its deadline/cancel won; the notification goes on
}

void Condition::notify_all() {
  WakeList woken;  // as notify_one()
  LockGuard g(qmu_);
  while (Waiter* w = queue_.pop_front()) (void)woken.claim(w);
}

}  // namespace weft
