// weft/runtime/runtime.hpp — the Runtime: Evented workers (fibers on io_uring).
//
// Lifecycle:
//  - The constructor starts the workers; each creates its own ring on its own
//    thread. If io_uring cannot be used it throws StartupError naming the cause
//    and the remedy; no half-started runtime is left behind.
//  - spawn()/block_on() may be called from any thread (they are bridges);
//    block_on() refuses a fiber. spawn() places the fiber by Config::placement
//    (round_robin by default), spawn_on() on the worker it names.
//  - shutdown() (also run by the destructor), in this order: refuse new spawns
//    from outside; cancel every fiber (a fiber not yet started finishes with
//    FiberCancelled without running; a parked one wakes and its blocking call
//    throws FiberCancelled; in-flight ops are cancelled and their CQEs awaited);
//    wait for them to unwind; stop the workers (each disarms the Timers still
//    armed on it). Last, the runtime's pool (if it was started) runs what is
//    queued and joins its threads.
//  - While it waits for a worker, shutdown says every second at warn level which
//    fiber it waits for: one that runs without yielding (name, worker, how long),
//    or one still parked after its cancellation and on what. A fiber parked with
//    nothing left to wake it is reported as abandoned and left.
//  - Concurrent shutdown() calls (and the destructor) all return only once the
//    shutdown is complete; the destructor also waits for the other callers to
//    leave. It may be called from a plain thread or from a fiber of another
//    runtime (that blocks the fiber's worker until this runtime has stopped).
//    From this runtime's own fibers or Timer callbacks it is refused with
//    CrossRuntimeError, from a thread of its own pool too (it would wait for
//    itself); the destructor aborts with a message there.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include <weft/runtime/config.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/fiber.hpp>
#include <weft/runtime/stats.hpp>

namespace weft {

namespace detail {
class Worker;
class FiberBase;
struct TestAccess;
void start_local(FiberBase* f, const SpawnOptions& opts);
}  // namespace detail

class ThreadPool;

class Runtime {
 public:
  explicit Runtime(Config cfg = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Starts `fn` as a fiber (any thread). Returns its JoinHandle. Throws ShutDown
  /// once shutdown() has begun (fn is not used); so do spawn_on, spawn_detached and
  /// block_on.
  template <class F>
  JoinHandle<SpawnResult<F>> spawn(F&& fn, SpawnOptions opts = {}) {
    using R = SpawnResult<F>;
    auto* f = new detail::FiberImpl<std::decay_t<F>, R>(std::forward<F>(fn));
    place(f, opts, -1);
    return detail::make_join_handle<R>(f);
  }
  /// Starts `fn` as a fiber on worker `worker` (any thread). std::out_of_range
  /// when there is no such worker (fn is not used).
  template <class F>
  JoinHandle<SpawnResult<F>> spawn_on(unsigned worker, F&& fn, SpawnOptions opts = {}) {
    using R = SpawnResult<F>;
    // Here, not only in place(): an index above INT_MAX would reach it as a
    // negative int, which means "no worker given".
    if (worker >= workers()) throw std::out_of_range("weft::Runtime::spawn_on: no worker " + std::to_string(worker));
    auto* f = new detail::FiberImpl<std::decay_t<F>, R>(std::forward<F>(fn));
    place(f, opts, static_cast<int>(worker));
    return detail::make_join_handle<R>(f);
  }
  /// Starts `fn` as a detached fiber (any thread): fire and forget. An exception
  /// it ends with is logged with its name and counted in stats().
  template <class F>
  void spawn_detached(F&& fn, SpawnOptions opts = {}) {
    spawn(std::forward<F>(fn), opts).detach();
  }
  /// spawn_detached(); deprecated, so that "post" names one thing, Launch::post.
  template <class F>
  [[deprecated("use spawn_detached")]] void post(F&& fn, SpawnOptions opts = {}) {
    spawn_detached(std::forward<F>(fn), opts);
  }
  /// Runs `fn` as a fiber and blocks the calling thread until it returns; returns
  /// its result or rethrows its exception. Threaded-only: from a fiber it throws
  /// CrossRuntimeError (it would block a worker; spawn and join instead).
  template <class F>
  SpawnResult<F> block_on(F&& fn, SpawnOptions opts = {"block_on"}) {
    refuse_from_fiber("weft::Runtime::block_on");
    return spawn(std::forward<F>(fn), opts).join();
  }

  /// Cancels every fiber, waits for them, stops the workers and the pool.
  /// Idempotent; every caller returns once it is complete (see the header).
  void shutdown();

  [[nodiscard]] Stats stats() const;
  /// One line per live fiber: worker, name, state, what it waits on. Each worker
  /// answers within `timeout`; a worker that does not (a stalled fiber holds it)
  /// is reported with the fiber it is running instead of hanging the caller.
  [[nodiscard]] std::string dump_fibers(std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
  [[nodiscard]] const std::string& name() const;
  /// This runtime's id: unique in the process, never reused (another Runtime
  /// later built at the same address gets another id).
  [[nodiscard]] std::uint64_t id() const noexcept;
  [[nodiscard]] unsigned workers() const;
  [[nodiscard]] const Config& config() const;
  /// How fiber stacks are guarded on this kernel (madvise or mprotect).
  [[nodiscard]] GuardMode guard_mode() const;
  /// The runtime's own ThreadPool ("<name>-pool", Config::pool_threads/pool_queue),
  /// used by weft::offload(fn). Started on first use (any thread); shut down by
  /// shutdown() after the fibers are gone (queued tasks still run). Throws
  /// PoolShutDown after shutdown().
  ThreadPool& pool();

 private:
  friend void detail::start_local(detail::FiberBase* f, const SpawnOptions& opts);
  friend class detail::Worker;       // wakes its peers
  friend struct detail::TestAccess;  // tests reach a worker (runtime/test_access.hpp)
  detail::Worker& worker(unsigned i);
  void place(detail::FiberBase* f, const SpawnOptions& opts, int worker);
  void start_workers();
  void refuse_from_fiber(const char* op) const;
  void refuse_waiting_for_itself(const char* op) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weft
