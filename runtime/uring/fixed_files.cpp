// runtime/uring/fixed_files.cpp — the registered-file table of one worker. See
// fixed_files.hpp for the invariants.
#include <sys/resource.h>

#include <algorithm>

#include <weft/runtime/error.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/uring/fixed_files.hpp>
#include <weft/runtime/uring/op_table.hpp>

namespace weft::detail {

namespace {
// FILES_UPDATE reads the new fds from user memory when it is issued (the kernel
// only reads it); a removal names this constant.
int kNoFile = -1;  // NOLINT(readability-identifier-naming): a constant the kernel reads through int*
}  // namespace

unsigned FixedFiles::init(Ring& ring, unsigned want) {
  if (want == 0) return 0;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    want = static_cast<unsigned>(std::min<rlim_t>(want, rl.rlim_cur));
  if (!ring.info().has_op(IORING_OP_FILES_UPDATE)) {
    log::logger().debug("registered files off: the kernel has no IORING_OP_FILES_UPDATE");
    return 0;
  }
  const int r = want > 0 ? io_uring_register_files_sparse(ring.raw(), want) : -EINVAL;
  if (r < 0) {
    log::logger().debug("registered files off: io_uring_register_files_sparse({}) failed: {}", want,
                        errno_code(r).message());
    return 0;
  }
  holders_.assign(want, nullptr);
  fds_.assign(want, -1);
  free_.reserve(want);
  for (unsigned i = want; i-- > 0;) free_.push_back(static_cast<int>(i));  // slot 0 handed out first
  return want;
}

bool FixedFiles::queue_update(Ring& ring, int* fd, int slot) noexcept {
  io_uring_sqe* sqe = ring.try_get_sqe();
  if (!sqe) return false;
  io_uring_prep_files_update(sqe, fd, 1, slot);
  // Fire and forget: an install that failed shows up as -EBADF on the op that
  // names the slot, and the socket then falls back to its fd (net/socket.cpp).
  io_uring_sqe_set_data64(sqe, kTagIgnore);
  return true;
}

int FixedFiles::install(Ring& ring, int fd, std::atomic<int>* holder) {
  if (free_.empty() || !ring.reserve(1)) return -1;  // no slot, or no SQE: use the fd
  const int slot = free_.back();
  free_.pop_back();
  holders_[static_cast<unsigned>(slot)] = holder;
  holder->store(slot, std::memory_order_relaxed);  // see the invariants: mu_ orders the racing writers
  live_.add();
  fds_[static_cast<unsigned>(slot)] = fd;
  // take(), not queue_update(): its try_get_sqe() would ask reserve() again, which
  // the explorer may answer "full" (an injected sq_full). The slot would then be
  // handed out with no FILES_UPDATE queued, and the socket's ops would name
  // whatever file the slot last held: another connection's.
  io_uring_sqe* sqe = ring.take();  // reserved above
  io_uring_prep_files_update(sqe, &fds_[static_cast<unsigned>(slot)], 1, slot);
  io_uring_sqe_set_data64(sqe, kTagIgnore);  // fire and forget, as in queue_update()
  return slot;
}

void FixedFiles::release(int slot) {
  holders_[static_cast<unsigned>(slot)] = nullptr;
  live_.sub();
  // Handed out again only after the caller's removal is queued: SQEs issue in order.
  free_.push_back(slot);
}

void FixedFiles::forget(int slot) {
  std::atomic<int>* h = holders_[static_cast<unsigned>(slot)];
  if (!h) return;  // already free (retired, or forgotten twice)
  h->store(-1, std::memory_order_relaxed);
  release(slot);
}

void FixedFiles::remove(Ring& ring, int slot) {
  std::atomic<int>* h = holders_[static_cast<unsigned>(slot)];
  if (!h) return;
  if (queue_update(ring, &kNoFile, slot)) {
    forget(slot);
    return;
  }
  // No SQE now: the slot is removed at the next tick, like a remote removal.
  h->store(-1, std::memory_order_relaxed);  // see the invariants: mu_ orders the racing writers
  // No holder from here on (the socket may go away): should the push below throw,
  // the slot is neither free nor held, never handed out again with its file.
  holders_[static_cast<unsigned>(slot)] = nullptr;
  LockGuard g(mu_);
  remote_.push_back(slot);  // may throw bad_alloc: the caller logs (the slot stays until shutdown)
  remote_pending_.store(true, std::memory_order_relaxed);  // this thread's own next tick reads it
}

void FixedFiles::prep_remove(io_uring_sqe* sqe, void* slot) {
  io_uring_prep_files_update(sqe, &kNoFile, 1, *static_cast<int*>(slot));
}

bool FixedFiles::remove_remote(std::atomic<int>* holder) {
  LockGuard g(mu_);
  // retire() may have reset the holder since the caller looked: read it under mu_.
  const int slot = holder->exchange(-1, std::memory_order_relaxed);
  if (slot < 0 || retired_) return false;  // a stopped worker's ring exit releases the file
  remote_.push_back(slot);
  // release: pairs with the acquire in remote_pending(); the caller's wake (an
  // eventfd write, a syscall after this store) makes the worker tick and look.
  remote_pending_.store(true, std::memory_order_release);
  return true;
}

void FixedFiles::drain_remote(Ring& ring) {
  std::vector<int> slots;
  {
    LockGuard g(mu_);
    slots.swap(remote_);
    remote_pending_.store(false, std::memory_order_relaxed);  // under mu_: a later push sets it again
  }
  for (std::size_t i = 0; i < slots.size(); ++i) {
    // The remover already reset the holder: free the slot without touching it.
    if (!queue_update(ring, &kNoFile, slots[i])) {
      // No room: the rest waits for the next tick.
      LockGuard g(mu_);
      remote_.insert(remote_.end(), slots.begin() + static_cast<std::ptrdiff_t>(i), slots.end());
      remote_pending_.store(true, std::memory_order_relaxed);  // read by this thread's next tick
      return;
    }
    release(slots[i]);
  }
}

void FixedFiles::retire() {
  LockGuard g(mu_);
  retired_ = true;
  // Slots handed over remotely are no longer held by their sockets (which may be
  // gone already): free them without touching the holder.
  for (int s : remote_) holders_[static_cast<unsigned>(s)] = nullptr;
  remote_.clear();
  for (std::atomic<int>*& h : holders_) {
    if (h) h->store(-1, std::memory_order_relaxed);
    h = nullptr;
  }
  live_.set(0);
}

}  // namespace weft::detail
