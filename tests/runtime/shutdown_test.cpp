// Shutdown order, cancellation, the stall detector and fiber dumps.
#include <atomic>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <weft/runtime/log.hpp>
#include <weft/runtime/test_access.hpp>
#include <weft/runtime/uring/worker.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}

TEST_CASE("destroying the runtime cancels sleeping, waiting and not-yet-started fibers") {
  weft::JoinHandle<void> sleeper, waiter, unstarted;
  std::atomic<int> unwound{0};
  {
    weft::Runtime rt;
    weft::Timer* timer = nullptr;
    sleeper = rt.spawn([&] {
      struct Guard {
        std::atomic<int>& n;
        ~Guard() { ++n; }
      } g{unwound};
      weft::sleep_for(1h);
    });
    waiter = rt.spawn([&] {
      struct Guard {
        std::atomic<int>& n;
        ~Guard() { ++n; }
      } g{unwound};
      weft::Timer t;
      timer = &t;
      t.reset(1h);
      t.wait();
    });
    rt.block_on([&] {
      while (!timer) weft::sleep_for(1ms);
    });
    // A fiber that is busy when shutdown begins spawns one more: it must finish
    // cancelled without ever starting.
    std::atomic<bool> spinning{false};
    rt.spawn([&] {
        spinning = true;
        while (!weft::detail::TestAccess::worker(rt, 0).stopping()) {
        }
        unstarted = weft::spawn([] { FAIL("a fiber queued at shutdown must not start"); });
      }).detach();
    while (!spinning) std::this_thread::yield();
    rt.shutdown();
  }
  REQUIRE(unwound == 2);  // destructors on their stacks ran: they were unwound
  REQUIRE_THROWS_AS(sleeper.join(), weft::FiberCancelled);
  REQUIRE_THROWS_AS(waiter.join(), weft::FiberCancelled);
  REQUIRE_THROWS_AS(unstarted.join(), weft::FiberCancelled);
}

TEST_CASE("spawn after shutdown is refused with an error, not dropped") {
  weft::Runtime rt;
  rt.shutdown();
  REQUIRE_THROWS_WITH(rt.spawn([] {}), Contains("shut down"));
  REQUIRE_THROWS_AS(rt.spawn([] {}), weft::ShutDown);
}

TEST_CASE("the stall detector names a fiber that runs without yielding") {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  weft::log::logger().sinks().push_back(sink);
  weft::Config cfg;
  cfg.stall_threshold = 20ms;
  std::uint64_t stalls = 0;
  {
    weft::Runtime rt(cfg);
    rt.block_on(
        [&] {
          // Spin (never yielding) until the detector has reported; bounded.
          auto give_up = std::chrono::steady_clock::now() + 60s;
          while (rt.stats().stalls == 0 && std::chrono::steady_clock::now() < give_up) {
          }
        },
        {.name = "cpu-hog"});
    stalls = rt.stats().stalls;
  }  // the monitor thread is gone: the sink can be detached without a race
  weft::log::logger().sinks().pop_back();
  REQUIRE(stalls >= 1);
  std::string all;
  for (auto& line : sink->last_formatted()) all += line;
  REQUIRE_THAT(all, Contains("stall: fiber cpu-hog"));
}

TEST_CASE("a fiber alone on its worker that yields every 30 ms is never reported as stalled") {
  // A yield with nothing else to run goes on without a trip through the
  // scheduler; it is still an activation, and the detector's epoch must move.
  // (Before, it only counted down the tick budget: 40 yields in 1.2 s never
  // ticked, and the fiber was reported as running "without yielding".)
  weft::Config cfg;
  cfg.stall_threshold = 300ms;
  weft::Runtime rt(cfg);
  rt.block_on([] {
    const auto until = std::chrono::steady_clock::now() + 1200ms;  // four thresholds
    while (std::chrono::steady_clock::now() < until) {
      const auto slice_end = std::chrono::steady_clock::now() + 30ms;
      while (std::chrono::steady_clock::now() < slice_end) {
      }
      weft::yield();
    }
  });
  REQUIRE(rt.stats().stalls == 0);
}

TEST_CASE("fibers that keep yielding to each other are never reported as stalled") {
  // The yield fast path counts activations per tick, and quiet_tick() starts new
  // budgets without returning to the scheduler: the detector's epoch must still
  // move, or this busy-but-yielding pair would be reported.
  weft::Config cfg;
  cfg.stall_threshold = 200ms;
  weft::Runtime rt(cfg);
  rt.block_on([&] {
    auto until = std::chrono::steady_clock::now() + 1s;  // five thresholds
    auto spin = [until] {
      while (std::chrono::steady_clock::now() < until) weft::yield();
    };
    auto a = weft::spawn(spin);
    auto b = weft::spawn(spin);
    a.join();
    b.join();
  });
  REQUIRE(rt.stats().stalls == 0);
}

TEST_CASE("dump_fibers lists live fibers with their state and what they wait on") {
  weft::Runtime rt;
  weft::Timer* t = nullptr;
  auto parked = rt.spawn(
      [&] {
        weft::Timer timer;
        t = &timer;
        timer.reset(1h);
        timer.wait();
      },
      {.name = "parked-one"});
  rt.block_on([&] {
    while (!t) weft::sleep_for(1ms);
  });
  std::string dump = rt.dump_fibers();
  REQUIRE_THAT(dump, Contains("parked-one"));
  REQUIRE_THAT(dump, Contains("parked"));
  REQUIRE_THAT(dump, Contains("waiting on timer"));
  rt.block_on([&] { t->cancel(); });
  parked.join();
}

TEST_CASE("dump_fibers does not hang on a worker held by a stalled fiber: it names that fiber") {
  weft::Config cfg;
  cfg.workers = 2;
  cfg.stall_threshold = std::chrono::milliseconds(0);
  weft::Runtime rt(cfg);
  std::atomic<bool> spinning{false}, release{false};
  auto hog = rt.spawn_on(1,
                         [&] {
                           spinning = true;
                           while (!release.load()) {
                           }
                         },
                         {.name = "stuck-hog"});
  while (!spinning) std::this_thread::yield();
  std::string dump = rt.dump_fibers(std::chrono::milliseconds(50));
  release = true;
  hog.join();
  REQUIRE_THAT(dump, Contains("worker 1  (no answer within 50 ms; running stuck-hog)"));
}

TEST_CASE("the dump signal makes the runtime log a fiber dump") {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  weft::log::logger().sinks().push_back(sink);
  weft::Config cfg;
  cfg.dump_signal = SIGUSR2;
  std::string all;
  {
    weft::Runtime rt(cfg);
    weft::Timer* t = nullptr;
    auto parked = rt.spawn(
        [&] {
          weft::Timer timer;
          t = &timer;
          timer.reset(std::chrono::hours(1));
          timer.wait();
        },
        {.name = "dump-me"});
    rt.block_on([&] {
      while (!t) weft::sleep_for(1ms);
    });
    raise(SIGUSR2);
    for (int i = 0; i < 6000 && all.find("dump-me") == std::string::npos; ++i) {  // bounded: 60 s
      std::this_thread::sleep_for(10ms);
      all.clear();
      for (auto& line : sink->last_formatted()) all += line;
    }
    rt.block_on([&] { t->cancel(); });
    parked.join();
  }  // runtime and monitor gone before the sink is detached
  weft::log::logger().sinks().pop_back();
  REQUIRE_THAT(all, Contains("fiber dump of runtime"));
  REQUIRE_THAT(all, Contains("dump-me"));
}
