// Timers and sleeps: expiry, cancel, reset, waiters, callbacks, sleep ordering.
#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}

TEST_CASE("sleep_for parks at least the requested time") {
  weft::Runtime rt;
  auto slept = rt.block_on([] {
    auto t0 = Clock::now();
    weft::sleep_for(20ms);
    return Clock::now() - t0;
  });
  REQUIRE(slept >= 20ms);
}

TEST_CASE("sleepers wake in deadline order") {
  weft::Runtime rt;
  auto order = rt.block_on([] {
    std::vector<int> order;
    std::vector<weft::JoinHandle<void>> hs;
    // Deadlines from one instant: how late each fiber starts does not matter.
    const auto base = std::chrono::steady_clock::now() + 20ms;
    for (int i : {5, 1, 4, 2, 3})
      hs.push_back(weft::spawn([&order, i, base] {
        weft::sleep_until(base + std::chrono::milliseconds(3 * i));
        order.push_back(i);
      }));
    for (auto& h : hs) h.join();
    return order;
  });
  REQUIRE(order == std::vector<int>{1, 2, 3, 4, 5});
}

TEST_CASE("a timer's wait returns true at expiry and false when another fiber cancels it") {
  weft::Runtime rt;
  rt.block_on([] {
    weft::Timer t;
    t.reset(2ms);
    REQUIRE(t.wait());
    REQUIRE(t.expirations() == 1);
    REQUIRE_FALSE(t.armed());
    REQUIRE_FALSE(t.wait());  // not armed: returns at once

    t.reset(1h);
    auto canceller = weft::spawn([&] { REQUIRE(t.cancel()); });
    REQUIRE_FALSE(t.wait());
    canceller.join();
    REQUIRE(t.expirations() == 1);
  });
}

TEST_CASE("reset and cancel report whether a pending expiry was superseded") {
  weft::Runtime rt;
  rt.block_on([] {
    weft::Timer t;
    REQUIRE_FALSE(t.cancel());
    REQUIRE_FALSE(t.reset(1h));
    REQUIRE(t.reset(1h));
    REQUIRE(t.cancel());
    REQUIRE_FALSE(t.cancel());
    REQUIRE(t.expirations() == 0);
  });
}

TEST_CASE("many waiters on one timer all wake once at expiry") {
  weft::Runtime rt;
  rt.block_on([] {
    weft::Timer t;
    t.reset(5ms);
    int woke = 0;
    std::vector<weft::JoinHandle<void>> hs;
    for (int i = 0; i < 50; ++i)
      hs.push_back(weft::spawn([&] {
        if (t.wait()) ++woke;
      }));
    for (auto& h : hs) h.join();
    REQUIRE(woke == 50);
    REQUIRE(t.expirations() == 1);
  });
}

TEST_CASE("a callback may re-arm its own timer (periodic) and cancel others") {
  weft::Runtime rt;
  rt.block_on([] {
    int ticks = 0, other_fired = 0;
    bool cancelled_other = false;
    weft::Timer other([&] { ++other_fired; });
    other.reset(1h);
    weft::Timer* self = nullptr;
    weft::Timer p([&] {
      if (++ticks < 5)
        self->reset(1ms);
      else
        cancelled_other = other.cancel();  // the last tick cancels the other timer
    });
    self = &p;
    p.reset(1ms);
    while (p.armed() || ticks < 5) weft::sleep_for(1ms);
    REQUIRE(ticks == 5);
    REQUIRE(p.expirations() == 5);
    REQUIRE(cancelled_other);  // it was pending, and the callback removed it
    REQUIRE_FALSE(other.armed());
    REQUIRE(other_fired == 0);
  });
}

TEST_CASE("a timer destroyed while armed never fires") {
  weft::Runtime rt;
  rt.block_on([] {
    int fired = 0;
    {
      weft::Timer t([&] { ++fired; });
      t.reset(1ms);
    }
    weft::sleep_for(5ms);
    REQUIRE(fired == 0);
  });
}
