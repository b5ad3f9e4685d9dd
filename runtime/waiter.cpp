// runtime/waiter.cpp — the claim-once wait for fibers (park/unpark, timer node on
// the fiber's stack) and threads (futex with an absolute monotonic deadline).
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include <weft/runtime/fiber/park.hpp>
#include <weft/runtime/waiter.hpp>

namespace weft::detail {

namespace {

struct DeadlineNode : TimerNode {
  Waiter* waiter = nullptr;
  FiberBase* fiber = nullptr;
};

long futex(std::atomic<std::uint32_t>* addr, int op, std::uint32_t val, const timespec* ts) {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), op, val, ts, nullptr, FUTEX_BITSET_MATCH_ANY);
}

}  // namespace

Waiter::Waiter() noexcept : fiber_(t_state.fiber) {}

bool Waiter::claim(std::uint32_t to) noexcept {
  std::uint32_t expected = kWaiting;
  return state_.compare_exchange_strong(expected, to, std::memory_order_acq_rel, std::memory_order_acquire);
}

void Waiter::wake() noexcept {
  FiberBase* f = fiber_;  // read first: once `notified` is stored, a thread waiter may return and vanish
  // release: what the notifier wrote before (the hand-over) is visible to the
  // waiter's acquire load of the final state.
  state_.store(static_cast<std::uint32_t>(Result::notified), std::memory_order_release);
  if (f) {
    unpark(f);  // still parked: it resumes only through this unpark
  } else {
    futex(&state_, FUTEX_WAKE_PRIVATE, 1, nullptr);  // harmless if the waiter already left
  }
}

void Waiter::cancel_hook(FiberBase* f, void* arg) noexcept {
  if (static_cast<Waiter*>(arg)->claim(static_cast<std::uint32_t>(Result::cancelled))) unpark_local(f);
}

Waiter::Result Waiter::wait_fiber_deadline(std::int64_t deadline_ns) {
  DeadlineNode node;
  node.waiter = this;
  node.fiber = fiber_;
  node.fire_ = [](TimerNode* t) {
    auto* n = static_cast<DeadlineNode*>(t);
    if (n->waiter->claim(static_cast<std::uint32_t>(Result::timed_out))) unpark_local(n->fiber);
  };
  arm_deadline(&node, deadline_ns);
  park_running("wait", &cancel_hook, this);
  disarm_deadline(&node);
  // Resumed only by the claim's winner: a notifier after wake(), so the state is final.
  return static_cast<Result>(state_.load(std::memory_order_acquire));
}

Waiter::Result Waiter::wait_thread(std::int64_t deadline_ns) {
  for (;;) {
    std::uint32_t s = state_.load(std::memory_order_acquire);
    if (s == kNotifying) {  // claimed, wake() a few instructions away: no deadline now
      futex(&state_, FUTEX_WAIT_BITSET_PRIVATE, kNotifying, nullptr);
      continue;
    }
    if (s != kWaiting) return static_cast<Result>(s);
    timespec ts{};
    const timespec* tsp = nullptr;
    if (deadline_ns >= 0) {
      ts.tv_sec = deadline_ns / 1'000'000'000;
      ts.tv_nsec = deadline_ns % 1'000'000'000;
      tsp = &ts;  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time
    }
    long r = futex(&state_, FUTEX_WAIT_BITSET_PRIVATE, kWaiting, tsp);
    if (r != 0 && errno == ETIMEDOUT && claim(static_cast<std::uint32_t>(Result::timed_out))) return Result::timed_out;
  }
}

}  // namespace weft::detail
