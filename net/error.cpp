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
  weft::detail::throw_io_failure(why, res, std::string(op) + subject, "socket");
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
