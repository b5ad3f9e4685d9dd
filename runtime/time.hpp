// weft/runtime/time.hpp — time as every layer counts it: CLOCK_MONOTONIC in int64
// nanoseconds, absolute deadlines, and duration conversions that saturate.
//
// Invariants:
//  - A deadline is an absolute CLOCK_MONOTONIC time in nanoseconds (the clock of
//    std::chrono::steady_clock); a negative one means "none" where an API says so.
//  - Conversions never wrap: what int64 nanoseconds cannot hold becomes the
//    nearest limit (INT64_MAX: "never").
#pragma once

#include <chrono>
#include <cstdint>
#include <ratio>
#include <type_traits>

namespace weft::detail {

/// CLOCK_MONOTONIC in nanoseconds (the clock of std::chrono::steady_clock).
std::int64_t monotonic_ns() noexcept;

/// The absolute CLOCK_MONOTONIC time `d` from now, saturated at INT64_MAX; a
/// negative or zero `d` gives now.
std::int64_t deadline_after(std::chrono::nanoseconds d);

/// `d` in nanoseconds, saturated: a duration that int64 nanoseconds cannot hold
/// (hours::max(), seconds::max(), a huge double) becomes nanoseconds::max() (or
/// ::min()) instead of wrapping. Every API that takes a duration converts with it.
template <class Rep, class Period>
constexpr std::chrono::nanoseconds saturating_ns(std::chrono::duration<Rep, Period> d) noexcept {
  using std::chrono::nanoseconds;
  using D = std::chrono::duration<Rep, Period>;
  if constexpr (std::is_floating_point_v<Rep>) {
    if (!(d == d)) return nanoseconds::zero();  // NaN
    const long double ns = static_cast<long double>(d.count()) * Period::num * 1'000'000'000.0L / Period::den;
    if (ns >= static_cast<long double>(nanoseconds::max().count())) return nanoseconds::max();
    if (ns <= static_cast<long double>(nanoseconds::min().count())) return nanoseconds::min();
    return nanoseconds(static_cast<nanoseconds::rep>(ns));
  } else if constexpr (std::ratio_less_equal_v<Period, std::nano>) {
    return std::chrono::duration_cast<nanoseconds>(d);  // a division: cannot overflow
  } else {
    // Coarser than ns: the limits expressed in D (truncated toward zero) still fit.
    constexpr D kHi = std::chrono::duration_cast<D>(nanoseconds::max());
    constexpr D kLo = std::chrono::duration_cast<D>(nanoseconds::min());
    if (d > kHi) return nanoseconds::max();
    if (d < kLo) return nanoseconds::min();
    return std::chrono::duration_cast<nanoseconds>(d);
  }
}

/// A steady_clock time point as CLOCK_MONOTONIC nanoseconds, saturated.
template <class Dur>
constexpr std::int64_t steady_to_ns(std::chrono::time_point<std::chrono::steady_clock, Dur> tp) noexcept {
  return saturating_ns(tp.time_since_epoch()).count();
}

}  // namespace weft::detail
