// weft/runtime/error.hpp — the error types weft throws, and the one place raw
// -errno values from syscalls and CQEs become C++ errors.
//
// Rules:
//  - At the syscall/CQE boundary code keeps the raw negative errno (int). It is
//    converted once, by throw_errno()/errno_code(), never by hand elsewhere.
//  - CrossRuntimeError: a call made from the wrong domain (Evented vs Threaded,
//    or another runtime). Thrown before any state is touched; the message names
//    both sides and the bridge to use.
//  - StartupError: the runtime could not start (io_uring unavailable, memlock,
//    seccomp...). The message names the cause and the remedy.
//  - FiberCancelled: thrown out of a blocking call in a fiber that was cancelled
//    (e.g. by runtime shutdown); let it propagate so the fiber unwinds.
#pragma once

#include <stdexcept>
#include <string>
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

/// The error_code for a raw result `res` < 0 (a -errno from a syscall or CQE).
inline std::error_code errno_code(int res) noexcept {
  return std::error_code(res < 0 ? -res : res, std::generic_category());
}

/// Throws std::system_error for a raw -errno result, with `what` as context.
[[noreturn]] void throw_errno(int res, const char* what);

}  // namespace weft
