// weft/fs/error.hpp — the one error model of fs/, and the timeout every fs call
// takes (net/'s Timeout: any std::chrono duration, saturated).
//
// The model (every fs call follows it, as net's calls follow net/error.hpp):
//  - std::system_error, errno code (generic category), what() naming the call and
//    the path: "weft::fs::open: /x/y: No such file or directory". Raw -errno
//    results become exceptions only in fs/error.cpp.
//  - Timeout: std::errc::timed_out. A cancelled fiber: weft::FiberCancelled, once
//    the op has ended. Closed while pending, or a close under way:
//    std::errc::operation_canceled. A closed File: std::errc::bad_file_descriptor.
//  - A plain thread, or a fiber of a worker not owning the File: CrossRuntimeError.
// Invariants: stateless; any thread may throw these.
#pragma once

#include <cstdint>
#include <string>

#include <weft/net/error.hpp>

namespace weft::detail {
struct OpEnd;
}  // namespace weft::detail

namespace weft::fs {

/// How long an fs call may take, measured from the call (net::Timeout: any
/// std::chrono duration, saturated; kNoTimeout means none). On the Threaded pool
/// it cannot cut a syscall short (docs/fs.md, file.hpp).
using Timeout = weft::net::Timeout;
/// No timeout: the default of every fs call.
inline constexpr Timeout kNoTimeout = weft::net::kNoTimeout;

namespace detail {

/// Why an op ended without its own result standing, decided by the File layer.
using Failure = weft::detail::IoFailure;

/// fs's conversion point (through runtime's throw_io_failure): throws
/// std::system_error for `res` (a raw -errno;
/// ignored unless `why` is errno_result). `op` names the call
/// ("weft::fs::File::read_at"), `path` the file; what() is
/// op + ": " + path + [": " + the failure's words] + ": " + the code's message.
[[noreturn]] void throw_fs_error(Failure why, int res, const char* op, const std::string& path);

/// How the model reports an op that ended as `end` says, on a file that was
/// `closing` then: closed (a failure while closing), timed_out (its deadline
/// ended it), or errno_result (the result stands: a count, an errno to throw,
/// -EINTR to retry). A result that arrived stands whatever the clock says.
Failure failure_of(const weft::detail::OpEnd& end, bool closing) noexcept;

}  // namespace detail
}  // namespace weft::fs
