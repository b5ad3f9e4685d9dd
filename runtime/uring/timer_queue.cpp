// runtime/uring/timer_queue.cpp — binary min-heap with intrusive indices.
#include <weft/runtime/error.hpp>
#include <weft/runtime/uring/timer_queue.hpp>

namespace weft::detail {

namespace {
[[noreturn]] void corrupt(const char* what) {
  fatalf("timer queue invariant violated: %s", what);
}
}  // namespace

void TimerQueue::push(TimerNode* n) {
  if (n->queued()) corrupt("push of a node that is already queued");
  heap_.push_back(n);
  auto i = static_cast<std::uint32_t>(heap_.size() - 1);
  n->heap_index_ = i;
  sift_up(i);
}

void TimerQueue::erase(TimerNode* n) {
  std::uint32_t i = n->heap_index_;
  if (i >= heap_.size() || heap_[i] != n) corrupt("erase of a node that is not queued here");
  TimerNode* last = heap_.back();
  heap_.pop_back();
  n->heap_index_ = TimerNode::kNotQueued;
  if (last == n) return;
  place(i, last);
  sift_up(i);
  sift_down(last->heap_index_);
}

void TimerQueue::rearm(TimerNode* n, std::int64_t deadline_ns) {
  if (n->queued()) erase(n);
  n->deadline_ns = deadline_ns;
  push(n);
}

std::size_t TimerQueue::fire_due(std::int64_t now_ns) {
  std::size_t fired = 0;
  while (!heap_.empty() && heap_[0]->deadline_ns <= now_ns) {
    TimerNode* n = heap_[0];
    erase(n);
    ++fired;
    n->fire_(n);  // may re-arm n or touch other nodes: the heap is consistent here
  }
  return fired;
}

void TimerQueue::retire_all() {
  std::vector<TimerNode*> nodes;
  nodes.swap(heap_);  // a hook that touches the queue finds it empty
  for (TimerNode* n : nodes) {
    n->heap_index_ = TimerNode::kNotQueued;
    if (n->retire_) n->retire_(n);
  }
}

void TimerQueue::sift_up(std::uint32_t i) {
  TimerNode* n = heap_[i];
  while (i > 0) {
    std::uint32_t parent = (i - 1) / 2;
    if (heap_[parent]->deadline_ns <= n->deadline_ns) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, n);
}

void TimerQueue::sift_down(std::uint32_t i) {
  const auto size = static_cast<std::uint32_t>(heap_.size());
  TimerNode* n = heap_[i];
  for (;;) {
    std::uint32_t child = 2 * i + 1;
    if (child >= size) break;
    if (child + 1 < size && heap_[child + 1]->deadline_ns < heap_[child]->deadline_ns) ++child;
    if (heap_[child]->deadline_ns >= n->deadline_ns) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, n);
}

}  // namespace weft::detail
