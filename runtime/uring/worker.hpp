// weft/runtime/uring/worker.hpp — an Evented worker: one thread, one io_uring, one
// run queue, one timer heap, one stack pool, one inbox.
//
// Scheduling (one tick): run ready fibers, switching fiber-to-fiber directly, until
// the tick's budget of activations is spent or the run queue is empty; then switch
// to the scheduler context, which drains the inbox, fires due timers, and makes at
// most one io_uring_enter (submit + reap; it blocks only when nothing is runnable,
// until the next timer). Reaped CQEs unpark their fibers. The budget is the number
// of fibers ready when the tick begins, at least `tick_budget` and at most
// kMaxBudgetFactor x `tick_budget` (tick_budget_for()).
// Invariants:
//  - Everything here is touched only by the worker's thread, except push_inbox(),
//    request_stop(), wait_stopped() and the relaxed counters read by stats and the
//    stall detector.
//  - A parked fiber is unparked exactly once per park, by whoever claimed its wait;
//    an unpark of a fiber that is not parked is an invariant violation (abort with
//    a message), never silently ignored: that is how lost/double wakeups surface.
//  - Remote unparks (push_inbox) are processed only in scheduler context, so the target
//    has always finished switching out: wakers never touch a running fiber.
//  - A finished fiber's stack is released by the next context to run (it cannot be
//    released while in use); `zombie_` carries it across the switch.
//  - An op's fiber resumes only after the op's last CQE (its link-timeout CQE too).
//  - Stopping: cancel every fiber, wait for them (saying every kStopReportPeriod
//    which ones are left), then at the thread's end disarm every Timer still
//    queued (TimerQueue::retire_all) and signal wait_stopped().
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <weft/runtime/config.hpp>
#include <weft/runtime/fiber/fiber.hpp>
#include <weft/runtime/fiber/stack_pool.hpp>
#include <weft/runtime/stats.hpp>
#include <weft/runtime/tsa.hpp>
#include <weft/runtime/uring/buf_ring.hpp>
#include <weft/runtime/uring/explorer.hpp>
#include <weft/runtime/uring/fixed_files.hpp>
#include <weft/runtime/uring/inbox.hpp>
#include <weft/runtime/uring/op_table.hpp>
#include <weft/runtime/uring/ops.hpp>
#include <weft/runtime/uring/ring.hpp>
#include <weft/runtime/uring/timer_queue.hpp>

namespace weft::detail {

class EpollEngine;

/// Intrusive FIFO of fibers (run_next_ link). A fiber is linked here iff its
/// run_next_ is set or it is the tail; pushing a linked fiber aborts naming it
/// (it would cut the queue or make it a cycle).
class RunQueue {
 public:
  void push_back(FiberBase* f) noexcept {
    if (f->run_next_ != nullptr || f == tail_) die_linked_twice("its worker's run queue", f);
    f->run_next_ = nullptr;
    if (tail_)
      tail_->run_next_ = f;
    else
      head_ = f;
    tail_ = f;
    ++size_;
  }
  void push_front(FiberBase* f) noexcept {
    if (f->run_next_ != nullptr || f == tail_) die_linked_twice("its worker's run queue", f);
    f->run_next_ = head_;
    head_ = f;
    if (!tail_) tail_ = f;
    ++size_;
  }
  FiberBase* pop_front() noexcept {
    FiberBase* f = head_;
    if (f) {
      head_ = f->run_next_;
      if (!head_) tail_ = nullptr;
      f->run_next_ = nullptr;
      --size_;
    }
    return f;
  }
  /// Unlinks and returns the fiber at position `k` (< size(); 0 is the front).
  FiberBase* take_nth(std::size_t k) noexcept {
    if (k == 0 || !head_) return pop_front();
    FiberBase* prev = head_;
    for (std::size_t i = 1; i < k && prev->run_next_; ++i) prev = prev->run_next_;
    FiberBase* f = prev->run_next_;
    if (!f) return pop_front();
    prev->run_next_ = f->run_next_;
    if (tail_ == f) tail_ = prev;
    f->run_next_ = nullptr;
    --size_;
    return f;
  }
  /// pop_front() then push_back(f) in one step, for the yield fast path (the size
  /// is unchanged, so it is not touched). The queue must not be empty.
  FiberBase* exchange_front(FiberBase* f) noexcept {
    FiberBase* n = head_;
    head_ = n->run_next_;
    n->run_next_ = nullptr;
    f->run_next_ = nullptr;
    if (head_)
      tail_->run_next_ = f;
    else
      head_ = f;
    tail_ = f;
    return n;
  }
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  [[nodiscard]] FiberBase* front() const noexcept { return head_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  FiberBase* head_ = nullptr;
  FiberBase* tail_ = nullptr;
  std::size_t size_ = 0;
};

/// What a worker needs of the runtime that owns it, given at construction by the
/// façade (which the worker never includes): the runtime as an opaque identity,
/// its workers (this one among them; all made before any starts), and the
/// façade's way to start a fiber on one of them, Runtime::spawn_on's (it deletes
/// `f` and throws ShutDown once the runtime has stopped accepting).
struct WorkerGroup {
  Runtime& runtime;
  const std::vector<std::unique_ptr<Worker>>& workers;
  void (*place)(Runtime& rt, FiberBase* f, const SpawnOptions& opts, unsigned worker);
};

class Worker {
 public:
  Worker(const WorkerGroup& group, unsigned index, const Config& cfg, std::atomic<std::uint64_t>& fiber_ids);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Starts the thread; returns once its ring is up. Throws StartupError.
  void start();
  /// Any thread: cancel every fiber, let them unwind, then end the thread.
  void request_stop();
  /// Any thread: waits up to `timeout` for the thread to finish (its fibers gone,
  /// its timers disarmed); true once it has, or if it never started. join_thread()
  /// then returns at once.
  bool wait_stopped(std::chrono::milliseconds timeout);
  void join_thread();
  /// While stopping, how often the worker (and the shutdown caller) say what the
  /// stop still waits for.
  static constexpr std::chrono::milliseconds kStopReportPeriod{1000};

  // ---- any thread ----
  /// Makes `f` runnable here: a new fiber of this worker, or a parked fiber of this
  /// worker whose wait the caller has claimed.
  void push_inbox(FiberBase* f);
  /// push_inbox() for a new fiber, counted as incoming until this worker adopts it.
  void push_inbox_new(FiberBase* f) {
    incoming_.fetch_add(1, std::memory_order_relaxed);
    push_inbox(f);
  }
  /// Live fibers plus new ones pushed and not yet adopted (placement; racy hint).
  [[nodiscard]] std::uint64_t load() const noexcept { return alive_.get() + incoming_.load(std::memory_order_relaxed); }
  /// Unparks `f` (parked on any worker), choosing the local or the remote path.
  static void unpark(FiberBase* f);
  /// JoinHandle::cancel(): cancels `f` on its worker (any thread; see cancel_local).
  static void request_cancel(FiberBase* f) noexcept;
  /// Places new fiber `f` here as Runtime::spawn_on does (WorkerGroup::place).
  void place_here(FiberBase* f, const SpawnOptions& opts) { group_.place(group_.runtime, f, opts, index_); }

  // ---- this worker's thread, fiber context ----
  void start_fiber(FiberBase* f, const SpawnOptions& opts);
  /// Lets the other ready fibers run. Inline: the common case (a started fiber
  /// is ready, budget left, nothing cancelled) is one direct switch. A stop
  /// request is seen at the next tick (at most the tick's budget of activations away),
  /// and activations are counted per tick, to keep this path short. When the
  /// budget runs out and the tick would find nothing to do, quiet_tick() starts
  /// a new budget without the round trip through the scheduler context. A fiber
  /// alone on the worker (yield_slow) asks quiet_tick() at every yield: it goes
  /// on when there is nothing to do and through the tick when there is.
  void yield_current() {
    FiberBase* self = t_state.fiber;
    FiberBase* next = runq_.front();
    if (next && next->state_ == FiberState::ready && !self->cancel_requested_ && !explore_.on() &&
        (budget_ > 0 || quiet_tick())) {
      runq_.exchange_front(self);
      --budget_;
      self->state_ = FiberState::ready;
      next->state_ = FiberState::running;
      t_state.fiber = next;
      running_.store(next->badge_, std::memory_order_relaxed);  // see resume()
      switch_context(&self->ctx_, &next->ctx_, false);
      after_switch();
      return;
    }
    yield_slow(self);
  }
  /// Parks the running fiber until unparked. `hook` is run if it is cancelled.
  /// Inline, with switch_away and resume: a fiber resumed from a park returns
  /// through every frame between its wait and the switch, and each of those
  /// returns is mispredicted (the CPU's return stack holds the frames of the
  /// fiber that ran before). Two out-of-line frames here cost the contended
  /// Mutex 10-16% (weft-bench --bench mutex).
  void park_current(const char* reason, CancelHook hook, void* hook_arg) {
    FiberBase* self = t_state.fiber;
    self->state_ = FiberState::parked;
    self->wait_reason_ = reason;
    self->cancel_hook_ = hook;
    self->cancel_arg_ = hook_arg;
    if (self->cancel_requested_ && hook && !deferring_cancel(self)) [[unlikely]]
      run_cancel_hook(self);  // claims the wait and unparks us (or lets the op end)
    switch_away(self);
    self->cancel_hook_ = nullptr;
    self->wake_owed_ = false;
    self->wait_reason_ = "";
    // Leaving a park: the explorer may let the other ready fibers run first (as
    // if the scheduler had picked this one later).
    if (explore_.on()) [[unlikely]]
      explore_point();
  }
  /// Throws FiberCancelled if the running fiber was cancelled (and the
  /// cancellation is not deferred: see deferring_cancel()).
  void check_cancel();
  void sleep_until(std::int64_t deadline_ns);
  /// Runs one io_uring op for the running fiber and returns its CQE result (raw
  /// -errno on failure) and why it ended, from its own CQEs (OpEnd). A `deadline`
  /// links a timeout: on expiry the op completes with -ECANCELED, timed_out. The
  /// op is issued before anything can switch: given to the ring at once, or,
  /// when the SQ has no room, queued behind the earlier ops (`prep(sqe, arg)` then
  /// runs at a later tick; `arg` lives on the parked fiber's stack). Throws only
  /// bad_alloc (no slot), before anything was issued.
  /// `kind` says which faults the explorer may inject (Config::explore).
  OpEnd await_op(PrepFn prep, void* arg, Deadline deadline = Deadline::none(), std::uint32_t* cqe_flags = nullptr,
                 OpKind kind = OpKind::other);
  /// Runs `op` (runtime/io_op.hpp) for the running fiber: await_op() with the SQE
  /// io_prep.cpp makes of it.
  OpEnd await_io(const IoOp& op, std::uint32_t* cqe_flags, OpKind hint);
  /// The explorer's yield point where a fiber enters a socket op or a close
  /// (Config::explore; nothing when it is off). Fiber context only, before the
  /// caller has touched any state.
  void explore_yield() {
    if (explore_.on()) [[unlikely]]
      explore_point();
  }
  /// Starts a multishot op: every CQE goes to `sink(ctx, res, flags)` in scheduler
  /// context, until the first one without IORING_CQE_F_MORE, which frees the slot.
  /// No fiber waits on it; the caller keeps `ctx` alive until that last CQE.
  /// Returns the op's user_data (for cancel_op()), or 0 when the SQ has no room
  /// (never switches: the caller then does without the op).
  std::uint64_t arm_multishot(PrepFn prep, void* arg, void (*sink)(void*, int, std::uint32_t), void* ctx);
  /// Queues an ASYNC_CANCEL of the op named by `user_data` (fire-and-forget; with
  /// no room in the SQ it is issued at the next tick).
  void cancel_op(std::uint64_t user_data) noexcept;
  /// The provided-buffer ring, made at the first call; null when Config::recv_buffers
  /// is 0 or the kernel refused it (said once in the log).
  BufRing* buf_ring() {
    if (!buf_ring_ && !buf_ring_failed_) make_buf_ring();
    return buf_ring_;
  }
  /// net/'s per-worker state (runtime/uring/ops.hpp): null until net/ sets it.
  WorkerSlot* net_slot() const noexcept { return net_slot_.load(std::memory_order_relaxed); }
  /// This worker's thread, once: owned from here on, added into add_stats().
  void set_net_slot(std::unique_ptr<WorkerSlot> slot) noexcept {
    net_slot_.store(slot.release(), std::memory_order_release);
  }
  /// Fire-and-forget SQE with a caller-chosen user_data (test hook for forged CQEs).
  void submit_raw(PrepFn prep, void* arg, std::uint64_t user_data);

  // ---- this worker's thread, any context ----
  void unpark_local(FiberBase* f);
  TimerQueue& timers() { return timers_; }
  Ring& ring() { return ring_; }
  /// The registered-file table (capacity 0 when off).
  FixedFiles& files() { return files_; }

  // ---- any thread ----
  /// Takes the slot out of `holder` and has this worker clear it at its next tick
  /// (the caller is not this worker's thread).
  void remove_file_remote(std::atomic<int>* holder) {
    if (files_.remove_remote(holder)) write_wake_fd();
  }

  // ---- this worker's thread ----
  /// The running fiber (null in scheduler context): the thread's own slot,
  /// t_state.fiber, is the one record of it.
  [[nodiscard]] FiberBase* current() const { return t_state.fiber; }
  /// A text dump of this worker's fibers (worker thread only).
  std::string dump_fibers() const;

  // ---- accessors ----
  [[nodiscard]] unsigned index() const { return index_; }
  /// weft::spawn from a fiber here starts the child here (Placement::local, or
  /// a single worker) instead of asking the runtime's placement.
  [[nodiscard]] bool spawns_stay_local() const { return cfg_.placement == Placement::local || cfg_.workers <= 1; }
  Runtime& runtime() { return group_.runtime; }
  [[nodiscard]] const Runtime& runtime() const { return group_.runtime; }
  [[nodiscard]] const RingInfo& ring_info() const { return ring_.info(); }
  /// The engine this worker runs (Config::engine, resolved by the Runtime).
  [[nodiscard]] Engine engine() const { return epoll_ ? Engine::epoll : Engine::io_uring; }
  /// The epoll engine, or null on io_uring.
  EpollEngine* epoll() { return epoll_.get(); }
  /// The explorer (tests only; off unless Config::explore sets a seed).
  Explorer& explorer() { return explore_; }
  [[nodiscard]] const Config& config() const { return cfg_; }
  [[nodiscard]] GuardMode guard_mode() const { return stacks_.mode(); }
  void add_stats(Stats& s) const;
  /// For the stall detector (any thread): fiber activations, added at every
  /// return to the scheduler (so it moves at least every tick_budget switches),
  /// and the running fiber's badge (null in scheduler context or asleep).
  [[nodiscard]] std::uint64_t switch_epoch() const { return switches_.get(); }
  [[nodiscard]] const FiberBadge* running_badge() const { return running_.load(std::memory_order_relaxed); }
  [[nodiscard]] bool stopping() const { return stop_requested_.load(std::memory_order_acquire); }

 private:
  // Out of line: inlined, it tripled yield_current()'s code, and LTO then
  // stopped inlining weft::yield() into its callers (a frame per switch).
  [[gnu::noinline]] void yield_slow(FiberBase* self);
  /// Parks the running fiber through ticks until the SQ has room for `n` SQEs.
  /// Throws FiberCancelled (before anything was taken) if it is cancelled.
  void wait_for_sq_room(unsigned n);
  /// Gives the ring an op's SQEs (room for them was reserved).
  void issue(std::uint32_t idx) noexcept;
  /// An injected yield, when the explorer draws one (fiber context).
  void explore_point();
  /// Delivers the CQEs the explorer held back that are due (and synthetic ones).
  void deliver_held() noexcept;
  /// Room in held_ for `n` more (false: out of memory, inject nothing).
  bool held_room(std::size_t n) noexcept;
  /// Each tick: what found no SQE before (queued ops in order, the wake read,
  /// deferred cancels).
  void retry_deferred() noexcept;
  [[gnu::noinline, gnu::cold]] bool quiet_tick() noexcept;
  void thread_main(void* started);
  void wake() noexcept;
  void write_wake_fd() noexcept;
  void run_loop();
  void tick();
  void tick_epoll(bool idle);
  /// Ops the engine still owes a completion for (io_uring CQEs, fibers parked on
  /// epoll readiness).
  [[nodiscard]] bool io_in_flight() const noexcept;
  /// One look at the engine without blocking: submit, reap, wake.
  void poll_io_now();
  void reap();
  void dispatch_cqe(const io_uring_cqe* cqe);
  bool hold_back(const io_uring_cqe* cqe) noexcept;
  void drain_inbox();
  void arm_wake_read() noexcept;
  bool adopt(FiberBase* f);
  FiberBase* pick_next();
  void prefetch_after() noexcept;
  // Out of line: its error path (logging, exceptions) would otherwise give
  // pick_next(), which runs on every parking fiber's stack, a frame of 600+ bytes.
  [[gnu::noinline]] bool give_stack(FiberBase* f);
  void complete_without_running(FiberBase* f, std::exception_ptr why);
  void publish_done(FiberBase* f);
  void switch_away(FiberBase* self) {
    FiberBase* next = pick_next();
    if (next == self) {  // it was the only runnable fiber: keep running
      self->state_ = FiberState::running;
      return;
    }
    resume(&self->ctx_, self->state_ == FiberState::done, next);
  }
  void resume(Context* from, bool from_exits, FiberBase* next) {
    Context* to = &sched_ctx_;
    if (next) {
      next->state_ = FiberState::running;
      to = &next->ctx_;
    }
    t_state.fiber = next;
    running_.store(next ? next->badge_ : nullptr, std::memory_order_relaxed);
    switch_context(from, to, from_exits);
    after_switch();
  }
  void after_switch() {
    if (FiberBase* z = zombie_) {
      zombie_ = nullptr;
      reclaim(z);
    }
  }
  void reclaim(FiberBase* f);
  void cancel_all();
  /// Marks `f` (of this worker) cancelled and, if it is parked in a cancellable
  /// wait that is not deferred, runs its cancel hook.
  void cancel_local(FiberBase* f) noexcept;
  /// A running fiber defers its cancellation inside DeferCancellation scopes and
  /// while it unwinds an exception (a throw from a destructor would terminate).
  static bool deferring_cancel(const FiberBase* self) noexcept;
  /// The same for a parked fiber of this worker (from its saved state).
  static bool parked_deferring_cancel(const FiberBase* f) noexcept;
  /// Takes `f`'s cancel hook and runs it; if `f` is still parked afterwards, the
  /// wait's claimant owes it an unpark (wake_owed_).
  static void run_cancel_hook(FiberBase* f) noexcept;
  /// True while a fiber of this worker is parked with an unpark owed to it.
  [[nodiscard]] bool wake_owed() const noexcept;
  /// Every other worker of the runtime has left its loop (stopping only).
  bool peers_ended() noexcept;
  /// A timer other than the stop report is armed (stopping only).
  [[nodiscard]] bool timers_besides_report() const noexcept;
  void arm_stop_report();
  void report_stop_wait();
  void make_buf_ring();
  [[noreturn]] void finish_current(FiberBase* self);
  friend void fiber_entry(transfer_t t);

  const WorkerGroup group_;
  const unsigned index_;
  const Config cfg_;
  std::atomic<std::uint64_t>& fiber_ids_;
  std::thread thread_;

  Ring ring_;                           // io_uring engine (never set up when epoll_ is)
  std::unique_ptr<EpollEngine> epoll_;  // the epoll engine, when Config::engine says so
  FixedFiles files_;
  BufRing* buf_ring_ = nullptr;  // see buf_ring(); retired at the thread's exit
  bool buf_ring_failed_ = false;
  bool cancelled_multishots_ = false;
  OpTable ops_;
  TimerQueue timers_;
  StackPool stacks_;
  RunQueue runq_;
  Inbox inbox_;
  int wake_fd_ = -1;
  std::uint64_t wake_buf_ = 0;  // the eventfd read's target: lives as long as the worker
  bool wake_read_armed_ = false;

  Context sched_ctx_;
  FiberBase* zombie_ = nullptr;
  FiberBase* all_head_ = nullptr;  // live fibers of this worker (dumps, cancel_all)
  unsigned budget_ = 0;
  unsigned tick_base_ = 0;  // budget_ when activations were last added to switches_
  /// A tick's budget: every fiber ready when it begins runs once before the ring
  /// is entered again, as an event loop handles a whole batch of completions, so
  /// with hundreds of connections one enter serves hundreds of requests
  /// (tick_budget fixed at 64 made 6x more enters at 512 echo connections; the
  /// CPU per request it saves is about 1% by perf's task-clock, the 7% first
  /// read from /proc ticks being mostly sampling lean). `tick_budget` is the floor,
  /// for fibers that yield, and 16x it the cap, so the ring is still polled at
  /// least every 16 x tick_budget activations however many fibers are ready.
  static constexpr unsigned kMaxBudgetFactor = 16;
  void start_budget() noexcept { budget_ = tick_base_ = tick_budget_for(); }
  [[nodiscard]] unsigned tick_budget_for() const noexcept {
    const std::size_t floor = cfg_.tick_budget;
    const std::size_t cap = std::min<std::size_t>(floor * kMaxBudgetFactor, std::numeric_limits<unsigned>::max());
    return static_cast<unsigned>(std::clamp(runq_.size(), floor, cap));
  }
  /// Adds the activations since the last count to switches_ (per tick, and when a
  /// fiber ends, so a joiner's stats() includes them).
  void count_activations() noexcept {
    switches_.add(tick_base_ - budget_);
    tick_base_ = budget_;
  }
  unsigned stack_color_ = 0;  // see give_stack()
  bool cancelled_all_ = false;
  std::atomic<bool> stop_requested_{false};  // release/acquire: set once by any thread
  std::atomic<bool> loop_ended_{false};      // release/acquire: run_loop() returned (peers_ended)
  struct StopReport : TimerNode {
    Worker* worker = nullptr;
    std::int64_t began_ns = 0;  // when the fibers were cancelled
  } stop_report_;
  AnnotatedMutex stopped_mu_;
  std::condition_variable_any stopped_cv_;
  bool stopped_ WEFT_GUARDED_BY(stopped_mu_) = false;  // the thread has finished (wait_stopped)
  // relaxed: the badge lives in stack memory that stays mapped while this worker
  // exists; the stall detector validates what it reads with switches_.
  std::atomic<const FiberBadge*> running_{nullptr};
  // relaxed: a placement hint only (any thread adds, this worker subtracts).
  std::atomic<std::uint64_t> incoming_{0};
  std::uint64_t next_id_ = 0, id_limit_ = 0;
  // release/acquire: set once by this thread; add_stats() on any thread reads the
  // slot it points to (relaxed where this thread reads its own write).
  std::atomic<WorkerSlot*> net_slot_{nullptr};  // a block of ids reserved from fiber_ids_

  Counter alive_, spawned_, switches_, cqes_, stale_, cq_overflow_, wakes_, timers_fired_, sq_waits_;

  // The explorer (tests only; see explorer.hpp). held_: CQEs it holds back, and
  // the errno CQEs of ops it failed without issuing, delivered at tick `due`.
  Explorer explore_;
  struct HeldCqe {
    std::uint64_t user_data;
    std::int32_t res;
    std::uint32_t flags;
    std::uint64_t due;
  };
  std::vector<HeldCqe> held_;
  std::uint64_t ticks_ = 0;
  Counter stacks_live_, stack_mappings_;
};

}  // namespace weft::detail
