// runtime/runtime.cpp — Runtime: worker startup, cross-thread spawn, shutdown order,
// the stall detector.
//
// Invariants:
//  - `accepting` is guarded by accept_mu: spawns from outside hold it shared while
//    they push into an inbox, shutdown takes it exclusively to stop accepting, so
//    no push can land in an inbox after its worker stopped.
//  - Shutdown runs once, in the first caller; every other caller waits under
//    stop_mu until it is done, and ~Runtime waits until no caller is left inside
//    shutdown(), so nothing is destroyed under a caller.
//  - The monitor thread and the shutdown caller only read workers' relaxed
//    counters and their published running fiber; they never touch scheduler state.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/engine_choice.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/runtime.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/threaded/offload.hpp>
#include <weft/runtime/threaded/thread_pool.hpp>
#include <weft/runtime/tsa.hpp>
#include <weft/runtime/uring/worker.hpp>
#include <weft/runtime/waiter.hpp>

namespace weft {

namespace {
// Bumped by the dump-signal handler (async-signal-safe: one lock-free RMW);
// each runtime's monitor logs a dump when it sees a new value. relaxed: the
// value is the whole message.
std::atomic<std::uint64_t> g_dump_requests{0};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
extern "C" void on_dump_signal(int) {
  g_dump_requests.fetch_add(1, std::memory_order_relaxed);
}

// Process-wide, never reused: fiber ids (a Mutex names its owner by it) and
// runtime ids (a primitive names its runtime by it). relaxed: uniqueness only.
std::atomic<std::uint64_t> g_fiber_ids{1};
std::atomic<std::uint64_t> g_runtime_ids{1};
}  // namespace

struct Runtime::Impl {
  Config cfg;                 // its engine resolved (never `automatic`)
  std::string engine_reason;  // Stats::engine_reason
  std::vector<std::unique_ptr<detail::Worker>> workers;
  std::uint64_t id = g_runtime_ids.fetch_add(1, std::memory_order_relaxed);
  std::atomic<std::uint64_t>& fiber_ids = g_fiber_ids;
  // relaxed: round-robin needs no ordering.
  std::atomic<unsigned> next_worker{0};
  std::shared_mutex accept_mu;
  bool accepting = true;  // guarded by accept_mu (shared_mutex has no capability annotation in libstdc++)

  detail::AnnotatedMutex stop_mu;
  std::condition_variable_any stop_cv;  // stop_done set, or a caller left shutdown()
  bool stop_begun WEFT_GUARDED_BY(stop_mu) = false;
  bool stop_done WEFT_GUARDED_BY(stop_mu) = false;
  unsigned stop_callers WEFT_GUARDED_BY(stop_mu) = 0;  // inside shutdown() now

  detail::AnnotatedMutex mon_mu;
  std::condition_variable_any mon_cv;
  bool mon_stop WEFT_GUARDED_BY(mon_mu) = false;
  std::thread monitor;
  Runtime* owner = nullptr;
  std::uint64_t dumps_baseline = 0;  // dump requests before this runtime existed
  std::atomic<std::uint64_t> stalls{0};

  // The runtime's ThreadPool, started by the first pool() call. pool_ptr is
  // written once under pool_mu; acquire/release so a reader that sees the
  // pointer sees the constructed pool (the fast path skips the mutex).
  std::mutex pool_mu;
  std::unique_ptr<ThreadPool> pool_owner;
  std::atomic<ThreadPool*> pool_ptr{nullptr};
  bool pool_closed = false;  // guarded by pool_mu: shutdown() passed

  void run_monitor();
  /// The first shutdown caller's work: stop accepting, stop the workers, the pool,
  /// the monitor.
  void stop_all();
  /// Waits for every worker to stop, naming every kStopReportPeriod each fiber
  /// that keeps its worker running without yielding (a worker that gets to its
  /// scheduler names the fibers it still waits for itself).
  void wait_for_workers();
  /// A shutdown() caller leaves: once the shutdown is done (`first`: it is, the
  /// caller did it).
  void leave_stop(bool first) WEFT_EXCLUDES(stop_mu);
  /// The worker for a spawn without one (Config::placement). `here`: the
  /// caller's worker when the caller is a fiber of this runtime, else null.
  unsigned choose_worker(detail::Worker* here);
};

void Runtime::Impl::run_monitor() {
  pthread_setname_np(pthread_self(), (cfg.name.substr(0, 9) + "-mon").c_str());
  const auto threshold = cfg.stall_threshold;
  const auto period =
      threshold.count() > 0 ? std::max(threshold / 4, std::chrono::milliseconds(1)) : std::chrono::milliseconds(50);
  struct Seen {
    std::uint64_t epoch = ~0ULL;
    std::chrono::steady_clock::time_point since;
    bool reported = false;
  };
  std::vector<Seen> seen(workers.size());
  std::uint64_t dumps_seen = dumps_baseline;  // taken before this thread started
  detail::LockGuard lk(mon_mu);
  while (!mon_stop) {
    mon_cv.wait_for(mon_mu, period);
    if (mon_stop) break;
    if (const auto d = g_dump_requests.load(std::memory_order_relaxed); d != dumps_seen) {
      dumps_seen = d;
      try {
        log::logger().warn("fiber dump of runtime '{}' (signal {}):\n{}", cfg.name, cfg.dump_signal,
                           owner->dump_fibers(std::chrono::milliseconds(200)));
      } catch (const std::exception& e) {  // e.g. shutting down: spawns are refused
        log::logger().warn("fiber dump of runtime '{}' skipped: {}", cfg.name, e.what());
      }
    }
    if (threshold.count() <= 0) continue;
    const auto now = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < workers.size(); ++i) {
      const std::uint64_t epoch = workers[i]->switch_epoch();
      const detail::FiberBadge* badge = workers[i]->running_badge();
      Seen& s = seen[i];
      if (epoch != s.epoch || !badge) {
        s = Seen{epoch, now, false};
        continue;
      }
      if (!s.reported && now - s.since >= threshold) {
        const std::string name = badge->read();
        // Validate: no switch happened while we read, so the badge was not reused.
        if (workers[i]->switch_epoch() != epoch || workers[i]->running_badge() != badge) continue;
        s.reported = true;
        log::logger().warn("stall: fiber {} on worker {} has run for at least {} ms without yielding", name, i,
                           std::chrono::duration_cast<std::chrono::milliseconds>(now - s.since).count());
        // release: whoever sees the count also sees the report above written.
        stalls.fetch_add(1, std::memory_order_release);
      }
    }
  }
}

// Makes and starts the workers with impl_->cfg; on a throw none is left.
void Runtime::start_workers() {
  // The workers reach their peers, and start fibers on them, through this, never
  // through the façade.
  const detail::WorkerGroup group{*this, impl_->workers,
                                  [](Runtime& rt, detail::FiberBase* f, const SpawnOptions& opts, unsigned worker) {
                                    rt.place(f, opts, static_cast<int>(worker));
                                  }};
  for (unsigned i = 0; i < impl_->cfg.workers; ++i)
    impl_->workers.push_back(std::make_unique<detail::Worker>(group, i, impl_->cfg, impl_->fiber_ids));
  try {
    for (auto& w : impl_->workers) w->start();
  } catch (...) {
    // Stop the started workers before any of them is destroyed: a worker that
    // ends wakes its peers.
    for (auto& w : impl_->workers) w->request_stop();
    for (auto& w : impl_->workers) w->join_thread();
    impl_->workers.clear();
    throw;
  }
}

Runtime::Runtime(Config cfg) : impl_(std::make_unique<Impl>()) {
  if (cfg.workers == 0) cfg.workers = 1;
  if (cfg.tick_budget == 0) cfg.tick_budget = 1;
  if (cfg.ring_entries == 0 || cfg.ring_entries > detail::Ring::kMaxEntries)
    throw std::invalid_argument("weft::Config: ring_entries must be 1.." + std::to_string(detail::Ring::kMaxEntries) +
                                ", the kernel's limit (got " + std::to_string(cfg.ring_entries) + ")");
  if (cfg.recv_buffers != 0 &&
      (cfg.recv_buffers > 32768 || (cfg.recv_buffers & (cfg.recv_buffers - 1)) != 0 || cfg.recv_buffer_size == 0))
    throw std::invalid_argument("weft::Config: recv_buffers must be 0 or a power of two up to 32768 (got " +
                                std::to_string(cfg.recv_buffers) + "), recv_buffer_size non-zero (got " +
                                std::to_string(cfg.recv_buffer_size) + ")");
  const detail::EngineChoice choice = detail::choose_engine(cfg.engine);
  cfg.engine = choice.first;
  impl_->cfg = cfg;
  impl_->engine_reason = choice.reason;
  try {
    start_workers();
  } catch (const StartupError& e) {
    if (!choice.may_fall_back) throw;
    // `automatic`: io_uring cannot be set up here; every worker runs epoll instead.
    impl_->engine_reason = detail::fallback_reason(e.what());
    log::logger().warn("weft: runtime '{}' runs on {}", cfg.name, impl_->engine_reason);
    impl_->cfg.engine = Engine::epoll;
    start_workers();
  }
  impl_->owner = this;
  if (cfg.dump_signal > 0) {
    struct sigaction sa {};
    sa.sa_handler = &on_dump_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(cfg.dump_signal, &sa, nullptr) != 0)
      log::logger().warn("cannot install the fiber-dump handler for signal {}", cfg.dump_signal);
  }
  // A signal arriving after construction (even before the monitor thread runs)
  // must produce a dump: the baseline is taken here, not in the thread.
  impl_->dumps_baseline = g_dump_requests.load(std::memory_order_relaxed);
  if (cfg.stall_threshold.count() > 0 || cfg.dump_signal > 0)
    impl_->monitor = std::thread([this] { impl_->run_monitor(); });
}

Runtime::~Runtime() {
  const bool own_worker = detail::t_state.worker && &detail::t_state.worker->runtime() == this;
  const ThreadPool* pool = impl_->pool_ptr.load(std::memory_order_acquire);
  if (own_worker || (pool && pool->on_own_thread())) {
    detail::fatal("Runtime '" + impl_->cfg.name + "' destroyed from " + describe_caller() + ", " +
                  (own_worker ? "one of its own workers" : "a thread of its own pool") + ": it would wait for itself");
  }
  shutdown();
  // Another thread's shutdown() may still be on its way out: nothing goes away under it.
  detail::LockGuard lk(impl_->stop_mu);
  while (impl_->stop_callers > 0) impl_->stop_cv.wait(impl_->stop_mu);
}

void Runtime::refuse_from_fiber(const char* op) const {
  if (detail::t_state.worker)
    throw CrossRuntimeError(
        detail::cross_domain_message(std::string(op) + " is Threaded-only: it blocks the calling OS thread",
                                     "From a fiber use weft::spawn(...).join() instead."));
}

void Runtime::refuse_waiting_for_itself(const char* op) const {
  if (detail::t_state.worker && &detail::t_state.worker->runtime() == this)
    throw CrossRuntimeError(detail::cross_domain_message(
        std::string(op) + " is refused in runtime '" + impl_->cfg.name +
            "' itself: it would wait for itself (it waits for every fiber and worker of the runtime)",
        "Call it from a plain thread, or from a fiber of another runtime (which blocks that fiber's worker until "
        "this runtime has stopped)."));
  if (const ThreadPool* p = impl_->pool_ptr.load(std::memory_order_acquire); p && p->on_own_thread())
    throw CrossRuntimeError(
        detail::cross_domain_message(std::string(op) + " is refused on a thread of runtime '" + impl_->cfg.name +
                                         "''s own pool: it would wait for itself (it joins that pool)",
                                     "Call it from another thread."));
}

void Runtime::shutdown() {
  refuse_waiting_for_itself("weft::Runtime::shutdown");
  Impl& im = *impl_;
  bool first = false;
  {
    detail::LockGuard lk(im.stop_mu);
    ++im.stop_callers;
    first = !std::exchange(im.stop_begun, true);
  }
  if (first) {
    try {
      im.stop_all();
    } catch (...) {
      im.leave_stop(true);
      throw;
    }
  }
  im.leave_stop(first);
}

void Runtime::Impl::leave_stop(bool first) {
  detail::LockGuard lk(stop_mu);
  if (first) stop_done = true;
  while (!stop_done) stop_cv.wait(stop_mu);
  --stop_callers;
  // Under the lock: ~Runtime, woken by this, cannot destroy stop_cv before we are done with it.
  stop_cv.notify_all();
}

void Runtime::Impl::stop_all() {
  {
    std::unique_lock lk(accept_mu);
    accepting = false;
  }
  for (auto& w : workers) w->request_stop();
  wait_for_workers();
  for (auto& w : workers) w->join_thread();
  ThreadPool* pool = nullptr;
  {
    std::lock_guard lk(pool_mu);
    pool_closed = true;
    pool = pool_owner.get();
  }
  // No fiber is left to offload; threads may still submit until they see the
  // pool shut down (they get PoolShutDown). Queued tasks run before the join.
  if (pool) pool->shutdown(ThreadPool::Drain::run_queued);
  if (monitor.joinable()) {
    {
      detail::LockGuard lk(mon_mu);
      mon_stop = true;
    }
    mon_cv.notify_all();
    monitor.join();
  }
}

void Runtime::Impl::wait_for_workers() {
  // Per worker, the fiber seen running and since when: validated as the stall
  // detector does, with the worker's switch epoch.
  struct Seen {
    std::uint64_t epoch;
    const detail::FiberBadge* badge;
    std::chrono::steady_clock::time_point since;
  };
  const auto start = std::chrono::steady_clock::now();
  std::vector<Seen> seen;
  for (auto& w : workers) seen.push_back(Seen{w->switch_epoch(), w->running_badge(), start});
  for (std::size_t i = 0; i < workers.size(); ++i) {
    while (!workers[i]->wait_stopped(detail::Worker::kStopReportPeriod)) {
      const auto now = std::chrono::steady_clock::now();
      for (std::size_t j = i; j < workers.size(); ++j) {
        detail::Worker& w = *workers[j];
        if (j > i && w.wait_stopped(std::chrono::milliseconds(0))) continue;
        Seen& s = seen[j];
        const std::uint64_t e = w.switch_epoch();
        const detail::FiberBadge* b = w.running_badge();
        if (!b || e != s.epoch || b != s.badge) {  // it switched, or is in its scheduler: the worker reports
          s = Seen{e, b, now};
          continue;
        }
        const std::string name = b->read();
        if (w.switch_epoch() != e || w.running_badge() != b) continue;  // it switched while we read
        log::logger().warn(
            "shutdown of runtime '{}' waits for fiber {} on worker {}: it has run for at least {} ms without "
            "yielding, so it has not seen its cancellation (a loop that never yields, or a blocking call?)",
            cfg.name, name, j, std::chrono::duration_cast<std::chrono::milliseconds>(now - s.since).count());
      }
    }
  }
}

unsigned Runtime::Impl::choose_worker(detail::Worker* here) {
  const unsigned n = static_cast<unsigned>(workers.size());
  if (n == 1) return 0;
  // relaxed: round-robin needs distinct-ish turns, not ordering.
  const unsigned start = next_worker.fetch_add(1, std::memory_order_relaxed) % n;
  switch (cfg.placement) {
    case Placement::local:
      return here ? here->index() : start;
    case Placement::round_robin:
      return start;
    case Placement::least_loaded:
      break;
  }
  unsigned best = start;
  std::uint64_t best_load = workers[start]->load();
  for (unsigned k = 1; k < n && best_load > 0; ++k) {
    const unsigned i = (start + k) % n;
    if (const std::uint64_t l = workers[i]->load(); l < best_load) {
      best = i;
      best_load = l;
    }
  }
  return best;
}

void Runtime::place(detail::FiberBase* f, const SpawnOptions& opts, int worker) {
  detail::Worker* here = detail::t_state.worker;
  if (here && (!detail::t_state.fiber || &here->runtime() != this)) here = nullptr;  // not a fiber of ours
  if (worker >= 0 && static_cast<unsigned>(worker) >= impl_->workers.size()) {
    delete f;
    throw std::out_of_range("weft::Runtime::spawn_on: no worker " + std::to_string(worker));
  }
  const unsigned target = worker >= 0 ? static_cast<unsigned>(worker) : impl_->choose_worker(here);
  if (here && target == here->index()) {
    here->start_fiber(f, opts);
    return;
  }
  f->id_ = impl_->fiber_ids.fetch_add(1, std::memory_order_relaxed);
  f->set_name(opts.name);
  f->worker_ = impl_->workers[target].get();  // before the handle exists: JoinHandle::cancel reads it
  std::shared_lock lk(impl_->accept_mu);
  if (!impl_->accepting) {
    lk.unlock();
    delete f;
    throw ShutDown("weft::Runtime::spawn: runtime '" + impl_->cfg.name + "' is shut down");
  }
  impl_->workers[target]->push_inbox_new(f);
}

Stats Runtime::stats() const {
  Stats s;
  s.engine = impl_->cfg.engine;
  s.engine_reason = impl_->engine_reason;
  for (const auto& w : impl_->workers) w->add_stats(s);
  s.stalls = impl_->stalls.load(std::memory_order_acquire);
  s.unjoined_exceptions = detail::unjoined_exceptions_total();
  return s;
}

std::string Runtime::dump_fibers(std::chrono::milliseconds timeout) {
  std::string out;
  for (unsigned i = 0; i < impl_->workers.size(); ++i) {
    detail::Worker* w = impl_->workers[i].get();
    if (detail::t_state.worker == w) {
      out += w->dump_fibers();
      continue;
    }
    // The answer travels through a shared state, so a late answer (after our
    // timeout) lands in memory that is still alive.
    struct Answer {
      detail::Waiter done;  // bound to this caller (fiber or thread)
      std::mutex mu;
      std::string text;
    };
    auto answer = std::make_shared<Answer>();
    spawn_on(i,
             [w, answer] {
               std::string text = w->dump_fibers();
               {
                 std::lock_guard lk(answer->mu);
                 answer->text = std::move(text);
               }
               answer->done.notify();
             },
             {"fiber-dump"})
        .detach();
    if (answer->done.wait(detail::deadline_after(timeout)) == detail::Waiter::Result::notified) {
      std::lock_guard lk(answer->mu);
      out += answer->text;
    } else {
      const detail::FiberBadge* badge = w->running_badge();
      out += "worker " + std::to_string(i) + "  (no answer within " + std::to_string(timeout.count()) +
             " ms; running " + (badge ? badge->read() : std::string("no fiber")) + ")\n";
    }
  }
  return out;
}

const std::string& Runtime::name() const {
  return impl_->cfg.name;
}
std::uint64_t Runtime::id() const noexcept {
  return impl_->id;
}
unsigned Runtime::workers() const {
  return static_cast<unsigned>(impl_->workers.size());
}
const Config& Runtime::config() const {
  return impl_->cfg;
}
GuardMode Runtime::guard_mode() const {
  return impl_->workers.front()->guard_mode();
}
detail::Worker& Runtime::worker(unsigned i) {
  return *impl_->workers.at(i);
}

const std::string& detail::runtime_name(const Runtime& rt) noexcept {
  return rt.name();
}
std::uint64_t detail::runtime_id(const Runtime& rt) noexcept {
  return rt.id();
}

// weft::spawn from a fiber: placement is the façade's (Config::placement).
void detail::start_local(FiberBase* f, const SpawnOptions& opts) {
  Worker* w = t_state.worker;
  if (w->spawns_stay_local()) {
    w->start_fiber(f, opts);
  } else {
    w->runtime().place(f, opts, -1);  // Config::placement spreads it
  }
}

ThreadPool* detail::current_runtime_pool() {
  return detail::t_state.fiber ? &detail::t_state.worker->runtime().pool() : nullptr;
}

ThreadPool& Runtime::pool() {
  if (ThreadPool* p = impl_->pool_ptr.load(std::memory_order_acquire)) return *p;
  std::lock_guard lk(impl_->pool_mu);
  if (!impl_->pool_owner) {
    if (impl_->pool_closed) throw PoolShutDown(impl_->cfg.name + "-pool", "is shut down (its runtime was shut down)");
    ThreadPoolConfig pc;
    pc.name = impl_->cfg.name + "-pool";
    pc.threads = impl_->cfg.pool_threads;
    pc.queue_capacity = impl_->cfg.pool_queue;
    impl_->pool_owner = std::make_unique<ThreadPool>(pc);
    impl_->pool_ptr.store(impl_->pool_owner.get(), std::memory_order_release);
  }
  return *impl_->pool_owner;
}

}  // namespace weft
