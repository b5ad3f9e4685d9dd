// runtime/io_op.cpp — IoOp names for messages (see io_op.hpp).
#include <weft/runtime/io_op.hpp>

namespace weft::detail {

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

}  // namespace weft::detail
