// runtime/this_fiber.cpp — yield, sleep, identity of the running fiber.
#include <weft/runtime/domain.hpp>
#include <weft/runtime/fiber/park.hpp>
#include <weft/runtime/this_fiber.hpp>

namespace weft {

namespace detail {

namespace {
FiberBase* running_fiber(const char* op) {
  FiberBase* f = t_state.fiber;
  if (!f) throw_not_in_fiber(op);
  return f;
}
}  // namespace

void sleep_until_ns(std::int64_t deadline_ns) {
  running_fiber("weft::sleep_for/sleep_until");
  if (deadline_ns <= monotonic_ns()) {
    yield_running();
    return;
  }
  sleep_running_until(deadline_ns);
}

}  // namespace detail

void yield() {
  detail::running_fiber("weft::yield");
  detail::yield_running();
}

namespace this_fiber {
std::uint64_t id() {
  return detail::running_fiber("weft::this_fiber::id")->id();
}
std::string name() {
  return detail::running_fiber("weft::this_fiber::name")->display_name();
}
bool cancelled() {
  return detail::running_fiber("weft::this_fiber::cancelled")->cancel_requested_;
}

DeferCancellation::DeferCancellation() {
  ++detail::running_fiber("weft::this_fiber::DeferCancellation")->cancel_defer_;
}
// The fiber that made it is the one running here (a scope cannot change fibers).
DeferCancellation::~DeferCancellation() {
  --detail::t_state.fiber->cancel_defer_;
}
}  // namespace this_fiber

}  // namespace weft
