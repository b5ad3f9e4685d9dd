// weft/runtime/io_op.hpp — an I/O operation as data: what net/ and fs/ ask of the
// worker's engine, which runs it (io_uring: one SQE, with a linked timeout for the
// deadline; epoll: the syscall, and a park on readiness only when it would block).
//
// Invariants:
//  - An IoOp names everything the op touches (fd, buffers, address, path, flags,
//    deadline); the engine reads the IoOp only until the op is issued, and what
//    its pointers name stays valid until the op has ended (the fiber that waits
//    for it owns them).
//  - `res` of an op is the syscall's result: bytes, a new fd, a poll mask, 0, or a
//    raw -errno, whichever engine ran it. Why it ended (completed, timed out,
//    cancelled) is the engine's OpEnd, never guessed from the clock.
//  - `fixed` and the POLL_FIRST hint are io_uring's business; the epoll engine
//    ignores them. `owner` is the epoll engine's: while an fd number keeps the
//    same owner its readiness registration is kept across ops.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>

#include <weft/runtime/time.hpp>

namespace weft::detail {

/// How an op ended: on io_uring from its own CQEs (op_table.hpp), on epoll from
/// what woke its fiber (the fd, its deadline timer, its cancellation).
struct OpEnd {
  enum class Cause : std::uint8_t {
    completed,  ///< `res` is the op's own result (a failure included)
    timed_out,  ///< its linked timeout fired and the op ended cancelled or interrupted (-ECANCELED, -EINTR)
    cancelled,  ///< cancelled otherwise: the fiber's or runtime's cancellation, a cancel
                ///< by fd (a close), or never issued (-ECANCELED)
  };
  int res = 0;  ///< the op's own CQE result (raw -errno on failure)
  Cause cause = Cause::completed;
  /// What a linked timeout's CQE result says: the timer fired (anything but the
  /// -ECANCELED of a timer disarmed because its op ended first).
  static constexpr bool timer_fired(int timeout_res) noexcept { return timeout_res != -ECANCELED; }
  /// The cause, from the op's result, whether its linked timer fired (false when
  /// none was linked) and whether the fiber's cancellation asked for a cancel. An
  /// op that succeeded, or failed on its own, is completed whatever its timer did
  /// (it may fire while the op completes).
  static constexpr Cause cause_of(int res, bool timer_fired, bool cancel_sent) noexcept {
    if (res != -ECANCELED && res != -EINTR) return Cause::completed;
    if (timer_fired) return Cause::timed_out;
    if (res == -ECANCELED || cancel_sent) return Cause::cancelled;
    return Cause::completed;  // -EINTR of its own: the caller retries
  }
};

enum class IoKind : std::uint8_t {
  // Sockets.
  recv,     ///< buf, len, flags (MSG_*)
  send,     ///< buf, len, flags (MSG_*; MSG_NOSIGNAL is the caller's)
  recvmsg,  ///< buf = msghdr*, flags
  sendmsg,  ///< buf = msghdr*, flags
  accept,   ///< buf = sockaddr* (may be null), addr_len = its in/out size, flags (SOCK_CLOEXEC...)
  connect,  ///< buf = const sockaddr*, len = its size
  bind,     ///< buf = const sockaddr*, len = its size
  listen,   ///< len = backlog
  poll,     ///< flags = POLLIN / POLLOUT...: res is the ready mask
  // Files (fs/).
  read,    ///< buf, len, offset
  write,   ///< buf, len, offset
  readv,   ///< buf = iovec*, len = their count, offset
  writev,  ///< buf = iovec*, len = their count, offset
  fsync,   ///< flags = kDataSync for fdatasync
  openat,  ///< fd = dirfd (AT_FDCWD), path, flags (O_*), len = mode: res is the fd
  statx,   ///< fd = dirfd, path, flags (AT_*), len = mask, buf = struct statx*
  close,   ///< fd
  // The fd as a whole.
  cancel_fd,  ///< ends every op pending on fd with -ECANCELED (a close's first step)
};

/// IoKind names for messages ("recv", "openat").
const char* io_kind_name(IoKind k) noexcept;

/// A new IoOp::owner for a holder of an fd (a socket, a file): process-wide,
/// never 0 and never reused, so no two holders of one fd number share one.
std::uint64_t new_io_owner() noexcept;

struct IoOp;
/// The syscall `op` stands for, run on the calling thread: its result, or a raw
/// -errno. `nonblocking`: sends and receives get MSG_DONTWAIT, an accepted socket
/// SOCK_NONBLOCK, a poll does not wait (the epoll engine's attempt); otherwise the
/// call may block (the Threaded pool's). cancel_fd has none (-EINVAL).
int io_syscall(const IoOp& op, bool nonblocking) noexcept;

/// True for the kinds that move bytes on a socket (the epoll engine waits for
/// readiness on these, the explorer may shorten or fail them).
constexpr bool is_socket_transfer(IoKind k) noexcept {
  return k == IoKind::recv || k == IoKind::send || k == IoKind::recvmsg || k == IoKind::sendmsg;
}
/// True for the kinds of fs/ (the epoll engine never runs them: regular files are
/// always "ready", so fs/ takes them to the Threaded pool there).
constexpr bool is_file_op(IoKind k) noexcept {
  return k >= IoKind::read && k <= IoKind::close;
}

struct IoOp {
  IoKind kind = IoKind::recv;
  int fd = -1;
  int flags = 0;
  std::uint32_t len = 0;
  std::uint64_t offset = 0;
  void* buf = nullptr;
  socklen_t* addr_len = nullptr;  ///< accept only
  const char* path = nullptr;     ///< openat, statx
  Deadline deadline = Deadline::none();
  /// io_uring: the registered-file slot that stands for `fd` (-1: name the fd).
  int fixed = -1;
  /// io_uring: ask for a readiness poll before the first attempt (the socket was
  /// just drained). A hint; ignored where the kernel lacks it.
  bool poll_first = false;
  /// The fd's holder (new_io_owner(): a socket's or a file's id): see the invariants.
  std::uint64_t owner = 0;

  /// fsync: flush the data only (fdatasync).
  static constexpr int kDataSync = 1;
  /// read/write/readv/writev: the file's own position instead of an offset.
  static constexpr std::uint64_t kCurrentPosition = ~std::uint64_t{0};

  static IoOp transfer(IoKind k, int fd, void* buf, std::uint32_t len, int flags, Deadline d) {
    IoOp op;
    op.kind = k;
    op.fd = fd;
    op.buf = buf;
    op.len = len;
    op.flags = flags;
    op.deadline = d;
    return op;
  }
  static IoOp on_fd(IoKind k, int fd) {
    IoOp op;
    op.kind = k;
    op.fd = fd;
    return op;
  }
};

}  // namespace weft::detail
