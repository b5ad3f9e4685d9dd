// weft/runtime/time.hpp — time as every layer counts it: CLOCK_MONOTONIC in int64
// nanoseconds, absolute deadlines (weft::Deadline, and the int64 form the timer
// heap keeps), and duration conversions that saturate.
//
// Invariants:
//  - A deadline is an absolute CLOCK_MONOTONIC time in nanoseconds (the clock of
//    std::chrono::steady_clock). A Deadline is exactly one such int64, INT64_MAX
//    being none ("never"); it is never negative. The int64 helpers below are the
//    storage form of the layers under the Deadline (timer heap, Waiter), where a
//    negative deadline means "none" if the API says so.
//  - Conversions never wrap: what int64 nanoseconds cannot hold becomes the
//    nearest limit (INT64_MAX: "never"), so a duration too long is no deadline.
#pragma once

#include <chrono>
#include <compare>
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

namespace weft {

/// When a call must end: an absolute CLOCK_MONOTONIC time, or none. One int64
/// (passed by value, as cheap as the raw nanoseconds); made from a timeout when
/// the call starts and handed unchanged from the public call down to the io_uring
/// op, whose linked timeout it becomes.
class Deadline {
 public:
  /// None: the call may wait for ever.
  constexpr Deadline() noexcept = default;
  static constexpr Deadline none() noexcept { return Deadline(); }
  /// `d` from now, saturated: a duration too long for int64 nanoseconds from now
  /// (kNoTimeout, hours::max()) is none; zero or negative is now (expired).
  static Deadline after(std::chrono::nanoseconds d) noexcept;
  template <class Rep, class Period>
  static Deadline after(std::chrono::duration<Rep, Period> d) noexcept {
    return after(detail::saturating_ns(d));
  }
  /// A steady_clock time point; time_point::max() (or anything beyond int64
  /// nanoseconds) is none, one before the clock's epoch is the epoch.
  template <class Dur>
  static constexpr Deadline at(std::chrono::time_point<std::chrono::steady_clock, Dur> tp) noexcept {
    return at_ns(detail::steady_to_ns(tp));
  }
  /// Absolute CLOCK_MONOTONIC nanoseconds (INT64_MAX: none; negative: 0).
  static constexpr Deadline at_ns(std::int64_t ns) noexcept { return Deadline(ns < 0 ? 0 : ns); }

  [[nodiscard]] constexpr bool is_none() const noexcept { return ns_ == kNever; }
  /// Absolute CLOCK_MONOTONIC nanoseconds; INT64_MAX when none.
  [[nodiscard]] constexpr std::int64_t ns() const noexcept { return ns_; }
  /// The time left, never negative; nanoseconds::max() when none.
  [[nodiscard]] std::chrono::nanoseconds remaining() const noexcept;
  /// The time has come (never, when none).
  [[nodiscard]] bool expired() const noexcept;
  /// The earlier of the two (none is later than any time).
  [[nodiscard]] static constexpr Deadline earlier(Deadline a, Deadline b) noexcept { return a.ns_ <= b.ns_ ? a : b; }

  friend constexpr bool operator==(Deadline, Deadline) noexcept = default;
  friend constexpr std::strong_ordering operator<=>(Deadline, Deadline) noexcept = default;

 private:
  static constexpr std::int64_t kNever = INT64_MAX;
  constexpr explicit Deadline(std::int64_t ns) noexcept : ns_(ns) {}
  std::int64_t ns_ = kNever;
};

static_assert(sizeof(Deadline) == sizeof(std::int64_t), "a Deadline is one int64");

}  // namespace weft
