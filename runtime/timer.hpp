// weft/runtime/timer.hpp — a re-armable timer that is safe in every state.
//
// States: idle -> armed (arm/reset) -> idle (expiry, cancel, its runtime's end).
// arm/reset/cancel are legal in every state, any number of times. There is no third
// "queued but being re-initialised" state: re-arming an armed timer moves its heap
// entry, so an expiry is never lost or duplicated (the failure of incident 000).
// Accounting: every arm() either ends in exactly one expiry, or is superseded by a
// later reset()/cancel() that returns true. So arms == expirations + supersedes.
// Binding: an armed Timer belongs to the worker that armed it; reset/cancel/wait
// from a fiber of another worker or runtime throw CrossRuntimeError naming both,
// as do reset/wait (and cancel of an armed Timer) from a plain thread. An idle
// Timer belongs to no worker: the next call binds it to the caller's worker, so it
// moves between workers (and runtimes) by being idle, and cancel() of an idle
// Timer returns false from any thread. When a worker's thread ends (shutdown) every
// Timer still armed on it is disarmed without firing (its waiters were cancelled
// with their fibers): a Timer that outlives its runtime is idle, destroyable
// anywhere, and can be armed again by a fiber of another runtime.
// Durations and time points saturate: reset(hours::max()) means "never".
// The expiry callback runs on the worker in scheduler context: it must not block.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include <weft/runtime/fiber/timer_node.hpp>
#include <weft/runtime/this_fiber.hpp>

namespace weft {

namespace detail {
class Worker;
}

class Timer {
 public:
  using Callback = std::function<void()>;

  Timer() = default;
  explicit Timer(Callback on_expire) : cb_(std::move(on_expire)) {}
  /// Cancels a pending expiry. An armed Timer must be destroyed on its worker (a
  /// message and abort otherwise); an idle one anywhere.
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  /// Arms the timer to expire after `d` (re-arms it if armed).
  template <class Rep, class Period>
  void arm(std::chrono::duration<Rep, Period> d) {
    (void)reset(d);
  }
  /// Arms to expire after `d` (saturated: too long for int64 nanoseconds means
  /// never; zero or negative means at the next tick); true when a pending expiry
  /// was superseded.
  template <class Rep, class Period>
  bool reset(std::chrono::duration<Rep, Period> d) {
    return reset_after(detail::saturating_ns(d));
  }
  /// Arms to expire at `deadline` (saturated); true when a pending expiry was superseded.
  template <class Dur>
  bool reset_at(std::chrono::time_point<std::chrono::steady_clock, Dur> deadline) {
    return reset_at_ns(detail::steady_to_ns(deadline));
  }
  /// Disarms; true when a pending expiry was removed. Waiters wake with false.
  bool cancel();
  [[nodiscard]] bool armed() const { return node_.queued(); }
  /// Expiries so far.
  [[nodiscard]] std::uint64_t expirations() const { return expirations_; }
  /// Parks the calling fiber until the next expiry (true) or a cancel (false);
  /// false at once when not armed. Throws FiberCancelled if the fiber is cancelled.
  bool wait();

 private:
  struct Node : detail::TimerNode {
    Timer* owner = nullptr;
  };
  struct Waiter;
  void bind(const char* op);
  bool reset_after(std::chrono::nanoseconds d);
  bool reset_at_ns(std::int64_t deadline_ns);
  bool rearm_ns(std::int64_t deadline_ns);
  void wake_all(bool fired);
  static void on_fire(detail::TimerNode* n);
  static void on_retire(detail::TimerNode* n);

  Node node_;
  detail::Worker* worker_ = nullptr;  // the worker it is armed on; stale (unused) while idle
  Callback cb_;
  std::uint64_t expirations_ = 0;
  Waiter* waiters_ = nullptr;
};

}  // namespace weft
