// weft/runtime/threaded/offload.hpp — the fiber -> pool bridge: run `fn` on a
// ThreadPool while the calling fiber parks, then resume on the fiber's own worker
// with fn's result or exception.
//
// Invariants (states, owners, which thread touches what):
//  - One heap allocation per offload: an OffloadState that is at once the pool
//    task, the result slot (value or exception_ptr), fn itself and the Waiter the
//    fiber parks on. The task never touches the fiber's stack.
//  - refs_ == 2 from submission (the fiber, the task). Each side drops one when it
//    is done with the state; the last one deletes it, and with it a result nobody
//    took (a late result after a timeout or cancellation is destroyed exactly once).
//  - The Waiter is constructed by the fiber (it binds to the calling fiber). The
//    task writes the result, then notify()s; the Waiter's acq_rel claim publishes
//    the result to the fiber. If the fiber's deadline or a cancellation won the
//    claim, notify() fails and the task only drops its reference.
//  - An exception is handed over, not shared: the task holds no reference to it
//    but error_ once it notifies, and the fiber moves it out of error_ before it
//    drops the state. So the pool thread never frees an exception the fiber (or
//    whoever it reaches) may still read: its release, ordered only inside the
//    C++ runtime's reference count, would be invisible to TSan.
//  - If submission fails (PoolShutDown, FiberCancelled, timeout while the queue is
//    full) the task was never accepted: the fiber is the sole owner and deletes it.
//  - From a plain thread (no running fiber) fn runs inline on the caller: there is
//    nothing to park, and blocking a thread on a pool thread gains nothing.
//  - From a worker's scheduler context (a Timer callback) it is refused with
//    CrossRuntimeError: running fn inline there would block the worker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/fiber.hpp>
#include <weft/runtime/threaded/thread_pool.hpp>
#include <weft/runtime/time.hpp>
#include <weft/runtime/waiter.hpp>

namespace weft {

namespace detail {

template <class F, class R>
class OffloadState final : public PoolTask {
 public:
  template <class G>
  OffloadState(G&& g, const std::string* pool) : fn_(std::forward<G>(g)), pool_(pool) {}

  void run() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(fn_);
        value_.emplace(true);
      } else {
        value_.emplace(std::invoke(fn_));
      }
    } catch (...) {
      error_ = std::current_exception();
    }
    finish();
  }
  void refuse() noexcept override {
    try {
      error_ = std::make_exception_ptr(PoolShutDown(*pool_, "shut down before the offloaded task ran"));
    } catch (...) {
      error_ = std::current_exception();  // bad_alloc building the message
    }
    finish();
  }
  /// Drops one owner; the last one frees the state (and any result left in it).
  void release() noexcept {
    // acq_rel: the last owner must see every write the other made (the late
    // result it is about to destroy, or the fiber's moved-from slot).
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  Waiter waiter_;  // bound to the submitting fiber at construction
  std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> value_;
  std::exception_ptr error_;

 private:
  void finish() noexcept {
    waiter_.notify();  // false when the deadline/cancel won: nobody waits for the result
    release();
  }
  F fn_;
  const std::string* pool_;
  // Two owners (the fiber, the task); see release() for the ordering.
  std::atomic<std::uint32_t> refs_{2};
};

/// The pool of the calling fiber's runtime (Runtime::pool()); null when the caller
/// is not a fiber.
ThreadPool* current_runtime_pool();

template <class F>
using OffloadResult = std::invoke_result_t<std::decay_t<F>&>;

/// The caller is not a fiber: fn runs inline on a plain thread; a worker's
/// scheduler context is refused (it must not block its worker).
template <class F>
OffloadResult<F> offload_inline(F& fn) {
  if (t_state.worker) throw_blocking_in_scheduler("weft::offload", "offload(fn)");
  return std::invoke(fn);
}

template <class F>
OffloadResult<F> offload_impl(ThreadPool& pool, F&& fn, std::int64_t deadline_ns) {
  using R = OffloadResult<F>;
  static_assert(!std::is_reference_v<R>, "weft::offload: fn must return by value (or void)");
  if (!t_state.fiber) return offload_inline(fn);  // not a fiber: see the top
  auto* st = new OffloadState<std::decay_t<F>, R>(std::forward<F>(fn), &pool.name());
  bool accepted = false;
  try {
    accepted = pool.submit_task(st, deadline_ns);
  } catch (...) {
    delete st;  // never accepted: sole owner
    throw;
  }
  if (!accepted) {
    delete st;
    throw std::system_error(std::make_error_code(std::errc::timed_out),
                            "weft::offload: timed out waiting for space in pool '" + pool.name() + "'");
  }
  const Waiter::Result r = st->waiter_.wait_committed(deadline_ns);  // run() or refuse() notifies
  struct Drop {
    OffloadState<std::decay_t<F>, R>* s;
    ~Drop() { s->release(); }
  } drop{st};
  if (r == Waiter::Result::cancelled) throw FiberCancelled();
  if (r == Waiter::Result::timed_out)
    throw std::system_error(std::make_error_code(std::errc::timed_out),
                            "weft::offload: pool '" + pool.name() + "' did not finish the task in time");
  if (st->error_) std::rethrow_exception(std::exchange(st->error_, nullptr));  // ours alone from here
  if constexpr (!std::is_void_v<R>) return std::move(*st->value_);
}

}  // namespace detail

/// Runs `fn` on `pool`; a fiber parks until it is done and resumes on its own
/// worker with fn's result or exception. Throws PoolShutDown if the pool is (or
/// gets) shut down before fn ran, FiberCancelled if the fiber is cancelled while
/// waiting (fn still completes on the pool; its result is destroyed there). From
/// a plain thread, fn runs inline; from a scheduler context (a Timer callback) it
/// throws CrossRuntimeError.
template <class F>
auto offload(ThreadPool& pool, F&& fn) -> detail::OffloadResult<F> {
  return detail::offload_impl(pool, std::forward<F>(fn), -1);
}

/// offload() with a deadline `timeout` from now (covering both the wait for queue
/// space and for fn): past it the fiber resumes with std::system_error(timed_out);
/// the late result is destroyed when fn finishes. `timeout` saturates (hours::max()
/// means no deadline). From a plain thread fn runs inline and the timeout is ignored.
template <class F, class Rep, class Period>
auto offload_for(ThreadPool& pool, F&& fn, std::chrono::duration<Rep, Period> timeout) -> detail::OffloadResult<F> {
  return detail::offload_impl(pool, std::forward<F>(fn), detail::deadline_after(detail::saturating_ns(timeout)));
}

/// offload() on the calling fiber's runtime's own pool (Runtime::pool(): sized by
/// Config::pool_threads and pool_queue). From a plain thread fn runs inline.
template <class F>
auto offload(F&& fn) -> detail::OffloadResult<F> {
  if (!detail::t_state.fiber) return detail::offload_inline(fn);  // as offload(pool, fn) does
  return detail::offload_impl(*detail::current_runtime_pool(), std::forward<F>(fn), -1);
}

/// offload_for() on the calling fiber's runtime's own pool.
template <class F, class Rep, class Period>
auto offload_for(F&& fn, std::chrono::duration<Rep, Period> timeout) -> detail::OffloadResult<F> {
  if (!detail::t_state.fiber) return detail::offload_inline(fn);
  return offload_for(*detail::current_runtime_pool(), std::forward<F>(fn), timeout);
}

}  // namespace weft
