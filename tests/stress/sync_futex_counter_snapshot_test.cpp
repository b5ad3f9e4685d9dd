// FutexCounter::wait_until_changed(snapshot) returns only once value() != snapshot,
// and its timed form returns true only then. The race it must survive: an
// increment_and_wake() raises the value, and before it gets to the queue a waiter
// takes its snapshot of the new value and queues itself; that increment must not
// wake it (it has not seen a change), the next one does. Randomised stress, on
// plain threads and on fibers of two workers: waiters loop snapshot -> wait (plain,
// short timeouts, long timeouts) and check value() != snapshot after every return
// that reports a change; incrementers wake 1, 2 or all waiters with random pauses.
// The seed is printed (set WEFT_SEED to replay one).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/sync/futex_counter.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

std::uint64_t test_seed() {
  if (const char* s = std::getenv("WEFT_SEED")) return std::strtoull(s, nullptr, 0);
  return (static_cast<std::uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
}

/// One run: the counter, the stop flag and what the checks found.
struct Race {
  weft::FutexCounter c{0, "snapshot-race"};
  std::atomic<bool> stop{false};
  std::atomic<long> changed_returns{0};
  std::atomic<long> unchanged_returns{0};  // returned "changed" with value() == snapshot
  std::atomic<long> increments{0};
  std::atomic<std::uint32_t> last_bad_snapshot{0};

  /// Until stop: snapshot, wait, check. `pause` yields the thread or the fiber.
  template <class Pause>
  void waiter(weft::test::Rng rng, Pause pause) {
    for (;;) {
      const std::uint32_t snap = c.value();
      if (stop.load()) return;  // stop is raised before the final increment
      bool changed = true;
      switch (rng.next() % 4) {
        case 0:
        case 1:
          c.wait_until_changed(snap);
          break;
        case 2:
          changed = c.wait_until_changed(snap, std::chrono::microseconds(rng.between(1, 300)));
          break;
        default:
          changed = c.wait_until_changed(snap, 10s);
          break;
      }
      if (!changed) continue;
      changed_returns.fetch_add(1, std::memory_order_relaxed);
      if (c.value() == snap) {
        unchanged_returns.fetch_add(1);
        last_bad_snapshot.store(snap);
      }
      if (rng.next() % 8 == 0) pause();
    }
  }

  /// `nap` sleeps a few microseconds: a gap in which a waiter woken by the last
  /// increment checks the value before the next one.
  template <class Pause, class Nap>
  void incrementer(weft::test::Rng rng, long n, Pause pause, Nap nap) {
    for (long i = 0; i < n; ++i) {
      const std::uint64_t r = rng.next() % 8;
      c.increment_and_wake(r < 5 ? 1 : r < 7 ? 2 : weft::FutexCounter::all);
      increments.fetch_add(1, std::memory_order_relaxed);
      for (std::size_t k = rng.between(0, 3); k > 0; --k) pause();
      if (rng.next() % 16 == 0) nap();
    }
  }

  /// After every incrementer has returned: waiters that read stop == false before
  /// waiting hold a snapshot older than this increment, so it wakes them all.
  void finish() {
    stop.store(true);
    c.increment_and_wake(weft::FutexCounter::all);
  }

  void check(std::uint64_t seed) {
    INFO("seed " << seed << " (WEFT_SEED=" << seed << " replays it)");
    INFO("returns that reported a change: " << changed_returns.load()
                                            << ", of which with value() == snapshot: " << unchanged_returns.load()
                                            << " (last snapshot " << last_bad_snapshot.load() << ")");
    REQUIRE(changed_returns.load() > 0);
    REQUIRE(unchanged_returns.load() == 0);
    REQUIRE_FALSE(c.has_waiters());
  }
};
}  // namespace

TEST_CASE("threads: wait_until_changed never returns with the value unchanged") {
  const std::uint64_t seed = test_seed();
  std::printf("futex_counter_snapshot (threads): seed %llu\n", static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  const long per_incrementer = weft::test::scaled(100000);
  constexpr int kWaiters = 4;
  constexpr int kIncrementers = 2;
  Race race;
  weft::test::Watchdog wd("futex counter snapshot (threads)", nullptr, {&race.increments, &race.changed_returns}, 300s);
  auto pause = [] { std::this_thread::yield(); };
  auto nap = [] { std::this_thread::sleep_for(10us); };
  std::vector<std::thread> waiters, incs;
  for (int i = 0; i < kWaiters; ++i)
    waiters.emplace_back([&, i] { race.waiter(weft::test::Rng(seed * 31 + i), pause); });
  for (int i = 0; i < kIncrementers; ++i)
    incs.emplace_back([&, i] { race.incrementer(weft::test::Rng(seed * 77 + i), per_incrementer, pause, nap); });
  for (auto& t : incs) t.join();
  race.finish();
  for (auto& t : waiters) t.join();
  race.check(seed);
}

TEST_CASE("fibers on two workers: wait_until_changed never returns with the value unchanged") {
  const std::uint64_t seed = test_seed();
  std::printf("futex_counter_snapshot (fibers): seed %llu\n", static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  const long per_incrementer = weft::test::scaled(200000);
  constexpr int kWaiters = 16;
  constexpr int kIncrementers = 1;
  Race race;
  weft::Runtime rt(weft::Config{.name = "snapshot", .workers = 2});
  weft::test::Watchdog wd("futex counter snapshot (fibers)", rt, {&race.increments, &race.changed_returns}, 300s);
  auto pause = [] { weft::yield(); };
  auto nap = [] { weft::sleep_for(10us); };
  std::vector<weft::JoinHandle<void>> waiters, incs;
  for (int i = 0; i < kWaiters; ++i)
    waiters.push_back(
        rt.spawn_on(static_cast<unsigned>(i % 2), [&, i] { race.waiter(weft::test::Rng(seed * 31 + i), pause); }));
  for (int i = 0; i < kIncrementers; ++i)
    incs.push_back(rt.spawn_on(static_cast<unsigned>(i % 2), [&, i] {
      race.incrementer(weft::test::Rng(seed * 77 + i), per_incrementer, pause, nap);
    }));
  for (auto& h : incs) h.join();
  rt.block_on([&] { race.finish(); });
  for (auto& h : waiters) h.join();
  race.check(seed);
}
