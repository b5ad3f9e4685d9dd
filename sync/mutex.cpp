// sync/mutex.cpp — Mutex's contended paths (queueing, competing after a wake,
// hand-off), owner identities and the report of an owner that ended holding a
// Mutex, and the misuse diagnostics. The protocol is at the top of mutex.hpp,
// identities in owner.hpp.
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <system_error>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/log.hpp>
#include <weft/sync/mutex.hpp>

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

namespace {
// A waiter that keeps losing the race for this long after its first wake is handed
// the lock on the next unlock (bounded wait; one forced hand-off per period).
constexpr std::int64_t kStarvationNs = 1'000'000;

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

/// One queued caller, on its own stack (Waiter::payload points here).
struct Mutex::Queued {
  Waiter w;                                // binds to the caller: a fiber parks, a thread sleeps on a futex
  std::uint64_t id = 0;                    // the identity a hand-off installs as owner_
  const detail::Worker* worker = nullptr;  // a fiber's worker; null for a thread
  bool starving = false;                   // written before queueing: hand it the lock
  bool handed = false;                     // written by the unlocker before wake(): it owns the Mutex
};

bool Mutex::has_waiters() const {
  SpinGuard g(qmu_);
  // relaxed: kWoken is written under qmu_ (or by its waiter's own CAS), a snapshot suffices.
  return !queue_.empty() || (state_.load(std::memory_order_relaxed) & kWoken) != 0;
}

Mutex::~Mutex() {
  if (has_waiters())
    binding_.die(binding_.what() +
                 " destroyed while fibers or threads are still waiting to lock it: they would wake into freed "
                 "memory. Make every waiter finish (or cancel it) before the Mutex goes.");
  // relaxed: a destructor racing with users is a bug; these only pick the message.
  if (!(state_.load(std::memory_order_relaxed) & kLocked)) return;
  const std::uint64_t owner = owner_.load(std::memory_order_relaxed);
  const detail::OwnerRef me = detail::caller_owner();
  if (owner == me.id) {
    forget_held(me);  // destroying a Mutex one holds is allowed: it leaves the holder's list
  } else if (owner != 0 && !(owner & detail::kEndedOwnerBit)) {
    binding_.die(binding_.what() + " destroyed by " + describe_caller() + " while " + detail::describe_owner(owner) +
                 " holds it: its unlock() would touch freed memory. Unlock it before the Mutex goes.");
  }
}

bool Mutex::lock_slow(const detail::OwnerRef& me, std::int64_t deadline, const char* op) {
  check_not_owner(me, op);
  return acquire_slow(me, deadline, true);
}

void Mutex::lock_uncancellable() {
  const detail::OwnerRef me = detail::caller_owner();
  if (try_lock_fast(me)) return;
  // A cancelled fiber's park returns at once (cancelled); it goes round again until
  // it owns the mutex. Cancellation is rare and the holder keeps running, so this
  // ends; meanwhile the fiber yields to the others on every round.
  acquire_slow(me, -1, false);
}

bool Mutex::take_woken() noexcept {
  std::uint32_t s = state_.load(std::memory_order_relaxed);  // relaxed: the CAS synchronizes
  while (!(s & kLocked)) {
    // acquire: as in try_lock_fast. kWoken is ours to clear (we are the woken one).
    if (state_.compare_exchange_weak(s, (s | kLocked) & ~kWoken, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
  }
  return false;
}

void Mutex::clear_waiters_if_empty() noexcept {
  if (!queue_.empty()) return;
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  // relaxed: kWaiters is only read under qmu_ or by an unlocker that then takes qmu_.
  while (!state_.compare_exchange_weak(s, s & ~kWaiters, std::memory_order_relaxed, std::memory_order_relaxed)) {
  }
}

bool Mutex::acquire_slow(const detail::OwnerRef& me, std::int64_t deadline, bool cancellable) {
  bool woken = false;  // this round follows a wake to compete: kWoken is ours to clear
  bool starving = false;
  std::int64_t first_woken = 0;
  for (;;) {
    if (woken && take_woken()) {
      took(me);
      return true;
    }
    Queued q;
    q.w.payload = &q;
    q.id = me.id;
    q.worker = detail::t_state.fiber ? detail::t_state.worker : nullptr;
    q.starving = starving;
    bool owned = false;
    {
      SpinGuard g(qmu_);
      const std::uint32_t ours = woken ? kWoken : 0;
      // relaxed loads and the CAS that queues: an unlocker that must see kWaiters
      // takes qmu_ after us and qmu_ orders it. The CAS that takes a free lock is
      // acquire, like the fast path.
      std::uint32_t s = state_.load(std::memory_order_relaxed);
      for (;;) {
        if (!(s & kLocked)) {
          if (state_.compare_exchange_weak(s, (s | kLocked) & ~ours, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
            owned = true;
            break;
          }
        } else if (const std::uint32_t queued = (s | kWaiters) & ~ours;
                   queued == s ||
                   state_.compare_exchange_weak(s, queued, std::memory_order_relaxed, std::memory_order_relaxed)) {
          break;  // (no CAS when kWaiters is already set and kWoken is not ours)
        }
      }
      if (!owned) {
        if (woken)
          queue_.push_front(&q.w);  // lost the race: keeps its place at the head
        else
          queue_.push_back(&q.w);
      }
    }
    if (owned) {
      took(me);
      return true;
    }
    // A deadline already past (a woken waiter that lost late) times out at once.
    const Waiter::Result r = q.w.wait(deadline);
    if (r == Waiter::Result::notified) {
      // The unlocker's writes (q.handed, owner_) are visible through the Waiter's
      // release/acquire.
      if (q.handed) {
        remember_held(me);  // owner_ is already ours
        return true;
      }
      woken = true;
      const std::int64_t now = now_ns();
      if (first_woken == 0)
        first_woken = now;
      else
        starving = now - first_woken >= kStarvationNs;
      continue;
    }
    woken = false;
    {
      SpinGuard g(qmu_);
      // Still queued: unlink. Not queued: an unlocker popped us, lost the claim to
      // our deadline/cancel, and moved on; nothing of ours is left behind.
      if (queue_.contains(&q.w)) {
        queue_.erase(&q.w);
        clear_waiters_if_empty();
      }
    }
    if (r == Waiter::Result::timed_out) return false;
    if (cancellable) throw FiberCancelled();
  }
}

void Mutex::unlock_slow() noexcept {
  Waiter* wake = nullptr;  // woken after qmu_ is released: it may destroy the Mutex at once
  {
    SpinGuard g(qmu_);
    // We hold kLocked and qmu_, so state_ is frozen; the stores below publish it.
    const std::uint32_t s = state_.load(std::memory_order_relaxed);
    const detail::Worker* here = detail::t_state.fiber ? detail::t_state.worker : nullptr;
    for (;;) {
      Waiter* w = queue_.front();
      if (!w) {
        // release: the critical section happens-before the next acquire CAS.
        state_.store(s & kWoken, std::memory_order_release);
        break;
      }
      if (w->claimed()) {  // timed out / cancelled: it finds itself unlinked
        queue_.pop_front();
        continue;
      }
      auto* q = static_cast<Queued*>(w->payload);
      const bool hand_off = q->starving || (q->worker != nullptr && q->worker == here);
      if (!hand_off && (s & kWoken)) {
        state_.store(s & ~kLocked, std::memory_order_release);  // one is on its way to compete; release as above
        break;
      }
      queue_.pop_front();
      // Its deadline or cancellation may have won just now. A fiber of this worker
      // can only be claimed on this thread: no locked op needed.
      const bool claimed = q->worker == here && here ? w->claim_notify_on_own_worker() : w->claim_notify();
      if (!claimed) continue;
      const std::uint32_t waiters = queue_.empty() ? 0 : kWaiters;
      if (hand_off) {
        q->handed = true;
        owner_.store(q->id, std::memory_order_relaxed);  // relaxed: see owner_
        // relaxed: the lock stays held; the new owner reads state_ only after its
        // wake, which (release/acquire on the Waiter) orders this store before it.
        state_.store(kLocked | waiters | (s & kWoken), std::memory_order_relaxed);
      } else {
        state_.store(kWoken | waiters, std::memory_order_release);  // released; release as above
      }
      wake = w;
      break;
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
    const bool locked = (state_.load(std::memory_order_relaxed) & kLocked) != 0;
    const std::uint64_t owner = owner_.load(std::memory_order_relaxed);
    binding_.die(binding_.what() + ": unlock() by " + describe_caller() + ", which does not hold it (" +
                 (locked ? "it is held by " + detail::describe_owner(owner) : std::string("it is not locked")) + ")");
  } catch (...) {
    binding_.die("weft::Mutex: unlock() by a caller that does not hold it");
  }
}

}  // namespace weft
