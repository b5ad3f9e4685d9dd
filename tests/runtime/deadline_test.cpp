// Durations and time points given to weft saturate: "forever" (hours::max(),
// seconds::max(), time_point::max()) never wraps into the past, and every fiber
// and runtime id is unique in the process. A weft::Deadline made from either is
// none, and one made from zero or a negative duration has expired.
#include <atomic>
#include <chrono>
#include <cstdint>
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

TEST_CASE("Deadline::after a duration too long for int64 nanoseconds from now is none, not a wrapped time") {
  using weft::Deadline;
  REQUIRE(Deadline::after(std::chrono::hours::max()).is_none());
  REQUIRE(Deadline::after(std::chrono::seconds::max()).is_none());
  REQUIRE(Deadline::after(nanoseconds::max()).is_none());
  REQUIRE(Deadline::after(std::chrono::duration<double>(1e300)).is_none());
  REQUIRE(Deadline::after(std::chrono::hours::max()) == Deadline::none());
  REQUIRE(Deadline::none().remaining() == nanoseconds::max());
  REQUIRE_FALSE(Deadline::none().expired());
  REQUIRE(Deadline::none().ns() == INT64_MAX);
  STATIC_REQUIRE(Deadline() == Deadline::none());
  STATIC_REQUIRE(sizeof(Deadline) == sizeof(std::int64_t));
  // Just below the limit is still a time: a year from now.
  const Deadline year = Deadline::after(std::chrono::hours(24 * 365));
  REQUIRE_FALSE(year.is_none());
  REQUIRE_FALSE(year.expired());
  REQUIRE(year.remaining() > std::chrono::hours(24 * 364));
  REQUIRE(Deadline::earlier(year, Deadline::none()) == year);
  REQUIRE(Deadline::earlier(Deadline::none(), year) == year);
}

TEST_CASE("Deadline::after zero or a negative duration has expired: it is now, never before the clock's epoch") {
  using weft::Deadline;
  const std::int64_t before = weft::detail::monotonic_ns();
  const Deadline zero = Deadline::after(0s);
  const Deadline negative = Deadline::after(-5s);
  const Deadline most_negative = Deadline::after(std::chrono::hours::min());
  for (const Deadline d : {zero, negative, most_negative}) {
    REQUIRE_FALSE(d.is_none());
    REQUIRE(d.expired());
    REQUIRE(d.remaining() == 0ns);
    REQUIRE(d.ns() >= before);  // now, not now - 5 s (the link timeout's timespec stays valid)
  }
}

TEST_CASE("Deadline::at a steady_clock time point keeps it; time_point::max() is none, before the epoch is the epoch") {
  using weft::Deadline;
  using Clock = std::chrono::steady_clock;
  const Clock::time_point tp = Clock::now() + 3s;
  REQUIRE(Deadline::at(tp).ns() == std::chrono::duration_cast<nanoseconds>(tp.time_since_epoch()).count());
  REQUIRE(Deadline::at(Clock::time_point::max()).is_none());
  REQUIRE(Deadline::at(std::chrono::time_point<Clock, std::chrono::hours>::max()).is_none());
  REQUIRE(Deadline::at(Clock::time_point::min()).ns() == 0);
  REQUIRE(Deadline::at(Clock::time_point::min()).expired());
  REQUIRE(Deadline::at(tp) < Deadline::none());
  REQUIRE(Deadline::at_ns(INT64_MAX).is_none());
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
