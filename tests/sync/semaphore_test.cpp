// weft::Semaphore: permits, try/timed acquire, FIFO hand-off to waiters (fibers on
// two workers and threads), release(n), bad arguments, destruction with waiters.
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/sync/semaphore.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "sync_test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("permits are counted: try_acquire, acquire_for and release(n)") {
  weft::Semaphore s{weft::threaded, 2, "slots"};
  REQUIRE(s.try_acquire());
  s.acquire();
  REQUIRE_FALSE(s.try_acquire());
  REQUIRE_FALSE(s.acquire_for(2ms));
  s.release(3);
  REQUIRE(s.available() == 3);
  REQUIRE_THROWS_AS(s.release(-1), std::invalid_argument);
  REQUIRE_THROWS_AS(weft::Semaphore(-1), std::invalid_argument);
}

TEST_CASE("release hands permits to queued waiters; no permit is lost or duplicated") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::Semaphore s{rt, 0, "handoff"};
  std::atomic<int> got{0};
  auto hs = weft::test::spawn_across_workers(rt, 8, [&] {
    s.acquire();
    got.fetch_add(1);
  });
  rt.block_on([&] {
    while (!s.has_waiters()) weft::yield();
    s.release(5);
    while (got.load() < 5) weft::yield();
    weft::sleep_for(2ms);
    REQUIRE(got.load() == 5);
    s.release(4);  // three for the rest, one left over
  });
  weft::test::join_all(hs);
  REQUIRE(got.load() == 8);
  REQUIRE(s.available() == 1);
}

TEST_CASE("threads share a Threaded semaphore as a bounded gate") {
  weft::Semaphore s{weft::threaded, 2};
  std::atomic<int> inside{0}, max_inside{0};
  auto ts = weft::test::start_threads(6, [&] {
    for (int k = 0; k < weft::test::scaled(500); ++k) {
      s.acquire();
      int now = inside.fetch_add(1) + 1;
      int m = max_inside.load();
      while (now > m && !max_inside.compare_exchange_weak(m, now)) {
      }
      inside.fetch_sub(1);
      s.release();
    }
  });
  weft::test::join_all(ts);
  REQUIRE(max_inside.load() <= 2);
  REQUIRE(s.available() == 2);
}

TEST_CASE("a timed-out acquirer does not swallow a later permit") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::Semaphore s{rt};
    auto a = weft::spawn([&] { return s.acquire_for(2ms); });
    REQUIRE_FALSE(a.join());
    auto b = weft::spawn([&] { return s.acquire_for(10s); });
    while (!s.has_waiters()) weft::yield();
    s.release();
    REQUIRE(b.join());
    REQUIRE(s.available() == 0);
  });
}

TEST_CASE("destroying a Semaphore with a waiter aborts with a clear message") {
  auto r = weft::test::destroy_while_a_thread_waits(
      [] {
        return new weft::Semaphore{weft::threaded, 0, "doomed"};
      },
      [](weft::Semaphore& s) { s.acquire(); });
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft::Semaphore 'doomed'") && Contains("destroyed while"));
}
