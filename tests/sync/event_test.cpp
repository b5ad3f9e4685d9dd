// weft::Event: manual and auto reset, any number of waiters (fibers on two
// workers, threads), wait_for, the set-before-wait fast path, cancellation, and
// destruction with waiters.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/sync/event.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "sync_test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Mode = weft::Event::Mode;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("a manual-reset event releases every waiter, fibers on two workers and stays set") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::Event e{rt, Mode::manual_reset, "gate"};
  std::atomic<int> through{0};
  auto hs = weft::test::spawn_across_workers(rt, 10, [&] {
    e.wait();
    through.fetch_add(1);
  });
  rt.block_on([&] {
    while (e.waiting() < 10) weft::yield();  // all ten parked: set() must wake each
    REQUIRE(through.load() == 0);
    e.set();
    REQUIRE(e.waiting() == 0);
  });
  weft::test::join_all(hs);
  REQUIRE(through.load() == 10);
  REQUIRE(e.is_set());
  rt.block_on([&] { e.wait(); });  // set: returns at once
}

TEST_CASE("an auto-reset event releases exactly one waiter per set()") {
  weft::Event e{weft::threaded, Mode::auto_reset};
  std::atomic<int> through{0};
  auto ts = weft::test::start_threads(3, [&] {
    e.wait();
    through.fetch_add(1);
  });
  for (int k = 1; k <= 3; ++k) {
    while (!e.has_waiters()) std::this_thread::yield();
    e.set();
    while (through.load() < k) std::this_thread::yield();
  }
  weft::test::join_all(ts);
  REQUIRE(through.load() == 3);
  REQUIRE_FALSE(e.is_set());
  e.set();  // nobody waits: stays set for the next wait, which consumes it
  REQUIRE(e.is_set());
  e.wait();
  REQUIRE_FALSE(e.is_set());
  REQUIRE_FALSE(e.wait_for(1ms));
}

TEST_CASE("wait_for times out on an unset event, and a later set still works") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::Event e{rt};
    REQUIRE_FALSE(e.wait_for(2ms));
    REQUIRE_FALSE(e.has_waiters());
    auto h = weft::spawn([&] { return e.wait_for(10s); });
    while (!e.has_waiters()) weft::yield();
    e.set();
    REQUIRE(h.join());
  });
}

TEST_CASE("a fiber waiting on an event is cancelled by shutdown and leaves no waiter behind") {
  weft::Event e{Mode::manual_reset, "shutdown"};
  weft::JoinHandle<void> h;
  {
    weft::Runtime rt;
    h = rt.spawn([&] { e.wait(); });
    while (!e.has_waiters()) std::this_thread::sleep_for(1ms);
  }
  REQUIRE_THROWS_AS(h.join(), weft::FiberCancelled);
  REQUIRE_FALSE(e.has_waiters());
}

TEST_CASE("destroying an Event with a waiter aborts with a clear message") {
  auto r = weft::test::destroy_while_a_thread_waits(
      [] {
        return new weft::Event{weft::threaded, Mode::manual_reset, "doomed"};
      },
      [](weft::Event& e) { e.wait(); });
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft::Event 'doomed'") && Contains("destroyed while"));
}
