// weft::Mutex under barging, bounded in count and time (scaled() by the build's
// stress scale; a watchdog turns a hang, i.e. a lost wake-up, into a diagnosed abort):
//  - fibers on 2 workers and plain threads mix lock(), try_lock() and short
//    lock_for(): every acquisition is counted and matched by an increment under
//    the lock, a failed try_lock/lock_for never leaves the caller owning it, and
//    the mutex ends free with nobody queued;
//  - a runtime shut down while its fibers queue on a Mutex and hold it across
//    yields: every fiber ends, and nobody is left queued.
// These tests lock and unlock across lambdas: clang's static lock analysis cannot follow that.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wthread-safety-analysis"
#endif
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/sync/mutex.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"
#include "../sync/sync_test_support.hpp"

using namespace std::chrono_literals;
using weft::test::Watchdog;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

struct Tally {
  long counter = 0;                  // guarded by the mutex under test
  std::atomic<long> acquired{0};     // relaxed: summed after the joins
  std::atomic<long> failed{0};       // try_lock / lock_for that did not get it
  std::atomic<long> wrong_owner{0};  // a failed attempt that left the caller owning it
};

/// One caller's share: `n` attempts, the kind of each picked by `rng`. `pause`
/// runs while holding the lock now and then (a yield for fibers).
template <class Pause>
void mixed_ops(weft::Mutex& m, Tally& t, weft::test::Rng rng, long n, Pause pause) {
  for (long k = 0; k < n; ++k) {
    bool got = false;
    switch (rng.next() % 4) {
      case 0:
      case 1:
        m.lock();
        got = true;
        break;
      case 2:
        got = m.try_lock();
        break;
      default:
        got = m.lock_for(std::chrono::microseconds(rng.between(0, 200)));
        break;
    }
    if (!got) {
      t.failed.fetch_add(1, std::memory_order_relaxed);
      if (m.owned_by_caller()) t.wrong_owner.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    ++t.counter;
    t.acquired.fetch_add(1, std::memory_order_relaxed);
    if (k % 16 == 0) pause();
    m.unlock();
  }
}
}  // namespace

TEST_CASE("fibers on two workers mix lock try_lock and lock_for under barging and every count adds up") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::Mutex m{rt, "mixed"};
  Tally t;
  const long fibers = 16;
  const long per = weft::test::scaled(100'000);
  Watchdog dog("mutex mixed ops on fibers", rt, {&t.acquired, &t.failed});
  auto hs = weft::test::spawn_across_workers(rt, fibers, [&](long i) {
    mixed_ops(m, t, weft::test::Rng(static_cast<std::uint64_t>(i) + 1), per, [] { weft::yield(); });
  });
  weft::test::join_all(hs);
  REQUIRE(t.wrong_owner.load() == 0);
  REQUIRE(t.counter == t.acquired.load());
  REQUIRE(t.acquired.load() + t.failed.load() == fibers * per);
  REQUIRE_FALSE(m.has_waiters());
  REQUIRE(rt.block_on([&] {
    const bool free = m.try_lock();  // a timed-out waiter that had kept it would show here
    if (free) m.unlock();
    return free;
  }));
}

TEST_CASE("threads mix lock try_lock and lock_for under barging and every count adds up") {
  weft::Mutex m{weft::threaded, "mixed"};
  Tally t;
  const int threads = 4;
  const long per = weft::test::scaled(100'000);
  Watchdog dog("mutex mixed ops on threads", nullptr, {&t.acquired, &t.failed});
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i)
    ts.emplace_back([&, i] {
      mixed_ops(m, t, weft::test::Rng(static_cast<std::uint64_t>(i) + 100), per, [] { std::this_thread::yield(); });
    });
  weft::test::join_all(ts);
  REQUIRE(t.wrong_owner.load() == 0);
  REQUIRE(t.counter == t.acquired.load());
  REQUIRE(t.acquired.load() + t.failed.load() == threads * per);
  REQUIRE_FALSE(m.has_waiters());
  REQUIRE(m.try_lock());
  m.unlock();
}

TEST_CASE("a runtime shut down while its fibers queue on a Mutex leaves nobody queued") {
  weft::Mutex m{"shutdown-storm"};  // binds to the runtime's fibers
  std::atomic<long> progress{0};
  std::vector<weft::JoinHandle<void>> hs;
  Watchdog dog("mutex shutdown storm", nullptr, {&progress});
  {
    weft::Runtime rt(weft::Config{.workers = 2});
    hs = weft::test::spawn_across_workers(rt, 64, [&](long i) {
      // A queued fiber's lock() throws FiberCancelled; one that is not queued sees the flag.
      for (long k = 0; !weft::this_fiber::cancelled(); ++k) {
        weft::MutexGuard g(m);
        progress.fetch_add(1, std::memory_order_relaxed);
        if ((k + i) % 3 == 0) weft::yield();  // holds it across a yield: others queue
      }
      throw weft::FiberCancelled();
    });
    while (progress.load() < weft::test::scaled(20'000)) std::this_thread::sleep_for(1ms);
  }  // cancels every fiber: queued ones stop waiting, holders unwind (unlock)
  for (auto& h : hs) REQUIRE_THROWS_AS(h.join(), weft::FiberCancelled);
  REQUIRE_FALSE(m.has_waiters());
}
