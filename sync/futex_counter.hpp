// weft/sync/futex_counter.hpp — FutexCounter: a monotonic 32-bit counter that
// waiters watch for change (the pattern that replaced a single-waiter Event in
// incident 001, workaround 5): no reset(), any number of waiters.
//
// Usage: snapshot = c.value(); <check the condition>; c.wait_until_changed(snapshot)
// — a producer that changes the condition calls increment_and_wake(n) afterwards,
// so a change made after the snapshot is never missed.
// State: one LockWord, state_ — bits 32..63 the value, bits 1..31 how many waiters
// are registered, bit 0 the lock of the FIFO of Waiters (each Waiter's payload is
// its snapshot).
// Invariants:
//  - A waiter registers (count + 1) in one CAS that also checks value == snapshot,
//    under the lock, and queues before unlocking. An increment is one RMW on the
//    same word, so it sees every registration made before it (no lost wake-up).
//    With nobody registered it is that one CAS, and nothing after it.
//  - With waiters registered, an increment raises the value and takes the lock in
//    the same CAS, wakes (claims) only waiters whose snapshot differs from the new
//    value — the others took their snapshot after it and stay queued for the next
//    increment — and wakes them after its unlocking RMW, its last access. So
//    wait_until_changed() returns only once value() != snapshot, and a waiter
//    that returns (woken, timed out seeing a change, or finding the value changed
//    lock-free) never has an increment still inside the counter on its behalf: it
//    may destroy the counter at once (see lock_word.hpp).
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
#include <weft/sync/lock_word.hpp>
#include <weft/sync/waiter_queue.hpp>

namespace weft {

class FutexCounter {
 public:
  /// increment_and_wake(all) wakes every waiter.
  static constexpr std::uint32_t all = std::numeric_limits<std::uint32_t>::max();

  /// Unbound: binds to the domain of its first waiter.
  explicit FutexCounter(std::uint32_t initial = 0, std::string_view name = {}) noexcept
      : binding_("weft::FutexCounter", name), state_(std::uint64_t{initial} << kValueShift) {}
  FutexCounter(Runtime& rt, std::uint32_t initial = 0, std::string_view name = {})
      : binding_("weft::FutexCounter", rt, name), state_(std::uint64_t{initial} << kValueShift) {}
  FutexCounter(ThreadedTag t, std::uint32_t initial = 0, std::string_view name = {}) noexcept
      : binding_("weft::FutexCounter", t, name), state_(std::uint64_t{initial} << kValueShift) {}
  FutexCounter(const FutexCounter&) = delete;
  FutexCounter& operator=(const FutexCounter&) = delete;
  ~FutexCounter();

  /// The current value (any thread). acquire: what the incrementer wrote before its
  /// increment is visible once its value is seen.
  [[nodiscard]] std::uint32_t value() const noexcept { return value_of(state_.word().load(std::memory_order_acquire)); }

  /// Adds one (wrapping) and wakes up to `n` waiters (oldest first) whose snapshot
  /// differs from the new value; returns how many it woke. Never blocks: accepted
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
  /// value unchanged. `timeout` saturates (hours::max() means no deadline).
  template <class Rep, class Period>
  bool wait_until_changed(std::uint32_t snapshot, std::chrono::duration<Rep, Period> timeout) {
    binding_.check_acquire("wait_until_changed()");
    if (value() != snapshot) return true;
    return wait_slow(snapshot, detail::deadline_after(detail::saturating_ns(timeout)));
  }
  /// True while some fiber or thread is queued waiting on it (a snapshot).
  [[nodiscard]] bool has_waiters() const;

 private:
  friend struct detail::TestAccess;  // reads binding_
  static constexpr unsigned kValueShift = 32;
  static constexpr std::uint64_t kOne = std::uint64_t{1} << kValueShift;  // one increment
  static constexpr std::uint64_t kWaiter = 2;                             // one registered waiter
  static constexpr std::uint64_t kWaiterMask = kOne - kWaiter;            // bits 1..31
  static std::uint32_t value_of(std::uint64_t word) noexcept { return static_cast<std::uint32_t>(word >> kValueShift); }

  bool wait_slow(std::uint32_t snapshot, std::int64_t deadline);
  /// With the lock taken by the increment that made `now`: claims up to n waiters
  /// whose snapshot differs from `now`, unlocks, then wakes them.
  std::size_t wake_locked(std::uint32_t now, std::uint32_t n) WEFT_RELEASE(state_);

  detail::DomainBinding binding_;
  // The value, the registered waiters and the lock of the queue (see the top).
  mutable detail::LockWord state_;
  detail::WaiterQueue queue_ WEFT_GUARDED_BY(state_);
};

}  // namespace weft
