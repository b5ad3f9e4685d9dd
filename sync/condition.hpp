// weft/sync/condition.hpp — Condition: a condition variable for weft::Mutex,
// bound to one domain (fibers park / threads block on a futex).
//
// State: a FIFO of Waiters under qmu_; nothing else.
// Invariants:
//  - wait(lk) requires the caller to own lk's Mutex (checked: system_error
//    operation_not_permitted). It queues its Waiter under qmu_ *before* unlocking
//    the Mutex, so a notify by anyone who changed the state under the Mutex after
//    that point finds it: no lost wake-up.
//  - Lifetime: a wait() that returned may destroy the Condition at once, also
//    while the notify that released it is still on its way out: notifiers claim
//    their waiters under qmu_ and wake them only after unlocking
//    (detail::WakeList), and a woken waiter touches only the Mutex. Likewise a
//    notify that returned may destroy it while the waiters it woke are waking.
//  - notify_one() claims the oldest live waiter (one whose claim it wins); a waiter
//    that timed out or was cancelled does not absorb the notification.
//  - Every wait returns with the Mutex owned again, also when it throws
//    FiberCancelled (the re-lock is not abandoned on cancellation) and on timeout.
//  - Destroying a Condition with queued waiters aborts with a message.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string_view>

#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/tsa.hpp>
#include <weft/runtime/waiter.hpp>
#include <weft/sync/binding.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/sync/waiter_queue.hpp>

namespace weft {

class Condition {
 public:
  /// Unbound: binds to the domain of its first waiter.
  explicit Condition(std::string_view name = {}) noexcept : binding_("weft::Condition", name) {}
  explicit Condition(Runtime& rt, std::string_view name = {}) : binding_("weft::Condition", rt, name) {}
  explicit Condition(ThreadedTag t, std::string_view name = {}) noexcept : binding_("weft::Condition", t, name) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;
  ~Condition();

  /// Unlocks lk's Mutex, waits for a notify, re-locks. Throws CrossRuntimeError from
  /// another domain, std::system_error if the caller does not own the Mutex,
  /// FiberCancelled (with the Mutex owned again) if the fiber is cancelled.
  void wait(std::unique_lock<Mutex>& lk) { wait_impl(lk, "wait()", -1); }
  template <class Pred>
  void wait(std::unique_lock<Mutex>& lk, Pred pred) {
    while (!pred()) wait_impl(lk, "wait()", -1);
  }
  /// As wait(); false when `d` passed first (the Mutex is owned again either way).
  /// `d` saturates (hours::max() means no deadline), as in every timed call here.
  template <class Rep, class Period>
  bool wait_for(std::unique_lock<Mutex>& lk, std::chrono::duration<Rep, Period> d) {
    return wait_impl(lk, "wait_for()", detail::deadline_after(detail::saturating_ns(d)));
  }
  /// Waits until pred() holds or `d` passed; returns pred().
  template <class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<Mutex>& lk, std::chrono::duration<Rep, Period> d, Pred pred) {
    const std::int64_t deadline = detail::deadline_after(detail::saturating_ns(d));
    while (!pred())
      if (!wait_impl(lk, "wait_for()", deadline)) return pred();
    return true;
  }

  /// Wakes the oldest waiter. Never blocks: accepted from any domain (binding.hpp),
  /// and does not bind.
  void notify_one();
  /// Wakes every waiter queued now. Any domain, as notify_one().
  void notify_all();
  /// True while some fiber or thread is queued waiting on it (a snapshot).
  [[nodiscard]] bool has_waiters() const;

 private:
  friend struct detail::TestAccess;  // reads binding_
  /// True when notified, false on timeout.
  /// (No static lock analysis: the Mutex is held on entry and exit, released inside.)
  bool wait_impl(std::unique_lock<Mutex>& lk, const char* op, std::int64_t deadline) WEFT_NO_TSA;

  detail::DomainBinding binding_;
  mutable detail::AnnotatedMutex qmu_;
  detail::WaiterQueue queue_ WEFT_GUARDED_BY(qmu_);
};

}  // namespace weft
