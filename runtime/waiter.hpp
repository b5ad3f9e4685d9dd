// weft/runtime/waiter.hpp — one blocking wait, by a fiber or by a plain thread, that
// exactly one party ends: a notifier, the deadline, or (fibers) cancellation.
//
// Protocol (the bridges and sync primitives are built on it):
//  - The waiting party constructs a Waiter on its own stack, publishes it (e.g.
//    links it into a primitive's queue under that primitive's lock), then calls
//    wait() once.
//  - Ending the wait is a claim: a CAS of state_ from waiting to notified /
//    timed_out / cancelled. Exactly one claim succeeds, and only its winner wakes
//    the waiter, so a wake is never lost and never doubled.
//  - A fiber waiter always parks in wait(), even when it was claimed before it
//    got there: the winner's unpark is then already on its way (processed only
//    after the fiber has switched out: publish-after-switch by construction).
//  - A thread waiter sleeps on state_ as a futex.
//  - After a timed-out or cancelled wait the Waiter may still be linked in the
//    primitive's queue: the primitive unlinks it (under its lock). A notifier that
//    pops a Waiter whose notify() returns false must pass the wake on to another.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

class FiberBase;

class Waiter {
 public:
  enum class Result : std::uint32_t { notified = 1, timed_out = 2, cancelled = 3 };

  /// Binds to the caller: the running fiber (parks) or the calling thread (futex).
  Waiter() noexcept;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  /// Waits until claimed. `deadline_ns`: absolute CLOCK_MONOTONIC, < 0 for none.
  /// Call once. A fiber's wait is cancellable (Result::cancelled); a thread's is not.
  Result wait(std::int64_t deadline_ns = -1);
  /// Any thread. True when this call won the claim (the waiter will wake).
  bool notify() noexcept;
  [[nodiscard]] bool is_fiber() const noexcept { return fiber_ != nullptr; }
  /// True once anyone has claimed the wait.
  [[nodiscard]] bool claimed() const noexcept { return state_.load(std::memory_order_acquire) != kWaiting; }

  // Intrusive links and a payload slot for the primitive that queues this waiter
  // (guarded by that primitive's lock).
  Waiter* next = nullptr;
  Waiter* prev = nullptr;
  void* payload = nullptr;

 private:
  static constexpr std::uint32_t kWaiting = 0;
  bool claim(Result r) noexcept;

  // acq_rel on the claim: the winner's writes before it (e.g. a handed-over
  // value) are visible to the waiter after it wakes (acquire load in wait()).
  std::atomic<std::uint32_t> state_{kWaiting};
  FiberBase* fiber_;
};

}  // namespace weft::detail
