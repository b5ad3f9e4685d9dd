// runtime/time.cpp — the monotonic clock and deadlines (runtime/time.hpp).
#include <time.h>

#include <cstdint>

#include <weft/runtime/time.hpp>

namespace weft::detail {

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t deadline_after(std::chrono::nanoseconds d) {
  const std::int64_t n = d.count();
  if (n == INT64_MAX) return INT64_MAX;  // no timeout (kNoTimeout): no clock to read
  const std::int64_t now = monotonic_ns();
  if (n <= 0) return now;
  return n > INT64_MAX - now ? INT64_MAX : now + n;
}

}  // namespace weft::detail

namespace weft {

Deadline Deadline::after(std::chrono::nanoseconds d) noexcept {
  return Deadline(detail::deadline_after(d));  // INT64_MAX when it saturates: none
}

std::chrono::nanoseconds Deadline::remaining() const noexcept {
  if (is_none()) return std::chrono::nanoseconds::max();
  const std::int64_t left = ns_ - detail::monotonic_ns();
  return std::chrono::nanoseconds(left > 0 ? left : 0);
}

bool Deadline::expired() const noexcept {
  return !is_none() && detail::monotonic_ns() >= ns_;
}

}  // namespace weft
