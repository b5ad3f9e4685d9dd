// runtime/io_op.cpp — IoOp names for messages, and the syscall each kind stands
// for (see io_op.hpp).
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>

#include <weft/runtime/io_op.hpp>

#include "weft_build_config.hpp"

namespace weft::detail {

namespace {
// The transfers a server makes per request go to syscall(2) directly: libc's
// wrappers are cancellation points, which in a process of more than one thread
// cost two calls around every syscall, and weft never cancels a thread. Sanitizer
// builds keep the wrappers, where ASan checks the buffers and TSan sees the fd.
ssize_t sys_recv(int fd, void* buf, std::size_t len, int flags) noexcept {
#if WEFT_SANITIZED
  return ::recv(fd, buf, len, flags);
#else
  return ::syscall(SYS_recvfrom, fd, buf, len, flags, nullptr, nullptr);
#endif
}

ssize_t sys_send(int fd, const void* buf, std::size_t len, int flags) noexcept {
#if WEFT_SANITIZED
  return ::send(fd, buf, len, flags);
#else
  return ::syscall(SYS_sendto, fd, buf, len, flags, nullptr, 0);
#endif
}

ssize_t sys_recvmsg(int fd, msghdr* msg, int flags) noexcept {
#if WEFT_SANITIZED
  return ::recvmsg(fd, msg, flags);
#else
  return ::syscall(SYS_recvmsg, fd, msg, flags);
#endif
}

ssize_t sys_sendmsg(int fd, const msghdr* msg, int flags) noexcept {
#if WEFT_SANITIZED
  return ::sendmsg(fd, msg, flags);
#else
  return ::syscall(SYS_sendmsg, fd, msg, flags);
#endif
}
}  // namespace

const char* io_kind_name(IoKind k) noexcept {
  switch (k) {
    case IoKind::recv:
      return "recv";
    case IoKind::send:
      return "send";
    case IoKind::recvmsg:
      return "recvmsg";
    case IoKind::sendmsg:
      return "sendmsg";
    case IoKind::accept:
      return "accept";
    case IoKind::connect:
      return "connect";
    case IoKind::bind:
      return "bind";
    case IoKind::listen:
      return "listen";
    case IoKind::poll:
      return "poll";
    case IoKind::read:
      return "read";
    case IoKind::write:
      return "write";
    case IoKind::readv:
      return "readv";
    case IoKind::writev:
      return "writev";
    case IoKind::fsync:
      return "fsync";
    case IoKind::openat:
      return "openat";
    case IoKind::statx:
      return "statx";
    case IoKind::close:
      return "close";
    case IoKind::cancel_fd:
      return "cancel_fd";
  }
  return "?";
}

std::uint64_t new_io_owner() noexcept {
  // relaxed: only uniqueness matters; the id publishes nothing (the holder reaches
  // other threads by its own hand-over). 2^64 ids do not wrap in practice.
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

int io_syscall(const IoOp& op, bool nonblocking) noexcept {
  const int dontwait = nonblocking ? MSG_DONTWAIT : 0;
  const bool at = op.offset != IoOp::kCurrentPosition;
  const auto off = static_cast<off_t>(op.offset);
  ssize_t r = -1;
  switch (op.kind) {
    case IoKind::recv:
      r = sys_recv(op.fd, op.buf, op.len, op.flags | dontwait);
      break;
    case IoKind::send:
      r = sys_send(op.fd, op.buf, op.len, op.flags | dontwait);
      break;
    case IoKind::recvmsg:
      r = sys_recvmsg(op.fd, static_cast<msghdr*>(op.buf), op.flags | dontwait);
      break;
    case IoKind::sendmsg:
      r = sys_sendmsg(op.fd, static_cast<const msghdr*>(op.buf), op.flags | dontwait);
      break;
    case IoKind::accept:
      r = ::accept4(op.fd, static_cast<sockaddr*>(op.buf), op.addr_len, op.flags | (nonblocking ? SOCK_NONBLOCK : 0));
      break;
    case IoKind::connect:
      r = ::connect(op.fd, static_cast<const sockaddr*>(op.buf), op.len);
      break;
    case IoKind::bind:
      r = ::bind(op.fd, static_cast<const sockaddr*>(op.buf), op.len);
      break;
    case IoKind::listen:
      r = ::listen(op.fd, static_cast<int>(op.len));
      break;
    case IoKind::read:
      r = at ? ::pread(op.fd, op.buf, op.len, off) : ::read(op.fd, op.buf, op.len);
      break;
    case IoKind::write:
      r = at ? ::pwrite(op.fd, op.buf, op.len, off) : ::write(op.fd, op.buf, op.len);
      break;
    case IoKind::readv:
      r = at ? ::preadv(op.fd, static_cast<const iovec*>(op.buf), static_cast<int>(op.len), off)
             : ::readv(op.fd, static_cast<const iovec*>(op.buf), static_cast<int>(op.len));
      break;
    case IoKind::writev:
      r = at ? ::pwritev(op.fd, static_cast<const iovec*>(op.buf), static_cast<int>(op.len), off)
             : ::writev(op.fd, static_cast<const iovec*>(op.buf), static_cast<int>(op.len));
      break;
    case IoKind::fsync:
      r = (op.flags & IoOp::kDataSync) ? ::fdatasync(op.fd) : ::fsync(op.fd);
      break;
    case IoKind::openat:
      r = ::openat(op.fd, op.path, op.flags, static_cast<mode_t>(op.len));
      break;
    case IoKind::statx:
      r = ::statx(op.fd, op.path, op.flags, op.len, static_cast<struct statx*>(op.buf));
      break;
    case IoKind::close:
      r = ::close(op.fd);
      break;
    case IoKind::poll: {
      pollfd p{op.fd, static_cast<short>(op.flags), 0};
      r = ::poll(&p, 1, nonblocking ? 0 : -1);
      if (r > 0) r = p.revents;
      if (r == 0) return -EAGAIN;
      break;
    }
    case IoKind::cancel_fd:
      return -EINVAL;  // an engine's business: no syscall stands for it
  }
  return r < 0 ? -errno : static_cast<int>(r);
}

}  // namespace weft::detail
