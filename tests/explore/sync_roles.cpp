// tests/explore/sync_roles.cpp — the roles of the sync scenario, each run by a
// fiber or a thread on its own side's primitives (sync.hpp). Each checks what it
// can see at once: one holder in a critical section, no more Semaphore holders
// than permits, a changed value after wait_until_changed; a role that loses a
// wake-up never returns (the run's watchdog reports it).
#include <mutex>
#include <thread>

#include "sync.hpp"

namespace weft::explore::sync {

namespace {

bool in_fiber() {
  return weft::current_domain().evented();
}

// Counts a holder in for its scope (also when a cancelled pause unwinds it).
struct Inside {
  std::atomic<int>& n;
  int before;
  explicit Inside(std::atomic<int>& c) : n(c), before(c.fetch_add(1)) {}
  ~Inside() { n.fetch_sub(1); }
};

void critical_section(Side& d, Rng& r);

}  // namespace

void pause(Rng& r) {
  if (in_fiber()) {
    if (r.next() % 2)
      weft::yield();
    else
      weft::sleep_for(std::chrono::microseconds(r.between(0, 200)));
  } else if (r.next() % 2) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(r.between(0, 200)));
  }
}

namespace {
void critical_section(Side& d, Rng& r) {
  EXPECT(d.m.owned_by_caller(), "the Mutex is not owned by its holder");
  const Inside in(d.in_cs);
  EXPECT(in.before == 0, "two holders inside the Mutex's critical section");
  ++d.counter;
  d.entries.fetch_add(1, std::memory_order_relaxed);
  if (r.next() % 4 == 0) pause(r);
}
}  // namespace

// Random Mutex and Semaphore sections (and, in fibers, parking error handlers).
// (try_lock/lock_for handed to a unique_lock: beyond the lock analysis.)
void mixer(Side& d, Rng r, long iters) WEFT_NO_TSA {
  for (long i = 0; i < iters; ++i) {
    switch (r.next() % 6) {
      case 0:
      case 1: {
        weft::MutexGuard g(d.m);
        critical_section(d, r);
        break;
      }
      case 2:
        if (d.m.try_lock()) {
          std::unique_lock lk(d.m, std::adopt_lock);  // a cancelled pause unwinds through here
          critical_section(d, r);
        }
        break;
      case 3:
        if (d.m.lock_for(std::chrono::microseconds(r.between(0, 500)))) {
          std::unique_lock lk(d.m, std::adopt_lock);
          critical_section(d, r);
        }
        break;
      case 4: {
        const unsigned how = static_cast<unsigned>(r.next() % 3);
        bool got = true;
        if (how == 0)
          d.sem.acquire();
        else if (how == 1)
          got = d.sem.try_acquire();
        else
          got = d.sem.acquire_for(std::chrono::microseconds(r.between(0, 500)));
        if (!got) break;
        struct Release {
          weft::Semaphore& s;
          ~Release() { s.release(); }
        } release{d.sem};
        const Inside in(d.in_sem);
        EXPECT(in.before < kPermits, "more Semaphore holders than permits");
        if (r.next() % 3 == 0) pause(r);
        break;
      }
      default:
        if (in_fiber()) {
          // A handler that parks on the contended Mutex before `throw;`.
          handler_probe(r, [&] {
            weft::MutexGuard g(d.m);
            critical_section(d, r);
          });
        }
        break;
    }
  }
}

// Auto-reset ping-pong: each side waits for the other's signal `rounds` times.
void pinger(Side& d, Rng r, long rounds, bool first) {
  for (long i = 0; i < rounds; ++i) {
    Event& mine = first ? d.ping : d.pong;
    Event& theirs = first ? d.pong : d.ping;
    if (first) mine.set();
    if (r.next() % 2)
      theirs.wait();
    else
      while (!theirs.wait_for(std::chrono::microseconds(r.between(0, 300)))) {
      }
    if (!first) mine.set();
  }
}

// The manual gate: two waiters wait; once both are queued it is set and, half
// the time, reset at once (incident 003): both must still return. A round
// starts once the keeper closed the gate after the last one.
void gate_waiter(Side& d, Rng r, long rounds, Gate* g) {
  for (long i = 0; i < rounds; ++i) {
    while (g->round.load() < i) pause(r);
    d.gate.wait();
    g->passed.fetch_add(1);
  }
}
void gate_keeper(Side& d, Rng r, long rounds, Gate* g) {
  for (long i = 0; i < rounds; ++i) {
    while (d.gate.waiting() < 2) pause(r);
    d.gate.set();
    if (r.next() % 2) d.gate.reset();
    while (g->passed.load() < (i + 1) * 2) pause(r);
    d.gate.reset();
    g->round.store(i + 1);
  }
}

// A bounded queue under the Mutex with the Condition: `items` in, each out once.
void cond_producer(Side& d, Rng r, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    std::unique_lock lk(d.m);
    if (r.next() % 2)
      d.cv.wait(lk, [&] { return d.queue.size() < 4; });
    else
      while (!d.cv.wait_for(lk, std::chrono::microseconds(r.between(0, 400)), [&] { return d.queue.size() < 4; })) {
      }
    d.queue.push_back(i);
    if (r.next() % 2)
      d.cv.notify_all();
    else
      d.cv.notify_one();
  }
}
void cond_consumer(Side& d, Rng r, int total) {
  for (;;) {
    std::unique_lock lk(d.m);
    d.cv.wait(lk, [&] { return !d.queue.empty() || d.taken == total; });
    if (d.queue.empty()) return;  // all taken
    const int v = d.queue.front();
    d.queue.pop_front();
    ++d.seen.at(static_cast<std::size_t>(v));
    ++d.taken;
    d.cv.notify_all();  // producers wait for room, consumers for the end
    lk.unlock();
    if (r.next() % 4 == 0) pause(r);
  }
}

// FutexCounter: a waiter returns only once the value moved from its snapshot.
void futex_waiter(Side& d, Rng r, std::uint32_t target) {
  for (;;) {
    const std::uint32_t snap = d.ctr.value();
    if (snap >= target) return;
    bool changed = true;
    const bool timed = r.next() % 2;
    if (!timed)
      d.ctr.wait_until_changed(snap);
    else
      changed = d.ctr.wait_until_changed(snap, std::chrono::microseconds(r.between(0, 400)));
    if (changed)
      EXPECT(d.ctr.value() != snap, std::string(d.name) + ": wait_until_changed(" + std::to_string(snap) +
                                        (timed ? ", timeout" : "") + ") returned with the value still at its snapshot");
  }
}
void futex_bumper(Side& d, Rng r, std::uint32_t count) {
  for (std::uint32_t i = 0; i < count; ++i) {
    // Each increment wakes some waiters; the last one all (the rest wait for it).
    const bool last = i + 1 == count;
    d.ctr.increment_and_wake(last || r.next() % 3 == 0 ? weft::FutexCounter::all
                                                       : static_cast<std::uint32_t>(r.between(1, 2)));
    if (r.next() % 3 == 0) pause(r);
  }
}

}  // namespace weft::explore::sync
