// weft/runtime/fiber/context.hpp — the one context switch, with its sanitizer hooks
// and the C++ exception state it carries per context.
//
// Invariants:
//  - Every switch between fibers (and to/from a worker's scheduler context) goes
//    through switch_context(); it is always inlined so that TSan's
//    __tsan_switch_to_fiber runs in the same frame as the jump (a separate frame
//    underflows TSan's shadow stack: Tencent/flare#197).
//  - The same code path runs in release and sanitizer builds; the hooks compile to
//    nothing where the sanitizer is absent.
//  - A Context is only touched by the thread its fiber runs on.
//  - After a jump returns, the Context that jumped to us is handed over in
//    transfer_t::data and its saved stack pointer is stored into it, so any context
//    can later be resumed by anyone on the same thread.
//  - The C++ runtime keeps the caught-exception stack and the uncaught count per
//    thread; every switch saves them into the context it leaves and loads those of
//    the context it enters, so each fiber (and the scheduler) sees only its own. A
//    new context starts with none. The thread's globals are found through
//    t_state.eh, set by the worker thread before its first switch.
#pragma once

#include <cxxabi.h>

#include <cstddef>

#include <boost/context/detail/fcontext.hpp>

#include <weft/runtime/fiber/sanitizer.hpp>

#if defined(__ARM_EABI_UNWINDER__)
#error "weft: the ARM EHABI exception globals carry a third field that switch_context does not save"
#endif

namespace weft::detail {

using boost::context::detail::fcontext_t;
using boost::context::detail::transfer_t;

class Worker;
class FiberBase;

/// The C++ runtime's per-thread exception state, as laid out by libsupc++ and
/// libc++abi (__cxa_eh_globals, which cxxabi.h leaves opaque).
struct EhState {
  void* caught = nullptr;     ///< caughtExceptions: top of the handled-exception stack
  unsigned int uncaught = 0;  ///< uncaughtExceptions: what std::uncaught_exceptions() returns
};

/// The calling thread's __cxa_eh_globals (a call; cache the result per thread).
inline EhState* this_thread_eh_state() noexcept {
  return reinterpret_cast<EhState*>(abi::__cxa_get_globals());
}

/// What the calling thread is running. Written only by the thread itself.
struct ThreadState {
  Worker* worker = nullptr;    ///< set on Evented worker threads
  FiberBase* fiber = nullptr;  ///< the running fiber; null in scheduler context
  EhState* eh = nullptr;       ///< this thread's exception globals; set on worker threads
};
inline thread_local ThreadState t_state;

/// A suspended context. Release builds carry the saved stack pointer and the
/// exception state (they sit in the fiber's first cache line with the other
/// switch-path fields); sanitizer builds add what their hooks need. Every TU of one
/// program must agree on the flags: checked at link time (the build-mode symbol below).
struct Context {
  fcontext_t fc = nullptr;  ///< saved stack pointer while suspended
  EhState eh;               ///< this context's exception state while suspended
#if WEFT_ASAN
  const void* stack_lo = nullptr;  ///< stack bounds, for ASan
  std::size_t stack_size = 0;
  void* asan_fake = nullptr;  ///< ASan fake-stack handle while suspended
#endif
#if WEFT_TSAN
  void* tsan_fiber = nullptr;  ///< TSan fiber state
#endif
};

}  // namespace weft::detail

// The build-mode check. Context's layout depends on the sanitizer flags of the TU
// that includes this header, so libweft and every TU that uses it must be built in
// one mode. Each such TU references the symbol of its own mode; libweft defines only
// the symbol of the mode it was built in (worker.cpp). A TU built in another mode
// leaves its symbol undefined, and the link fails with a message whose symbol names
// the remedy. The reference is one pointer in a data section, with no code: `used`
// keeps it through LTO, `retain` through --gc-sections.
#if WEFT_ASAN
#define WEFT_BUILD_MODE_SYMBOL weft_build_mode_asan__rebuild_libweft_with_b_sanitize_address
#elif WEFT_TSAN
#define WEFT_BUILD_MODE_SYMBOL weft_build_mode_tsan__rebuild_libweft_with_b_sanitize_thread
#else
#define WEFT_BUILD_MODE_SYMBOL weft_build_mode_plain__rebuild_libweft_without_b_sanitize
#endif
#if defined(__has_attribute) && __has_attribute(retain)
#define WEFT_RETAIN __attribute__((retain))
#else
#define WEFT_RETAIN
#endif

extern "C" const char WEFT_BUILD_MODE_SYMBOL;

namespace weft::detail {

[[gnu::used]] WEFT_RETAIN static const char* const kBuildModeReference = &WEFT_BUILD_MODE_SYMBOL;

/// Records a context's stack bounds where a sanitizer needs them.
inline void set_stack_bounds([[maybe_unused]] Context* ctx, [[maybe_unused]] const void* lo,
                             [[maybe_unused]] std::size_t size) {
#if WEFT_ASAN
  ctx->stack_lo = lo;
  ctx->stack_size = size;
#endif
}

/// Prepares `ctx` to start `entry` on the stack [lo, lo + size).
inline void make_context(Context* ctx, void* lo, std::size_t size, void (*entry)(transfer_t)) {
  ctx->fc = boost::context::detail::make_fcontext(static_cast<char*>(lo) + size, size, entry);
  set_stack_bounds(ctx, lo, size);
}

/// Suspends `from` and resumes `to`. `from_exits`: `from` will never run again
/// (its ASan fake stack is released). Returns when someone resumes `from`.
WEFT_ALWAYS_INLINE void switch_context(Context* from, Context* to, [[maybe_unused]] bool from_exits) {
  EhState* eh = t_state.eh;
  from->eh.caught = eh->caught;
  from->eh.uncaught = eh->uncaught;
  eh->caught = to->eh.caught;
  eh->uncaught = to->eh.uncaught;
#if WEFT_ASAN
  __sanitizer_start_switch_fiber(from_exits ? nullptr : &from->asan_fake, to->stack_lo, to->stack_size);
#endif
#if WEFT_TSAN
  // flags 0: a happens-before edge between the serialized fibers of this thread.
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
  transfer_t t = boost::context::detail::jump_fcontext(to->fc, from);
  static_cast<Context*>(t.data)->fc = t.fctx;
#if WEFT_ASAN
  __sanitizer_finish_switch_fiber(from->asan_fake, nullptr, nullptr);
#endif
}

/// First thing a new fiber's entry function does with the transfer it receives.
WEFT_ALWAYS_INLINE void on_fiber_entry(transfer_t t) {
  static_cast<Context*>(t.data)->fc = t.fctx;
#if WEFT_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

}  // namespace weft::detail
