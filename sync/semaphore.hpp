// weft/sync/semaphore.hpp — Semaphore: a counting semaphore with FIFO hand-off,
// bound to one domain (fibers park / threads block on a futex).
//
// State: count_ (atomic permits) and a FIFO of Waiters under qmu_.
// Invariants:
//  - Lifetime: an acquire() that returned may destroy the Semaphore at once, also
//    while the release() that handed it a permit is still on its way out.
//    release() claims its waiters under qmu_ and wakes them only after unlocking
//    (detail::WakeList), and a caller that took a permit lock-free runs the
//    destructor, which takes qmu_ and so waits for that release() to unlock.
//    Likewise a release() that returned may destroy it while the waiters it woke
//    are still waking.
//  - count_ > 0 implies no live waiter is queued: a waiter queues only after
//    re-checking count_ == 0 under qmu_, and release() adds to count_ (under qmu_)
//    only what is left after handing permits to queued waiters.
//  - acquire()'s fast path is a CAS that takes one permit from a positive count_;
//    release() hands a permit directly to the oldest live waiter, which returns
//    owning it (no barging past the queue). A waiter whose deadline or
//    cancellation won its claim does not consume a permit; release() gives that
//    permit to the next waiter or to count_.
//  - Destroying a Semaphore with queued waiters aborts with a message.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/tsa.hpp>
#include <weft/runtime/waiter.hpp>
#include <weft/sync/binding.hpp>
#include <weft/sync/waiter_queue.hpp>

namespace weft {

class Semaphore {
 public:
  /// Unbound: binds to the domain of its first acquirer. Throws
  /// std::invalid_argument for a negative `initial`.
  explicit Semaphore(std::ptrdiff_t initial = 0, std::string_view name = {});
  Semaphore(Runtime& rt, std::ptrdiff_t initial = 0, std::string_view name = {});
  Semaphore(ThreadedTag t, std::ptrdiff_t initial = 0, std::string_view name = {});
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  ~Semaphore();

  /// Takes one permit, waiting for it. CrossRuntimeError from another domain;
  /// FiberCancelled if the fiber is cancelled while waiting.
  void acquire() {
    binding_.check_acquire("acquire()");
    if (try_take()) return;
    acquire_slow(-1);
  }
  /// Takes a permit if one is free now (never waits). Same domain check as
  /// acquire(), except that a worker's scheduler context (a Timer callback) may call
  /// it (without binding the semaphore).
  bool try_acquire() {
    binding_.check_try("try_acquire()");
    return try_take();
  }
  /// As acquire(); false when `d` passed first (no permit taken). `d` saturates
  /// (hours::max() means no deadline).
  template <class Rep, class Period>
  bool acquire_for(std::chrono::duration<Rep, Period> d) {
    binding_.check_acquire("acquire_for()");
    if (try_take()) return true;
    return acquire_slow(detail::deadline_after(detail::saturating_ns(d)));
  }
  /// Adds `n` permits, oldest waiters first. std::invalid_argument for n < 0.
  /// Never blocks: accepted from any domain (binding.hpp), and does not bind.
  void release(std::ptrdiff_t n = 1);
  /// Free permits right now (a snapshot).
  [[nodiscard]] std::ptrdiff_t available() const noexcept { return count_.load(std::memory_order_relaxed); }
  /// True while some fiber or thread is queued waiting on it (a snapshot).
  [[nodiscard]] bool has_waiters() const;

 private:
  friend struct detail::TestAccess;  // reads binding_
  bool try_take() noexcept {
    std::ptrdiff_t c = count_.load(std::memory_order_relaxed);
    // acquire: the releaser's writes before release() are visible to the taker.
    while (c > 0)
      if (count_.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    return false;
  }
  bool acquire_slow(std::int64_t deadline);

  detail::DomainBinding binding_;
  // Raised only under qmu_ (release), taken lock-free by try_take (acquire CAS).
  std::atomic<std::ptrdiff_t> count_;
  mutable detail::AnnotatedMutex qmu_;
  detail::WaiterQueue queue_ WEFT_GUARDED_BY(qmu_);
};

}  // namespace weft
