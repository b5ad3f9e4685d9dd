// Durations and time points given to weft saturate: "forever" (hours::max(),
// seconds::max(), time_point::max()) never wraps into the past.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using std::chrono::nanoseconds;
using weft::detail::saturating_ns;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("saturating_ns clamps what int64 nanoseconds cannot hold instead of wrapping") {
  REQUIRE(saturating_ns(std::chrono::hours::max()) == nanoseconds::max());
  REQUIRE(saturating_ns(std::chrono::seconds::max()) == nanoseconds::max());
  REQUIRE(saturating_ns(std::chrono::milliseconds::max()) == nanoseconds::max());
  REQUIRE(saturating_ns(std::chrono::hours::min()) == nanoseconds::min());
  REQUIRE(saturating_ns(std::chrono::duration<double>(1e300)) == nanoseconds::max());
  REQUIRE(saturating_ns(std::chrono::duration<double>(-1e300)) == nanoseconds::min());
  REQUIRE(saturating_ns(std::chrono::duration<double, std::milli>(1.5)) == 1500us);
  REQUIRE(saturating_ns(5ms) == 5ms);
  REQUIRE(saturating_ns(-7s) == -7s);
  REQUIRE(saturating_ns(nanoseconds::max()) == nanoseconds::max());
  // The largest whole number of hours that fits converts exactly.
  constexpr auto h = std::chrono::duration_cast<std::chrono::hours>(nanoseconds::max());
  REQUIRE(saturating_ns(h) == h);
  REQUIRE(saturating_ns(h + std::chrono::hours(1)) == nanoseconds::max());
}

TEST_CASE("sleep_for(seconds::max()) and sleep_until(time_point::max()) sleep until cancelled") {
  std::atomic<int> returned{0}, cancelled{0};
  {
    weft::Runtime rt;
    auto sleeper = [&](auto sleep) {
      return [&, sleep] {
        try {
          sleep();
          returned.fetch_add(1);
        } catch (const weft::FiberCancelled&) {
          cancelled.fetch_add(1);
        }
      };
    };
    rt.spawn(sleeper([] { weft::sleep_for(std::chrono::seconds::max()); })).detach();
    rt.spawn(sleeper([] { weft::sleep_for(std::chrono::hours::max()); })).detach();
    rt.spawn(sleeper([] { weft::sleep_until(std::chrono::steady_clock::time_point::max()); })).detach();
    rt.spawn(sleeper([] {
      weft::sleep_until(std::chrono::time_point<std::chrono::steady_clock, std::chrono::hours>::max());
    })).detach();
    rt.block_on([] { weft::sleep_for(20ms); });
    REQUIRE(returned == 0);
  }  // shutdown cancels them
  REQUIRE(returned == 0);
  REQUIRE(cancelled == 4);
}
