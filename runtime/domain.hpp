// weft/runtime/domain.hpp — who is calling: a fiber of an Evented runtime, or a
// plain OS thread (the Threaded side).
//
// Rules (DESIGN "Domains"):
//  - A fiber of runtime R is in Evented(R). Any thread not running a fiber — pool
//    threads, main, plain std::threads, and a worker's scheduler context — is
//    Threaded for blocking purposes (it cannot park).
//  - An Evented-only call (spawn, yield, sleep_for, all of net/) made from Threaded
//    throws CrossRuntimeError naming both sides and the bridge to use; it never
//    dereferences a missing thread-local.
#pragma once

#include <cstdint>
#include <string>

namespace weft {

class Runtime;

struct Domain {
  enum class Kind : std::uint8_t { threaded, evented };
  Kind kind = Kind::threaded;
  const Runtime* runtime = nullptr;  ///< evented only
  std::uint64_t runtime_id = 0;      ///< evented only: Runtime::id(), never reused
  int worker = -1;                   ///< evented only

  [[nodiscard]] bool evented() const { return kind == Kind::evented; }
  [[nodiscard]] bool threaded() const { return kind == Kind::threaded; }
  /// Same side (and, for Evented, the same runtime, told apart by id: a Runtime
  /// built later at the same address is another one); the worker does not matter.
  friend bool operator==(const Domain& a, const Domain& b) { return a.kind == b.kind && a.runtime_id == b.runtime_id; }
  /// "Evented(runtime 'weft')" or "Threaded".
  [[nodiscard]] std::string name() const;
};

/// The calling context's domain. Never throws.
Domain current_domain() noexcept;

/// The caller in words: "fiber 'conn#3' on worker 0 of runtime 'weft'" or
/// "thread 'main' (tid 1234)".
std::string describe_caller();

namespace detail {
/// Throws CrossRuntimeError: `operation` is Evented-only and the caller is not a fiber.
[[noreturn]] void throw_not_in_fiber(const char* operation);
}  // namespace detail

}  // namespace weft
