// sync/event.cpp — Event's queueing and signalling (protocol: see event.hpp).
#include <weft/runtime/error.hpp>
#include <weft/sync/event.hpp>

namespace weft {

using detail::LockGuard;
using detail::Waiter;
using detail::WakeList;

bool Event::has_waiters() const {
  LockGuard g(qmu_);
  return !queue_.empty();
}

std::size_t Event::waiting() const {
  LockGuard g(qmu_);
  return queued_;
}

Event::~Event() {
  // has_waiters() takes qmu_: a set() still unlocking it is done before we go.
  if (has_waiters())
    binding_.die(binding_.what() +
                 " destroyed while fibers or threads are still waiting on it: they would wake into freed memory. "
                 "set() it and let the waiters return (or cancel them) before the Event goes.");
}

void Event::set() {
  WakeList woken;  // wakes them after g's unlock: the Event is not touched again
  LockGuard g(qmu_);
  if (mode_ == Mode::auto_reset) {
    while (Waiter* w = queue_.pop_front()) {
      --queued_;
      if (woken.claim(w)) return;  // handed over: the flag stays down
    }
    set_.store(true, std::memory_order_release);
    return;
  }
  set_.store(true, std::memory_order_release);
  // Every waiter queued now is released; a claim that fails belongs to a waiter
  // whose own deadline / cancellation won, and it reports that instead.
  while (Waiter* w = queue_.pop_front()) {
    --queued_;
    (void)woken.claim(w);
  }
}

void Event::reset() {
  LockGuard g(qmu_);
  set_.store(false, std::memory_order_relaxed);  // relaxed: no data is published by clearing
}

bool Event::wait_slow(std::int64_t deadline) {
  Waiter w;  // binds to the caller: a fiber parks, a thread sleeps on a futex
  {
    LockGuard g(qmu_);
    if (try_consume()) return true;  // set() ran since the fast path
    queue_.push_back(&w);
    ++queued_;
  }
  const Waiter::Result r = w.wait(deadline);
  if (r == Waiter::Result::notified) return true;  // the Event is not touched again
  {
    LockGuard g(qmu_);
    if (queue_.contains(&w)) {
      queue_.erase(&w);
      --queued_;
    }
  }
  if (r == Waiter::Result::cancelled) throw FiberCancelled();
  return false;
}

}  // namespace weft
