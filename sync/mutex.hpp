// weft/sync/mutex.hpp — Mutex, bound to one domain: a running caller may take a
// free lock (barging); waiters queue FIFO, and one that starves is handed the lock.
// Bound to an Evented runtime a waiter parks its fiber (any worker of that runtime);
// bound to Threaded it blocks its thread on a futex (detail::Waiter in both cases).
//
// state_: kLocked (owned, also while being handed over), kWaiters (the queue is
// non-empty, exact under qmu_), kWoken (a popped waiter was woken to compete and
// has not retried yet). An unlock with a live head waiter hands the lock over
// (kLocked stays set, FIFO) when the head is a fiber on the unlocker's worker (it
// runs at the unlocker's next switch) or starves (has lost the race for 1 ms since
// first woken); otherwise it releases the lock and wakes the head to compete
// (unless kWoken), and a loser re-queues at the front. The lock is thus never left
// owned by a fiber whose worker sleeps, or a thread not yet scheduled: no convoy.
// Invariants:
//  - Uncontended lock/unlock: a load and a CAS on state_ (acquire/release); no qmu_.
//  - The queue, kWaiters and kWoken change under qmu_ (but for the woken waiter's
//    CAS that takes a free lock and clears kWoken); an owner holding qmu_ sees
//    state_ frozen. No lost wake-up: kLocked clear and a queued waiter imply kWoken.
//  - Wakes come after qmu_ is released: a woken caller may destroy the Mutex at once.
//  - A waiter whose deadline or cancellation won its claim never owns the lock.
//  - owner_ is never reused (sync/owner.hpp): unlock by anyone else aborts, a
//    recursive lock throws resource_deadlock_would_occur, ending while holding it
//    is reported. Destroying it with waiters, or held by another live owner, aborts.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/tsa.hpp>
#include <weft/runtime/waiter.hpp>
#include <weft/sync/binding.hpp>
#include <weft/sync/owner.hpp>
#include <weft/sync/waiter_queue.hpp>

namespace weft {

class Condition;

namespace detail {

/// The Mutex's queue lock: held for a few instructions (link, unlink, hand-off),
/// never across a park. Cheaper than std::mutex on the contended hot path: one
/// exchange to take it, a plain release store to drop it. A waiter spins with
/// `pause`, then yields its thread (the holder may be a preempted worker thread).
class WEFT_CAPABILITY("mutex") SpinLock {
 public:
  void lock() noexcept WEFT_ACQUIRE() {
    // acquire: the previous holder's writes to the guarded queue are visible.
    if (!locked_.exchange(true, std::memory_order_acquire)) [[likely]]
      return;
    lock_contended();
  }
  void unlock() noexcept WEFT_RELEASE() { locked_.store(false, std::memory_order_release); }  // publishes them

 private:
  void lock_contended() noexcept;
  std::atomic<bool> locked_{false};
};

class WEFT_SCOPED_CAPABILITY SpinGuard {
 public:
  explicit SpinGuard(SpinLock& l) noexcept WEFT_ACQUIRE(l) : l_(l) { l_.lock(); }
  ~SpinGuard() WEFT_RELEASE() { l_.unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& l_;
};

}  // namespace detail

class WEFT_CAPABILITY("mutex") Mutex {
 public:
  /// Unbound: binds to the domain of its first locker.
  explicit Mutex(std::string_view name = {}) noexcept : binding_("weft::Mutex", name) {}
  /// Bound to `rt`: only fibers of `rt` may lock it.
  explicit Mutex(Runtime& rt, std::string_view name = {}) : binding_("weft::Mutex", rt, name) {}
  /// Bound to the Threaded side: only plain threads may lock it.
  explicit Mutex(ThreadedTag t, std::string_view name = {}) noexcept : binding_("weft::Mutex", t, name) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  ~Mutex();

  /// Blocks (fiber: parks; thread: futex) until owned. Throws CrossRuntimeError
  /// from another domain, std::system_error(resource_deadlock_would_occur) when the
  /// caller already owns it, FiberCancelled if the fiber is cancelled while waiting.
  void lock() WEFT_ACQUIRE() {
    binding_.check_acquire("lock()");
    const detail::OwnerRef me = detail::caller_owner();
    if (try_lock_fast(me)) [[likely]]
      return;
    lock_slow(me, -1, "lock()");
  }
  /// Never blocks. Same domain and recursion checks as lock().
  bool try_lock() WEFT_TRY_ACQUIRE(true) {
    binding_.check_acquire("try_lock()");
    const detail::OwnerRef me = detail::caller_owner();
    if (try_lock_fast(me)) return true;
    check_not_owner(me, "try_lock()");
    return false;
  }
  /// As lock(), but gives up after `d`: false when it timed out (not owned). A
  /// duration too long for int64 nanoseconds (hours::max()) waits without limit.
  template <class Rep, class Period>
  bool lock_for(std::chrono::duration<Rep, Period> d) WEFT_TRY_ACQUIRE(true) {
    binding_.check_acquire("lock_for()");
    const detail::OwnerRef me = detail::caller_owner();
    if (try_lock_fast(me)) return true;
    return lock_slow(me, detail::deadline_after(detail::saturating_ns(d)), "lock_for()");
  }
  /// Releases the mutex (or hands it to a waiter, see the top). From a non-owner or
  /// from another domain: prints why and aborts (it is noexcept).
  void unlock() noexcept WEFT_RELEASE() {
    binding_.check_noexcept("unlock()");
    const detail::OwnerRef me = detail::caller_owner();
    // relaxed: see owner_.
    if (owner_.load(std::memory_order_relaxed) != me.id) [[unlikely]]
      die_not_owner();
    forget_held(me);
    owner_.store(0, std::memory_order_relaxed);
    // relaxed load: the CAS below re-checks; a queued waiter sends us to the slow path.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while (!(s & kWaiters)) {
      // release: the critical section happens-before the next owner's acquire CAS.
      if (state_.compare_exchange_weak(s, s & ~kLocked, std::memory_order_release, std::memory_order_relaxed))
          [[likely]]
        return;
    }
    unlock_slow();
  }

  /// True when the caller (this fiber or thread) owns it.
  [[nodiscard]] bool owned_by_caller() const noexcept {
    return owner_.load(std::memory_order_relaxed) == detail::caller_owner().id;  // relaxed: see owner_
  }
  /// True while some fiber or thread waits to lock it (a snapshot).
  [[nodiscard]] bool has_waiters() const;

 private:
  friend struct detail::TestAccess;  // reads binding_
  friend class Condition;
  friend struct detail::HeldReport;
  struct Queued;

  static constexpr std::uint32_t kLocked = 1;
  static constexpr std::uint32_t kWaiters = 2;
  static constexpr std::uint32_t kWoken = 4;

  bool try_lock_fast(const detail::OwnerRef& me) noexcept {
    // A plain load first: a CAS on a locked mutex would fail anyway, and a failed
    // CAS is a locked instruction. relaxed: the CAS is what synchronizes.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while (!(s & kLocked)) {
      // acquire: pairs with the release that cleared kLocked; the previous owner's
      // writes are visible. Free with waiters queued: a running caller may barge.
      if (state_.compare_exchange_weak(s, s | kLocked, std::memory_order_acquire, std::memory_order_relaxed)) {
        took(me);
        return true;
      }
    }
    return false;
  }
  void took(const detail::OwnerRef& me) noexcept {
    owner_.store(me.id, std::memory_order_relaxed);  // relaxed: see owner_
    remember_held(me);
  }
  void remember_held(const detail::OwnerRef& me) noexcept {
    held_next_ = *me.held;
    *me.held = this;
  }
  void forget_held(const detail::OwnerRef& me) noexcept {
    if (*me.held == this) [[likely]]
      *me.held = held_next_;
    else
      forget_held_slow(me);
  }
  void forget_held_slow(const detail::OwnerRef& me) noexcept;
  /// check_not_owner, then the contended acquire (cancellable). False on timeout.
  bool lock_slow(const detail::OwnerRef& me, std::int64_t deadline, const char* op);
  /// Condition's re-lock after a wait: like lock(), but a cancellation does not
  /// abort it (the caller must own the mutex again before FiberCancelled unwinds).
  void lock_uncancellable();
  /// Queues, waits, competes until owned. `deadline` < 0: none. False on timeout;
  /// FiberCancelled when `cancellable` and the fiber is cancelled.
  bool acquire_slow(const detail::OwnerRef& me, std::int64_t deadline, bool cancellable);
  /// The woken waiter's retry: takes a free lock and clears kWoken in one CAS.
  bool take_woken() noexcept;
  void clear_waiters_if_empty() noexcept WEFT_REQUIRES(qmu_);
  void unlock_slow() noexcept;
  void check_not_owner(const detail::OwnerRef& me, const char* op) const;
  [[noreturn]] void die_not_owner() const noexcept;

  detail::DomainBinding binding_;
  // kLocked | kWaiters | kWoken, see the top.
  std::atomic<std::uint32_t> state_{0};
  // The holder's identity, 0 when free. relaxed everywhere: a caller compares it
  // only with its own identity, which only it (or an unlocker handing it the lock
  // before waking it) ever stores; messages read it as a snapshot.
  std::atomic<std::uint64_t> owner_{0};
  // Next on the holder's held list (sync/owner.hpp): touched only by the holder.
  Mutex* held_next_ = nullptr;
  mutable detail::SpinLock qmu_;
  detail::WaiterQueue queue_ WEFT_GUARDED_BY(qmu_);
};

/// Scoped ownership of a weft::Mutex (std::unique_lock<Mutex> works too, and is
/// what Condition::wait takes).
class WEFT_SCOPED_CAPABILITY MutexGuard {
 public:
  explicit MutexGuard(Mutex& m) WEFT_ACQUIRE(m) : m_(m) { m_.lock(); }
  ~MutexGuard() WEFT_RELEASE() { m_.unlock(); }
  MutexGuard(const MutexGuard&) = delete;
  MutexGuard& operator=(const MutexGuard&) = delete;

 private:
  Mutex& m_;
};

}  // namespace weft
