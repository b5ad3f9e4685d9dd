// weft::Mutex fairness without convoys: an unlocker whose head waiter is on another
// worker (or is a thread) releases the lock and wakes that waiter to compete, so a
// running caller may take it first (barging); a waiter that keeps losing is handed
// the lock (bounded wait), in queue order. (The same with the waiter a thread:
// sync/mutex_barge_thread_test.cpp.)
// These tests lock and unlock across lambdas: clang's static lock analysis cannot follow that.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wthread-safety-analysis"
#endif
#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/sync/mutex.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"
#include "sync_test_support.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

}  // namespace

TEST_CASE("a fiber that unlocks can take the mutex again while the woken waiter is on another worker") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::Mutex m{rt, "barge"};
  const int rounds = 20;
  const int retaken = rt.spawn_on(0, [&] {
                          int n = 0;
                          for (int i = 0; i < rounds; ++i) {
                            std::atomic<bool> busy{false}, checked{false};
                            m.lock();
                            auto waiter = rt.spawn_on(1, [&] { weft::MutexGuard g(m); });
                            while (!m.has_waiters()) weft::yield();
                            // Worker 1 stays busy until the unlocker has tried: the woken
                            // waiter cannot run before, so it cannot take the lock first.
                            auto blocker = rt.spawn_on(1, [&] {
                              busy = true;
                              while (!checked.load()) {
                              }
                            });
                            while (!busy.load()) weft::yield();
                            m.unlock();  // the head waiter is on worker 1: woken to compete, not handed the lock
                            if (m.try_lock()) {  // a strict FIFO hand-off would have given it to the waiter
                              ++n;
                              checked = true;
                              m.unlock();
                            }
                            checked = true;
                            blocker.join();
                            waiter.join();
                          }
                          return n;
                        }).join();
  REQUIRE(retaken == rounds);
}

TEST_CASE("a fiber on another worker gets the mutex while fibers on two workers hog it") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::Mutex m{rt, "hogged"};
  std::atomic<bool> stop{false};
  std::array<std::atomic<long>, 4> progress{};  // relaxed: counters read after the joins or for display
  weft::test::Watchdog dog("mutex hogged by fibers", rt, {&progress[0], &progress[1], &progress[2], &progress[3]},
                           120s);
  auto hogs = weft::test::spawn_across_workers(rt, 4, [&](long i) {
    for (long k = 1; !stop.load(std::memory_order_relaxed); ++k) {
      {
        weft::MutexGuard g(m);
        progress[static_cast<std::size_t>(i)].fetch_add(1, std::memory_order_relaxed);
        if (k % 8 == 0) weft::yield();  // now and then while holding it
      }
      if (k % 4 == 0) weft::yield();  // so a fiber sharing the worker gets to run at all
    }
  });
  for (auto& p : progress)
    while (p.load(std::memory_order_relaxed) < 100) std::this_thread::sleep_for(1ms);
  for (unsigned w = 0; w < 2; ++w) {
    const bool got = rt.spawn_on(w, [&] {
                         weft::MutexGuard g(m);
                         return true;
                       }).join();
    REQUIRE(got);
  }
  stop = true;
  weft::test::join_all(hogs);
  for (auto& p : progress) REQUIRE(p.load() >= 100);
}

TEST_CASE("a thread gets the mutex while threads hog it in a tight loop") {
  weft::Mutex m{weft::threaded, "hogged"};
  std::atomic<bool> stop{false};
  std::array<std::atomic<long>, 3> progress{};
  weft::test::Watchdog dog("mutex hogged by threads", nullptr, {&progress[0], &progress[1], &progress[2]}, 120s);
  std::vector<std::thread> hogs;
  for (std::size_t i = 0; i < progress.size(); ++i)
    hogs.emplace_back([&, i] {
      while (!stop.load(std::memory_order_relaxed)) {
        std::lock_guard g(m);
        progress[i].fetch_add(1, std::memory_order_relaxed);
      }
    });
  for (auto& p : progress)
    while (p.load(std::memory_order_relaxed) < 100) std::this_thread::sleep_for(1ms);
  bool got = false;
  std::thread victim([&] {
    std::lock_guard g(m);
    got = true;
  });
  victim.join();
  stop = true;
  weft::test::join_all(hogs);
  REQUIRE(got);
  for (auto& p : progress) REQUIRE(p.load() >= 100);
}

TEST_CASE("waiters that starve behind hogging fibers get the mutex in the order they queued") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::Mutex m{rt, "starving"};
  std::vector<int> order;  // guarded by m
  std::atomic<bool> stop{false};
  std::atomic<long> hogged{0};
  weft::test::Watchdog dog("mutex starvation order", rt, {&hogged}, 120s);
  rt.spawn_on(0, [&] {
      m.lock();
      // Three waiters on worker 1, queued in order: each runs until it parks in
      // lock() before the next one starts.
      std::vector<weft::JoinHandle<void>> waiters;
      rt.spawn_on(1, [&] {
          std::atomic<int> started{0};
          for (int i = 0; i < 3; ++i) {
            waiters.push_back(weft::spawn([&, i] {
              ++started;
              weft::MutexGuard g(m);
              order.push_back(i);
            }));
            while (started <= i) weft::yield();
          }
        }).join();
      // Two fibers on this worker re-lock in a tight loop: the waiters on worker 1
      // lose every race until they starve and are handed the lock.
      std::vector<weft::JoinHandle<void>> hogs;
      for (int h = 0; h < 2; ++h)
        hogs.push_back(weft::spawn([&] {
          while (!stop.load(std::memory_order_relaxed)) {
            {
              weft::MutexGuard g(m);
              hogged.fetch_add(1, std::memory_order_relaxed);
            }
            weft::yield();
          }
        }));
      m.unlock();
      for (auto& w : waiters) w.join();
      stop = true;
      for (auto& h : hogs) h.join();
    }).join();
  REQUIRE(order == std::vector<int>{0, 1, 2});
  REQUIRE(hogged.load() > 0);
}
