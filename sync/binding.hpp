// weft/sync/binding.hpp — the domain a sync primitive belongs to, and the check
// its blocking calls make against it (docs/design.md; incidents 001 and 003 in
// docs/incidents.md).
//
// The contract:
//  - A blocking call (lock, wait, acquire, and their try_/timed forms) must come
//    from the primitive's own domain: a fiber must not block its worker on a
//    Threaded primitive, a thread cannot park on a fiber primitive, a fiber cannot
//    park on another runtime's. The first such call binds an unbound primitive.
//  - A signal never blocks (Event::set/reset, Semaphore::release,
//    FutexCounter::increment_and_wake, Condition::notify_one/all) and is accepted
//    from any domain: any thread, any fiber of any runtime. It does not bind. It
//    wakes each waiter the way that waiter waits (detail::Waiter::wake: unpark on
//    the waiter's own worker, or a futex wake), so a fiber may signal threads, a
//    thread may signal fibers (a pool thread freeing a pooled resource), and one
//    runtime's fiber may signal another's.
//  - A worker's scheduler context (a Timer callback: the worker's thread outside
//    any fiber) is a domain of its own that no primitive belongs to. It must never
//    block its worker, so every blocking call made there is refused, whatever the
//    binding, and binds nothing; non-blocking calls (try_acquire, signals) pass.
//
// States of DomainBinding::word_ (the one field shared between threads):
//   kUnbound  -> kBinding -> <runtime>   first acquiring caller is a fiber of that runtime
//   kUnbound  -> kThreaded               first acquiring caller is a plain thread
//   set at construction to kThreaded or <runtime> when the binding is explicit.
// <runtime> is kRuntimeWordBase + Runtime::id(): ids are never reused, so a Runtime
// built later at a destroyed one's address is another domain.
// Once bound the word never changes again. kBinding is transient: the winner of
// the bind CAS copies the runtime's name into runtime_name_, then publishes the
// final word with a release store; readers that need the name load it with
// acquire (the message builder), others only compare.
// Invariants:
//  - The check runs before the primitive touches any of its own state, in every
//    build type. A wrong caller gets CrossRuntimeError (or, on a noexcept path,
//    the same text on stderr and abort()); it never reaches a Waiter of the wrong
//    kind or a thread-local that is not there.
//  - The caller's own word is computed from detail::t_state (written only by the
//    calling thread) plus a per-thread cache of "this worker's runtime word", so the
//    fast path is two thread-local reads, one relaxed load and one compare.
//  - The runtime is never dereferenced after binding: its name is copied, so a
//    message about a primitive that outlived its runtime is still safe to build.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include <weft/runtime/fiber/fiber.hpp>

namespace weft {

class Runtime;

/// Binds a primitive to the Threaded side: `weft::Mutex m{weft::threaded};`.
struct ThreadedTag {
  explicit constexpr ThreadedTag() = default;
};
inline constexpr ThreadedTag threaded{};

namespace detail {

/// The tests' door to a primitive's binding (runtime/test_access.hpp, not installed).
struct TestAccess;

inline constexpr std::uintptr_t kUnbound = 0;
inline constexpr std::uintptr_t kThreaded = 1;
inline constexpr std::uintptr_t kBinding = 2;          // a bind is in progress (transient)
inline constexpr std::uintptr_t kScheduler = 3;        // a caller's word only: never stored
inline constexpr std::uintptr_t kRuntimeWordBase = 3;  // + Runtime::id() (ids start at 1): above kScheduler

/// Per thread: the domain word of the runtime whose worker this thread runs, cached.
struct CallerCache {
  const Worker* worker = nullptr;
  std::uintptr_t word = kUnbound;
};
inline thread_local CallerCache t_caller_cache;

/// Fills t_caller_cache for the current worker and returns its word.
std::uintptr_t refresh_caller_word() noexcept;

/// The calling context's domain word: kThreaded for a thread that is not a worker,
/// kScheduler for a worker outside any fiber, else the word of the fiber's runtime
/// (same rule as current_domain()).
inline std::uintptr_t caller_word() noexcept {
  const ThreadState& ts = t_state;
  if (!ts.worker) return kThreaded;
  if (!ts.fiber) return kScheduler;
  if (ts.worker == t_caller_cache.worker) [[likely]]
    return t_caller_cache.word;
  return refresh_caller_word();
}

/// Who holds a primitive (Mutex ownership): the running fiber, else the thread.
inline thread_local char t_thread_token;
inline const void* caller_identity() noexcept {
  FiberBase* f = t_state.fiber;
  return f ? static_cast<const void*>(f) : static_cast<const void*>(&t_thread_token);
}

class DomainBinding {
 public:
  /// `kind` is a string literal ("weft::Mutex"); `name` is copied (31 chars kept).
  DomainBinding(const char* kind, std::string_view name) noexcept;
  DomainBinding(const char* kind, Runtime& rt, std::string_view name);
  DomainBinding(const char* kind, ThreadedTag, std::string_view name) noexcept;
  DomainBinding(const DomainBinding&) = delete;
  DomainBinding& operator=(const DomainBinding&) = delete;

  /// An acquiring call that may block (lock, wait, acquire...): binds an unbound
  /// primitive to the caller's domain, else throws CrossRuntimeError unless the
  /// caller is in it. Always refused in the scheduler context (nothing is bound).
  /// Signals are not checked: any domain may signal (see the top).
  void check_acquire(const char* op) const {
    // relaxed: only the word's value matters here (equal or not); nothing else is
    // published through it on this path.
    if (word_.load(std::memory_order_relaxed) == caller_word()) [[likely]]
      return;
    slow_check(op);
  }
  /// An acquiring call that never blocks (try_acquire): as check_acquire, except
  /// that the scheduler context passes (and binds nothing).
  void check_try(const char* op) const {
    const std::uintptr_t me = caller_word();
    if (word_.load(std::memory_order_relaxed) == me || me == kScheduler) [[likely]]  // relaxed: as above
      return;
    slow_check(op);
  }
  /// A noexcept call (unlock): a foreign caller gets the message on stderr and abort().
  void check_noexcept(const char* op) const noexcept {
    const std::uintptr_t w = word_.load(std::memory_order_relaxed);  // as above
    if (w == caller_word() || w == kUnbound) [[likely]]
      return;
    abort_foreign(op);
  }

  /// "Threaded", "Evented(runtime 'weft')" or "unbound".
  [[nodiscard]] std::string domain_name() const;
  /// "weft::Mutex 'conn-table'" (or just the kind when unnamed).
  [[nodiscard]] std::string what() const;
  [[nodiscard]] const char* name() const noexcept { return name_; }
  [[nodiscard]] bool bound() const noexcept { return word_.load(std::memory_order_acquire) > kBinding; }
  [[nodiscard]] bool bound_threaded() const noexcept { return word_.load(std::memory_order_acquire) == kThreaded; }

  /// The full cross-domain message for a call `op` from the current caller.
  [[nodiscard]] std::string foreign_message(const char* op) const;
  /// Prints `msg` (prefixed with the primitive) to stderr and aborts.
  [[noreturn]] void die(const std::string& msg) const noexcept;

 private:
  void slow_check(const char* op) const;
  [[noreturn]] void abort_foreign(const char* op) const noexcept;
  std::uintptr_t settled_word() const noexcept;

  // relaxed on the compare-only fast paths; acquire where runtime_name_ is read;
  // the binder publishes runtime_name_ with a release store (see the top).
  mutable std::atomic<std::uintptr_t> word_;
  const char* kind_;
  char name_[32] = {};
  mutable char runtime_name_[32] = {};  // written once, before word_ is published
};

}  // namespace detail
}  // namespace weft
