// weft/runtime/waiter.hpp — one blocking wait, by a fiber or by a plain thread, that
// exactly one party ends: a notifier, the deadline, or (fibers) cancellation.
//
// Protocol (the bridges and sync primitives are built on it):
//  - The waiting party constructs a Waiter on its own stack, publishes it (e.g.
//    links it into a primitive's queue under that primitive's lock), then calls
//    wait() once.
//  - Ending the wait is a claim: a CAS of state_ from waiting to notifying /
//    timed_out / cancelled. Exactly one claim succeeds, and only its winner wakes
//    the waiter, so a wake is never lost and never doubled.
//  - A notify is split in two: claim_notify() (under the primitive's lock: the
//    primitive may then hand its data to the waiter) and wake() (after the lock
//    is released: publishes `notified` and wakes). The waiter does not return
//    before wake(), and wake() touches only the Waiter, so a woken caller may
//    destroy the primitive as soon as its call returns: nobody still holds or
//    is about to release the primitive's lock. WakeList does the second half
//    at scope exit; notify() does both at once.
//  - A fiber waiter always parks in wait(), even when it was claimed before it
//    got there: the winner's unpark is then already on its way (processed only
//    after the fiber has switched out: publish-after-switch by construction).
//  - A thread waiter sleeps on state_ as a futex; a deadline that passes while a
//    notify is between its two halves waits for wake() (a few instructions).
//  - After a timed-out or cancelled wait the Waiter may still be linked in the
//    primitive's queue: the primitive unlinks it (under its lock). A notifier that
//    pops a Waiter whose claim fails must pass the wake on to another.
#pragma once

#include <atomic>
#include <cstdint>

#include <weft/runtime/fiber/park.hpp>

namespace weft::detail {

class FiberBase;

class Waiter {
 public:
  enum class Result : std::uint32_t { notified = 1, timed_out = 2, cancelled = 3 };

  /// Binds to the caller: the running fiber (parks) or the calling thread (futex).
  Waiter() noexcept;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  /// Waits until claimed and, for a notify, woken. `deadline_ns`: absolute
  /// CLOCK_MONOTONIC, < 0 for none. Call once. A fiber's wait is cancellable
  /// (Result::cancelled); a thread's is not.
  /// Inline: a resumed fiber returns through every frame between its caller and
  /// the switch, and each such return is mispredicted; this keeps one fewer.
  Result wait(std::int64_t deadline_ns = -1) {
    if (!fiber_) [[unlikely]]
      return wait_thread(deadline_ns);
    return wait_fiber(deadline_ns);
  }
  /// wait(), where the notifier has committed to notifying (an accepted pool task
  /// always does): the fiber is owed a wake whatever claims the wait, so a
  /// stopping worker waits for it rather than abandoning a fiber that waits here
  /// with its cancellation deferred (fs/ on the pool, for the buffer's sake).
  Result wait_committed(std::int64_t deadline_ns = -1) {
    if (fiber_) fiber_->wake_owed_ = true;  // reset when it resumes
    return wait(deadline_ns);
  }
  /// Any thread: claim_notify() then wake(). True when this call won the claim.
  bool notify() noexcept {
    if (!claim_notify()) return false;
    wake();
    return true;
  }
  /// First half of a notify (any thread, typically under the primitive's lock):
  /// true when this call won the claim. The caller must then call wake() exactly
  /// once; until it does, the waiter stays parked and its Waiter stays valid.
  bool claim_notify() noexcept { return claim(kNotifying); }
  /// claim_notify() for a caller on the waiting fiber's own worker thread that
  /// holds the lock of the one queue linking it. Every other claimant (that lock's
  /// holders, the fiber's deadline, its cancellation) then runs on this thread or
  /// waits for the lock, so nothing interleaves: a load and a store, no locked op.
  bool claim_notify_on_own_worker() noexcept {
    // relaxed: every claimant of this wait is ordered with us by this thread's
    // program order or by the queue's lock.
    if (state_.load(std::memory_order_relaxed) != kWaiting) return false;
    state_.store(kNotifying, std::memory_order_relaxed);
    return true;
  }
  /// Second half: publishes `notified` and wakes the waiter. Touches nothing but
  /// this Waiter (and the fiber or futex it names); the waiter may be gone as
  /// soon as it returns.
  void wake() noexcept;
  [[nodiscard]] bool is_fiber() const noexcept { return fiber_ != nullptr; }
  /// True once anyone has claimed the wait.
  [[nodiscard]] bool claimed() const noexcept { return state_.load(std::memory_order_acquire) != kWaiting; }

  // Intrusive links and a payload slot for the primitive that queues this waiter
  // (guarded by that primitive's lock; `next` is reused by WakeList once popped).
  Waiter* next = nullptr;
  Waiter* prev = nullptr;
  void* payload = nullptr;

 private:
  static constexpr std::uint32_t kWaiting = 0;
  static constexpr std::uint32_t kNotifying = 4;  // claimed by a notifier, wake() pending
  bool claim(std::uint32_t to) noexcept;
  Result wait_thread(std::int64_t deadline_ns);
  [[gnu::always_inline]] Result wait_fiber(std::int64_t deadline_ns) {
    if (deadline_ns >= 0) return wait_fiber_deadline(deadline_ns);
    park_running("wait", &cancel_hook, this);
    // Resumed only by the claim's winner: a notifier after wake(), so the state is final.
    return static_cast<Result>(state_.load(std::memory_order_acquire));
  }
  Result wait_fiber_deadline(std::int64_t deadline_ns);
  static void cancel_hook(FiberBase* f, void* arg) noexcept;

  // acq_rel on the claim; release on wake()'s store of `notified`: the notifier's
  // writes before it (e.g. a handed-over value) are visible to the waiter after it
  // wakes (acquire load in wait()).
  std::atomic<std::uint32_t> state_{kWaiting};
  FiberBase* fiber_;
};

/// Waiters a primitive claimed under its lock, woken when the list goes out of
/// scope. Declare it before the lock guard, so it is destroyed after the unlock.
class WakeList {
 public:
  WakeList() = default;
  WakeList(const WakeList&) = delete;
  WakeList& operator=(const WakeList&) = delete;
  ~WakeList() { wake_all(); }

  /// Claims `w` for a notify (it must be unlinked from its queue). True when won:
  /// `w` is woken later by this list; false: its deadline or cancellation won.
  bool claim(Waiter* w) noexcept {
    if (!w->claim_notify()) return false;
    w->next = nullptr;
    if (tail_)
      tail_->next = w;
    else
      head_ = w;
    tail_ = w;
    return true;
  }
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  /// Wakes the claimed waiters now, oldest first.
  void wake_all() noexcept {
    for (Waiter* w = head_; w;) {
      Waiter* next = w->next;  // read first: a woken waiter may return at once
      w->wake();
      w = next;
    }
    head_ = tail_ = nullptr;
  }

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

}  // namespace weft::detail
