// weft/runtime/fiber/sanitizer.hpp — which sanitizers this translation unit is built
// with, and the fiber-switch hooks they need. Macros only for annotations (style rule).
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#ifndef WEFT_ASAN
#define WEFT_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
#ifndef WEFT_TSAN
#define WEFT_TSAN 0
#endif

#if WEFT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define WEFT_ALWAYS_INLINE inline __attribute__((always_inline))

namespace weft::detail {

/// Tells TSan about a happens-before edge the kernel carries (io_uring, eventfd):
/// call release() before handing data over and acquire() after receiving it.
WEFT_ALWAYS_INLINE void tsan_release([[maybe_unused]] void* addr) {
#if WEFT_TSAN
  __tsan_release(addr);
#endif
}
WEFT_ALWAYS_INLINE void tsan_acquire([[maybe_unused]] void* addr) {
#if WEFT_TSAN
  __tsan_acquire(addr);
#endif
}

inline constexpr bool kAsan = WEFT_ASAN != 0;
inline constexpr bool kTsan = WEFT_TSAN != 0;

}  // namespace weft::detail
