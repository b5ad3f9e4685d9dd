// weft/runtime/uring/inbox.hpp — the MPSC hand-off of fibers into a worker, and the
// coalesced wake that goes with it.
//
// Invariants:
//  - Any thread may push(); only the owning worker's thread calls take_all().
//  - A fiber is in at most one inbox at a time (it is created, or parked and claimed
//    by exactly one waker), so its intrusive inbox_next_ link is free to use.
//    While it is in an inbox that link is never null (the oldest entry points at
//    end_mark()); the worker nulls it when it takes the fiber. So a second push of
//    a fiber still in an inbox (a double wake, a node re-initialised while queued:
//    incident 000's class) is caught by one pointer test and aborts naming it,
//    instead of turning the list into a cycle.
//  - Wake state: running -> notified (a push while the worker runs; no syscall),
//    sleeping -> notified (a push while it sleeps: the pusher must wake it).
//    The worker announces `sleeping` and re-checks the inbox before blocking, so a
//    push that lands between its last check and its sleep is never lost:
//    either it sees the push, or the pusher sees `sleeping` and wakes it.
#pragma once

#include <atomic>
#include <cstdint>

#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/fiber.hpp>

namespace weft::detail {

/// Aborts: `f` was pushed into `list` while still linked there. Out of line and
/// cold: the push paths keep only the pointer test.
[[noreturn, gnu::cold, gnu::noinline]] inline void die_linked_twice(const char* list, const FiberBase* f) noexcept {
  fatalf(
      "scheduler invariant violated: fiber '%s' (id %llu) pushed into %s while already linked there (a double "
      "wake, or a node re-initialised while queued)",
      f->raw_name()[0] ? f->raw_name() : "(unnamed)", static_cast<unsigned long long>(f->id()), list);
}

class Inbox {
 public:
  enum WakeState : std::uint32_t { kRunning = 0, kNotified = 1, kSleeping = 2 };

  /// The link of the oldest fiber in the inbox: not null, never dereferenced.
  static FiberBase* end_mark() noexcept { return reinterpret_cast<FiberBase*>(alignof(FiberBase)); }

  /// Pushes `f`; returns true when the caller must wake the worker (it was asleep).
  /// `f` must not be in an inbox (checked: aborts naming it).
  bool push(FiberBase* f) noexcept {
    if (f->inbox_next_ != nullptr) die_linked_twice("a worker's inbox", f);
    FiberBase* head = head_.load(std::memory_order_relaxed);
    do {
      f->inbox_next_ = head ? head : end_mark();
      // seq_cst (release would do for the hand-over itself: the worker's acquire
      // in take_all() then sees inbox_next_ and the fiber): it puts the push in the
      // single total order with the wake-state accesses below and in
      // prepare_sleep(), whose emptiness re-check must not miss it even after the
      // worker overwrote our kNotified with kRunning. Same instruction on x86.
    } while (!head_.compare_exchange_weak(head, f, std::memory_order_seq_cst, std::memory_order_relaxed));
    // seq_cst pairs with the worker's seq_cst exchange in prepare_sleep(): of the
    // push and the worker's re-check, at least one sees the other.
    return state_.exchange(kNotified, std::memory_order_seq_cst) == kSleeping;
  }

  /// Takes every pushed fiber, oldest first, linked by inbox_next_ up to a null
  /// (owner thread only). The caller must null each fiber's inbox_next_ as it
  /// takes it (before the fiber can be pushed again).
  FiberBase* take_all() noexcept {
    // A plain load first: an empty inbox (the common case) costs no locked op.
    if (head_.load(std::memory_order_relaxed) == nullptr) return nullptr;
    FiberBase* lifo = head_.exchange(nullptr, std::memory_order_acquire);
    FiberBase* fifo = nullptr;
    while (lifo != end_mark()) {
      FiberBase* next = lifo->inbox_next_;
      lifo->inbox_next_ = fifo;
      fifo = lifo;
      lifo = next;
    }
    return fifo;
  }

  [[nodiscard]] bool empty() const noexcept { return head_.load(std::memory_order_acquire) == nullptr; }

  /// Owner, before blocking: announce sleep. Returns false when a push arrived
  /// since the last mark_running() (do not sleep; drain instead).
  bool prepare_sleep() noexcept {
    if (state_.exchange(kSleeping, std::memory_order_seq_cst) == kNotified) {
      state_.store(kRunning, std::memory_order_relaxed);
      return false;
    }
    if (head_.load(std::memory_order_seq_cst) != nullptr) {  // a push raced with the exchange above
      state_.store(kRunning, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  /// Owner, after waking or before draining: pushes from now on need no syscall.
  /// Only a sleeping (or notified) state needs the store; a running worker that
  /// already says so skips the locked instruction.
  void mark_running() noexcept {
    if (state_.load(std::memory_order_relaxed) != kRunning) state_.store(kRunning, std::memory_order_seq_cst);
  }

  /// Pushers between their push and the end of their wake (Worker::push_inbox):
  /// once a push is seen, its fiber may run and end and its runtime be destroyed
  /// while the pusher still touches the worker; the worker's destructor waits for 0.
  /// On head_'s cache line, which the push writes anyway.
  std::atomic<std::uint32_t>& pushers() noexcept { return pushers_; }

 private:
  alignas(64) std::atomic<FiberBase*> head_{nullptr};
  std::atomic<std::uint32_t> pushers_{0};
  alignas(64) std::atomic<std::uint32_t> state_{kRunning};
};

}  // namespace weft::detail
