// tests/explore/sync.hpp — the pieces of the sync scenario shared by its files:
// one side's primitives (bound to the runtime for fibers, to Threaded for
// threads) with the state they guard, the roles fibers and threads play on them
// (sync_roles.cpp) and the cancellation rounds (sync_cancel.cpp).
// Invariants: a Side's plain fields are touched only under its Mutex; its
// counters are atomics; a role blocks only on its own side's primitives.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <vector>

#include "explore.hpp"

namespace weft::explore::sync {

using weft::Event;

constexpr std::ptrdiff_t kPermits = 2;

// One side's primitives (bound to the runtime, or to Threaded) and their state.
struct Side {
  template <class B>
  Side(B& b, const char* n)
      : name(n),
        m(b, "explore mutex"),
        cv(b, "explore condition"),
        sem(b, kPermits, "explore semaphore"),
        ctr(b, 0, "explore counter"),
        gate(b, Event::Mode::manual_reset, "explore gate"),
        ping(b, Event::Mode::auto_reset, "explore ping"),
        pong(b, Event::Mode::auto_reset, "explore pong") {}
  const char* name;  // "fibers" or "threads"
  weft::Mutex m;
  weft::Condition cv;
  weft::Semaphore sem;
  weft::FutexCounter ctr;
  Event gate, ping, pong;
  long counter = 0;       // under m
  std::deque<int> queue;  // under m (the Condition's bounded queue)
  int taken = 0;          // under m
  std::vector<int> seen;  // under m: how often each queued item was taken
  std::atomic<int> in_cs{0}, in_sem{0};
  std::atomic<long> entries{0};
};

/// The manual gate's progress: waiters that passed, rounds the keeper closed.
struct Gate {
  std::atomic<long> passed{0}, round{0};
};

/// A yield or a short sleep, as a fiber or as a thread.
void pause(Rng& r);
/// Random Mutex and Semaphore sections (and, in fibers, parking error handlers).
void mixer(Side& d, Rng r, long iters);
/// Auto-reset ping-pong: each side waits for the other's signal `rounds` times.
void pinger(Side& d, Rng r, long rounds, bool first);
/// The manual gate: two waiters, one keeper (see sync_roles.cpp).
void gate_waiter(Side& d, Rng r, long rounds, Gate* g);
void gate_keeper(Side& d, Rng r, long rounds, Gate* g);
/// A bounded queue under the Mutex with the Condition: items in, each out once.
void cond_producer(Side& d, Rng r, int first, int count);
void cond_consumer(Side& d, Rng r, int total);
/// FutexCounter: waiters return only once the value moved from their snapshot.
void futex_waiter(Side& d, Rng r, std::uint32_t target);
void futex_bumper(Side& d, Rng r, std::uint32_t count);

/// `rounds` rounds (fewer once this fiber is cancelled) of a victim fiber
/// cancelled in a wait on one of the sync primitives; fails the run when a
/// cancelled wait took something or lost what it was offered.
void cancel_rounds(weft::Runtime& rt, Rng r, long rounds);

}  // namespace weft::explore::sync
