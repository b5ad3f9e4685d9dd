// fs/error.cpp — the one place where fs/ turns raw -errno results into
// exceptions (error.hpp has the model).
//
// Invariants: stateless; the words for each Failure are net's, with "file" for
// "socket", so a server's logs read alike for both.
#include <cerrno>
#include <system_error>

#include <weft/fs/error.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/io_op.hpp>

namespace weft::fs::detail {

void throw_fs_error(Failure why, int res, const char* op, const std::string& path) {
  std::string what = std::string(op) + ": " + path;
  switch (why) {
    case Failure::closed:
      throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                              what + ": the file was closed while the operation was pending");
    case Failure::closing:
      throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                              what + ": the file is being closed (a close() is under way)");
    case Failure::use_after_close:
      throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), what + ": the file is closed");
    case Failure::timed_out:
      throw std::system_error(std::make_error_code(std::errc::timed_out), what + ": timeout expired");
    case Failure::errno_result:
      break;
  }
  throw std::system_error(weft::errno_code(res), what);
}

Failure failure_of(const weft::detail::OpEnd& end, bool closing) noexcept {
  // A file op a close cancelled ends with -ECANCELED (or -EINTR); one that
  // completed while the file was closing keeps its result.
  if (end.res < 0 && closing) return Failure::closed;
  if (end.cause == weft::detail::OpEnd::Cause::timed_out) return Failure::timed_out;
  return Failure::errno_result;
}

}  // namespace weft::fs::detail
