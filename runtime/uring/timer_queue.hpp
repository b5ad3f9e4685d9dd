// weft/runtime/uring/timer_queue.hpp — a worker's timers: an intrusive binary min-heap.
//
// Invariants:
//  - Owned by one worker; only its thread touches the heap or any node in it.
//  - A node is queued iff heap_index_ != kNotQueued; push() of a queued node and
//    erase() of an unqueued node are checked errors (the re-arm-while-queued bug of
//    incident 000 cannot happen silently).
//  - fire_ is called after the node has left the heap, so it may re-arm the node.
//  - At the worker thread's end retire_all() empties the heap: every node still
//    queued leaves it unfired and its retire_ hook (if any) lets go of the worker.
#pragma once

#include <cstdint>
#include <vector>

#include <weft/runtime/fiber/timer_node.hpp>
#include <weft/runtime/time.hpp>

namespace weft::detail {

class TimerQueue {
 public:
  void push(TimerNode* n);
  void erase(TimerNode* n);
  /// Moves `n` to a new deadline whether or not it is queued.
  void rearm(TimerNode* n, std::int64_t deadline_ns);
  [[nodiscard]] bool empty() const { return heap_.empty(); }
  [[nodiscard]] std::size_t size() const { return heap_.size(); }
  [[nodiscard]] std::int64_t next_deadline() const { return heap_.empty() ? INT64_MAX : heap_[0]->deadline_ns; }
  /// Pops and fires every node due at `now_ns`; returns how many fired.
  std::size_t fire_due(std::int64_t now_ns);
  /// Unqueues every node without firing it and calls its retire_ hook (the
  /// worker's thread ends: nothing will fire them).
  void retire_all();

 private:
  void sift_up(std::uint32_t i);
  void sift_down(std::uint32_t i);
  void place(std::uint32_t i, TimerNode* n) {
    heap_[i] = n;
    n->heap_index_ = i;
  }
  std::vector<TimerNode*> heap_;
};

}  // namespace weft::detail
