// weft/sync/waiter_queue.hpp — the intrusive FIFO of detail::Waiters that every
// blocking primitive (Channel, Mutex, Event, FutexCounter, Semaphore, Condition)
// keeps its blocked callers in.
//
// Invariants: the queue and the links of the Waiters in it (Waiter::next/prev)
// are guarded by the owning primitive's lock; the queue never allocates (each
// Waiter lives on its waiting caller's stack) and never wakes anyone: the owner
// pops a Waiter and notify()s it (see runtime/waiter.hpp for the claim protocol).
#pragma once

#include <weft/runtime/waiter.hpp>

namespace weft::detail {

/// Intrusive FIFO of Waiters through Waiter::next/prev (guarded by the owner's lock).
class WaiterQueue {
 public:
  /// Appends `w`; a `w` already linked here aborts with a message.
  void push_back(Waiter* w) noexcept;
  /// Puts `w` at the head (a Mutex waiter that lost the race after its wake
  /// keeps its place); a `w` already linked here aborts with a message.
  void push_front(Waiter* w) noexcept;
  /// Null when empty. The popped waiter's links are cleared.
  Waiter* pop_front() noexcept;
  [[nodiscard]] Waiter* front() const noexcept { return head_; }
  /// True while `w` is linked here (O(1): a linked waiter has a prev or is head).
  [[nodiscard]] bool contains(const Waiter* w) const noexcept { return w->prev != nullptr || head_ == w; }
  void erase(Waiter* w) noexcept;
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

}  // namespace weft::detail
