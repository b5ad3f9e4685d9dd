// weft/sync/owner.hpp — who holds a weft::Mutex: an identity that is never reused,
// and the list of Mutexes each fiber or thread holds, so one that ends holding a
// lock is reported by name.
//
// Identities (a 64-bit word; 0 means nobody):
//   fiber   FiberBase::id(): process-wide, never reused, below 2^62
//   thread  kThreadOwnerBit | a serial from one process-wide counter, taken the
//           first time the thread locks, unlocks or asks owned_by_caller()
// An address (the fiber block, a thread-local) is reused by the next fiber or
// thread; these words are not, so a stale owner never matches a live caller.
// Invariants:
//  - A fiber's held list is FiberBase::held_mutexes_, a thread's is its
//    ThreadOwner::held; each is touched only by its own fiber/thread (and, for a
//    fiber, by its worker when it ends). The list links through Mutex::held_next_;
//    a Mutex is pushed when its owner gets it and unlinked when that owner
//    unlocks it (usually the head: locks are mostly released in reverse order).
//  - The worker reports a fiber that ends with a non-empty list (Worker::
//    publish_done); a thread's list is reported by a thread_local destructor that
//    its first lock registers. Reporting marks each Mutex's owner as ended
//    (kEndedOwnerBit): it stays locked, and every unlock() is refused.
#pragma once

#include <cstdint>
#include <string>

#include <weft/runtime/fiber/fiber.hpp>

namespace weft {

class Mutex;

namespace detail {

inline constexpr std::uint64_t kThreadOwnerBit = std::uint64_t{1} << 63;
inline constexpr std::uint64_t kEndedOwnerBit = std::uint64_t{1} << 62;

/// Per plain thread (and worker scheduler context): its identity and held list.
struct ThreadOwner {
  std::uint64_t id = 0;  ///< 0 until first needed
  Mutex* held = nullptr;
};
inline thread_local ThreadOwner t_thread_owner;

/// Gives the calling thread its serial (once) and registers the thread-exit report.
void assign_thread_owner() noexcept;

/// The caller's identity and held list: the running fiber's, else the thread's.
struct OwnerRef {
  std::uint64_t id;
  Mutex** held;
};
inline OwnerRef caller_owner() noexcept {
  if (FiberBase* f = t_state.fiber) return {f->id_, &f->held_mutexes_};
  ThreadOwner& t = t_thread_owner;
  if (t.id == 0) [[unlikely]]
    assign_thread_owner();
  return {t.id, &t.held};
}

/// The end-of-owner reports (sync/mutex.cpp): a friend of Mutex.
struct HeldReport;

/// "fiber #12" / "thread #3", plus ", which ended without unlocking it" when it did.
std::string describe_owner(std::uint64_t owner);

}  // namespace detail
}  // namespace weft
