// Sync primitives under load, bounded in count and time (scaled() by the build's
// stress scale). A watchdog prints the progress counters and a fiber dump and
// aborts instead of letting a hang stall CI.
//  - 1,000 fibers on 2 workers, 1M lock/unlock in total on one Mutex (exact count).
//  - Event set/reset storms with 100 waiters per round: each round releases all of
//    them exactly once (none lost: the round completes; none double-woken: the
//    count never runs ahead, and a double unpark aborts the worker).
//  - FutexCounter increment/wait races between threads, 1M increments, starting
//    just below 2^32 so the counter wraps in the middle of the run; the same
//    between fibers on two workers (200k increments).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/sync/event.hpp>
#include <weft/sync/futex_counter.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"
#include "../sync/sync_test_support.hpp"

using namespace std::chrono_literals;
using weft::test::Watchdog;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

/// `total` increments of `c`, from `start` (wrapping): two players take turns by
/// parity of (value - start); watchers wait for every change. Each increment is
/// published only through the counter. Run by threads or by fibers.
struct CounterRace {
  weft::FutexCounter& c;
  std::uint32_t start;
  std::uint32_t total;
  std::atomic<long>& progress;

  void player(std::uint32_t parity) {
    for (;;) {
      const std::uint32_t v = c.value();
      const std::uint32_t done = v - start;  // wrapping arithmetic
      if (done >= total) return;
      if (done % 2 == parity) {
        c.increment_and_wake(weft::FutexCounter::all);
        progress.fetch_add(1, std::memory_order_relaxed);
      } else {
        c.wait_until_changed(v);
      }
    }
  }
  void watcher() {
    for (;;) {
      const std::uint32_t v = c.value();
      if (static_cast<std::uint32_t>(v - start) >= total) return;
      c.wait_until_changed(v);
    }
  }
};
}  // namespace

TEST_CASE("1,000 fibers on 2 workers share one Mutex for 1M lock/unlock; every increment is kept") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::Mutex m{rt, "stress"};
  const long fibers = 1000;
  const long per = std::max(1L, weft::test::scaled(1'000'000) / fibers);
  long counter = 0;               // guarded by m
  std::atomic<long> progress{0};  // relaxed: watchdog display only
  Watchdog dog("mutex 1000 fibers x 2 workers", &rt, {&progress});
  auto hs = weft::test::spawn_across_workers(rt, fibers, [&](long f) {
    for (long i = 0; i < per; ++i) {
      weft::MutexGuard g(m);
      ++counter;
      if ((i + f) % 3 == 0) weft::yield();  // hold it across a switch now and then
      progress.fetch_add(1, std::memory_order_relaxed);
    }
  });
  weft::test::join_all(hs);
  REQUIRE(counter == fibers * per);
  REQUIRE_FALSE(m.has_waiters());
}

TEST_CASE("Event set/reset storms with 100 waiting fibers: no waiter lost, none woken twice") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::Event ev[2] = {weft::Event{rt, weft::Event::Mode::manual_reset, "even"},
                       weft::Event{rt, weft::Event::Mode::manual_reset, "odd"}};
  const long waiters = 100;
  const long rounds = weft::test::scaled(2000);
  std::atomic<long> arrived{0}, passed{0}, round_no{0};
  Watchdog dog("event storms", &rt, {&round_no, &arrived, &passed});
  auto hs = weft::test::spawn_across_workers(rt, waiters, [&] {
    for (long r = 0; r < rounds; ++r) {
      arrived.fetch_add(1);
      ev[r % 2].wait();
      passed.fetch_add(1);
    }
  });
  rt.spawn_on(0, [&] {
      for (long r = 0; r < rounds; ++r) {
        round_no = r;
        weft::Event& e = ev[r % 2];
        while (arrived.load() < waiters * (r + 1)) weft::yield();
        // The storm: resets with waiters parked, interleaved with sets; it ends set.
        for (int k = 0; k < 1 + static_cast<int>(r % 4); ++k) {
          e.reset();
          e.set();
          if (k % 2) weft::yield();
        }
        while (passed.load() < waiters * (r + 1)) weft::yield();
        if (passed.load() != waiters * (r + 1)) FAIL("a waiter passed twice in round " << r);
        e.reset();  // nobody waits on it now: round r+1 uses the other event
      }
    }).join();
  weft::test::join_all(hs);
  REQUIRE(passed.load() == waiters * rounds);
}

TEST_CASE("FutexCounter increment/wait races between threads for 1M increments, across the 2^32 wrap") {
  const std::uint32_t total = static_cast<std::uint32_t>(weft::test::scaled(1'000'000));
  const std::uint32_t start = UINT32_MAX - total / 2;  // wraps half way
  weft::FutexCounter c{weft::threaded, start, "race"};
  std::atomic<long> progress{0};
  Watchdog dog("futex counter races", nullptr, {&progress});
  CounterRace race{c, start, total, progress};
  std::vector<std::thread> ts;
  ts.emplace_back([&] { race.player(0); });
  ts.emplace_back([&] { race.player(1); });
  ts.emplace_back([&] { race.watcher(); });
  ts.emplace_back([&] { race.watcher(); });
  weft::test::join_all(ts);
  REQUIRE(static_cast<std::uint32_t>(c.value() - start) == total);
  REQUIRE(progress.load() == static_cast<long>(total));
  REQUIRE_FALSE(c.has_waiters());
}

TEST_CASE("FutexCounter increment/wait races between fibers on two workers, across the 2^32 wrap") {
  weft::Runtime rt(weft::Config{.workers = 2});
  const std::uint32_t total = static_cast<std::uint32_t>(weft::test::scaled(200'000));
  const std::uint32_t start = UINT32_MAX - total / 2;
  weft::FutexCounter c{rt, start, "fiber-race"};
  std::atomic<long> progress{0};
  Watchdog dog("futex counter fiber races", &rt, {&progress});
  CounterRace race{c, start, total, progress};
  auto p0 = rt.spawn_on(0, [&] { race.player(0); });
  auto p1 = rt.spawn_on(1, [&] { race.player(1); });
  auto w0 = rt.spawn_on(0, [&] { race.watcher(); });
  auto w1 = rt.spawn_on(1, [&] { race.watcher(); });
  p0.join();
  p1.join();
  w0.join();
  w1.join();
  REQUIRE(static_cast<std::uint32_t>(c.value() - start) == total);
  REQUIRE(progress.load() == static_cast<long>(total));
}
