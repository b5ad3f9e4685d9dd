// weft/net/error.hpp — the one error model of net/, and the timeout every blocking
// net call takes (any std::chrono duration, saturated).
//
// The model (every call in net/ follows it):
//  - Failures throw std::system_error with a std::generic_category() errno code.
//    what() names the operation and the socket: "weft::net::TcpStream::connect to
//    127.0.0.1:9: Connection refused", "weft::net::TcpStream::read_some (fd 7, peer
//    127.0.0.1:40122): Connection reset by peer".
//  - Raw -errno results (syscalls, CQEs) become exceptions only in net/error.cpp.
//  - End of stream is a result, not an error: read_some/recv return 0.
//    read_exact on a premature end throws UnexpectedEof (a std::system_error with
//    std::errc::no_message_available that also says how many bytes arrived;
//    declared with weft's other exception types in runtime/error.hpp, included here).
//  - A timeout that expires: std::errc::timed_out.
//  - The calling fiber was cancelled (e.g. Runtime shutdown): weft::FiberCancelled,
//    thrown only after the op's completion arrived, and in place of any error the
//    op ended with (only a result the call returns stands against it).
//  - The socket was closed (by another fiber, or handed over by a thread) while this
//    op was pending, or is being closed when the call starts:
//    std::errc::operation_canceled, what() says which. Any call once the socket is
//    closed: std::errc::bad_file_descriptor, what() says the socket is closed.
//  - Called from a plain thread, or from a fiber of a worker that does not own the
//    socket: weft::CrossRuntimeError (nothing is touched).
//  - Bad arguments (an Address of the wrong family, ...): std::invalid_argument.
// Invariants: stateless; any thread may throw these.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>

#include <weft/runtime/error.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/time.hpp>

namespace weft::detail {
struct OpEnd;
}  // namespace weft::detail

namespace weft::net {

/// A std::chrono duration of any unit or representation, held as int64 nanoseconds
/// and saturated: a duration nanoseconds cannot hold (hours::max(), seconds::max(),
/// a huge double) becomes nanoseconds::max() (or ::min()) instead of wrapping in
/// the conversion at the call site. It is a std::chrono::nanoseconds, so it
/// compares, computes and converts like one. Every net call taking a duration takes
/// this.
class Duration : public std::chrono::nanoseconds {
 public:
  /// Zero.
  constexpr Duration() noexcept : std::chrono::nanoseconds(0) {}
  /// `ns` nanoseconds, as std::chrono::nanoseconds(ns).
  constexpr explicit Duration(rep ns) noexcept : std::chrono::nanoseconds(ns) {}
  template <class Rep, class Period>
  constexpr Duration(std::chrono::duration<Rep, Period> d) noexcept  // implicit: any duration converts
      : std::chrono::nanoseconds(weft::detail::saturating_ns(d)) {}
};

/// How long a blocking net call may take, measured from the call (the whole call:
/// write_all's sends, connect's name lookup and attempts). Zero or negative: the
/// call fails with timed_out unless it can complete at once. nanoseconds::max()
/// (kNoTimeout), and so any duration too long for it: no timeout. The call turns
/// it into a weft::Deadline (runtime/time.hpp) at its start, Deadline::after(t),
/// and hands that down to the op.
using Timeout = Duration;
/// No timeout: the default of every blocking net call.
inline constexpr Timeout kNoTimeout = Timeout(std::chrono::nanoseconds::max());

namespace detail {

/// Why an op ended without its own result, decided by the socket layer.
using Failure = weft::detail::IoFailure;

/// net's conversion point (through runtime's throw_io_failure): throws
/// std::system_error for `res` (a raw -errno; ignored unless `why` is
/// errno_result). `op` names the operation ("weft::net::TcpStream::read_some"),
/// `subject` the socket (" (fd 7, peer ...)" or " to 1.2.3.4:80"); what() is
/// op + subject + [": " + the failure's words] + ": " + the code's message.
[[noreturn]] void throw_net_error(Failure why, int res, const char* op, const std::string& subject);

/// How the model reports an op that ended as `end` says (its result and the cause
/// its own CQEs gave: runtime/uring/op_table.hpp), on a socket that was `closing`
/// then: closed, timed_out (its linked timeout fired), or errno_result (the
/// result stands: a count, an errno to throw, -EINTR to retry). The clock is not
/// read: a deadline that passed while the op completed does not make it fail.
Failure failure_of(const weft::detail::OpEnd& end, bool closing) noexcept;

}  // namespace detail
}  // namespace weft::net
