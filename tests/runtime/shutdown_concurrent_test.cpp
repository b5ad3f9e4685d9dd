// Runtime::shutdown() called by several threads at once, and by a thread while
// the runtime's destructor runs: every caller returns only once shutdown is
// complete (every fiber unwound, the workers stopped), and the destructor never
// destroys the workers, the pool or the monitor under another caller.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/test_access.hpp>
#include <weft/runtime/uring/worker.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

// Counts its fiber's unwinding, slowly: shutdown takes a while, so a caller that
// returns before it is complete is caught.
struct SlowUnwind {
  std::atomic<int>& n;
  ~SlowUnwind() {
    std::this_thread::sleep_for(2ms);
    n.fetch_add(1);  // seq_cst: read by the shutdown callers
  }
};
}  // namespace

TEST_CASE("every one of several concurrent shutdown calls returns after all fibers unwound") {
  constexpr int kFibers = 4;
  constexpr int kCallers = 4;
  const long rounds = weft::test::scaled(30);
  long early = 0;
  for (long round = 0; round < rounds; ++round) {
    std::atomic<int> unwound{0}, started{0}, early_now{0};
    {
      weft::Config cfg;
      cfg.workers = 2;
      weft::Runtime rt(cfg);
      for (int i = 0; i < kFibers; ++i)
        rt.spawn_detached(
            [&] {
              SlowUnwind g{unwound};
              started.fetch_add(1);
              for (;;) weft::yield();  // runs until cancelled: yield throws FiberCancelled
            },
            {.name = "busy"});
      while (started.load() < kFibers) std::this_thread::yield();
      std::atomic<bool> go{false};
      std::vector<std::thread> callers;
      for (int c = 0; c < kCallers; ++c)
        callers.emplace_back([&] {
          while (!go.load()) {
          }
          rt.shutdown();
          if (unwound.load() != kFibers || rt.stats().fibers_alive != 0) early_now.fetch_add(1);
        });
      go.store(true);
      for (auto& t : callers) t.join();
    }  // ~Runtime after every caller returned
    early += early_now.load();
  }
  INFO("shutdown calls that returned before the fibers had unwound: " << early);
  REQUIRE(early == 0);
}

TEST_CASE("the destructor waits for a shutdown another thread started") {
  // The everyday trigger: a signal-handling thread calls shutdown() while main
  // leaves block_on and destroys the runtime. In a child: a destructor that does
  // not wait destroys the monitor thread under the caller (std::terminate).
  auto r = weft::test::run_in_child([] {
    const long rounds = weft::test::scaled(30);
    for (long round = 0; round < rounds; ++round) {
      std::atomic<int> unwound{0};
      std::atomic<bool> started{false}, caller_saw_all{false};
      std::thread signal_thread;
      {
        weft::Config cfg;
        cfg.stall_threshold = 100ms;  // the runtime has a monitor thread
        weft::Runtime rt(cfg);
        rt.spawn_detached([&] {
          SlowUnwind g{unwound};
          started.store(true);
          weft::sleep_for(1h);
        });
        rt.block_on([&] {
          while (!started.load()) weft::sleep_for(1ms);
        });
        signal_thread = std::thread([&] {
          rt.shutdown();
          caller_saw_all.store(unwound.load() == 1);  // rt may be gone now: not touched
        });
        while (!weft::detail::TestAccess::worker(rt, 0).stopping())
          std::this_thread::yield();  // its shutdown has begun
      }                               // ~Runtime: must wait for the signal thread's shutdown to complete
      if (unwound.load() != 1) {
        std::fprintf(stderr, "round %ld: ~Runtime returned before the fiber unwound\n", round);
        return 2;
      }
      signal_thread.join();
      if (!caller_saw_all.load()) {
        std::fprintf(stderr, "round %ld: shutdown() returned before the fiber unwound\n", round);
        return 3;
      }
    }
    return 0;
  });
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
}

TEST_CASE("shutdown from a task on the runtime's own pool is refused and changes nothing") {
  // It would wait for its own pool thread to be joined.
  weft::Runtime rt;
  std::string msg = rt.block_on([&] {
    return weft::offload([&] {
      try {
        rt.shutdown();
      } catch (const weft::CrossRuntimeError& e) {
        return std::string(e.what());
      }
      return std::string("not refused");
    });
  });
  REQUIRE_THAT(msg, Catch::Matchers::Contains("wait for itself"));
  REQUIRE(rt.block_on([] { return 7; }) == 7);  // still running
}
