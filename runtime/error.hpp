// weft/runtime/error.hpp — every exception type weft throws, and the one place raw
// -errno values from syscalls and CQEs become C++ errors.
//
// Rules:
//  - Every exception type of weft is declared here, net's UnexpectedEof included
//    (net/error.hpp re-exports it with net's error model); beside them weft throws
//    only standard types (std::system_error, std::invalid_argument, ...).
//  - At the syscall/CQE boundary code keeps the raw negative errno (int). It is
//    converted once, by throw_errno()/errno_code(), never by hand elsewhere.
//  - CrossRuntimeError: a call made from the wrong domain (Evented vs Threaded,
//    another runtime, another worker, a worker's scheduler context). Thrown before
//    any state is touched; the message names both sides and the bridge to use.
//  - StartupError: the runtime could not start (io_uring unavailable, memlock,
//    seccomp...). The message names the cause and the remedy.
//  - FiberCancelled: thrown out of a blocking call in a fiber that was cancelled
//    (e.g. by runtime shutdown); let it propagate so the fiber unwinds.
//  - A broken invariant or a misuse that cannot be reported by throwing (a
//    destructor, a noexcept path) ends the process through detail::fatal() or
//    WEFT_ASSERT, the one fatal path: one line "weft: FATAL: <message>" on stderr,
//    then abort().
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace weft {

class CrossRuntimeError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

class StartupError : public std::system_error {
 public:
  StartupError(int err, const std::string& what)
      : std::system_error(std::error_code(err, std::generic_category()), what) {}
};

class FiberCancelled : public std::runtime_error {
 public:
  FiberCancelled() : std::runtime_error("weft: fiber cancelled") {}
};

/// Work handed to something that is shut down, the one such error of weft:
/// Runtime::spawn/spawn_on/spawn_detached/block_on after the runtime's shutdown() began,
/// ThreadPool::submit()/weft::offload on a pool that is shut down, and an offload
/// whose queued task was refused at shutdown. what() names the runtime or pool.
/// A std::runtime_error: a shutdown by another thread may race any call, so the
/// caller cannot always rule it out beforehand.
class ShutDown : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The ShutDown a ThreadPool throws (the pool named in what()). Catch ShutDown to
/// handle both sides at once.
class PoolShutDown : public ShutDown {
 public:
  explicit PoolShutDown(const std::string& pool, const char* what = "is shut down; task not accepted")
      : ShutDown("weft::ThreadPool '" + pool + "' " + what) {}
};

/// send() on a closed Channel.
class ChannelClosed : public std::runtime_error {
 public:
  ChannelClosed() : std::runtime_error("weft: send on a closed Channel") {}
};

/// The error_code for a raw result `res` < 0 (a -errno from a syscall or CQE).
inline std::error_code errno_code(int res) noexcept {
  return std::error_code(res < 0 ? -res : res, std::generic_category());
}

/// Throws std::system_error for a raw -errno result, with `what` as context.
[[noreturn]] void throw_errno(int res, const char* what);

namespace net {

/// read_exact hit the end of the stream before `wanted` bytes: `got` arrived (and are
/// in the caller's buffer). code() is std::errc::no_message_available.
class UnexpectedEof : public std::system_error {
 public:
  UnexpectedEof(const std::string& what, std::size_t got, std::size_t wanted);
  [[nodiscard]] std::size_t got() const noexcept { return got_; }
  [[nodiscard]] std::size_t wanted() const noexcept { return wanted_; }

 private:
  std::size_t got_;
  std::size_t wanted_;
};

}  // namespace net

namespace detail {

/// Why an op on an fd's holder (a socket, a file) ended without its own result
/// standing, as its layer decides (net/error.hpp, fs/error.hpp).
enum class IoFailure : std::uint8_t {
  errno_result,     ///< the kernel's -errno stands (ECONNREFUSED, ENOENT, ...)
  closed,           ///< the op was pending when its holder was closed
  closing,          ///< the call started while a close() of it was under way
  use_after_close,  ///< it was already closed when the call started
  timed_out,        ///< the call's timeout expired
};

/// net's and fs's one conversion: throws std::system_error for `why` (for
/// errno_result, errno_code(res)); what() is `what`, then for any other failure
/// its words naming the holder as `noun` ("socket", "file"), then the code's message.
[[noreturn]] void throw_io_failure(IoFailure why, int res, const std::string& what, const char* noun);

/// What every fatal message of weft starts with.
inline constexpr char kFatalPrefix[] = "weft: FATAL: ";

/// The one fatal path: writes kFatalPrefix, `msg` and a newline to stderr with
/// writev(2), then abort()s. Async-signal-safe (no allocation, no stdio).
[[noreturn, gnu::cold]] void fatal(std::string_view msg) noexcept;

/// fatal() with a printf-style message, formatted on the stack (cut at 1 KiB).
/// Not for signal handlers (vsnprintf).
[[noreturn, gnu::cold, gnu::format(printf, 1, 2)]] void fatalf(const char* fmt, ...) noexcept;

}  // namespace detail
}  // namespace weft

/// Checked in every build: `cond` false is a bug (of weft or of its caller) that
/// cannot be reported by throwing; the process ends through detail::fatal(msg).
#define WEFT_ASSERT(cond, msg)                                      \
  do {                                                              \
    if (__builtin_expect(!(cond), 0)) ::weft::detail::fatal((msg)); \
  } while (0)
