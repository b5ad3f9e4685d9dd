// Incident 001 (workaround 5) / 003: an Event whose reset() assumed a single
// waiter hit `unreachable` when set() woke several and one of them reset it. Here
// reset() with waiters parked is legal and defined: every waiter released by the
// last set() returns, even if reset() runs before it is scheduled; waiters that
// arrive after the reset wait for the next set().
#include <atomic>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/sync/event.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../sync/sync_test_support.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("set() wakes many fibers, the first one resets, every released waiter still returns") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::Event e{rt, weft::Event::Mode::manual_reset, "pool-free"};
  std::atomic<int> through{0};
  auto hs = weft::test::spawn_across_workers(rt, 16, [&] {
    e.wait();
    e.reset();  // the pg.Pool pattern: the woken one takes the resource and resets
    through.fetch_add(1);
  });
  rt.block_on([&] {
    while (e.waiting() < 16) weft::yield();
    e.set();
    e.reset();  // reset right after set, before any waiter has run
  });
  weft::test::join_all(hs);
  REQUIRE(through.load() == 16);
  REQUIRE_FALSE(e.is_set());
}

TEST_CASE("threads: reset() while waiters are blocked keeps them waiting for the next set()") {
  weft::Event e{weft::threaded, weft::Event::Mode::manual_reset, "threads"};
  std::atomic<int> through{0};
  auto ts = weft::test::start_threads(8, [&] {
    e.wait();
    through.fetch_add(1);
  });
  while (e.waiting() < 8) std::this_thread::yield();
  e.reset();                  // with waiters blocked: defined, a no-op for them
  REQUIRE(e.waiting() == 8);  // still queued: reset() released nobody
  REQUIRE(through.load() == 0);
  e.set();
  e.reset();
  weft::test::join_all(ts);
  REQUIRE(through.load() == 8);
}
