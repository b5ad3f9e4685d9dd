// weft/runtime/uring/buf_ring.hpp — a worker's provided-buffer ring: the buffers
// the kernel picks for multishot receives (IOSQE_BUFFER_SELECT), lent to fibers
// as net::ReadBuffer leases and given back when a lease ends.
//
// Invariants (states, owners, which thread touches what):
//  - Made by the worker's thread at the first buffered read (registration must come
//    from the ring's owner): `count` buffers of `size` bytes in one mapping, and the
//    io_uring_buf ring (page aligned, its own mapping) registered as group kGroup.
//    liburing 2.3 has no io_uring_setup_buf_ring, so it is done by hand
//    (patches-notes/liburing-2.3-missing-opcodes.md).
//  - A buffer is in exactly one place: in the kernel's ring, in one socket's
//    receive queue (linked through next()), or lent out to one lease.
//  - give_back() runs on the worker's thread: io_uring_buf_ring_add, then advance,
//    whose release store of the tail is what the kernel reads (acquire) before it
//    takes the entry. From any other thread put() pushes the id onto an MPSC stack
//    linked through the buffer's own link (release CAS); the worker takes the whole
//    stack (acquire exchange) at its next tick. Push-only plus take-all: no ABA.
//  - Lifetime: the worker holds one reference, each lease and each socket receive
//    queue bound to the ring one more. The worker's
//    exit retires the ring (unregisters it) and drops its reference; the memory
//    goes with the last reference, so a lease that outlives its runtime still points
//    at valid bytes, and giving it back then only drops the reference.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace weft::detail {

class BufRing {
 public:
  static constexpr std::uint16_t kGroup = 0;      ///< the buffer group id (bgid)
  static constexpr std::uint16_t kNone = 0xffff;  ///< no buffer (end of a queue)

  /// Maps and registers `count` (a power of two, at most 32768, as the Runtime's
  /// constructor checks) buffers of `size` bytes on `ring`. Null when the kernel or the memory refuses (the caller then
  /// reads without buffer selection); `*err` gets the -errno.
  static BufRing* create(io_uring* ring, const void* owner, unsigned count, unsigned size, int* err);
  /// The worker that made it (compare with the caller's to choose put()'s path).
  [[nodiscard]] const void* owner() const { return owner_; }

  [[nodiscard]] char* data(std::uint16_t bid) const { return base_ + static_cast<std::size_t>(bid) * size_; }
  /// Queue links and byte counts, owned by whoever holds the buffer.
  std::uint16_t& next(std::uint16_t bid) { return links_[bid].next; }
  std::uint32_t& len(std::uint16_t bid) { return links_[bid].len; }

  /// Back into the kernel's ring (worker thread, ring not retired).
  void give_back(std::uint16_t bid) noexcept;
  /// From anywhere a holder lets go of `bid`: the worker's thread gives it back at
  /// once, another thread through the remote stack; after retire() nothing.
  void put(std::uint16_t bid, bool on_owner_thread) noexcept;
  /// References held by leases and by sockets' receive queues (see the lifetime
  /// invariant). retain() on the worker's thread, which makes both.
  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept;
  /// Ids given back from other threads: true when the worker should drain them.
  [[nodiscard]] bool remote_pending() const noexcept {
    return remote_head_.load(std::memory_order_relaxed) != 0;  // a hint; drain_remote() reads with acquire
  }
  void drain_remote() noexcept;
  /// The worker's exit: unregisters, and drops the worker's reference.
  void retire(io_uring* ring) noexcept;

  /// False once a multishot receive was refused (-EINVAL: kernel < 6.0): buffered
  /// reads on this worker then use plain receives.
  bool multishot_ok = true;

 private:
  BufRing() = default;
  ~BufRing();
  struct Link {
    std::uint16_t next = kNone;
    std::uint32_t len = 0;
  };

  const void* owner_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  std::size_t ring_bytes_ = 0;
  char* base_ = nullptr;
  unsigned count_ = 0;
  unsigned size_ = 0;
  Link* links_ = nullptr;
  // Remote give-backs: id + 1 of the top entry (0 = empty), linked through
  // links_[id].next. release on push / acquire on take: the pusher's link store
  // is visible to the worker that walks the stack.
  std::atomic<std::uint32_t> remote_head_{0};
  // The worker's reference plus one per live lease. acq_rel on the decrement: the
  // last owner sees every other owner's use of the memory before it frees it.
  std::atomic<std::uint32_t> refs_{1};
  // Set by retire() (release), read by leases ending on other threads (acquire):
  // after it, a give-back only drops the reference.
  std::atomic<bool> retired_{false};
};

}  // namespace weft::detail
