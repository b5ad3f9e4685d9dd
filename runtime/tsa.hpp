// weft/runtime/tsa.hpp — Clang thread-safety annotations (no-ops elsewhere).
//
// Locks that guard data say so with WEFT_GUARDED_BY(mu_); functions that need a
// lock held say WEFT_REQUIRES(mu_). clang's -Wthread-safety checks them at compile
// time; g++ ignores them.
#pragma once

#if defined(__clang__)
#define WEFT_TSA(x) __attribute__((x))
#else
#define WEFT_TSA(x)
#endif

#define WEFT_CAPABILITY(name) WEFT_TSA(capability(name))
#define WEFT_SCOPED_CAPABILITY WEFT_TSA(scoped_lockable)
#define WEFT_GUARDED_BY(x) WEFT_TSA(guarded_by(x))
#define WEFT_PT_GUARDED_BY(x) WEFT_TSA(pt_guarded_by(x))
#define WEFT_REQUIRES(...) WEFT_TSA(requires_capability(__VA_ARGS__))
#define WEFT_ACQUIRE(...) WEFT_TSA(acquire_capability(__VA_ARGS__))
#define WEFT_RELEASE(...) WEFT_TSA(release_capability(__VA_ARGS__))
#define WEFT_TRY_ACQUIRE(...) WEFT_TSA(try_acquire_capability(__VA_ARGS__))
#define WEFT_EXCLUDES(...) WEFT_TSA(locks_excluded(__VA_ARGS__))
#define WEFT_NO_TSA WEFT_TSA(no_thread_safety_analysis)

#include <mutex>

namespace weft::detail {

/// std::mutex with a capability annotation, so WEFT_GUARDED_BY can name it.
class WEFT_CAPABILITY("mutex") AnnotatedMutex {
 public:
  void lock() WEFT_ACQUIRE() { mu_.lock(); }
  void unlock() WEFT_RELEASE() { mu_.unlock(); }
  bool try_lock() WEFT_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

/// RAII lock for AnnotatedMutex that the analysis understands.
class WEFT_SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(AnnotatedMutex& m) WEFT_ACQUIRE(m) : m_(m) { m_.lock(); }
  ~LockGuard() WEFT_RELEASE() { m_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  AnnotatedMutex& m_;
};

}  // namespace weft::detail
