// Durations and time points given to weft saturate: "forever" (hours::max(),
// seconds::max(), time_point::max()) never wraps into the past, and every fiber
// and runtime id is unique in the process.
#include <atomic>
#include <chrono>
#include <optional>
#include <set>

#include <catch2/catch.hpp>

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
  constexpr auto kMaxHours = std::chrono::duration_cast<std::chrono::hours>(nanoseconds::max());
  REQUIRE(saturating_ns(kMaxHours) == kMaxHours);
  REQUIRE(saturating_ns(kMaxHours + std::chrono::hours(1)) == nanoseconds::max());
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
      }))
        .detach();
    rt.block_on([] { weft::sleep_for(20ms); });
    REQUIRE(returned == 0);
  }  // shutdown cancels them
  REQUIRE(returned == 0);
  REQUIRE(cancelled == 4);
}

TEST_CASE("fiber ids are unique across runtimes, and a runtime rebuilt at the same address gets a new id") {
  std::optional<weft::Runtime> rt;
  rt.emplace();
  const std::uint64_t first = rt->id();
  const std::uint64_t f1 = rt->block_on([] { return weft::this_fiber::id(); });
  rt.reset();
  rt.emplace();  // same storage, so very likely the same address
  REQUIRE(rt->id() != first);
  weft::Runtime other;
  REQUIRE(other.id() != rt->id());
  std::set<std::uint64_t> ids{f1};
  ids.insert(rt->block_on([] { return weft::this_fiber::id(); }));
  ids.insert(other.block_on([] { return weft::this_fiber::id(); }));
  REQUIRE(ids.size() == 3);
}
