// While shutdown waits for a worker, it says (at warn level, periodically) which
// fiber it waits for: one running without yielding, by the shutdown caller; one
// still parked after its cancellation, by the worker itself. The tests wait for
// the message (bounded), then release the fiber: no timing in the assertions.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include <weft/runtime/log.hpp>
#include <weft/runtime/test_access.hpp>
#include <weft/runtime/uring/worker.hpp>
#include <weft/weft.hpp>

#include "../helpers/captured_log.hpp"
#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using weft::test::CapturedLog;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("shutdown names every fiber that keeps it waiting by running without yielding") {
  CapturedLog log;
  std::atomic<int> spinning{0};
  std::atomic<bool> release{false};
  std::string line0, line1;
  {
    weft::Config cfg;
    cfg.name = "spun";
    cfg.workers = 2;
    cfg.stall_threshold = 0ms;  // no stall detector: the shutdown's own report is tested
    weft::Runtime rt(cfg);
    for (unsigned w : {0u, 1u})
      rt.spawn_on(w,
                  [&] {
                    spinning.fetch_add(1);
                    while (!release.load()) {
                    }
                  },
                  {.name = w == 0 ? "spinner-a" : "spinner-b"})
          .detach();
    while (spinning.load() < 2) std::this_thread::yield();
    std::thread stopper([&] { rt.shutdown(); });
    line0 = log.wait_line("shutdown", "spinner-a");
    line1 = log.wait_line("shutdown", "spinner-b");  // while worker 0 still holds it up too
    release = true;
    stopper.join();
  }
  INFO(log.text());
  REQUIRE_THAT(line0, Contains("runtime 'spun'"));
  REQUIRE_THAT(line0, Contains("fiber spinner-a on worker 0"));
  REQUIRE_THAT(line0, Contains("without yielding"));
  REQUIRE_THAT(line0, Contains("[warning]"));
  REQUIRE_THAT(line1, Contains("fiber spinner-b on worker 1"));
  REQUIRE_THAT(line1, Contains("without yielding"));
}

TEST_CASE("shutdown names a fiber that stays parked after its cancellation and what it waits on") {
  using weft::detail::FiberBase;
  CapturedLog log;
  std::atomic<bool> release{false};
  std::string line;
  {
    weft::Runtime rt(weft::Config{.name = "deaf"});
    FiberBase* deaf = nullptr;
    rt.spawn_detached(
        [&] {
          deaf = weft::detail::t_state.fiber;
          // A wait whose cancel hook does not wake it.
          weft::detail::TestAccess::worker(rt, 0).park_current(
              "test: a wait that ignores cancellation", [](FiberBase*, void*) {}, nullptr);
        },
        {.name = "deaf-parker"});
    std::atomic<bool> keeper_parked{false};
    rt.spawn_detached(
        [&] {
          keeper_parked = true;
          // Parked until cancelled; from then on requeued at every park, so the
          // worker keeps ticking (and is never left with only abandoned fibers).
          while (!release.load())
            weft::detail::TestAccess::worker(rt, 0).park_current(
                "test: requeued", [](FiberBase* f, void*) { weft::detail::Worker::unpark(f); }, nullptr);
          weft::detail::TestAccess::worker(rt, 0).unpark_local(deaf);
        },
        {.name = "keeper"});
    while (!keeper_parked) std::this_thread::yield();
    std::thread stopper([&] { rt.shutdown(); });
    line = log.wait_line("deaf-parker", "test: a wait that ignores cancellation");
    release = true;
    stopper.join();
  }
  INFO(log.text());
  REQUIRE_THAT(line, Contains("runtime 'deaf'"));
  REQUIRE_THAT(line, Contains("worker 0"));
  REQUIRE_THAT(line, Contains("parked on test: a wait that ignores cancellation"));
  REQUIRE_THAT(line, Contains("[warning]"));
}
