// net/error.cpp — the one place where net/ turns raw -errno results into
// exceptions. See error.hpp.
#include <cerrno>

#include <weft/net/error.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/uring/timer_queue.hpp>

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

}  // namespace detail
}  // namespace weft::net
