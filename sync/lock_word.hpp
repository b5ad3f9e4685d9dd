// weft/sync/lock_word.hpp — a spin lock and a primitive's own state in one atomic
// word: bit 0 is the lock, the bits above it belong to the owner (FutexCounter:
// its value and its count of registered waiters).
//
// Why one word: an owner whose state also changes lock-free (FutexCounter's
// increment) must not touch its memory after a caller that read that state
// lock-free may have seen the change, since that caller may return and destroy
// the owner at once. With the state in the lock word, an update that needs the
// lock takes it in the same CAS that changes the state (try_lock_update), and
// drops it with one RMW (unlock_sub) that is its last access; the waiters it
// claimed under the lock are woken afterwards (detail::WakeList), which touches
// only their Waiters. An update that needs no lock is that one CAS and nothing else.
// Invariants:
//  - Bit 0 set: one holder, for a few instructions of queue surgery. Nobody parks,
//    blocks or allocates while holding it; contenders spin (`pause`), then yield
//    their thread (the holder's thread may have been preempted).
//  - Lock-free updaters may change the other bits while the lock is held, so the
//    holder unlocks with an RMW that keeps them.
#pragma once

#include <atomic>
#include <cstdint>

#include <weft/runtime/tsa.hpp>

namespace weft::detail {

class WEFT_CAPABILITY("mutex") LockWord {
 public:
  static constexpr std::uint64_t kLocked = 1;

  explicit constexpr LockWord(std::uint64_t word) noexcept : word_(word) {}
  LockWord(const LockWord&) = delete;
  LockWord& operator=(const LockWord&) = delete;

  /// Sets bit 0, spinning while another holder has it; returns the word it locked
  /// (bit 0 clear). acquire: the previous holder's writes are visible.
  std::uint64_t lock() noexcept WEFT_ACQUIRE() {
    std::uint64_t w = word_.load(std::memory_order_relaxed);  // relaxed: the CAS synchronizes
    if (!(w & kLocked) &&
        word_.compare_exchange_weak(w, w | kLocked, std::memory_order_acquire, std::memory_order_relaxed)) [[likely]]
      return w;
    return lock_contended();
  }
  /// One CAS from `expected` (unlocked) to `desired` with bit 0 set: changes the
  /// state and takes the lock in one step. On failure `expected` is reloaded.
  /// acq_rel: acquire for the lock; release publishes the caller's writes with
  /// the state it stores.
  bool try_lock_update(std::uint64_t& expected, std::uint64_t desired) noexcept WEFT_TRY_ACQUIRE(true) {
    return word_.compare_exchange_weak(expected, desired | kLocked, std::memory_order_acq_rel,
                                       std::memory_order_relaxed);
  }
  /// Subtracts `delta` and bit 0 in one RMW and so unlocks, keeping what lock-free
  /// updaters changed meanwhile. release: publishes the holder's writes.
  void unlock_sub(std::uint64_t delta = 0) noexcept WEFT_RELEASE() {
    word_.fetch_sub(delta + kLocked, std::memory_order_release);
  }
  /// Spins (as lock() does) until bit 0 is clear, without taking the lock; returns
  /// the word seen then (relaxed: the caller's CAS synchronizes).
  [[nodiscard]] std::uint64_t wait_unlocked() const noexcept;

  /// The word itself, for the owner's lock-free paths (each access states its order).
  std::atomic<std::uint64_t>& word() noexcept { return word_; }
  const std::atomic<std::uint64_t>& word() const noexcept { return word_; }

 private:
  std::uint64_t lock_contended() noexcept;
  std::atomic<std::uint64_t> word_;
};

}  // namespace weft::detail
