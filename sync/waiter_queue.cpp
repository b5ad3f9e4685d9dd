// sync/waiter_queue.cpp — WaiterQueue's list operations (see waiter_queue.hpp).
#include <weft/runtime/error.hpp>
#include <weft/sync/waiter_queue.hpp>

namespace weft::detail {

namespace {
[[noreturn, gnu::cold, gnu::noinline]] void die_linked_twice(bool front) noexcept {
  fatal(front ? "waiter queue invariant violated: push_front of a Waiter already in this queue (a wait published "
                "twice: its links would be rewritten while linked)"
              : "waiter queue invariant violated: push_back of a Waiter already in this queue (a wait published "
                "twice: its links would be rewritten while linked)");
}
}  // namespace

void WaiterQueue::push_back(Waiter* w) noexcept {
  if (contains(w)) die_linked_twice(false);
  w->next = nullptr;
  w->prev = tail_;
  if (tail_)
    tail_->next = w;
  else
    head_ = w;
  tail_ = w;
}

void WaiterQueue::push_front(Waiter* w) noexcept {
  if (contains(w)) die_linked_twice(true);
  w->prev = nullptr;
  w->next = head_;
  if (head_)
    head_->prev = w;
  else
    tail_ = w;
  head_ = w;
}

Waiter* WaiterQueue::pop_front() noexcept {
  Waiter* w = head_;
  if (!w) return nullptr;
  head_ = w->next;
  if (head_)
    head_->prev = nullptr;
  else
    tail_ = nullptr;
  w->next = w->prev = nullptr;  // contains() is false from here on
  return w;
}

void WaiterQueue::erase(Waiter* w) noexcept {
  if (w->prev)
    w->prev->next = w->next;
  else
    head_ = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    tail_ = w->prev;
  w->next = w->prev = nullptr;
}

}  // namespace weft::detail
