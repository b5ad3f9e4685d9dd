// weft/runtime/uring/ring.hpp — one worker's io_uring: setup with probed flags,
// SQE acquisition, the single enter per tick, CQE batches.
//
// Invariants:
//  - Created on, and only ever used from, the owning worker thread
//    (SINGLE_ISSUER: a submit from another thread fails with -EEXIST).
//  - Setup tries SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN|TASKRUN_FLAG, then
//    plain, each with SUBMIT_ALL and CQSIZE = 4 x entries; -EINVAL moves to the
//    next; ENOMEM halves the entries down to 8; anything else is a StartupError
//    naming the cause and the remedy (see explain_setup_failure()).
//  - With DEFER_TASKRUN completions only appear after an enter with GETEVENTS;
//    the worker's tick always enters that way when ops are in flight.
//  - SQEs are taken only after reserve() said there is room for all of an op's
//    SQEs (an op and its linked timeout), and take() never flushes: a linked pair
//    is never split across two submits (a split LINK_TIMEOUT fails with -EINVAL
//    and the op runs without its deadline). When the SQ stays full (the kernel
//    answers -EBUSY/-EAGAIN: completions must be reaped first) reserve() fails
//    and the caller decides: a fiber goes through the scheduler's tick, which
//    reaps, and tries again; a fire-and-forget SQE is retried at the next tick.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <string>

#include <weft/runtime/stats.hpp>

namespace weft::detail {

class Explorer;

struct RingInfo {
  unsigned entries = 0;
  unsigned setup_flags = 0;
  bool defer_taskrun = false;
  bool ext_arg = false;        ///< IORING_FEAT_EXT_ARG: wait with a timeout without an SQE
  bool nodrop = false;         ///< IORING_FEAT_NODROP
  bool registered_fd = false;  ///< enters name the ring by its registered index (5.18)
  int last_op = -1;            ///< highest opcode the kernel reports
  bool has_op(int op) const { return op <= last_op && ((op_bits[op / 64] >> (op % 64)) & 1); }
  std::uint64_t op_bits[4] = {};
};

class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring();

  /// The kernel's IORING_MAX_ENTRIES and IORING_MAX_CQ_ENTRIES (not in the uapi
  /// header): io_uring_setup refuses larger queues with -EINVAL.
  static constexpr unsigned kMaxEntries = 32768;
  static constexpr unsigned kMaxCqEntries = 2 * kMaxEntries;

  /// Creates the ring on the calling thread, `entries` at most kMaxEntries; the
  /// completion queue is 4x, capped at kMaxCqEntries. Throws StartupError.
  void init(unsigned entries, bool want_defer_taskrun);
  [[nodiscard]] bool ready() const { return ready_; }
  [[nodiscard]] const RingInfo& info() const { return info_; }
  io_uring* raw() { return &ring_; }
  [[nodiscard]] int fd() const { return ring_.ring_fd; }

  /// True when `n` SQEs can now be take()n back to back. When the SQ lacks room it
  /// is flushed once (counted in sq_full); false when that did not make room
  /// (the kernel wants completions reaped first, or refused the submit).
  [[nodiscard]] bool reserve(unsigned n) noexcept;
  /// One SQE, after reserve() succeeded for it (never flushes, never null).
  io_uring_sqe* take() noexcept { return io_uring_get_sqe(&ring_); }
  /// reserve(1) then take(), or null.
  io_uring_sqe* try_get_sqe() noexcept { return reserve(1) ? take() : nullptr; }
  [[nodiscard]] unsigned pending_sqes() { return io_uring_sq_ready(&ring_); }
  /// CQEs posted and not yet reaped (reads the shared CQ tail: acquire).
  [[nodiscard]] unsigned cq_ready() { return io_uring_cq_ready(&ring_); }

  /// One io_uring_enter: submits, then waits for one CQE until `timeout_ns`
  /// (relative; <0 forever) when `wait`, else only flushes completions.
  /// Retries EINTR. Returns SQEs submitted or a raw -errno (-ETIME is not an error).
  int enter(bool wait, std::int64_t timeout_ns);

  /// Copies up to `max` ready CQEs; advance() them after use.
  unsigned peek(io_uring_cqe** cqes, unsigned max) { return io_uring_peek_batch_cqe(&ring_, cqes, max); }
  void advance(unsigned n) { io_uring_cq_advance(&ring_, n); }
  [[nodiscard]] bool cq_overflowed() const;
  /// The worker's explorer, asked for a full SQ or a refused submit (tests only).
  void set_explorer(Explorer* e) noexcept { explorer_ = e; }

  Counter sq_full;    ///< SQ was full: flushed before the tick's enter
  Counter enters;     ///< io_uring_enter calls
  Counter submitted;  ///< SQEs handed to the kernel

 private:
  io_uring ring_{};
  RingInfo info_;
  bool ready_ = false;
  Explorer* explorer_ = nullptr;  // null or off: no injected faults
};

/// The human explanation of io_uring_queue_init failing with `err` (positive errno):
/// what is wrong on this host and how to fix it.
std::string explain_setup_failure(int err, unsigned entries);

}  // namespace weft::detail
