// runtime/uring/park.cpp — the Evented worker's side of the park/wake contract
// (runtime/fiber/park.hpp) and of the caller's domain (runtime/domain.hpp).
//
// Each definition forwards to the calling thread's Worker (t_state.worker) or to
// the fiber's own (FiberBase::worker_): a fiber never migrates, so its worker is
// the one whose thread runs these. The forwards are small enough to be inlined
// under LTO, leaving the hot paths as they were.
#include <weft/runtime/domain.hpp>
#include <weft/runtime/fiber/park.hpp>
#include <weft/runtime/uring/worker.hpp>

namespace weft {

Domain current_domain() noexcept {
  const auto& ts = detail::t_state;
  Domain d;
  if (ts.worker) {
    d.kind = ts.fiber ? Domain::Kind::evented : Domain::Kind::scheduler;
    d.runtime = &ts.worker->runtime();
    d.runtime_id = detail::runtime_id(*d.runtime);
    d.worker = static_cast<int>(ts.worker->index());
  }
  return d;
}

namespace detail {

void park_running(const char* reason, CancelHook hook, void* hook_arg) {
  t_state.worker->park_current(reason, hook, hook_arg);
}

void yield_running() {
  t_state.worker->yield_current();
}

void sleep_running_until(std::int64_t deadline_ns) {
  t_state.worker->sleep_until(deadline_ns);
}

void check_cancel() {
  if (Worker* w = t_state.worker) w->check_cancel();
}

void unpark(FiberBase* f) noexcept {
  Worker::unpark(f);
}

void unpark_local(FiberBase* f) noexcept {
  f->worker_->unpark_local(f);
}

void arm_deadline(TimerNode* n, std::int64_t deadline_ns) {
  t_state.worker->timers().rearm(n, deadline_ns);
}

void disarm_deadline(TimerNode* n) noexcept {
  if (n->queued()) t_state.worker->timers().erase(n);
}

unsigned worker_index(const Worker* w) noexcept {
  return w->index();
}

const Runtime& worker_runtime(const Worker* w) noexcept {
  return w->runtime();
}

void request_cancel(FiberBase* f) noexcept {
  Worker::request_cancel(f);
}

}  // namespace detail
}  // namespace weft
