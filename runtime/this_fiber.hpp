// weft/runtime/this_fiber.hpp — what a fiber can do to itself: yield, sleep, ask
// its id and name. All are Evented-only: from a plain thread they throw
// CrossRuntimeError (they never touch a missing thread-local).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace weft {

namespace detail {
void sleep_until_ns(std::int64_t deadline_ns);
std::int64_t deadline_after(std::chrono::nanoseconds d);
std::int64_t steady_to_ns(std::chrono::steady_clock::time_point tp);
}  // namespace detail

/// Lets the other ready fibers of this worker run; returns after them.
void yield();

/// Parks the calling fiber for at least `d`. Negative or zero: just yields.
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  detail::sleep_until_ns(detail::deadline_after(std::chrono::duration_cast<std::chrono::nanoseconds>(d)));
}

/// Parks the calling fiber until `tp` (steady_clock) has passed.
void sleep_until(std::chrono::steady_clock::time_point tp);

namespace this_fiber {
/// The running fiber's id (unique within the process). Evented-only.
std::uint64_t id();
/// The running fiber's name (as given at spawn, else "fiber#<id>"). Evented-only.
std::string name();
/// True when the running fiber has been cancelled (its next blocking call throws
/// FiberCancelled). Evented-only.
bool cancelled();
}  // namespace this_fiber

}  // namespace weft
