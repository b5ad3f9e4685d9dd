// weft/sync/futex_counter.hpp — FutexCounter: a monotonic 32-bit counter that
// waiters watch for change (the pattern that replaced a single-waiter Event in
// incident 001, workaround 5): no reset(), any number of waiters.
//
// Usage: snapshot = c.value(); <check the condition>; c.wait_until_changed(snapshot)
// — a producer that changes the condition calls increment_and_wake(n) afterwards,
// so a change made after the snapshot is never missed.
// State: value_ (atomic, incremented lock-free), a FIFO of Waiters under qmu_ (each
// Waiter's payload is its snapshot), and waiting_ (atomic, the queue's length,
// written under qmu_).
// Invariants:
//  - A waiter, under qmu_, raises waiting_ and only then re-reads value_; an
//    incrementer raises value_ and only then reads waiting_ (both seq_cst). So
//    either the waiter sees the new value and does not queue, or the incrementer
//    sees the waiter and takes qmu_ (where the waiter is queued): no lost wake-up.
//    With nobody waiting, increment_and_wake is one atomic add and one load.
//  - An increment wakes, under qmu_, only waiters whose snapshot differs from the
//    value it reads there: a waiter that took its snapshot after the increment and
//    queued before it got qmu_ has seen no change yet, and stays queued for the
//    next increment (which sees it: it raised waiting_ before its last read of the
//    value). So wait_until_changed() returns only once value() != snapshot.
//  - Change is "value != snapshot", never "<": the counter wraps at 2^32 and stays
//    correct across the wrap (only exactly 2^32 increments between a snapshot and
//    the check would go unnoticed).
//  - Each waiter is woken at most once (the Waiter claim). Destroying a
//    FutexCounter with queued waiters aborts with a message.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/tsa.hpp>
#include <weft/runtime/waiter.hpp>
#include <weft/sync/binding.hpp>
#include <weft/sync/waiter_queue.hpp>

namespace weft {

class FutexCounter {
 public:
  /// increment_and_wake(all) wakes every waiter.
  static constexpr std::uint32_t all = std::numeric_limits<std::uint32_t>::max();

  /// Unbound: binds to the domain of its first waiter.
  explicit FutexCounter(std::uint32_t initial = 0, std::string_view label = {}) noexcept
      : binding_("weft::FutexCounter", label), value_(initial) {}
  FutexCounter(Runtime& rt, std::uint32_t initial = 0, std::string_view label = {})
      : binding_("weft::FutexCounter", rt, label), value_(initial) {}
  FutexCounter(ThreadedTag t, std::uint32_t initial = 0, std::string_view label = {}) noexcept
      : binding_("weft::FutexCounter", t, label), value_(initial) {}
  FutexCounter(const FutexCounter&) = delete;
  FutexCounter& operator=(const FutexCounter&) = delete;
  ~FutexCounter();

  /// The current value (any thread). acquire: what the incrementer wrote before its
  /// increment is visible once its value is seen.
  [[nodiscard]] std::uint32_t value() const noexcept { return value_.load(std::memory_order_acquire); }

  /// Adds one (wrapping) and wakes up to `n` waiters (oldest first) whose snapshot
  /// differs from the value; returns how many it woke. Never blocks: accepted
  /// from any domain (a pool thread may wake fibers waiting for a pooled resource;
  /// binding.hpp), and does not bind.
  std::size_t increment_and_wake(std::uint32_t n = 1);

  /// Returns once value() != snapshot. CrossRuntimeError from another domain;
  /// FiberCancelled if the fiber is cancelled while waiting.
  void wait_until_changed(std::uint32_t snapshot) {
    binding_.check_acquire("wait_until_changed()");
    if (value() != snapshot) return;
    wait_slow(snapshot, -1);
  }
  /// As above; true once value() != snapshot, false when `timeout` passed with the
  /// value unchanged.
  template <class Rep, class Period>
  bool wait_until_changed(std::uint32_t snapshot, std::chrono::duration<Rep, Period> timeout) {
    binding_.check_acquire("wait_until_changed()");
    if (value() != snapshot) return true;
    return wait_slow(snapshot, detail::deadline_after(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout)));
  }
  /// True while some fiber or thread is queued waiting on it (a snapshot).
  [[nodiscard]] bool has_waiters() const;
  [[nodiscard]] const detail::DomainBinding& binding() const noexcept { return binding_; }

 private:
  bool wait_slow(std::uint32_t snapshot, std::int64_t deadline);

  detail::DomainBinding binding_;
  // seq_cst RMW in increment_and_wake (the Dekker pair with waiting_, see the top).
  std::atomic<std::uint32_t> value_;
  // Queue length; written under qmu_ (seq_cst), read lock-free by incrementers.
  std::atomic<std::uint32_t> waiting_{0};
  mutable detail::AnnotatedMutex qmu_;
  detail::WaiterQueue queue_ WEFT_GUARDED_BY(qmu_);
};

}  // namespace weft
