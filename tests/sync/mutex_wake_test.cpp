// weft::Mutex wakes a waiter only after its last touch of the Mutex (the queue
// lock is released first), so a caller that gets the lock may unlock and destroy
// the Mutex at once, while the unlocker is still returning from unlock().
// These tests lock and unlock across lambdas: clang's static lock analysis cannot follow that.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wthread-safety-analysis"
#endif
#include <atomic>
#include <thread>

#include <catch2/catch.hpp>

#include <weft/sync/mutex.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "sched_test_support.hpp"
#include "sync_test_support.hpp"

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("a waiter thread that gets the mutex may destroy it at once") {
  // The unlocker runs at SCHED_IDLE on the waiter's CPU, so the waiter's wake
  // usually preempts it at once: the waiter frees the Mutex before the unlocker's
  // next instruction (ASan reports any later touch of it).
  weft::test::PinToOneCpu pin;  // the waiter thread inherits the mask
  const long rounds = weft::test::scaled(1000);
  std::atomic<weft::Mutex*> next{nullptr};
  std::atomic<long> finished{0};
  std::thread waiter([&] {
    for (long r = 0; r < rounds; ++r) {
      next.wait(nullptr);
      weft::Mutex* m = next.exchange(nullptr);
      m->lock();  // queues: the unlocker holds it
      m->unlock();
      delete m;
      finished.store(r + 1);
      finished.notify_one();
    }
  });
  {
    weft::test::IdlePolicy idle;
    for (long r = 0; r < rounds; ++r) {
      auto* m = new weft::Mutex{weft::threaded, "short-lived"};
      m->lock();
      next.store(m);
      next.notify_one();
      while (!m->has_waiters()) std::this_thread::yield();
      m->unlock();  // from here on m may be gone
      finished.wait(r);
    }
  }
  waiter.join();
  REQUIRE(finished.load() == rounds);
}

TEST_CASE("a waiter fiber on another worker that gets the mutex may destroy it at once") {
  weft::Runtime rt(weft::Config{.workers = 2});
  const long rounds = weft::test::scaled(1000);
  rt.spawn_on(0, [&] {
      for (long r = 0; r < rounds; ++r) {
        auto* m = new weft::Mutex{rt, "short-lived"};
        m->lock();
        auto waiter = rt.spawn_on(1, [m] {
          m->lock();
          m->unlock();
          delete m;
        });
        while (!m->has_waiters()) weft::yield();
        m->unlock();  // from here on m may be gone
        waiter.join();
      }
    }).join();
  SUCCEED();
}
