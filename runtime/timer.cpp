// runtime/timer.cpp — Timer: a state machine over one intrusive heap node.
//
// Invariants: the node is in worker_'s heap iff armed(); waiters exist only while
// armed; while armed all of it is touched only on worker_'s thread. An idle Timer
// is rebound by the next call (worker_ is then only compared, never followed).
#include <string>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/park.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/timer.hpp>

namespace weft {

struct Timer::Waiter {
  detail::FiberBase* fiber = nullptr;
  bool fired = false;
  Timer* timer = nullptr;
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
};

Timer::~Timer() {
  if (!armed() && !waiters_) return;
  if (detail::t_state.worker != worker_) {
    detail::fatal("an armed Timer destroyed outside its worker (by " + describe_caller() + ")");
  }
  cancel();
}

void Timer::bind(const char* op) {
  detail::Worker* w = detail::t_state.worker;
  if (!w) {
    throw CrossRuntimeError(
        detail::cross_domain_message(std::string(op) + " is Evented-only: a Timer lives on a worker of a weft::Runtime",
                                     "Bridges: Runtime::spawn a fiber that owns the timer."));
  }
  if (worker_ == w) return;
  if (node_.queued() || waiters_) {
    throw CrossRuntimeError(detail::cross_domain_message(
        std::string(op) + ": this Timer is armed on worker " + std::to_string(detail::worker_index(worker_)) +
            " of runtime '" + detail::runtime_name(detail::worker_runtime(worker_)) + "'",
        "An armed Timer is used by the fibers of its worker only: cancel it there first (an idle Timer moves to the "
        "worker that arms it), or use a Timer per worker."));
  }
  worker_ = w;  // idle: it moves to the caller's worker
  node_.owner = this;
  node_.fire_ = &Timer::on_fire;
  node_.retire_ = &Timer::on_retire;
}

bool Timer::reset_after(std::chrono::nanoseconds d) {
  bind("weft::Timer::reset");
  return rearm_ns(detail::deadline_after(d));
}

bool Timer::reset_at_ns(std::int64_t deadline_ns) {
  bind("weft::Timer::reset_at");
  return rearm_ns(deadline_ns);
}

bool Timer::rearm_ns(std::int64_t deadline_ns) {
  const bool was_armed = node_.queued();
  detail::arm_deadline(&node_, deadline_ns);  // bind() made worker_ the caller's
  return was_armed;
}

bool Timer::cancel() {
  if (!node_.queued()) return false;  // idle: nothing to cancel, whoever asks
  bind("weft::Timer::cancel");
  detail::disarm_deadline(&node_);
  wake_all(false);
  return true;
}

void Timer::wake_all(bool fired) {
  while (Waiter* w = waiters_) {
    waiters_ = w->next;
    if (waiters_) waiters_->prev = nullptr;
    w->next = w->prev = nullptr;
    w->timer = nullptr;  // claimed: the cancel hook will not touch it
    w->fired = fired;
    detail::unpark_local(w->fiber);
  }
}

void Timer::on_fire(detail::TimerNode* n) {
  Timer* t = static_cast<Node*>(n)->owner;
  ++t->expirations_;
  t->wake_all(true);
  if (t->cb_) {
    try {
      t->cb_();  // may re-arm or cancel this timer: it is idle here
    } catch (const std::exception& e) {
      log::logger().error("Timer callback threw: {}", e.what());
    } catch (...) {
      log::logger().error("Timer callback threw a non-std exception");
    }
  }
}

// The worker's thread ends with this timer still armed: it is idle from now on
// (no waiter is left: each was a fiber, cancelled and unwound before the end).
void Timer::on_retire(detail::TimerNode* n) {
  static_cast<Node*>(n)->owner->worker_ = nullptr;
}

bool Timer::wait() {
  detail::require_fiber("weft::Timer::wait");
  bind("weft::Timer::wait");
  detail::check_cancel();
  if (!node_.queued()) return false;
  Waiter me;
  me.fiber = detail::t_state.fiber;
  me.timer = this;
  me.next = waiters_;
  if (waiters_) waiters_->prev = &me;
  waiters_ = &me;
  detail::park_running(
      "timer",
      [](detail::FiberBase* f, void* arg) {
        auto* me = static_cast<Waiter*>(arg);
        Timer* t = me->timer;
        if (!t) return;  // already claimed by an expiry or cancel
        if (me->prev)
          me->prev->next = me->next;
        else
          t->waiters_ = me->next;
        if (me->next) me->next->prev = me->prev;
        me->timer = nullptr;
        detail::unpark_local(f);
      },
      &me);
  detail::check_cancel();
  return me.fired;
}

}  // namespace weft
