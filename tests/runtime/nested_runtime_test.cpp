// A runtime driven from a fiber of another runtime: created, used, shut down and
// destroyed there (it blocks that worker of the outer runtime until the inner
// one has stopped). Only a runtime's own fibers and its own scheduler context are
// refused: they would wait for themselves.
#include <atomic>
#include <chrono>
#include <string>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

struct CountUnwind {
  std::atomic<int>& n;
  ~CountUnwind() { n.fetch_add(1); }
};
}  // namespace

TEST_CASE("a runtime created used and destroyed inside a fiber of another runtime") {
  weft::Runtime outer(weft::Config{.name = "outer"});
  std::atomic<int> unwound{0};
  std::atomic<bool> started{false};
  const std::string got = outer.block_on([&] {
    weft::Runtime inner(weft::Config{.name = "inner"});
    auto h = inner.spawn([&] {
      // Until the detached fiber runs: one the shutdown finds not yet started is
      // ended without running, and nothing of it unwinds.
      while (!started) weft::sleep_for(1ms);
      return weft::current_domain().name();
    });
    inner.spawn_detached([&] {  // still parked when `inner` is destroyed: cancelled
      CountUnwind g{unwound};
      started = true;
      weft::sleep_for(1h);
    });
    return h.join();  // parks this fiber of `outer`; inner's worker wakes it
  });                 // ~Runtime of `inner` runs in a fiber of `outer`
  REQUIRE(got == "Evented(runtime 'inner')");
  REQUIRE(unwound == 1);
  REQUIRE(outer.block_on([] { return 3; }) == 3);  // the outer runtime is unharmed
}

TEST_CASE("shutdown of a runtime from a fiber of another returns after its fibers unwound") {
  weft::Runtime a(weft::Config{.name = "a"});
  weft::Runtime b(weft::Config{.name = "b"});
  std::atomic<int> unwound{0};
  std::atomic<bool> started{false};
  auto sleeper = b.spawn([&] {
    CountUnwind g{unwound};
    started = true;
    weft::sleep_for(1h);
  });
  while (!started) std::this_thread::yield();
  const int seen = a.block_on([&] {
    b.shutdown();
    b.shutdown();  // idempotent from here too
    return unwound.load();
  });
  REQUIRE(seen == 1);
  REQUIRE_THROWS_AS(sleeper.join(), weft::FiberCancelled);
}

TEST_CASE("shutdown from a runtime's own fiber or its timer callback is refused with CrossRuntimeError") {
  weft::Runtime rt(weft::Config{.name = "selfish"});
  std::string from_fiber, from_callback;
  rt.block_on(
      [&] {
        try {
          rt.shutdown();
        } catch (const weft::CrossRuntimeError& e) {
          from_fiber = e.what();
        }
        weft::Timer t([&] {
          try {
            rt.shutdown();
          } catch (const weft::CrossRuntimeError& e) {
            from_callback = e.what();
          }
        });
        t.reset(0ms);
        t.wait();
      },
      {.name = "self-stopper"});
  REQUIRE_THAT(from_fiber, Contains("wait for itself"));
  REQUIRE_THAT(from_fiber, Contains("self-stopper"));
  REQUIRE_THAT(from_callback, Contains("wait for itself"));
  REQUIRE(rt.block_on([] { return 4; }) == 4);  // refused: nothing was stopped
}
