// fs/file_ops.cpp — where a file op runs and how it ends: one ring op (io_uring
// engine; a FIFO's or tty's op by readiness on epoll), or the syscall on the
// Threaded pool (a regular file on the epoll engine, or run_on_pool()). The calls
// of File that move bytes, sync and stat are built on run_op().
//
// Invariants:
//  - Every op is counted in the File's `pending` from before it is issued until
//    it has ended (OpCount), so close() waits for it and its buffers stay valid.
//  - On the pool the fiber waits for the syscall whatever happens (its buffer is
//    the syscall's until then): cancellation is deferred meanwhile and raised after
//    it; a deadline that passed by the end reports timed_out (file.hpp). An fd
//    opened by a call that then fails is closed, never leaked.
//  - Why an op failed is decided by failure_of() (error.cpp) from how it ended,
//    never from the clock, except on the pool, where nothing else can tell.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include <weft/fs/file.hpp>
#include <weft/fs/file_core.hpp>
#include <weft/runtime/fiber/park.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/threaded/offload.hpp>
#include <weft/runtime/uring/ops.hpp>

namespace weft::fs {

using weft::detail::IoKind;
using weft::detail::IoOp;
using weft::detail::OpEnd;
using weft::detail::t_state;

namespace detail {

namespace {

// The most one op moves: a larger request is served short (read_at) or in parts
// (write_at), as the kernel itself caps a transfer below 2 GiB.
constexpr std::size_t kMaxOpBytes = std::size_t{1} << 30;

bool is_transfer(IoKind k) noexcept {
  return k == IoKind::read || k == IoKind::write || k == IoKind::readv || k == IoKind::writev;
}

// The op's syscall on a pool thread while the fiber waits for it (see the top).
OpEnd pool_op(const IoOp& op) {
  if (op.deadline.expired()) return {-ECANCELED, OpEnd::Cause::timed_out};  // never started
  int r;
  {
    const weft::this_fiber::DeferCancellation defer;  // the syscall owns the buffers until it returns
    r = weft::offload([op] { return weft::detail::io_syscall(op, false); });
  }
  const bool expired = op.deadline.expired();
  if (op.kind == IoKind::openat && r >= 0 && (expired || weft::this_fiber::cancelled())) {
    ::close(r);  // the call fails below: the fd it opened is nobody's
    r = -ECANCELED;
  }
  weft::detail::check_cancel();
  return {r, expired ? OpEnd::Cause::timed_out : OpEnd::Cause::completed};
}

}  // namespace

int run_op(FileCore* c, IoOp op, const char* name) {
  weft::detail::Worker* w = c->owner;
  op.owner = c->id;
  if (c->stream && is_transfer(op.kind)) op.offset = IoOp::kCurrentPosition;
  for (;;) {
    OpEnd end;
    bool closing;
    {
      const OpCount counted(c);
      op.fd = c->fd;
      end = (c->on_pool || (c->epoll && !is_transfer(op.kind)))
                ? pool_op(op)
                : weft::detail::await_io(w, op, nullptr, weft::detail::OpKind::file_io);
      closing = c->closing;
    }
    const Failure why = failure_of(end, closing);
    if (why != Failure::errno_result) {
      weft::detail::check_cancel();  // FiberCancelled first, now that the op has ended
      throw_for(c, why, end.res, name);
    }
    if (end.cause == OpEnd::Cause::cancelled || end.res == -EINTR) weft::detail::check_cancel();
    if (end.res >= 0) return end.res;
    if (end.res != -EINTR) throw_for(c, Failure::errno_result, end.res, name);
  }
}

int run_unowned(IoOp op, const char* name, const std::string& path) {
  if (!t_state.fiber) weft::detail::throw_not_in_fiber(name);
  weft::detail::check_cancel();
  weft::detail::Worker* w = t_state.worker;
  const bool pool = weft::detail::worker_engine(w) == weft::Engine::epoll;
  for (;;) {
    const OpEnd end = pool ? pool_op(op) : weft::detail::await_io(w, op);
    const Failure why = failure_of(end, false);
    if (why != Failure::errno_result) {
      weft::detail::check_cancel();
      throw_fs_error(why, end.res, name, path);
    }
    if (end.cause == OpEnd::Cause::cancelled || end.res == -EINTR) weft::detail::check_cancel();
    if (end.res != -EINTR) return end.res;
  }
}

Stat stat_of(const struct statx& sx) noexcept {
  Stat s;
  s.size = sx.stx_size;
  s.mode = sx.stx_mode;
  s.nlink = sx.stx_nlink;
  s.ino = sx.stx_ino;
  s.blocks = sx.stx_blocks;
  s.mtime_ns = sx.stx_mtime.tv_sec * 1'000'000'000LL + sx.stx_mtime.tv_nsec;
  s.uid = sx.stx_uid;
  s.gid = sx.stx_gid;
  return s;
}

}  // namespace detail

using detail::enter_op;
using detail::run_op;

std::size_t File::read_at(void* buf, std::size_t len, std::uint64_t offset, Timeout timeout) {
  static constexpr const char* kOp = "weft::fs::File::read_at";
  const Deadline d = Deadline::after(timeout);
  detail::FileCore* c = enter_op(core_, kOp);
  IoOp op =
      IoOp::transfer(IoKind::read, c->fd, buf, static_cast<std::uint32_t>(std::min(len, detail::kMaxOpBytes)), 0, d);
  op.offset = offset;
  return static_cast<std::size_t>(run_op(c, op, kOp));
}

void File::write_at(const void* buf, std::size_t len, std::uint64_t offset, Timeout timeout) {
  static constexpr const char* kOp = "weft::fs::File::write_at";
  const Deadline d = Deadline::after(timeout);
  const auto* p = static_cast<const char*>(buf);
  do {
    detail::FileCore* c = enter_op(core_, kOp);
    IoOp op = IoOp::transfer(IoKind::write, c->fd, const_cast<char*>(p),
                             static_cast<std::uint32_t>(std::min(len, detail::kMaxOpBytes)), 0, d);
    op.offset = offset;
    const auto n = static_cast<std::size_t>(run_op(c, op, kOp));
    if (n == 0 && len > 0) detail::throw_for(c, detail::Failure::errno_result, -EIO, kOp);  // no progress
    p += n;
    len -= n;
    offset += n;
  } while (len > 0);
}

std::size_t File::readv_at(std::span<const iovec> iov, std::uint64_t offset, Timeout timeout) {
  static constexpr const char* kOp = "weft::fs::File::readv_at";
  const Deadline d = Deadline::after(timeout);
  detail::FileCore* c = enter_op(core_, kOp);
  IoOp op = IoOp::transfer(IoKind::readv, c->fd, const_cast<iovec*>(iov.data()),
                           static_cast<std::uint32_t>(std::min<std::size_t>(iov.size(), IOV_MAX)), 0, d);
  op.offset = offset;
  return static_cast<std::size_t>(run_op(c, op, kOp));
}

std::size_t File::writev_at(std::span<const iovec> iov, std::uint64_t offset, Timeout timeout) {
  static constexpr const char* kOp = "weft::fs::File::writev_at";
  const Deadline d = Deadline::after(timeout);
  detail::FileCore* c = enter_op(core_, kOp);
  IoOp op = IoOp::transfer(IoKind::writev, c->fd, const_cast<iovec*>(iov.data()),
                           static_cast<std::uint32_t>(std::min<std::size_t>(iov.size(), IOV_MAX)), 0, d);
  op.offset = offset;
  return static_cast<std::size_t>(run_op(c, op, kOp));
}

void File::fsync(Timeout timeout) {
  static constexpr const char* kOp = "weft::fs::File::fsync";
  const Deadline d = Deadline::after(timeout);
  detail::FileCore* c = enter_op(core_, kOp);
  (void)run_op(c, IoOp::transfer(IoKind::fsync, c->fd, nullptr, 0, 0, d), kOp);
}

void File::fdatasync(Timeout timeout) {
  static constexpr const char* kOp = "weft::fs::File::fdatasync";
  const Deadline d = Deadline::after(timeout);
  detail::FileCore* c = enter_op(core_, kOp);
  (void)run_op(c, IoOp::transfer(IoKind::fsync, c->fd, nullptr, 0, IoOp::kDataSync, d), kOp);
}

Stat File::stat(Timeout timeout) {
  static constexpr const char* kOp = "weft::fs::File::stat";
  const Deadline d = Deadline::after(timeout);
  detail::FileCore* c = enter_op(core_, kOp);
  struct statx sx {};
  IoOp op = IoOp::transfer(IoKind::statx, c->fd, &sx, STATX_BASIC_STATS, AT_EMPTY_PATH, d);
  op.path = "";
  (void)run_op(c, op, kOp);
  return detail::stat_of(sx);
}

Stat stat(std::string_view path, Timeout timeout) {
  static constexpr const char* kOp = "weft::fs::stat";
  const Deadline d = Deadline::after(timeout);
  const std::string p(path);
  struct statx sx {};
  IoOp op = IoOp::transfer(IoKind::statx, AT_FDCWD, &sx, STATX_BASIC_STATS, 0, d);
  op.path = p.c_str();
  const int r = detail::run_unowned(op, kOp, p);
  if (r < 0) detail::throw_fs_error(detail::Failure::errno_result, r, kOp, p);
  return detail::stat_of(sx);
}

}  // namespace weft::fs
