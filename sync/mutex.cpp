// sync/mutex.cpp — Mutex's contended paths: queueing, hand-off, the misuse
// diagnostics. The protocol is described at the top of mutex.hpp.
#include <weft/sync/mutex.hpp>

#include <sched.h>

#include <system_error>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>

namespace weft {

void detail::SpinLock::lock_contended() noexcept {
  for (unsigned spins = 0;; ++spins) {
    // relaxed: just watching for the holder's release; the exchange re-acquires.
    while (locked_.load(std::memory_order_relaxed)) {
      if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        ++spins;
      } else {
        sched_yield();  // the holder's thread may be preempted: let it run
      }
    }
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
  }
}

using detail::SpinGuard;
using detail::Waiter;

bool Mutex::has_waiters() const {
  SpinGuard g(qmu_);
  return !queue_.empty();
}

Mutex::~Mutex() {
  if (has_waiters())
    binding_.die(binding_.what() +
                 " destroyed while fibers or threads are still waiting to lock it: they would wake into freed "
                 "memory. Make every waiter finish (or cancel it) before the Mutex goes.");
}

bool Mutex::lock_slow(std::int64_t deadline) {
  check_not_owner("lock()");
  switch (wait_in_queue(deadline)) {
    case Waiter::Result::notified:
      return true;
    case Waiter::Result::timed_out:
      return false;
    case Waiter::Result::cancelled:
      break;
  }
  throw FiberCancelled();
}

void Mutex::lock_uncancellable() {
  if (try_lock_fast()) return;
  // A cancelled fiber's park returns at once (cancelled); it re-queues until the
  // mutex is handed to it. Cancellation is rare and the holder keeps running, so
  // this ends; meanwhile the fiber yields to the others on every round.
  while (wait_in_queue(-1) != Waiter::Result::notified) {
  }
}

Waiter::Result Mutex::wait_in_queue(std::int64_t deadline) {
  Waiter w;  // binds to the caller: a fiber parks, a thread sleeps on a futex
  w.payload = const_cast<void*>(detail::caller_identity());
  {
    SpinGuard g(qmu_);
    // relaxed loads/CAS to 2: the unlocker that must see "2" takes qmu_ after us,
    // and qmu_ orders it; the 0 -> 1 CAS is acquire like the fast path.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (s == 0) {
        if (state_.compare_exchange_weak(s, 1, std::memory_order_acquire, std::memory_order_relaxed)) {
          owner_.store(w.payload, std::memory_order_relaxed);  // relaxed: see mutex.hpp
          return Waiter::Result::notified;
        }
      } else if (s == 1) {
        if (state_.compare_exchange_weak(s, 2, std::memory_order_relaxed, std::memory_order_relaxed)) break;
      } else {
        break;
      }
    }
    queue_.push_back(&w);
  }
  const Waiter::Result r = w.wait(deadline);
  // notified: the unlocker handed us the mutex (state_ stayed locked, owner_ set);
  // its writes are visible through the Waiter's acq_rel claim.
  if (r == Waiter::Result::notified) return r;
  SpinGuard g(qmu_);
  // Still queued: unlink. Not queued: an unlocker popped us, lost the claim to our
  // deadline/cancel, and passed ownership on; nothing of ours is left behind.
  if (queue_.contains(&w)) queue_.erase(&w);
  return r;
}

void Mutex::unlock_slow() noexcept {
  Waiter* wake = nullptr;  // woken after qmu_ is released: the new owner may destroy the Mutex at once
  {
    SpinGuard g(qmu_);
    while (Waiter* w = queue_.pop_front()) {
      if (!w->claim_notify()) continue;  // timed out / cancelled: it unlinks-checks itself
      // Still locked: ownership passes to w. relaxed: w reads state_ only after its
      // wake, which (release/acquire on the Waiter) orders these stores before it.
      state_.store(queue_.empty() ? 1 : 2, std::memory_order_relaxed);
      owner_.store(w->payload, std::memory_order_relaxed);
      wake = w;
      break;
    }
    if (!wake) {
      owner_.store(nullptr, std::memory_order_relaxed);
      // release: the critical section happens-before the next locker's acquire CAS.
      state_.store(0, std::memory_order_release);
    }
  }
  if (wake) wake->wake();
}

void Mutex::check_not_owner(const char* op) const {
  if (owned_by_caller())
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                            binding_.what() + ": " + op + " by " + describe_caller() +
                                ", which already holds it (weft::Mutex is not recursive; this would deadlock)");
}

void Mutex::die_not_owner() const noexcept {
  try {
    const bool locked = state_.load(std::memory_order_relaxed) != 0;  // relaxed: for the message only
    binding_.die(binding_.what() + ": unlock() by " + describe_caller() + ", which does not hold it (" +
                 (locked ? "another fiber or thread holds it" : "it is not locked") + ")");
  } catch (...) {
    binding_.die("weft::Mutex: unlock() by a caller that does not hold it");
  }
}

}  // namespace weft
