// weft::FutexCounter: value/increment, wake counts, wait_until_changed with and
// without timeout for fibers and threads, the snapshot protocol, wraparound.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/sync/futex_counter.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "sync_test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("wait_until_changed returns at once when the value already moved, else waits for an increment") {
  weft::FutexCounter c{weft::threaded, 5, "ctr"};
  REQUIRE(c.value() == 5);
  c.wait_until_changed(4);  // differs: no wait
  REQUIRE_FALSE(c.wait_until_changed(5, 2ms));
  std::thread t([&] { c.wait_until_changed(5); });
  while (!c.has_waiters()) std::this_thread::yield();
  REQUIRE(c.increment_and_wake() == 1);
  t.join();
  REQUIRE(c.value() == 6);
  REQUIRE(c.increment_and_wake() == 0);  // nobody waits
}

TEST_CASE("increment_and_wake(n) wakes at most n waiters; all wakes everyone") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::FutexCounter c{rt, 0, "fanout"};
  std::atomic<int> woke{0};
  auto hs = weft::test::spawn_across_workers(rt, 6, [&] {
    c.wait_until_changed(0);
    woke.fetch_add(1);
  });
  rt.block_on([&] {
    // Every waiter either queued or (if it started late) sees the change itself.
    while (woke.load() == 0 && c.has_waiters() == false) weft::yield();
    weft::sleep_for(5ms);
    const std::size_t first = c.increment_and_wake(2);
    REQUIRE(first <= 2);
    c.increment_and_wake(weft::FutexCounter::all);
  });
  weft::test::join_all(hs);
  REQUIRE(woke.load() == 6);
  REQUIRE(c.value() == 2);
}

TEST_CASE("the counter wraps at 2^32 and a waiter still sees the change") {
  weft::FutexCounter c{weft::threaded, UINT32_MAX};
  std::thread t([&] { c.wait_until_changed(UINT32_MAX); });
  while (!c.has_waiters()) std::this_thread::yield();
  c.increment_and_wake();
  t.join();
  REQUIRE(c.value() == 0);
  REQUIRE(c.wait_until_changed(UINT32_MAX, 1ms));
}

TEST_CASE("a fiber's timed wait gives up, and the counter is still usable") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::FutexCounter c{rt};
    REQUIRE_FALSE(c.wait_until_changed(0, 2ms));
    REQUIRE_FALSE(c.has_waiters());
    auto h = weft::spawn([&] { return c.wait_until_changed(0, 10s); });
    while (!c.has_waiters()) weft::yield();
    REQUIRE(c.increment_and_wake() == 1);
    REQUIRE(h.join());
  });
}

TEST_CASE("destroying a FutexCounter with a waiter aborts with a clear message") {
  auto r = weft::test::destroy_while_a_thread_waits(
      [] {
        return new weft::FutexCounter{weft::threaded, 0, "doomed"};
      },
      [](weft::FutexCounter& c) { c.wait_until_changed(0); });
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft::FutexCounter 'doomed'") && Contains("destroyed while"));
}
