// weft/runtime/this_fiber.hpp — what a fiber can do to itself: yield, sleep, ask
// its id and name. All are Evented-only: from a plain thread they throw
// CrossRuntimeError (they never touch a missing thread-local).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <weft/runtime/time.hpp>

namespace weft {

namespace detail {
void sleep_until_ns(std::int64_t deadline_ns);
}  // namespace detail

/// Lets the other ready fibers of this worker run; returns after them.
void yield();

/// Parks the calling fiber for at least `d`. Negative or zero: just yields. A
/// duration too long for int64 nanoseconds (hours::max()) sleeps until cancelled.
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  detail::sleep_until_ns(detail::deadline_after(detail::saturating_ns(d)));
}

/// Parks the calling fiber until `tp` (steady_clock) has passed.
template <class Dur>
void sleep_until(std::chrono::time_point<std::chrono::steady_clock, Dur> tp) {
  detail::sleep_until_ns(detail::steady_to_ns(tp));
}

namespace this_fiber {
/// The running fiber's id (unique within the process). Evented-only.
std::uint64_t id();
/// The running fiber's name (as given at spawn, else "fiber#<id>"). Evented-only.
std::string name();
/// True when the running fiber has been cancelled (its next blocking call throws
/// FiberCancelled, unless the cancellation is deferred). Evented-only.
bool cancelled();

/// While one lives, a cancellation of the running fiber (JoinHandle::cancel, a
/// runtime's shutdown) waits: blocking calls behave as if it had not happened, and
/// the first blocking call after the last scope ends throws FiberCancelled. For
/// cleanup that must block without being cut short (a destructor: a throw there is
/// std::terminate). The same deferral holds by itself while the fiber unwinds an
/// exception (std::uncaught_exceptions() > 0). Evented-only; scopes nest.
class DeferCancellation {
 public:
  DeferCancellation();
  ~DeferCancellation();
  DeferCancellation(const DeferCancellation&) = delete;
  DeferCancellation& operator=(const DeferCancellation&) = delete;
};
}  // namespace this_fiber

}  // namespace weft
