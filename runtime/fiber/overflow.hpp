// weft/runtime/fiber/overflow.hpp — report a fiber stack overflow by name, then die.
//
// Invariants:
//  - One process-wide SIGSEGV/SIGBUS handler (SA_SIGINFO|SA_ONSTACK), installed once
//    by the first Runtime; the handler it replaced is remembered and restored.
//  - Every Evented worker thread owns an alternate signal stack (sigaltstack) sized
//    max(4 * _SC_SIGSTKSZ, 64 KiB) so the handler runs even when the fiber stack is gone.
//  - The handler is async-signal-safe: it reads thread-local state through the probe
//    (no locks, no allocation), formats into a local buffer and write(2)s to stderr.
//  - A fault outside the current fiber's guard region is not ours: the previous
//    handler is restored and the fault re-raised (ASan/TSan/default handling).
//  - On a guard fault it prints
//      "FATAL: fiber stack overflow (fault in guard page) in fiber <name> (id <id>, worker <w>)"
//    then restores the previous handler and returns, so the fault recurs and the
//    process dies by SIGSEGV (core dump / sanitizer report as configured).
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft::detail {

/// What the handler needs to know about the fiber running on the faulting thread.
struct OverflowProbe {
  const void* guard_lo = nullptr;  ///< guard region [guard_lo, guard_lo + guard_size)
  std::size_t guard_size = 0;
  const void* stack_lo = nullptr;    ///< usable stack above the guard
  const char* fiber_name = nullptr;  ///< NUL-terminated, stable while the fiber runs
  std::uint64_t fiber_id = 0;
  int worker = -1;
};

/// Fills *out for the fiber running on the calling thread; false when no fiber runs.
/// Must be async-signal-safe (reads thread-locals only).
using OverflowProbeFn = bool (*)(OverflowProbe* out) noexcept;

/// Installs the process-wide handler (idempotent, thread-safe) and sets the probe.
void install_overflow_handler(OverflowProbeFn probe);
/// Gives the calling thread an alternate signal stack; undone by
/// release_thread_altstack() (call it before the thread exits).
void setup_thread_altstack();
void release_thread_altstack() noexcept;

}  // namespace weft::detail
