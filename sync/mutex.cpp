// sync/mutex.cpp — Mutex's contended paths (queueing, hand-off), owner identities
// and the report of an owner that ended holding a Mutex, and the misuse
// diagnostics. The protocol is described at the top of mutex.hpp, identities in
// owner.hpp.
#include <weft/sync/mutex.hpp>

#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <system_error>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/log.hpp>

namespace weft {

namespace detail {

void SpinLock::lock_contended() noexcept {
  for (unsigned spins = 0;; ++spins) {
    // relaxed: just watching for the holder's release; the exchange re-acquires.
    while (locked_.load(std::memory_order_relaxed)) {
      if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        ++spins;
      } else {
        sched_yield();  // the holder's thread may be preempted: let it run
      }
    }
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
  }
}

namespace {

// relaxed: a serial only has to be unique; nothing is published through it.
std::atomic<std::uint64_t> g_thread_serials{1};

std::string this_thread_name() {
  char name[32] = "?";
  pthread_getname_np(pthread_self(), name, sizeof name);
  return "thread '" + std::string(name) + "' (tid " + std::to_string(::syscall(SYS_gettid)) + ")";
}

// A thread's exit runs this destructor (registered by its first use of an owner identity).
struct ThreadExitReport {
  ThreadExitReport() = default;
  ThreadExitReport(const ThreadExitReport&) = delete;
  ThreadExitReport& operator=(const ThreadExitReport&) = delete;
  ~ThreadExitReport();
};

}  // namespace

struct HeldReport {
  /// Reports each Mutex on `head` as held by `who`, which has ended, and marks its
  /// owner ended: it stays locked, and unlock() from anyone is refused.
  static void report(Mutex*& head, const std::string& who) noexcept {
    while (Mutex* m = head) {
      head = m->held_next_;
      m->held_next_ = nullptr;
      // relaxed: see Mutex::owner_; the ended bit only ever makes comparisons fail.
      m->owner_.store(m->owner_.load(std::memory_order_relaxed) | kEndedOwnerBit, std::memory_order_relaxed);
      try {
        log::logger().error(
            "{} ended holding {} without unlocking it: the Mutex stays locked, later lock() calls wait for it and "
            "unlock() from anyone else is refused. Unlock before returning (weft::MutexGuard does).",
            who, m->binding_.what());
      } catch (...) {
      }
    }
  }
};

ThreadExitReport::~ThreadExitReport() {
  if (t_thread_owner.held) {
    try {
      HeldReport::report(t_thread_owner.held, this_thread_name());
    } catch (...) {  // building the name: nothing sensible left to do at thread exit
    }
  }
}

void assign_thread_owner() noexcept {
  t_thread_owner.id = kThreadOwnerBit | g_thread_serials.fetch_add(1, std::memory_order_relaxed);
  thread_local ThreadExitReport report;  // constructed here, once: destroyed when this thread exits
  (void)report;
}

void report_mutexes_held_at_end(FiberBase* f) noexcept {
  try {
    HeldReport::report(f->held_mutexes_, "fiber '" + f->display_name() + "' (#" + std::to_string(f->id()) + ")");
  } catch (...) {
  }
}

std::string describe_owner(std::uint64_t owner) {
  if (owner == 0) return "another fiber or thread";
  const std::uint64_t serial = owner & ~(kThreadOwnerBit | kEndedOwnerBit);
  std::string s = ((owner & kThreadOwnerBit) ? "thread #" : "fiber #") + std::to_string(serial);
  if (owner & kEndedOwnerBit) s += ", which ended without unlocking it";
  return s;
}

}  // namespace detail

using detail::SpinGuard;
using detail::Waiter;

/// One queued caller, on its own stack (Waiter::payload points here).
struct Mutex::Queued {
  Waiter w;               // binds to the caller: a fiber parks, a thread sleeps on a futex
  std::uint64_t id = 0;   // the identity the hand-off installs as owner_
};

bool Mutex::has_waiters() const {
  SpinGuard g(qmu_);
  return !queue_.empty();
}

Mutex::~Mutex() {
  if (has_waiters())
    binding_.die(binding_.what() +
                 " destroyed while fibers or threads are still waiting to lock it: they would wake into freed "
                 "memory. Make every waiter finish (or cancel it) before the Mutex goes.");
  // relaxed: a destructor racing with users is a bug; these only pick the message.
  if (state_.load(std::memory_order_relaxed) == 0) return;
  const std::uint64_t owner = owner_.load(std::memory_order_relaxed);
  const detail::OwnerRef me = detail::caller_owner();
  if (owner == me.id) {
    forget_held(me);  // destroying a Mutex one holds is allowed: it leaves the holder's list
  } else if (owner != 0 && !(owner & detail::kEndedOwnerBit)) {
    binding_.die(binding_.what() + " destroyed by " + describe_caller() + " while " + detail::describe_owner(owner) +
                 " holds it: its unlock() would touch freed memory. Unlock it before the Mutex goes.");
  }
}

bool Mutex::lock_slow(const detail::OwnerRef& me, std::int64_t deadline) {
  check_not_owner(me, "lock()");
  switch (wait_in_queue(me, deadline)) {
    case Waiter::Result::notified:
      return true;
    case Waiter::Result::timed_out:
      return false;
    case Waiter::Result::cancelled:
      break;
  }
  throw FiberCancelled();
}

void Mutex::lock_uncancellable() {
  const detail::OwnerRef me = detail::caller_owner();
  if (try_lock_fast(me)) return;
  // A cancelled fiber's park returns at once (cancelled); it re-queues until the
  // mutex is handed to it. Cancellation is rare and the holder keeps running, so
  // this ends; meanwhile the fiber yields to the others on every round.
  while (wait_in_queue(me, -1) != Waiter::Result::notified) {
  }
}

Waiter::Result Mutex::wait_in_queue(const detail::OwnerRef& me, std::int64_t deadline) {
  Queued q;
  q.w.payload = &q;
  q.id = me.id;
  bool owned = false;
  {
    SpinGuard g(qmu_);
    // relaxed loads/CAS to 2: the unlocker that must see "2" takes qmu_ after us,
    // and qmu_ orders it; the 0 -> 1 CAS is acquire like the fast path.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (s == 0) {
        if (state_.compare_exchange_weak(s, 1, std::memory_order_acquire, std::memory_order_relaxed)) {
          owned = true;
          break;
        }
      } else if (s == 1) {
        if (state_.compare_exchange_weak(s, 2, std::memory_order_relaxed, std::memory_order_relaxed)) break;
      } else {
        break;
      }
    }
    if (!owned) queue_.push_back(&q.w);
  }
  if (owned) {
    took(me);
    return Waiter::Result::notified;
  }
  const Waiter::Result r = q.w.wait(deadline);
  // notified: the unlocker handed us the mutex (state_ stayed locked, owner_ set);
  // its writes are visible through the Waiter's release/acquire.
  if (r == Waiter::Result::notified) {
    remember_held(me);
    return r;
  }
  SpinGuard g(qmu_);
  // Still queued: unlink. Not queued: an unlocker popped us, lost the claim to our
  // deadline/cancel, and passed ownership on; nothing of ours is left behind.
  if (queue_.contains(&q.w)) queue_.erase(&q.w);
  return r;
}

void Mutex::unlock_slow() noexcept {
  Waiter* wake = nullptr;  // woken after qmu_ is released: the new owner may destroy the Mutex at once
  {
    SpinGuard g(qmu_);
    while (Waiter* w = queue_.pop_front()) {
      if (!w->claim_notify()) continue;  // timed out / cancelled: it unlinks-checks itself
      // Still locked: ownership passes to w. relaxed: w reads state_ only after its
      // wake, which (release/acquire on the Waiter) orders these stores before it.
      state_.store(queue_.empty() ? 1 : 2, std::memory_order_relaxed);
      owner_.store(static_cast<Queued*>(w->payload)->id, std::memory_order_relaxed);
      wake = w;
      break;
    }
    if (!wake) {
      // release: the critical section happens-before the next locker's acquire CAS.
      state_.store(0, std::memory_order_release);
    }
  }
  if (wake) wake->wake();
}

void Mutex::forget_held_slow(const detail::OwnerRef& me) noexcept {
  for (Mutex** p = me.held; *p; p = &(*p)->held_next_) {
    if (*p == this) {
      *p = held_next_;
      return;
    }
  }
}

void Mutex::check_not_owner(const detail::OwnerRef& me, const char* op) const {
  if (owner_.load(std::memory_order_relaxed) == me.id)  // relaxed: see owner_
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                            binding_.what() + ": " + op + " by " + describe_caller() +
                                ", which already holds it (weft::Mutex is not recursive; this would deadlock)");
}

void Mutex::die_not_owner() const noexcept {
  try {
    // relaxed: for the message only.
    const bool locked = state_.load(std::memory_order_relaxed) != 0;
    const std::uint64_t owner = owner_.load(std::memory_order_relaxed);
    binding_.die(binding_.what() + ": unlock() by " + describe_caller() + ", which does not hold it (" +
                 (locked ? "it is held by " + detail::describe_owner(owner) : std::string("it is not locked")) +
                 ")");
  } catch (...) {
    binding_.die("weft::Mutex: unlock() by a caller that does not hold it");
  }
}

}  // namespace weft
