// runtime/error.cpp — the out-of-line parts of weft's exception types, the
// conversion of raw -errno results into exceptions (one place), and the one fatal
// path (async-signal-safe: write(2) and abort() only).
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <weft/runtime/error.hpp>

namespace weft {

void throw_errno(int res, const char* what) {
  throw std::system_error(errno_code(res), what);
}

void detail::throw_io_failure(IoFailure why, int res, const std::string& what, const char* noun) {
  std::errc code = std::errc::operation_canceled;
  const char* words = nullptr;  // after "the <noun>"
  switch (why) {
    case IoFailure::closed:
      words = " was closed while the operation was pending";
      break;
    case IoFailure::closing:
      words = " is being closed (a close() is under way)";
      break;
    case IoFailure::use_after_close:
      code = std::errc::bad_file_descriptor;
      words = " is closed";
      break;
    case IoFailure::timed_out:
      throw std::system_error(std::make_error_code(std::errc::timed_out), what + ": timeout expired");
    case IoFailure::errno_result:
      break;
  }
  if (!words) throw std::system_error(errno_code(res), what);
  throw std::system_error(std::make_error_code(code), what + ": the " + noun + words);
}

namespace net {

UnexpectedEof::UnexpectedEof(const std::string& what, std::size_t got, std::size_t wanted)
    : std::system_error(std::make_error_code(std::errc::no_message_available),
                        what + ": the peer ended the stream after " + std::to_string(got) + " of " +
                            std::to_string(wanted) + " bytes"),
      got_(got),
      wanted_(wanted) {}

}  // namespace net

namespace detail {

void fatal(std::string_view msg) noexcept {
  // One writev for the whole line where stderr takes it, so that lines of two
  // threads dying at once do not interleave; the rest (a short write) piecewise.
  iovec iov[3] = {{const_cast<char*>(kFatalPrefix), sizeof kFatalPrefix - 1},
                  {const_cast<char*>(msg.data()), msg.size()},
                  {const_cast<char*>("\n"), 1}};
  int i = 0;
  while (i < 3) {
    const ssize_t n = ::writev(STDERR_FILENO, iov + i, 3 - i);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // stderr closed or broken: nothing more we can say
    }
    auto left = static_cast<std::size_t>(n);
    while (i < 3 && left >= iov[i].iov_len) left -= iov[i++].iov_len;
    if (i < 3) {
      iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + left;
      iov[i].iov_len -= left;
    }
  }
  std::abort();
}

void fatalf(const char* fmt, ...) noexcept {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  const std::size_t len =
      n < 0 ? 0 : (static_cast<std::size_t>(n) < sizeof buf ? static_cast<std::size_t>(n) : sizeof buf - 1);
  fatal(std::string_view(buf, len));
}

}  // namespace detail
}  // namespace weft
