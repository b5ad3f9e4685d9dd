// What a fiber does to itself: sleep_until parks until its steady_clock time
// point (a past one only yields, letting the other ready fibers run), and
// this_fiber::cancelled() tells a fiber it has been cancelled, before and after
// the FiberCancelled its blocking calls throw.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("sleep_until parks the fiber until its time point has passed") {
  weft::Runtime rt;
  rt.block_on([] {
    const auto tp = Clock::now() + 20ms;
    weft::sleep_until(tp);
    REQUIRE(Clock::now() >= tp);
    // A coarser clock duration converts exactly.
    const auto coarse = std::chrono::time_point_cast<std::chrono::milliseconds>(Clock::now()) + 5ms;
    weft::sleep_until(coarse);
    REQUIRE(Clock::now() >= coarse);
  });
}

TEST_CASE("sleepers given time points wake in time-point order, not spawn order") {
  weft::Runtime rt;
  auto order = rt.block_on([] {
    std::vector<int> order;
    const auto base = Clock::now();
    std::vector<weft::JoinHandle<void>> hs;
    for (int i : {4, 1, 3, 2})
      hs.push_back(weft::spawn([&order, base, i] {
        weft::sleep_until(base + std::chrono::milliseconds(4 * i));
        order.push_back(i);
      }));
    for (auto& h : hs) h.join();
    return order;
  });
  REQUIRE(order == std::vector<int>{1, 2, 3, 4});
}

TEST_CASE("sleep_until a past time point returns after the other ready fibers ran once") {
  weft::Runtime rt;
  rt.block_on([] {
    bool other_ran = false;
    auto other = weft::spawn([&] { other_ran = true; });
    weft::sleep_until(Clock::now() - 1h);  // already passed: a yield
    REQUIRE(other_ran);
    other.join();
    weft::sleep_until(Clock::time_point::min());  // the most past point: no wrap into the future
  });
}

TEST_CASE("this_fiber::cancelled is false in a running fiber and refused on a plain thread") {
  weft::Runtime rt;
  REQUIRE_FALSE(rt.block_on([] { return weft::this_fiber::cancelled(); }));
  REQUIRE_THROWS_AS(weft::this_fiber::cancelled(), weft::CrossRuntimeError);
}

TEST_CASE("this_fiber::cancelled turns true in a fiber that only yields when shutdown cancels it") {
  std::atomic<bool> spinning{false};
  std::atomic<long> yields_before{0};
  weft::JoinHandle<void> h;
  {
    weft::Runtime rt;
    h = rt.spawn([&] {
      spinning = true;
      // yield() returns normally to a fiber cancelled while it was switched out;
      // the flag is how a fiber that never blocks learns about it.
      while (!weft::this_fiber::cancelled()) {
        yields_before.fetch_add(1, std::memory_order_relaxed);
        weft::yield();
      }
    });
    while (!spinning) std::this_thread::yield();
  }  // shutdown cancels it
  // It left its loop by itself (cancelled() turned true), so it returns normally:
  // had the flag stayed false, its yield would have thrown FiberCancelled at the
  // next tick after shutdown, or shutdown would wait for it for ever.
  REQUIRE_NOTHROW(h.join());
  REQUIRE(yields_before.load() > 0);
}

TEST_CASE("after a FiberCancelled this_fiber::cancelled stays true and the next blocking call throws again") {
  std::atomic<int> parked{0};
  std::atomic<bool> flag_after_throw{false}, second_throw{false};
  weft::JoinHandle<void> h;
  {
    weft::Runtime rt;
    h = rt.spawn([&] {
      try {
        parked = 1;
        weft::sleep_for(1h);
      } catch (const weft::FiberCancelled&) {
        flag_after_throw = weft::this_fiber::cancelled();
        try {
          weft::sleep_for(1ms);
        } catch (const weft::FiberCancelled&) {
          second_throw = true;
        }
        throw;
      }
    });
    while (parked.load() == 0) std::this_thread::yield();
    rt.block_on([] { weft::sleep_for(2ms); });  // the sleeper surely parked
  }
  REQUIRE_THROWS_AS(h.join(), weft::FiberCancelled);
  REQUIRE(flag_after_throw.load());
  REQUIRE(second_throw.load());
}
