// weft/sync/mutex.hpp — Mutex: a FIFO mutex with direct hand-off, bound to one
// domain. Bound to an Evented runtime a waiter parks its fiber (on any worker of
// that runtime); bound to Threaded it blocks its OS thread on a futex (through
// detail::Waiter in both cases).
//
// States of state_ (an atomic word; the queue below is under qmu_):
//   0 unlocked; 1 locked, nobody queued; 2 locked, waiters may be queued.
// Invariants:
//  - Uncontended lock is one CAS 0 -> 1 (acquire); uncontended unlock one CAS
//    1 -> 0 (release). No syscall, no allocation, no qmu_. qmu_ is a spin lock
//    held only for queue surgery (never across a park or a futex wait).
//  - A waiter queues itself under qmu_ only after setting state_ to 2 there, so an
//    unlocker that sees 2 takes qmu_ and finds it. Every push, pop and the 2 -> 1
//    (last waiter) / 2 -> 0 (nobody live) transitions happen under qmu_.
//  - Unlock with waiters hands ownership to the head waiter: state_ stays locked,
//    the waiter returns owning the mutex and never re-contends (no barging, FIFO).
//    If its claim fails (its deadline or cancellation claimed it first), the
//    unlocker passes ownership on to the next one, or unlocks. The claim is made
//    under qmu_ and the wake after qmu_ is released, so the new owner may unlock
//    and destroy the Mutex as soon as it returns from lock().
//  - A waiter that timed out or was cancelled unlinks itself under qmu_ if it is
//    still queued; if it was already popped, the popper's notify() failed and the
//    popper moved on: the mutex stays consistent either way.
//  - owner_ is the holder's identity, never reused (sync/owner.hpp): unlock by
//    anyone else aborts, a recursive lock throws resource_deadlock_would_occur
//    before blocking. The holder keeps the Mutex on its held list, so ending while
//    holding it is reported by name.
//  - Destroying a Mutex with queued waiters, or one that another live fiber or
//    thread holds, aborts with a message.
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
  explicit Mutex(std::string_view label = {}) noexcept : binding_("weft::Mutex", label) {}
  /// Bound to `rt`: only fibers of `rt` may lock it.
  explicit Mutex(Runtime& rt, std::string_view label = {}) : binding_("weft::Mutex", rt, label) {}
  /// Bound to the Threaded side: only plain threads may lock it.
  explicit Mutex(ThreadedTag t, std::string_view label = {}) noexcept : binding_("weft::Mutex", t, label) {}
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
    lock_slow(me, -1);
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
    return lock_slow(me, detail::deadline_after(detail::saturating_ns(d)));
  }
  /// Hands the mutex to the oldest waiter, or unlocks it. From a non-owner or from
  /// another domain: prints why and aborts (it is noexcept).
  void unlock() noexcept WEFT_RELEASE() {
    binding_.check_noexcept("unlock()");
    const detail::OwnerRef me = detail::caller_owner();
    // relaxed: see owner_.
    if (owner_.load(std::memory_order_relaxed) != me.id) [[unlikely]]
      die_not_owner();
    forget_held(me);
    owner_.store(0, std::memory_order_relaxed);
    std::uint32_t one = 1;
    // release: the critical section happens-before the next owner's acquire CAS.
    // (The relaxed load skips a CAS that would fail when waiters are queued.)
    if (state_.load(std::memory_order_relaxed) == 1 &&
        state_.compare_exchange_strong(one, 0, std::memory_order_release, std::memory_order_relaxed)) [[likely]]
      return;
    unlock_slow();
  }

  /// True when the caller (this fiber or thread) owns it.
  [[nodiscard]] bool owned_by_caller() const noexcept {
    return owner_.load(std::memory_order_relaxed) == detail::caller_owner().id;  // relaxed: see owner_
  }
  /// True while some fiber or thread is queued waiting for it (a snapshot).
  [[nodiscard]] bool has_waiters() const;
  [[nodiscard]] const detail::DomainBinding& binding() const noexcept { return binding_; }

 private:
  friend class Condition;
  friend struct detail::HeldReport;
  struct Queued;

  bool try_lock_fast(const detail::OwnerRef& me) noexcept {
    // A plain load first: under contention the CAS would fail anyway, and a failed
    // CAS is a locked instruction. relaxed: the CAS below is what synchronizes.
    if (state_.load(std::memory_order_relaxed) != 0) return false;
    std::uint32_t zero = 0;
    // acquire: pairs with the release in unlock(); the previous owner's writes are visible.
    if (state_.compare_exchange_strong(zero, 1, std::memory_order_acquire, std::memory_order_relaxed)) {
      took(me);
      return true;
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
  /// Queues and waits. `deadline` < 0: none. False on timeout. May throw.
  bool lock_slow(const detail::OwnerRef& me, std::int64_t deadline);
  /// Condition's re-lock after a wait: like lock(), but a cancellation does not
  /// abort it (the caller must own the mutex again before FiberCancelled unwinds).
  void lock_uncancellable();
  /// One wait in the queue: notified (owned), timed_out or cancelled (not owned).
  detail::Waiter::Result wait_in_queue(const detail::OwnerRef& me, std::int64_t deadline);
  void unlock_slow() noexcept;
  void check_not_owner(const detail::OwnerRef& me, const char* op) const;
  [[noreturn]] void die_not_owner() const noexcept;

  detail::DomainBinding binding_;
  // See the top: 0 unlocked, 1 locked, 2 locked with waiters.
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
