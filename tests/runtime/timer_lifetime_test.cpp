// A Timer across its runtime's life and across workers: shutdown leaves every
// Timer disarmed and destroyable anywhere; an idle Timer may be armed again by a
// fiber of another runtime or worker; an armed Timer used from another worker is
// refused with CrossRuntimeError; durations and time points saturate.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}

TEST_CASE("reset with hours max keeps the timer armed instead of firing at once") {
  weft::Runtime rt;
  rt.block_on([] {
    weft::Timer t;
    t.reset(std::chrono::hours::max());
    weft::sleep_for(5ms);
    REQUIRE(t.armed());
    REQUIRE(t.expirations() == 0);

    t.arm(std::chrono::duration<double>(1e300));
    weft::sleep_for(5ms);
    REQUIRE(t.armed());

    using HoursPoint = std::chrono::time_point<std::chrono::steady_clock, std::chrono::hours>;
    REQUIRE(t.reset_at(HoursPoint::max()));
    weft::sleep_for(5ms);
    REQUIRE(t.armed());
    REQUIRE(t.expirations() == 0);

    REQUIRE(t.reset(-std::chrono::hours::max()));  // the far past: due at once
    REQUIRE(t.wait());
    REQUIRE(t.expirations() == 1);
  });
}

TEST_CASE("an idle timer moves to the worker of the fiber that arms it") {
  weft::Config cfg;
  cfg.workers = 2;
  weft::Runtime rt(cfg);
  weft::Timer t;
  rt.spawn_on(0, [&] {
      t.reset(1ms);
      REQUIRE(t.wait());
    }).join();
  const bool fired = rt.spawn_on(1, [&] {
                         t.reset(1ms);
                         return t.wait();
                       }).join();
  REQUIRE(fired);
  REQUIRE(t.expirations() == 2);
}

TEST_CASE("an armed timer used from another worker throws CrossRuntimeError naming both") {
  weft::Config cfg;
  cfg.workers = 2;
  cfg.name = "two";
  weft::Runtime rt(cfg);
  weft::Timer t;
  rt.spawn_on(0, [&] { t.reset(1h); }).join();
  auto attempt = [&](auto op) {
    return rt
        .spawn_on(1,
                  [&, op]() -> std::string {
                    try {
                      op();
                    } catch (const weft::CrossRuntimeError& e) {
                      return std::string("CrossRuntimeError: ") + e.what();
                    } catch (const std::exception& e) {
                      return std::string("other: ") + e.what();
                    }
                    return "not refused";
                  },
                  {.name = "intruder"})
        .join();
  };
  const std::string on_reset = attempt([&] { t.reset(1ms); });
  const std::string on_cancel = attempt([&] { t.cancel(); });
  const std::string on_wait = attempt([&] { t.wait(); });
  for (const std::string& m : {on_reset, on_cancel, on_wait}) {
    INFO(m);
    REQUIRE_THAT(m, Contains("CrossRuntimeError: "));
    REQUIRE_THAT(m, Contains("worker 0 of runtime 'two'"));
    REQUIRE_THAT(m, Contains("fiber 'intruder' on worker 1"));
  }
  REQUIRE_THAT(on_reset, Contains("weft::Timer::reset"));
  REQUIRE(t.armed());  // the refusals touched nothing
  REQUIRE(rt.spawn_on(0, [&] { return t.cancel(); }).join());
}

TEST_CASE("an armed timer that outlives its runtime is disarmed and destroyed on the main thread") {
  // In a child: destroying an armed Timer outside its worker aborts.
  auto r = weft::test::run_in_child([] {
    auto t = std::make_unique<weft::Timer>([] { std::fprintf(stderr, "the timer fired\n"); });
    {
      weft::Runtime rt;
      rt.block_on([&] { t->reset(1h); });
    }
    if (t->armed()) {
      std::fprintf(stderr, "still armed after shutdown\n");
      return 2;
    }
    t.reset();  // ~Timer on the main thread
    return 0;
  });
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
}

TEST_CASE("cancel of a timer whose runtime is gone returns false from the main thread") {
  auto r = weft::test::run_in_child([] {
    weft::Timer t;
    {
      weft::Runtime rt;
      rt.block_on([&] { t.reset(1h); });
    }
    try {
      if (t.cancel()) return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cancel threw: %s\n", e.what());
      return 3;
    }
    return 0;
  });
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
}

TEST_CASE("a fiber waiting on a timer at shutdown is cancelled and the timer is disarmed") {
  auto r = weft::test::run_in_child([] {
    weft::Timer t;
    weft::JoinHandle<bool> waiter;
    {
      weft::Runtime rt;
      std::atomic<bool> waiting{false};
      waiter = rt.spawn([&] {
        t.reset(1h);
        waiting = true;
        return t.wait();
      });
      rt.block_on([&] {
        while (!waiting) weft::sleep_for(1ms);
      });
    }
    try {
      waiter.join();
      return 2;  // returned instead of being cancelled
    } catch (const weft::FiberCancelled&) {
    }
    return t.armed() ? 3 : 0;  // then ~Timer here, on the main thread
  });
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
}

TEST_CASE("a timer armed when its runtime shut down can be armed again by a fiber of a new runtime") {
  auto r = weft::test::run_in_child([] {
    weft::Timer t;
    {
      weft::Runtime first;
      first.block_on([&] { t.reset(1h); });
    }
    weft::Runtime second;
    try {
      const bool fired = second.block_on([&] {
        t.reset(1ms);
        return t.wait();
      });
      return fired && t.expirations() == 1 ? 0 : 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "re-arming threw: %s\n", e.what());
      return 3;
    }
  });
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
}
