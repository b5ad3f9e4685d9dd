// Timer durations and time points: every one saturates (hours::max() means never,
// never a wrapped deadline in the past).
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;

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
