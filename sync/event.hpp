// weft/sync/event.hpp — Event: a manual- or auto-reset event with any number of
// waiters, bound to one domain (fibers park / threads block on a futex).
//
// State: set_ (atomic flag) and a FIFO of Waiters, both changed only under qmu_;
// set_ is also read lock-free by wait()'s fast path (and, auto-reset, consumed by
// a lock-free CAS true -> false).
// Invariants:
//  - Lifetime: a wait() that returned may destroy the Event at once, also while
//    the set() that released it is still on its way out. set() claims its waiters
//    under qmu_ and wakes them only after unlocking (detail::WakeList), and a
//    waiter that found set_ raised without queueing runs the destructor, which
//    takes qmu_ and so waits for that set() to unlock. Likewise a set() that
//    returned may destroy it while the waiters it woke are still waking.
//  - Manual reset: set() raises set_ and claims every queued waiter;
//    those waiters are released for good: a reset() that follows, even before they
//    have run, does not take that back (incident 003: reset() with waiters parked
//    is legal and defined). Waiters that queue after reset() wait for the next set().
//  - Auto reset: set() hands the signal to exactly one live waiter (set_ stays
//    false) or, when none waits, raises set_ for the next wait() to consume.
//  - A waiter queues only after re-checking set_ under qmu_, so a set() cannot
//    slip between its check and its queueing (no lost wake-up); each waiter is
//    woken at most once (the Waiter claim), so there is no double wake.
//  - Destroying an Event with queued waiters aborts with a message.
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

class Event {
 public:
  enum class Mode : std::uint8_t { manual_reset, auto_reset };

  /// Unbound: binds to the domain of its first waiter.
  explicit Event(Mode mode = Mode::manual_reset, std::string_view name = {}) noexcept
      : binding_("weft::Event", name), mode_(mode) {}
  Event(Runtime& rt, Mode mode = Mode::manual_reset, std::string_view name = {})
      : binding_("weft::Event", rt, name), mode_(mode) {}
  Event(ThreadedTag t, Mode mode = Mode::manual_reset, std::string_view name = {}) noexcept
      : binding_("weft::Event", t, name), mode_(mode) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event();

  /// Manual: releases every waiter and stays set. Auto: releases one waiter, or
  /// stays set until one wait() consumes it. Never blocks: accepted from any domain
  /// (any thread, any fiber of any runtime; see binding.hpp), and does not bind.
  void set();
  /// Clears the flag; waiters already released by set() stay released. Any domain.
  void reset();
  /// Returns once set (auto-reset: consumes the signal). Throws CrossRuntimeError
  /// from another domain, FiberCancelled if the fiber is cancelled while waiting.
  void wait() {
    binding_.check_acquire("wait()");
    if (try_consume()) return;
    wait_slow(-1);
  }
  /// As wait(); false when `d` passed first (`d` saturates: hours::max() means no
  /// deadline).
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    binding_.check_acquire("wait_for()");
    if (try_consume()) return true;
    return wait_slow(detail::deadline_after(detail::saturating_ns(d)));
  }
  /// A snapshot of the flag (any thread).
  [[nodiscard]] bool is_set() const noexcept { return set_.load(std::memory_order_acquire); }  // see set_
  [[nodiscard]] Mode mode() const noexcept { return mode_; }
  /// True while some fiber or thread is queued waiting on it (a snapshot).
  [[nodiscard]] bool has_waiters() const;
  /// How many fibers and threads are queued waiting on it (a snapshot).
  [[nodiscard]] std::size_t waiting() const;

 private:
  friend struct detail::TestAccess;  // reads binding_
  bool try_consume() noexcept {
    // acquire: pairs with set()'s release store; the setter's writes are visible.
    if (mode_ == Mode::manual_reset) return set_.load(std::memory_order_acquire);
    bool expected = true;
    return set_.compare_exchange_strong(expected, false, std::memory_order_acquire, std::memory_order_relaxed);
  }
  bool wait_slow(std::int64_t deadline);

  detail::DomainBinding binding_;
  const Mode mode_;
  // Written under qmu_ (release), read lock-free (acquire): a waiter that sees it
  // set sees what the setter wrote before set().
  std::atomic<bool> set_{false};
  mutable detail::AnnotatedMutex qmu_;
  detail::WaiterQueue queue_ WEFT_GUARDED_BY(qmu_);
  std::size_t queued_ WEFT_GUARDED_BY(qmu_) = 0;  // queue_'s length
};

}  // namespace weft
