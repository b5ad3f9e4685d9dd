// fs/error.cpp — the one place where fs/ turns raw -errno results into
// exceptions (error.hpp has the model).
//
// Invariants: stateless; the words for each Failure are net's (runtime's
// throw_io_failure), with "file" for "socket", so a server's logs read alike.
#include <cerrno>
#include <system_error>

#include <weft/fs/error.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/io_op.hpp>

namespace weft::fs::detail {

void throw_fs_error(Failure why, int res, const char* op, const std::string& path) {
  weft::detail::throw_io_failure(why, res, std::string(op) + ": " + path, "file");
}

Failure failure_of(const weft::detail::OpEnd& end, bool closing) noexcept {
  // A file op a close cancelled ends with -ECANCELED (or -EINTR); one that
  // completed while the file was closing keeps its result.
  if (end.res < 0 && closing) return Failure::closed;
  if (end.cause == weft::detail::OpEnd::Cause::timed_out) return Failure::timed_out;
  return Failure::errno_result;
}

}  // namespace weft::fs::detail
