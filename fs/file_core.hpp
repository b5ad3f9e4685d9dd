// weft/fs/file_core.hpp — the state block behind a File (internal to fs/): shared
// by file.cpp (ownership, the close protocol) and file_ops.cpp (running an op on
// the ring, by readiness, or on the Threaded pool). The invariants are in file.hpp.
//
// Invariants:
//  - Touched only by the owner worker's thread (file.hpp), hence no atomics.
//  - `pending` counts fibers inside an op on this file (OpCount); the last one out
//    of a closing file wakes the closer (`drainer`).
//  - `on_pool` is fixed before the File is handed out (open; run_on_pool on an idle
//    File): it picks where every data op runs, so a close knows what it can cancel.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <weft/fs/error.hpp>
#include <weft/runtime/io_op.hpp>
#include <weft/runtime/worker_link.hpp>

namespace weft::detail {
class FiberBase;
class Worker;
}  // namespace weft::detail

namespace weft::fs::detail {

/// A fiber parked in close() while another fiber closes the file; the node lives
/// on that fiber's stack while it is parked.
struct CloserNode {
  weft::detail::FiberBase* fiber;
  CloserNode* next;
};

/// An Orphan: a close handed to a worker that cannot take it leaves the core to
/// the worker's exit (file.cpp).
struct FileCore final : weft::detail::Orphan {
  int fd = -1;
  weft::detail::Worker* owner = nullptr;
  /// The owner's thread, as a close from another thread asks after it: set with
  /// `owner`, kept when a move releases the File.
  std::shared_ptr<weft::detail::WorkerLink> link;
  std::uint32_t pending = 0;                   ///< fibers inside an op on this file
  bool closing = false;                        ///< no new op admitted; the fd closes when pending hits 0
  bool on_pool = false;                        ///< data ops run on the Threaded pool (file.hpp)
  bool epoll = false;                          ///< the owner runs the epoll engine: syncs, stat, close on the pool
  bool stream = false;                         ///< not seekable (FIFO, tty, socket): offsets ignored
  weft::detail::FiberBase* drainer = nullptr;  ///< the closer, parked until pending hits 0
  CloserNode* closers = nullptr;               ///< other fibers' close() calls, woken at close(2)
  std::uint64_t id = 0;                        ///< IoOp::owner: never reused in the process
  std::string path;

  /// Closes the fd and frees the core: at the worker's exit no op of it is in flight.
  void finish_orphan() noexcept override;
};

/// Counts the calling fiber in `c->pending` for its lifetime: every exit from an op
/// leaves the count, a throw included.
class OpCount {
 public:
  explicit OpCount(FileCore* c) noexcept : c_(c) { ++c->pending; }
  ~OpCount();
  OpCount(const OpCount&) = delete;
  OpCount& operator=(const OpCount&) = delete;

 private:
  FileCore* c_;
};

[[noreturn]] void throw_for(const FileCore* c, Failure why, int res, const char* op);
/// The checks every call on a File starts with: a fiber of the owner (a released
/// File is claimed), not cancelled, open. Returns `c`.
FileCore* enter_op(FileCore* c, const char* op);
/// Runs `op` (its fd, buffers, deadline filled in) for the calling fiber, counted
/// in `c->pending`, where the File's ops run; returns its non-negative result or
/// throws per the error model (error.hpp). -EINTR is retried.
int run_op(FileCore* c, weft::detail::IoOp op, const char* name);
/// Runs an op that names no open File (openat, statx of a path, a close) where the
/// worker's engine runs file ops: the ring, or the Threaded pool on epoll. Returns
/// its raw result (a -errno included); throws timed_out / FiberCancelled.
/// `name` and `path` are for the error.
int run_unowned(weft::detail::IoOp op, const char* name, const std::string& path);
/// The close protocol (file.hpp), from a fiber of the owner: returns once the fd
/// is closed, by this call or the close() under way that it waited for.
void close_owned(FileCore* c) noexcept;

}  // namespace weft::fs::detail
