// weft/runtime/fiber/timer_node.hpp — a deadline as a worker's timer heap holds it:
// an intrusive node that its owner embeds (a Timer, a Waiter's deadline, a sleep).
//
// Invariants:
//  - A node is queued iff heap_index_ != kNotQueued; only the heap writes
//    heap_index_, and only on the thread of the worker that armed the node.
//  - fire_ runs after the node has left the heap (it may re-arm it); retire_ runs
//    instead when the worker ends with the node still queued.
#pragma once

#include <cstdint>

namespace weft::detail {

struct TimerNode {
  static constexpr std::uint32_t kNotQueued = UINT32_MAX;
  std::int64_t deadline_ns = 0;  ///< CLOCK_MONOTONIC nanoseconds
  std::uint32_t heap_index_ = kNotQueued;
  void (*fire_)(TimerNode*) = nullptr;
  /// Called by the heap's retire_all() after the node left it for good (its worker ends).
  void (*retire_)(TimerNode*) = nullptr;
  [[nodiscard]] bool queued() const { return heap_index_ != kNotQueued; }
};

}  // namespace weft::detail
