// weft/runtime/domain.hpp — who is calling: a fiber of an Evented runtime, a
// worker's scheduler context, or a plain OS thread (the Threaded side).
//
// Rules (docs/design.md explains them):
//  - A fiber of runtime R is in Evented(R). Any thread not running a fiber — pool
//    threads, main, plain std::threads — is Threaded (it blocks on futexes).
//  - Code a worker runs outside any fiber (Timer callbacks) is in the scheduler
//    context of that worker: a domain of its own. It can neither park (no fiber)
//    nor block (the worker's other fibers, and its shutdown, would wait behind it),
//    so every call that may block is refused there with CrossRuntimeError; calls
//    that never block (try_ forms, signals, Runtime::spawn/spawn_detached) are fine.
//  - An Evented-only call (spawn, yield, sleep_for, all of net/) made outside a
//    fiber throws CrossRuntimeError naming both sides and the bridge to use; it
//    never dereferences a missing thread-local.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace weft {

class Runtime;

struct Domain {
  enum class Kind : std::uint8_t { threaded, evented, scheduler };
  Kind kind = Kind::threaded;
  const Runtime* runtime = nullptr;  ///< evented and scheduler
  std::uint64_t runtime_id = 0;      ///< evented and scheduler: Runtime::id(), never reused
  int worker = -1;                   ///< evented and scheduler

  [[nodiscard]] bool evented() const { return kind == Kind::evented; }
  [[nodiscard]] bool threaded() const { return kind == Kind::threaded; }
  /// A worker's scheduler context (a Timer callback): never blocks.
  [[nodiscard]] bool scheduler() const { return kind == Kind::scheduler; }
  /// Same side (and, for Evented, the same runtime, told apart by id: a Runtime
  /// built later at the same address is another one); the worker does not matter.
  friend bool operator==(const Domain& a, const Domain& b) { return a.kind == b.kind && a.runtime_id == b.runtime_id; }
  /// "Evented(runtime 'weft')", "Scheduler(runtime 'weft', worker 0)" or "Threaded".
  [[nodiscard]] std::string name() const;
};

/// The calling context's domain. Never throws.
Domain current_domain() noexcept;

/// The caller in words: "fiber 'conn#3' on worker 0 of runtime 'weft'", "the
/// scheduler context (a Timer callback) of worker 0 of runtime 'weft'" or
/// "thread 'main' (tid 1234)".
std::string describe_caller();

namespace detail {
// Named by the layers below the façade without including it: a runtime's identity
// (defined by the façade) and the running fiber's name (defined by the fiber
// layer). current_domain() itself is answered by the engine that runs the caller.
/// The runtime's name (Config::name).
const std::string& runtime_name(const Runtime& rt) noexcept;
/// Runtime::id(): unique in the process, never reused.
std::uint64_t runtime_id(const Runtime& rt) noexcept;
/// The running fiber's name ("fiber#<id>" when it has none); empty outside a fiber.
std::string current_fiber_name();

/// The one message of every call refused because of who makes it (the text of
/// each CrossRuntimeError, and of the aborts of sync/ on a foreign caller):
///   "<refused>, but the caller[ of <op>] is <describe_caller()>, which is
///    <current_domain().name()><domain_note>. <bridge>"
/// `refused` names the call and what it needs ("weft::sleep_for is Evented-only:
/// ..."), `bridge` what to do instead; `op` names the call when `refused` names
/// only the object ("weft::Mutex 'm' belongs to Evented(runtime 'svc')").
std::string cross_domain_message(std::string_view refused, std::string_view bridge, std::string_view op = {},
                                 std::string_view domain_note = {});
/// Throws CrossRuntimeError: `operation` is Evented-only and the caller is not a fiber.
[[noreturn]] void throw_not_in_fiber(const char* operation);
/// The refusal of `op` on `what` (e.g. "weft::Channel", "send()"), a call that may
/// block, made in a worker's scheduler context.
std::string blocking_in_scheduler_message(const std::string& what, const char* op);
/// Throws CrossRuntimeError with blocking_in_scheduler_message(what, op).
[[noreturn]] void throw_blocking_in_scheduler(const std::string& what, const char* op);
}  // namespace detail

}  // namespace weft
