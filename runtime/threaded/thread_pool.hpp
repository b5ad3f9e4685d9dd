// weft/runtime/threaded/thread_pool.hpp — the Threaded side: a fixed pool of OS
// threads draining one bounded FIFO queue of tasks.
//
// Invariants (states, owners, which thread touches what):
//  - Pool state: running -> stopping (shutdown called) -> joined. Only mu_ guards
//    the queue, the waiting-submitter list, the counters and the state flag.
//  - A PoolTask is owned by its submitter until submit_task() accepts it; from then
//    on by the queue (under mu_); a pool thread that pops it owns it and calls
//    exactly one of run() / refuse(). The pool never frees a task: a task frees
//    itself (if it wants to) at the end of run()/refuse().
//  - The queue never grows past queue_capacity. A submitter finding it full links a
//    detail::Waiter into waiters_ (under mu_) and waits: a fiber parks, a thread
//    blocks on a futex. Every pop that frees a slot claims one waiter under mu_
//    and wakes it after unlocking (detail::WakeList), so the submitter does not
//    wake only to wait for mu_; a waiter whose claim was lost (cancelled/timed
//    out) passes the wake on. A woken submitter re-checks under mu_ (so a wake is
//    never lost, at worst redundant).
//  - shutdown(): stop accepting (submit throws PoolShutDown), wake every waiting
//    submitter (they throw PoolShutDown), then run the queued tasks or refuse them
//    (refuse() is called on each: never dropped silently), then join the threads.
//  - Pool threads sleep on cv_ (condition_variable_any over mu_); a submit signals
//    only when a thread is idle, so a busy pool costs no wake syscall.
//  - A submitter in a worker's scheduler context (a Timer callback) cannot wait:
//    a submit that finds the queue full throws CrossRuntimeError there instead.
//  - Calling shutdown() from one of the pool's own threads is refused with
//    CrossRuntimeError (it would join itself). A pool thread submitting into its own full queue can deadlock
//    (documented, not detected).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/runtime/error.hpp>
#include <weft/runtime/tsa.hpp>

namespace weft {

namespace detail {
class Waiter;
class WakeList;
}  // namespace detail

struct ThreadPoolConfig {
  std::string name = "weft-pool";
  unsigned threads = 0;  ///< 0: max(2, hardware_concurrency)
  std::size_t queue_capacity = 1024;
};

struct ThreadPoolStats {
  unsigned threads = 0;
  std::size_t queue_depth = 0;
  std::size_t waiting_submitters = 0;
  std::uint64_t submitted = 0;  ///< accepted into the queue
  std::uint64_t completed = 0;  ///< run() returned
  std::uint64_t refused = 0;    ///< refuse() called at shutdown
};

/// A unit of work. Exactly one of run() / refuse() is called, once, on a pool
/// thread or the shutdown caller. Neither may throw.
class PoolTask {
 public:
  virtual void run() noexcept = 0;
  virtual void refuse() noexcept = 0;
  PoolTask* next_ = nullptr;  ///< queue link (guarded by the pool's mutex)

 protected:
  ~PoolTask() = default;
};

class ThreadPool {
 public:
  enum class Drain : std::uint8_t { run_queued, refuse_queued };

  explicit ThreadPool(ThreadPoolConfig cfg = {});
  ~ThreadPool();  ///< shutdown(Drain::run_queued)
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Queues a callable (one allocation). When the queue is full a fiber parks and
  /// a thread blocks until space frees; in a worker's scheduler context (a Timer
  /// callback) it throws CrossRuntimeError instead. Throws PoolShutDown once shut
  /// down. If the task is refused at shutdown, `fn.on_refused()` is called when F
  /// has it; otherwise a warning naming the pool is logged. An exception escaping
  /// fn is logged (the pool keeps running).
  template <class F>
  void submit(F&& fn);

  /// Queues `task` (no allocation). Waits for space as submit() does, until the
  /// absolute CLOCK_MONOTONIC `deadline_ns` (< 0: none). True: accepted (the pool
  /// now owns the call to run()/refuse()). False: the deadline passed (still
  /// owned by the caller). Throws PoolShutDown (FiberCancelled for a fiber
  /// cancelled while waiting, CrossRuntimeError for a scheduler context that would
  /// have to wait) with the task still owned by the caller.
  bool submit_task(PoolTask* task, std::int64_t deadline_ns = -1);

  /// Stops accepting, runs or refuses what is queued, joins the threads.
  /// Idempotent; blocks the caller until the threads are joined.
  void shutdown(Drain d = Drain::run_queued);

  /// True when called from one of this pool's own threads.
  [[nodiscard]] bool on_own_thread() const noexcept;
  [[nodiscard]] ThreadPoolStats stats() const;
  [[nodiscard]] const std::string& name() const { return cfg_.name; }

 private:
  template <class F>
  class FnTask;
  static void log_refused(const std::string& pool) noexcept;
  static void log_failed(const std::string& pool) noexcept;

  void thread_main(unsigned index);
  void wake_one_submitter(detail::WakeList& woken) WEFT_REQUIRES(mu_);
  void unlink(detail::Waiter* w) WEFT_REQUIRES(mu_);

  ThreadPoolConfig cfg_;
  mutable detail::AnnotatedMutex mu_;
  std::condition_variable_any cv_;  // pool threads wait here, with mu_
  PoolTask* head_ WEFT_GUARDED_BY(mu_) = nullptr;
  PoolTask* tail_ WEFT_GUARDED_BY(mu_) = nullptr;
  std::size_t depth_ WEFT_GUARDED_BY(mu_) = 0;
  detail::Waiter* waiters_head_ WEFT_GUARDED_BY(mu_) = nullptr;  // full-queue submitters, FIFO
  detail::Waiter* waiters_tail_ WEFT_GUARDED_BY(mu_) = nullptr;
  std::size_t waiting_ WEFT_GUARDED_BY(mu_) = 0;
  unsigned idle_ WEFT_GUARDED_BY(mu_) = 0;  // pool threads asleep on cv_
  bool stopping_ WEFT_GUARDED_BY(mu_) = false;
  std::uint64_t submitted_ WEFT_GUARDED_BY(mu_) = 0;
  std::uint64_t completed_ WEFT_GUARDED_BY(mu_) = 0;
  std::uint64_t refused_ WEFT_GUARDED_BY(mu_) = 0;
  std::mutex join_mu_;                // serializes the joining part of concurrent shutdown() calls
  std::vector<std::thread> threads_;  // written by the constructor, then only under join_mu_
  unsigned thread_count_ = 0;
};

template <class F>
class ThreadPool::FnTask final : public PoolTask {
 public:
  template <class G>
  FnTask(G&& g, const std::string* pool) : fn_(std::forward<G>(g)), pool_(pool) {}
  void run() noexcept override {
    try {
      fn_();
    } catch (...) {
      log_failed(*pool_);
    }
    delete this;
  }
  void refuse() noexcept override {
    if constexpr (requires(F & f) { f.on_refused(); }) {
      try {
        fn_.on_refused();
      } catch (...) {
        log_failed(*pool_);
      }
    } else {
      log_refused(*pool_);
    }
    delete this;
  }

 private:
  F fn_;
  const std::string* pool_;
};

template <class F>
void ThreadPool::submit(F&& fn) {
  auto* t = new FnTask<std::decay_t<F>>(std::forward<F>(fn), &cfg_.name);
  try {
    submit_task(t);
  } catch (...) {
    delete t;  // never accepted: the caller hears about it through the exception
    throw;
  }
}

}  // namespace weft
