// runtime/uring/op_table.cpp — slot allocation and stale-CQE detection.
#include <weft/runtime/error.hpp>
#include <weft/runtime/uring/op_table.hpp>

namespace weft::detail {

std::uint32_t OpTable::acquire(std::uint8_t cqes) {
  if (free_head_ == kNone) {
    chunks_.push_back(std::make_unique<OpSlot[]>(kChunk));
    OpSlot* c = chunks_.back().get();
    for (std::uint32_t i = 0; i < kChunk; ++i) c[i].next_free = (i + 1 < kChunk) ? capacity_ + i + 1 : kNone;
    free_head_ = capacity_;
    capacity_ += kChunk;
    WEFT_ASSERT(capacity_ <= kSlotMask, "op table exceeded 2^31 slots");
  }
  std::uint32_t idx = free_head_;
  OpSlot& s = at(idx);
  WEFT_ASSERT(s.pending == 0 && s.next_free != kInFlight,
              "op table invariant violated: a slot in flight was on the free list");
  free_head_ = s.next_free;
  s.next_free = kInFlight;
  s.pending = cqes;
  s.cancel_sent = false;
  s.cancel_deferred = false;
  s.res = 0;
  s.timer_fired = false;
  s.cqe_flags = 0;
  s.waiter = nullptr;
  s.prep = nullptr;
  s.prep_arg = nullptr;
  ++in_flight_;
  return idx;
}

bool OpTable::lookup(std::uint64_t ud, std::uint32_t* idx, bool* timeout_cqe) {
  std::uint64_t slot = ud & kSlotMask;
  if (slot == 0 || slot > capacity_) return false;
  std::uint32_t i = static_cast<std::uint32_t>(slot - 1);
  OpSlot& s = at(i);
  if (s.pending == 0 || s.gen != static_cast<std::uint32_t>(ud >> 32)) return false;
  *idx = i;
  *timeout_cqe = (ud & kTimeoutBit) != 0;
  return true;
}

void OpTable::enqueue(std::uint32_t idx) {
  OpSlot& s = at(idx);
  s.queued = true;
  s.q_next = 0;
  s.q_prev = q_tail_;
  if (q_tail_)
    at(q_tail_ - 1).q_next = idx + 1;
  else
    q_head_ = idx + 1;
  q_tail_ = idx + 1;
}

void OpTable::dequeue(std::uint32_t idx) {
  OpSlot& s = at(idx);
  if (s.q_prev)
    at(s.q_prev - 1).q_next = s.q_next;
  else
    q_head_ = s.q_next;
  if (s.q_next)
    at(s.q_next - 1).q_prev = s.q_prev;
  else
    q_tail_ = s.q_prev;
  s.q_prev = s.q_next = 0;
  s.queued = false;
}

void OpTable::release(std::uint32_t idx) {
  OpSlot& s = at(idx);
  WEFT_ASSERT(s.pending == 0 && !s.queued, "op slot released with CQEs outstanding");
  WEFT_ASSERT(s.next_free == kInFlight,
              "op table invariant violated: release of a slot that is not in flight (released twice?)");
  cancel_issued(idx);                      // the op ended first: its deferred cancel is moot
  s.gen = s.gen + 1 == 0 ? 1 : s.gen + 1;  // 0 never names a live slot
  s.waiter = nullptr;
  s.next_free = free_head_;
  free_head_ = idx;
  --in_flight_;
}

}  // namespace weft::detail
