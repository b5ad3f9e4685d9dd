// net/error.cpp — the one place where net/ turns raw -errno results into
// exceptions. See error.hpp.
#include <cerrno>

#include <weft/net/error.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/uring/op_table.hpp>

namespace weft::net {

namespace detail {

void throw_net_error(Failure why, int res, const char* op, const std::string& subject) {
  std::string what = std::string(op) + subject;
  switch (why) {
    case Failure::closed:
      throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                              what + ": the socket was closed while the operation was pending");
    case Failure::closing:
      throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                              what + ": the socket is being closed (a close() is under way)");
    case Failure::use_after_close:
      throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), what + ": the socket is closed");
    case Failure::timed_out:
      throw std::system_error(std::make_error_code(std::errc::timed_out), what + ": timeout expired");
    case Failure::errno_result:
      break;
  }
  // -errno -> std::error_code in the generic (errno) category: the runtime's one helper.
  throw std::system_error(weft::errno_code(res), what);
}

Failure failure_of(const weft::detail::OpEnd& end, bool closing) noexcept {
  // While closing, a result of 0 is the close's fallback shutdown(2) ending a
  // receive, not the peer's end of stream (net/socket.cpp, cancel_pending()).
  if (end.res <= 0 && closing) return Failure::closed;
  if (end.cause == weft::detail::OpEnd::Cause::timed_out) return Failure::timed_out;
  return Failure::errno_result;
}

}  // namespace detail
}  // namespace weft::net
