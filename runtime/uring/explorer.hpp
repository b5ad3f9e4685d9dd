// weft/runtime/uring/explorer.hpp — the test-only schedule and fault explorer of
// one worker (Config::explore; driven by tools/explore and the explorer tests).
//
// From a seed, the worker picks among its ready fibers at random, yields a fiber
// where it leaves a park (an op, a sleep, a wait, a join) or enters a socket or
// file op or a close, and injects faults at the completion layer: short
// transfers, an errno instead of an op, CQEs held back for a few ticks, a full
// SQ, a refused submit, ENOMEM where memory is taken in fiber context.
// Invariants:
//  - Off (seed 0), nothing is drawn: each hook is one predictable branch on on().
//  - Every fault is one the kernel or the allocator could produce at that point,
//    never a corruption: a transfer is shortened before it is issued (the kernel
//    then moves fewer bytes), an errno replaces an op that is never issued, a held
//    CQE is delivered later but never dropped (multishot CQEs, which carry a
//    stream in order, are never held), an injected yield happens only where the
//    fiber could have been switched out anyway.
//  - Each worker draws from its own generator, seeded from (seed, worker index):
//    for the same seed the same sequence of hook calls gets the same decisions.
//    The kernel's timing and other threads are not under its control, so a run
//    with one worker and no threads replays closest.
//  - Every injected yield and fault is counted (Stats::explore_yields,
//    Stats::faults_injected).
#pragma once

#include <cstdint>

#include <weft/runtime/config.hpp>
#include <weft/runtime/stats.hpp>

namespace weft::detail {

/// What an op is, for the faults that fit it (Worker::await_op's hint).
enum class OpKind : std::uint8_t {
  other,      ///< no fault but ENOMEM and being queued (cancels, file-table updates, bind...)
  stream_io,  ///< read/write/recv/send on a stream socket: may be short, or fail
  dgram_io,   ///< a datagram send/receive: may fail, never short
  file_io,    ///< a file's read/write (fs/): may be short, or be interrupted (EINTR)
  accept,
  connect,
};

class Explorer {
 public:
  void init(const Explore& cfg, unsigned worker_index) noexcept;
  [[nodiscard]] bool on() const noexcept { return on_; }

  /// Which of the first `n` (> 0) ready fibers runs next.
  unsigned pick(unsigned n) noexcept { return n > 1 ? static_cast<unsigned>(next() % n) : 0; }
  /// An injected yield here?
  bool yield_now() noexcept { return draw(cfg_.yields, &yields_); }
  /// Shortens a transfer of `len` bytes (> 1) to [1, len), or returns `len`.
  std::uint32_t shorten(OpKind kind, std::uint32_t len) noexcept;
  /// An errno (negative) to end the op with instead of issuing it, or 0.
  int fail_op(OpKind kind, bool has_deadline) noexcept;
  /// Ticks to hold a CQE back before delivering it (0: deliver now).
  unsigned hold_cqe() noexcept;
  /// The SQ pretends to be full.
  bool sq_full() noexcept { return fault(Explore::sq_full, cfg_.faults); }
  /// The enter that flushes the SQ is refused (-EBUSY: reap first), or 0.
  int refuse_submit() noexcept { return fault(Explore::refuse_submit, cfg_.faults / 2) ? -16 /* EBUSY */ : 0; }
  /// Memory taken in fiber context fails (the caller throws std::bad_alloc).
  bool enomem() noexcept { return fault(Explore::enomem, cfg_.faults / 2); }
  /// A MSG_RING wake to another worker fails (it is sent to a bad fd).
  bool fail_wake() noexcept { return fault(Explore::fail_wake, cfg_.faults); }

  void add_stats(Stats& s) const noexcept {
    s.explore_yields += yields_.get();
    s.faults_injected += faults_.get();
  }

 private:
  std::uint64_t next() noexcept;  // xorshift64*
  bool draw(unsigned permille, Counter* hit) noexcept {
    if (permille == 0 || next() % 1000 >= permille) return false;
    hit->add();
    return true;
  }
  bool fault(std::uint32_t kind, unsigned permille) noexcept {
    return (cfg_.kinds & kind) != 0 && draw(permille, &faults_);
  }

  Explore cfg_{};
  bool on_ = false;
  std::uint64_t state_ = 1;
  Counter yields_, faults_;
};

}  // namespace weft::detail
