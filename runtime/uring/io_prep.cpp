// runtime/uring/io_prep.cpp — the io_uring engine's reading of an IoOp: the one
// place that turns an op described as data (runtime/io_op.hpp) into an SQE.
//
// Invariants:
//  - prep_io() fills every field the opcode reads and nothing else; user_data, the
//    link flag and the linked timeout are the worker's (worker_ops.cpp).
//  - A registered-file slot (`fixed`) replaces the fd for the socket and file ops
//    that take one; opening, stat and cancel-by-fd always name what they name.
//  - Under valgrind, mark_filled() tells memcheck what the kernel wrote for an op
//    (it cannot see io_uring's writes); everywhere else it does nothing.
//  - BIND (56) and LISTEN (57) are filled by hand (liburing 2.3 lacks them;
//    patches-notes/liburing-2.3-missing-opcodes.md); supports_io() says whether
//    the ring has them, and net/ calls bind(2)/listen(2) otherwise.
#include <liburing.h>
#include <sys/stat.h>

#include <algorithm>

#include <weft/runtime/io_op.hpp>
#include <weft/runtime/uring/io_prep.hpp>
#include <weft/runtime/uring/ring.hpp>

#include "weft_build_config.hpp"

#if WEFT_VALGRIND
#include <valgrind/memcheck.h>
#endif

namespace weft::detail {

namespace {
#if WEFT_VALGRIND
// `n` bytes spread over `iov` were written by the kernel.
void mark_iov(const iovec* iov, std::size_t count, std::size_t n) noexcept {
  for (std::size_t i = 0; i < count && n > 0; ++i) {
    const std::size_t k = std::min(n, iov[i].iov_len);
    VALGRIND_MAKE_MEM_DEFINED(iov[i].iov_base, k);
    n -= k;
  }
}
#endif

// The kernel numbers of opcodes newer than liburing 2.3's headers (fixed ABI).
constexpr int kOpBind = 56;
constexpr int kOpListen = 57;

bool takes_fixed(IoKind k) noexcept {
  switch (k) {
    case IoKind::openat:
    case IoKind::statx:
    case IoKind::cancel_fd:
    case IoKind::close:
      return false;
    default:
      return true;
  }
}
}  // namespace

bool uring_supports(const RingInfo& info, IoKind k) noexcept {
  switch (k) {
    case IoKind::bind:
      return info.has_op(kOpBind);
    case IoKind::listen:
      return info.has_op(kOpListen);
    default:
      return true;  // in every kernel weft starts on (ring.cpp's probe of the rest)
  }
}

void prep_io(io_uring_sqe* sqe, const IoOp& op, const RingInfo& info) noexcept {
  const auto off = op.offset == IoOp::kCurrentPosition ? ~0ULL : op.offset;  // -1: the file position
  switch (op.kind) {
    case IoKind::recv:
      io_uring_prep_recv(sqe, op.fd, op.buf, op.len, op.flags);
      // POLL_FIRST is an ioprio bit older kernels reject; IORING_OP_SOCKET came in
      // the same release, so its presence vouches for the flag.
      if (op.poll_first && info.has_op(IORING_OP_SOCKET)) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
      break;
    case IoKind::send:
      io_uring_prep_send(sqe, op.fd, op.buf, op.len, op.flags);
      break;
    case IoKind::recvmsg:
      io_uring_prep_recvmsg(sqe, op.fd, static_cast<msghdr*>(op.buf), static_cast<unsigned>(op.flags));
      if (op.poll_first && info.has_op(IORING_OP_SOCKET)) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
      break;
    case IoKind::sendmsg:
      io_uring_prep_sendmsg(sqe, op.fd, static_cast<const msghdr*>(op.buf), static_cast<unsigned>(op.flags));
      break;
    case IoKind::accept:
      io_uring_prep_accept(sqe, op.fd, static_cast<sockaddr*>(op.buf), op.addr_len, op.flags);
      break;
    case IoKind::connect:
      io_uring_prep_connect(sqe, op.fd, static_cast<const sockaddr*>(op.buf), op.len);
      break;
    case IoKind::bind:
      // BIND: addr = the sockaddr, addr2 (the `off` slot) = its length; len must be 0.
      io_uring_prep_rw(kOpBind, sqe, op.fd, op.buf, 0, op.len);
      break;
    case IoKind::listen:
      // LISTEN: the backlog in len; addr and addr2 must be 0.
      io_uring_prep_rw(kOpListen, sqe, op.fd, nullptr, op.len, 0);
      break;
    case IoKind::poll:
      io_uring_prep_poll_add(sqe, op.fd, static_cast<unsigned>(op.flags));
      break;
    case IoKind::read:
      io_uring_prep_read(sqe, op.fd, op.buf, op.len, off);
      break;
    case IoKind::write:
      io_uring_prep_write(sqe, op.fd, op.buf, op.len, off);
      break;
    case IoKind::readv:
      io_uring_prep_readv(sqe, op.fd, static_cast<const iovec*>(op.buf), op.len, off);
      break;
    case IoKind::writev:
      io_uring_prep_writev(sqe, op.fd, static_cast<const iovec*>(op.buf), op.len, off);
      break;
    case IoKind::fsync:
      io_uring_prep_fsync(sqe, op.fd, (op.flags & IoOp::kDataSync) ? IORING_FSYNC_DATASYNC : 0);
      break;
    case IoKind::openat:
      io_uring_prep_openat(sqe, op.fd, op.path, op.flags, op.len);
      break;
    case IoKind::statx:
      io_uring_prep_statx(sqe, op.fd, op.path, op.flags, op.len, static_cast<struct statx*>(op.buf));
      break;
    case IoKind::close:
      io_uring_prep_close(sqe, op.fd);
      break;
    case IoKind::cancel_fd:
      io_uring_prep_cancel_fd(sqe, op.fd, IORING_ASYNC_CANCEL_ALL);
      break;
  }
  if (op.fixed >= 0 && takes_fixed(op.kind)) {
    sqe->fd = op.fixed;
    sqe->flags |= IOSQE_FIXED_FILE;
  }
}

void mark_filled(const IoOp& op, int res) noexcept {
#if WEFT_VALGRIND
  if (!RUNNING_ON_VALGRIND || res < 0) return;
  const auto n = static_cast<std::size_t>(res);
  switch (op.kind) {
    case IoKind::recv:
    case IoKind::read:
      VALGRIND_MAKE_MEM_DEFINED(op.buf, n);
      break;
    case IoKind::readv:
      mark_iov(static_cast<const iovec*>(op.buf), op.len, n);
      break;
    case IoKind::recvmsg: {
      const auto* m = static_cast<const msghdr*>(op.buf);
      mark_iov(m->msg_iov, m->msg_iovlen, n);
      VALGRIND_MAKE_MEM_DEFINED(&m->msg_namelen, sizeof m->msg_namelen);
      VALGRIND_MAKE_MEM_DEFINED(&m->msg_controllen, sizeof m->msg_controllen);
      VALGRIND_MAKE_MEM_DEFINED(&m->msg_flags, sizeof m->msg_flags);
      if (m->msg_name) VALGRIND_MAKE_MEM_DEFINED(m->msg_name, m->msg_namelen);
      if (m->msg_control) VALGRIND_MAKE_MEM_DEFINED(m->msg_control, m->msg_controllen);
      break;
    }
    case IoKind::accept:
      if (op.addr_len) {
        VALGRIND_MAKE_MEM_DEFINED(op.addr_len, sizeof *op.addr_len);
        if (op.buf) VALGRIND_MAKE_MEM_DEFINED(op.buf, *op.addr_len);
      }
      break;
    case IoKind::statx:
      VALGRIND_MAKE_MEM_DEFINED(op.buf, sizeof(struct statx));
      break;
    default:
      break;
  }
#else
  (void)op;
  (void)res;
#endif
}

}  // namespace weft::detail
