// tests/explore/sync_cancel.cpp — the sync scenario's cancellation rounds: a
// victim fiber, on a random worker, waits on a Mutex, Semaphore, auto-reset
// Event, Condition, FutexCounter or rendezvous Channel; the canceller cancels it
// before or after making the wait satisfiable (or never makes it so).
// Invariants: the victim either completed its wait (and the canceller sees its
// effect) or ended with FiberCancelled having taken nothing: no Mutex ownership
// (a Condition wait does re-own its Mutex before it throws), no permit, no Event
// signal, no Channel value; and what was offered to it is still there.
#include "sync.hpp"

namespace weft::explore::sync {

namespace {

// Primitives of their own for the cancellation rounds, bound to the runtime.
struct CancelKit {
  explicit CancelKit(weft::Runtime& rt)
      : m(rt, "cancel mutex"),
        cv(rt, "cancel condition"),
        sem(rt, 0, "cancel semaphore"),
        ev(rt, Event::Mode::auto_reset, "cancel event"),
        ctr(rt, 0, "cancel counter"),
        ch(0) {}
  weft::Mutex m;
  weft::Condition cv;
  weft::Semaphore sem;
  Event ev;
  weft::FutexCounter ctr;
  weft::Channel<int> ch;
};

// One round: a victim fiber on a random worker waits on one primitive; this
// fiber cancels it, before or after making its wait satisfiable (or not at all).
// The victim either completed its wait or ended with FiberCancelled having taken
// nothing.
// The Mutex held across the round (locked here, released by make_satisfiable):
// outside what the lock analysis can follow.
void lock_held(weft::Mutex& m) WEFT_NO_TSA {
  m.lock();
}
void unlock_held(weft::Mutex& m) WEFT_NO_TSA {
  m.unlock();
}

void cancel_round(weft::Runtime& rt, CancelKit& k, Rng& r) {
  const unsigned w = static_cast<unsigned>(r.next() % rt.workers());
  const unsigned what = static_cast<unsigned>(r.next() % 6);
  const bool satisfy = what == 0 || what == 3 || r.next() % 2;  // a held Mutex is always released
  const bool satisfy_first = r.next() % 2;
  bool got = false;
  const std::uint32_t snap = k.ctr.value();
  if (what == 0) lock_held(k.m);
  auto victim = rt.spawn_on(
      w,
      [&] {
        switch (what) {
          case 0:
            try {
              k.m.lock();
            } catch (const weft::FiberCancelled&) {
              EXPECT(!k.m.owned_by_caller(), "a lock() ended by FiberCancelled left the Mutex owned");
              throw;
            }
            got = true;
            k.m.unlock();
            break;
          case 1:
            k.sem.acquire();
            got = true;  // keeps the permit
            break;
          case 2:
            k.ev.wait();
            got = true;
            break;
          case 3: {
            std::unique_lock lk(k.m);
            try {
              k.cv.wait(lk);
            } catch (const weft::FiberCancelled&) {
              EXPECT(k.m.owned_by_caller(), "a Condition wait ended by FiberCancelled without the Mutex owned again");
              throw;
            }
            got = true;
            break;
          }
          case 4:
            k.ctr.wait_until_changed(snap);
            got = true;
            EXPECT(k.ctr.value() != snap, "wait_until_changed returned at its snapshot");
            break;
          default:
            got = k.ch.recv().has_value();
            break;
        }
      },
      {.name = "cancel victim"});
  auto queued = [&] {
    switch (what) {
      case 0:
        return k.m.has_waiters();
      case 1:
        return k.sem.has_waiters();
      case 2:
        return k.ev.has_waiters();
      case 3:
        return k.cv.has_waiters();
      case 4:
        return k.ctr.has_waiters();
      default:
        return true;
    }
  };
  for (int i = 0; i < 100000 && !queued() && !victim.done(); ++i) weft::yield();
  jitter(r, 2);
  bool sent = false;
  auto make_satisfiable = [&] {
    switch (what) {
      case 0:
        unlock_held(k.m);
        break;
      case 1:
        k.sem.release();
        break;
      case 2:
        k.ev.set();
        break;
      case 3: {
        weft::MutexGuard g(k.m);
        k.cv.notify_one();
        break;
      }
      case 4:
        k.ctr.increment_and_wake();
        break;
      default:
        sent = k.ch.send_for(42, std::chrono::milliseconds(1)) == weft::SendStatus::ok;
        break;
    }
  };
  if (satisfy && satisfy_first) make_satisfiable();
  victim.cancel();
  if (satisfy && !satisfy_first) make_satisfiable();
  try {
    victim.join();
  } catch (const weft::FiberCancelled&) {
    EXPECT(!got, "a victim that completed its wait ended with FiberCancelled");
  }
  switch (what) {
    case 0:
    case 3:
      EXPECT(k.m.try_lock(), "the Mutex stayed owned after its cancelled waiter left");
      k.m.unlock();
      break;
    case 1: {
      const std::ptrdiff_t want = (satisfy ? 1 : 0) - (got ? 1 : 0);
      EXPECT(k.sem.available() == want, "after a cancelled acquire " + std::to_string(k.sem.available()) +
                                            " permit(s) are free, not " + std::to_string(want));
      while (k.sem.try_acquire()) {
      }
      break;
    }
    case 2:
      if (satisfy)
        EXPECT(got != k.ev.is_set(), got ? "the auto-reset signal was consumed and still set"
                                         : "a cancelled waiter swallowed the auto-reset signal");
      k.ev.reset();
      break;
    case 4:
      break;
    default:
      EXPECT(sent == got, sent ? "a value sent to a cancelled receiver was lost" : "a value arrived unsent");
      break;
  }
}

}  // namespace

void cancel_rounds(weft::Runtime& rt, Rng r, long rounds) {
  CancelKit kit(rt);
  weft::this_fiber::DeferCancellation defer;  // the victims use the kit and this frame
  for (long i = 0; i < rounds && !weft::this_fiber::cancelled(); ++i) cancel_round(rt, kit, r);
}

}  // namespace weft::explore::sync
