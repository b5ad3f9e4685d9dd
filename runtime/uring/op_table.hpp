// weft/runtime/uring/op_table.hpp — in-flight io_uring operations, named by slot and
// generation in the CQE's user_data.
//
// user_data layout (64 bits):
//   bits  0..30  slot index + 1        (0: an internal tag, see kTag*)
//   bit   31     this CQE belongs to the op's linked timeout
//   bits 32..63  generation of the slot (internal tags: the tag number)
// Invariants:
//  - A slot is free or in flight; `pending` counts the CQEs still owed to it (1, or
//    2 with a linked timeout). It returns to the free list only when the last one
//    arrives, and its generation is bumped then, so any later CQE naming it (a
//    forged or duplicated one) no longer matches: counted as stale, never acted on.
//    An in-flight slot's next_free is kInFlight: releasing a free slot (twice
//    released, it would be handed to two ops at once) or acquiring one in flight
//    aborts with a message.
//  - Everything the kernel may read or write for an op (the waiter's buffers, the
//    link timeout's timespec stored here) stays valid until pending reaches 0;
//    the waiting fiber does not resume before that.
//  - An op's end cause (OpEnd) is decided by its own CQEs once both have arrived:
//    `timer_fired` keeps what the linked timeout's CQE said (OpEnd::timer_fired):
//    its result is -ECANCELED when the op ended first (the kernel disarms the
//    timer), any other when the timer fired: -ETIME (it cancelled the op),
//    -EALREADY or -ENOENT (it found the op running in a kernel worker, which it
//    interrupts: the op then ends -EINTR). `cancel_sent` says that the fiber's
//    cancellation asked the kernel to cancel the op.
//  - A multishot op (sink set) has no waiter: each of its CQEs goes to the sink, and
//    its slot is freed by the first CQE without IORING_CQE_F_MORE (the kernel's
//    last for a multishot request).
//  - An op whose SQEs found no room in the SQ waits in the table's overflow queue
//    (FIFO, linked through its slot) with its prep function and argument; the
//    worker issues queued ops in order as room appears, and while any is queued
//    every new op queues behind it, so SQEs reach the kernel in program order (a
//    close's cancel-by-fd is issued after the ops it must cancel).
//  - Only the owning worker's thread touches the table. Slots live in fixed chunks,
//    so a slot reference stays valid while the table grows.
#pragma once

#include <linux/time_types.h>

#include <cerrno>
#include <cstdint>

struct io_uring_sqe;
#include <memory>
#include <vector>

#include <weft/runtime/io_op.hpp>

namespace weft::detail {

class FiberBase;

/// Fills an op's SQE; user_data is set by the worker afterwards.
using PrepFn = void (*)(io_uring_sqe* sqe, void* arg);

struct OpSlot {
  std::uint32_t gen = 1;
  std::uint8_t pending = 0;      ///< CQEs still expected; 0 = free
  bool cancel_sent = false;      ///< an ASYNC_CANCEL for this op was submitted
  bool cancel_deferred = false;  ///< cancel_op() found no SQE: the next tick issues it
  bool timer_fired = false;      ///< the linked timeout's CQE said it fired (OpEnd::timer_fired)
  std::int32_t res = 0;          ///< the op's own CQE result (raw -errno on failure)
  std::uint32_t cqe_flags = 0;
  FiberBase* waiter = nullptr;  ///< parked until pending == 0
  /// Multishot ops: called (scheduler context) with every CQE; null otherwise.
  void (*sink)(void* ctx, int res, std::uint32_t flags) = nullptr;
  void* sink_ctx = nullptr;
  __kernel_timespec ts{};  ///< storage for the linked timeout
  PrepFn prep = nullptr;   ///< kept while the op waits in the overflow queue
  void* prep_arg = nullptr;
  bool queued = false;                   ///< in the overflow queue (not yet given to the kernel)
  std::uint8_t kind = 0;                 ///< the OpKind the explorer sees (explorer.hpp)
  std::uint32_t q_prev = 0, q_next = 0;  ///< overflow queue links (slot index + 1; 0: none)
  std::uint32_t next_free = 0;
};

inline constexpr std::uint64_t kTimeoutBit = 1ULL << 31;
inline constexpr std::uint64_t kSlotMask = kTimeoutBit - 1;
/// Internal tags (low 31 bits zero): CQEs that belong to no slot.
inline constexpr std::uint64_t kTagIgnore = 0;            ///< fire-and-forget SQEs
inline constexpr std::uint64_t kTagWake = 1ULL << 32;     ///< the eventfd wake read
inline constexpr std::uint64_t kTagMsgRing = 2ULL << 32;  ///< a MSG_RING wake arriving here
/// The waker's own CQE for a MSG_RING it sent: tag number 3 in bits 32..39, the
/// target worker's index above them (low 31 bits zero, like every tag).
inline constexpr std::uint64_t kTagMsgRingSent = 3ULL << 32;
inline constexpr std::uint64_t msg_ring_sent_tag(unsigned target) {
  return kTagMsgRingSent | (std::uint64_t{target} << 40);
}

class OpTable {
 public:
  /// A free slot index, its `pending` set to `cqes`.
  std::uint32_t acquire(std::uint8_t cqes);
  OpSlot& at(std::uint32_t idx) { return chunks_[idx / kChunk][idx % kChunk]; }
  [[nodiscard]] std::uint64_t user_data(std::uint32_t idx, bool timeout_cqe = false) {
    return (static_cast<std::uint64_t>(at(idx).gen) << 32) | (timeout_cqe ? kTimeoutBit : 0) | (idx + 1);
  }
  /// Decodes a CQE's user_data to its slot; false when it names no in-flight slot of
  /// that generation (stale). Tags are not slots: check is_tag() first.
  bool lookup(std::uint64_t ud, std::uint32_t* idx, bool* timeout_cqe);
  static bool is_tag(std::uint64_t ud) { return (ud & kSlotMask) == 0; }
  /// Returns the slot to the free list and bumps its generation (pending must be 0).
  void release(std::uint32_t idx);
  [[nodiscard]] std::uint32_t in_flight() const { return in_flight_; }
  /// Marks the in-flight slot's cancel as waiting for an SQE (see OpSlot).
  void defer_cancel(std::uint32_t idx) {
    if (!at(idx).cancel_deferred) {
      at(idx).cancel_deferred = true;
      ++deferred_;
    }
  }
  /// Clears the mark once the cancel was issued.
  void cancel_issued(std::uint32_t idx) {
    if (at(idx).cancel_deferred) {
      at(idx).cancel_deferred = false;
      --deferred_;
    }
  }
  [[nodiscard]] std::uint32_t deferred_cancels() const { return deferred_; }

  // The overflow queue (see the invariants).
  [[nodiscard]] bool overflow_empty() const { return q_head_ == 0; }
  /// The oldest queued slot; only when !overflow_empty().
  [[nodiscard]] std::uint32_t overflow_front() const { return q_head_ - 1; }
  void enqueue(std::uint32_t idx);
  void dequeue(std::uint32_t idx);
  /// The user_data of every in-flight multishot op (for the shutdown's cancel).
  template <class F>
  void for_each_multishot(F&& f) {
    for (std::uint32_t i = 0; i < capacity_; ++i)
      if (at(i).pending > 0 && at(i).sink) f(user_data(i));
  }
  /// The index of every in-flight slot.
  template <class F>
  void for_each_in_flight(F&& f) {
    for (std::uint32_t i = 0; i < capacity_; ++i)
      if (at(i).pending > 0) f(i);
  }

 private:
  static constexpr std::uint32_t kChunk = 1024;
  static constexpr std::uint32_t kNone = UINT32_MAX;          // end of the free list
  static constexpr std::uint32_t kInFlight = UINT32_MAX - 1;  // next_free of a slot in flight
  std::vector<std::unique_ptr<OpSlot[]>> chunks_;
  std::uint32_t capacity_ = 0;
  std::uint32_t free_head_ = kNone;
  std::uint32_t in_flight_ = 0;
  std::uint32_t deferred_ = 0;             // slots with cancel_deferred set
  std::uint32_t q_head_ = 0, q_tail_ = 0;  // overflow queue (slot index + 1; 0: empty)
};

}  // namespace weft::detail
