// weft/runtime/uring/fixed_files.hpp — a worker's registered-file table. A socket
// used on a worker is installed in a slot of the ring's file table, and its ops name
// the slot (IOSQE_FIXED_FILE) instead of the fd: the kernel then skips the fd-table
// lookup and the file reference count that every op otherwise pays
// (docs/measurements/fixed-files.md has the measurement).
//
// Invariants:
//  - The table is a sparse io_uring file table of `capacity()` slots, registered at
//    ring setup on the worker thread. Capacity 0 (turned off, or refused by the
//    kernel) means every op names its fd, as before.
//  - A slot is free or installed. install() and remove() only queue an
//    IORING_OP_FILES_UPDATE SQE (no syscall). The kernel issues SQEs in queue
//    order and the update completes inline, so an op queued after install() finds
//    the file, and a slot handed out again after remove() is rewritten only after
//    the removal.
//  - While a file sits in a slot the table holds a reference to it: close(2) of the
//    fd alone would not end the connection. So whoever stops using a slot removes
//    it before closing the fd: the worker's own thread with remove(); any other
//    thread with remove_remote(), which the worker applies at its next tick (the
//    caller wakes it).
//  - Each installed slot remembers its holder (the atomic int that stores the slot
//    number in the socket's state). At shutdown the worker sets every holder to -1
//    (under the mutex, after which remote removals are ignored), so a socket that
//    outlives its runtime no longer refers to the table. Holders are atomics
//    (relaxed: a plain mov on x86) only because a thread closing an idle socket may
//    race with that shutdown; the mutex orders the two.
//  - Only the worker's thread touches the slots, except through remove_remote()
//    and retire(), which take `mu_`.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include <weft/runtime/stats.hpp>
#include <weft/runtime/tsa.hpp>
#include <weft/runtime/uring/ring.hpp>

namespace weft::detail {

class FixedFiles {
 public:
  /// Registers a sparse table of up to `want` slots (capped by RLIMIT_NOFILE, which
  /// the kernel charges it to). Worker thread, right after the ring is set up.
  /// Returns the capacity obtained (0: off; the reason is logged at debug level).
  unsigned init(Ring& ring, unsigned want);
  [[nodiscard]] unsigned capacity() const noexcept { return static_cast<unsigned>(holders_.size()); }
  /// Installed slots (any thread: a statistic).
  [[nodiscard]] std::uint64_t live() const noexcept { return live_.get(); }

  /// Queues the installation of `fd` in a free slot, stores the slot in `holder`
  /// (where the caller keeps it; reset to -1 at removal and at shutdown) and
  /// returns it; -1 when the table is off or full, or the SQ has no room (the
  /// socket keeps using its fd).
  int install(Ring& ring, int fd, std::atomic<int>* holder);
  /// Queues the removal of `slot` and frees it (worker thread). The table lets go
  /// of the file when the SQE is issued (at the next enter); with no room in the
  /// SQ, the removal is queued for the next tick like a remote one.
  void remove(Ring& ring, int slot);
  /// Frees `slot` and resets its holder, leaving the removal to the caller, who
  /// runs it as an op (prep_remove) and waits for it: then the table has let go of
  /// the file when the op completes, so a close(2) after it really closes.
  void forget(int slot);
  /// Fills a FILES_UPDATE that empties `*slot` (the int must outlive the op).
  static void prep_remove(io_uring_sqe* sqe, void* slot);
  /// Any thread: takes the slot from `holder` (sets it to -1) and asks the worker to
  /// remove it at its next tick. Returns true when the caller must wake the worker.
  bool remove_remote(std::atomic<int>* holder);
  /// Worker thread, every tick: is a remote removal waiting? (one plain load on x86)
  [[nodiscard]] bool remote_pending() const noexcept { return remote_pending_.load(std::memory_order_acquire); }
  /// Worker thread: applies the remote removals.
  void drain_remote(Ring& ring);
  /// Worker thread, at shutdown: resets every holder to -1 and ignores remote
  /// removals from now on (the ring's exit releases the files).
  void retire();

 private:
  /// Queues a FILES_UPDATE of `slot` to `*fd`; false when the SQ has no room.
  bool queue_update(Ring& ring, int* fd, int slot) noexcept;
  /// Marks `slot` free (its holder is not touched) after its removal was queued.
  void release(int slot);

  std::vector<std::atomic<int>*> holders_;  // per slot: the holder, or null when free
  // Per slot: the fd its last install names. FILES_UPDATE reads it from here when
  // the SQE is issued, so the socket's own state may go away before the submit;
  // the vector is sized once and never moves.
  std::vector<int> fds_;
  std::vector<int> free_;  // free slots, lowest last
  Counter live_;           // written by the worker only
  AnnotatedMutex mu_;
  std::vector<int> remote_ WEFT_GUARDED_BY(mu_);
  bool retired_ WEFT_GUARDED_BY(mu_) = false;
  // A hint that remote_ is non-empty; the slots themselves are read under mu_.
  // release (set under mu_) / acquire (the tick's check): the remover's wake, a
  // syscall after the store, makes the worker tick and look.
  std::atomic<bool> remote_pending_{false};
};

}  // namespace weft::detail
