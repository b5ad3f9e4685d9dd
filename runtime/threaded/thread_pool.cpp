// runtime/threaded/thread_pool.cpp — the pool threads, the bounded queue with
// parked/blocked submitters, and shutdown.
//
// Invariants: see thread_pool.hpp. In short, every field but threads_ is under
// mu_; a Waiter is linked in waiters_ only while its submitter is inside
// submit_task(); a Waiter is "linked" iff its payload == this pool (set on link,
// cleared on unlink, both under mu_), so the submitter knows after waking whether
// it must unlink itself.
#include <pthread.h>

#include <algorithm>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/fiber.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/threaded/thread_pool.hpp>
#include <weft/runtime/waiter.hpp>

namespace weft {

using detail::LockGuard;

namespace {
// Which pool the calling thread belongs to (null: none). Written once by each pool
// thread for itself; read only by that thread (the self-join checks).
thread_local const ThreadPool* t_pool = nullptr;
}  // namespace

ThreadPool::ThreadPool(ThreadPoolConfig cfg) : cfg_(std::move(cfg)) {
  if (cfg_.queue_capacity == 0) throw std::invalid_argument("weft::ThreadPool: queue_capacity must be > 0");
  thread_count_ = cfg_.threads ? cfg_.threads : std::max(2u, std::thread::hardware_concurrency());
  threads_.reserve(thread_count_);
  try {
    for (unsigned i = 0; i < thread_count_; ++i) threads_.emplace_back([this, i] { thread_main(i); });
  } catch (...) {
    shutdown(Drain::refuse_queued);  // no half-started pool
    throw;
  }
}

ThreadPool::~ThreadPool() {
  shutdown(Drain::run_queued);
}

void ThreadPool::log_refused(const std::string& pool) noexcept {
  try {
    log::logger().warn("weft::ThreadPool '{}': a queued task was refused at shutdown", pool);
  } catch (...) {
  }
}

void ThreadPool::log_failed(const std::string& pool) noexcept {
  try {
    log::logger().error("weft::ThreadPool '{}': a task ended with an exception", pool);
  } catch (...) {
  }
}

void ThreadPool::unlink(detail::Waiter* w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    waiters_head_ = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    waiters_tail_ = w->prev;
  w->next = w->prev = nullptr;
  w->payload = nullptr;
  --waiting_;
}

void ThreadPool::wake_one_submitter(detail::WakeList& woken) {
  // A waiter that lost its claim (cancelled, timed out) passes the wake on.
  while (detail::Waiter* w = waiters_head_) {
    unlink(w);
    if (woken.claim(w)) return;
  }
}

bool ThreadPool::submit_task(PoolTask* task, std::int64_t deadline_ns) {
  LockGuard g(mu_);
  bool requeue_front = false;
  for (;;) {
    if (stopping_) throw PoolShutDown(cfg_.name);
    if (depth_ < cfg_.queue_capacity) break;
    if (detail::t_state.worker && !detail::t_state.fiber)  // a Timer callback must not block its worker
      detail::throw_blocking_in_scheduler("weft::ThreadPool '" + cfg_.name + "'", "submit() into a full queue");
    detail::Waiter w;  // binds to the caller: a fiber parks, a thread blocks
    w.payload = this;
    if (requeue_front) {  // a woken submitter lost its slot to a barging one: keep its place
      w.next = waiters_head_;
      if (waiters_head_)
        waiters_head_->prev = &w;
      else
        waiters_tail_ = &w;
      waiters_head_ = &w;
    } else {
      w.prev = waiters_tail_;
      if (waiters_tail_)
        waiters_tail_->next = &w;
      else
        waiters_head_ = &w;
      waiters_tail_ = &w;
    }
    ++waiting_;
    mu_.unlock();
    detail::Waiter::Result r;
    try {
      r = w.wait_committed(deadline_ns);  // the pool's threads free a slot and wake the first
    } catch (...) {
      mu_.lock();
      if (w.payload) unlink(&w);
      throw;
    }
    mu_.lock();
    if (w.payload) unlink(&w);
    if (r == detail::Waiter::Result::cancelled) throw FiberCancelled();
    if (r == detail::Waiter::Result::timed_out) return false;
    requeue_front = true;
  }
  task->next_ = nullptr;
  if (tail_)
    tail_->next_ = task;
  else
    head_ = task;
  tail_ = task;
  ++depth_;
  ++submitted_;
  if (idle_ > 0) cv_.notify_one();  // only a sleeping thread needs a wake (futex)
  return true;
}

void ThreadPool::thread_main(unsigned index) {
  t_pool = this;
  std::string tname = cfg_.name + "-" + std::to_string(index);
  if (tname.size() > 15) tname.resize(15);  // the kernel's limit (16 with the NUL)
  pthread_setname_np(pthread_self(), tname.c_str());
  bool ran = false;
  for (;;) {
    PoolTask* t = nullptr;
    {
      detail::WakeList woken;  // a submitter woken after g's unlock: it does not wait for mu_ behind us
      LockGuard g(mu_);
      if (ran) ++completed_;
      while (!head_ && !stopping_) {
        ++idle_;
        cv_.wait(mu_);
        --idle_;
      }
      if (!head_) return;  // stopping and drained
      t = head_;
      head_ = t->next_;
      if (!head_) tail_ = nullptr;
      --depth_;
      if (waiters_head_) wake_one_submitter(woken);  // a slot freed
    }
    t->next_ = nullptr;
    t->run();
    ran = true;
  }
}

void ThreadPool::shutdown(Drain d) {
  if (t_pool == this)
    throw CrossRuntimeError(
        detail::cross_domain_message("weft::ThreadPool '" + cfg_.name +
                                         "': shutdown() is refused on one of its own threads: it would wait for "
                                         "itself (it joins them)",
                                     "Call it from another thread."));
  PoolTask* refused = nullptr;
  {
    detail::WakeList woken;  // woken after g's unlock
    LockGuard g(mu_);
    stopping_ = true;
    if (d == Drain::refuse_queued) {
      refused = head_;
      head_ = tail_ = nullptr;
      for (PoolTask* t = refused; t; t = t->next_) ++refused_;
      depth_ = 0;
    }
    while (waiters_head_) wake_one_submitter(woken);  // they re-check and throw PoolShutDown
    cv_.notify_all();
  }
  while (refused) {
    PoolTask* t = refused;
    refused = t->next_;
    t->next_ = nullptr;
    t->refuse();
  }
  std::lock_guard j(join_mu_);
  for (auto& th : threads_)
    if (th.joinable()) th.join();
  threads_.clear();
}

bool ThreadPool::on_own_thread() const noexcept {
  return t_pool == this;
}

ThreadPoolStats ThreadPool::stats() const {
  LockGuard g(mu_);
  ThreadPoolStats s;
  s.threads = thread_count_;
  s.queue_depth = depth_;
  s.waiting_submitters = waiting_;
  s.submitted = submitted_;
  s.completed = completed_;
  s.refused = refused_;
  return s;
}

}  // namespace weft
