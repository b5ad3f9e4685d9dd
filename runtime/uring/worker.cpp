// runtime/uring/worker.cpp — the Evented worker: thread, scheduler loop, CQE
// dispatch, fiber lifecycle, switches, parking. Sleeps and ops: worker_ops.cpp.
// See worker.hpp for the tick and the invariants.
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <future>
#include <new>
#include <string>
#include <utility>

#include <weft/runtime/epoll/engine.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/overflow.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/uring/worker.hpp>

// The one build-mode symbol this libweft defines: code built in another sanitizer
// mode references another one and fails to link (runtime/fiber/context.hpp).
extern "C" const char WEFT_BUILD_MODE_SYMBOL = 0;

namespace weft::detail {

namespace {

[[noreturn]] void invariant_violation(const char* what, const FiberBase* f) {
  std::string name = f ? f->display_name() : std::string("-");
  fatalf("scheduler invariant violated: %s (fiber %s)", what, name.c_str());
}

[[noreturn]] void fatal_in_scheduler(const char* what) noexcept {
  const Worker* w = t_state.worker;
  fatalf("worker %u: exception escaped the scheduler context: %s", w ? w->index() : 0u, what);
}

const char* state_name(FiberState s) {
  switch (s) {
    case FiberState::created:
      return "created";
    case FiberState::ready:
      return "ready";
    case FiberState::running:
      return "running";
    case FiberState::parked:
      return "parked";
    case FiberState::done:
      return "done";
  }
  return "?";
}

// The overflow handler's view of the faulting thread (async-signal-safe: reads
// thread-locals and the running fiber's immutable fields only).
bool overflow_probe(OverflowProbe* out) noexcept {
  FiberBase* f = t_state.fiber;
  if (!f || !f->stack_.valid()) return false;
  out->guard_lo = f->stack_.guard_lo;
  out->guard_size = f->stack_.guard_size;
  out->stack_lo = f->stack_.lo;
  out->fiber_name = f->raw_name();
  out->fiber_id = f->id();
  out->worker = t_state.worker ? static_cast<int>(t_state.worker->index()) : -1;
  return true;
}

StackPoolConfig pool_config(const Config& c) {
  StackPoolConfig p;
  p.stack_size = c.stack_size;
  p.guard_pages = c.guard_pages == 0 ? 1 : c.guard_pages;
  p.mode = c.guard_mode;
  p.mprotect_budget = c.mprotect_guard_budget;
  p.cache_committed = c.stack_cache;
  return p;
}

}  // namespace

// The first frame of every fiber.
void fiber_entry(transfer_t t) {
  on_fiber_entry(t);
  Worker* w = t_state.worker;
  w->after_switch();
  FiberBase* self = t_state.fiber;
  self->run();
  w->finish_current(self);
}

Worker::Worker(const WorkerGroup& group, unsigned index, const Config& cfg, std::atomic<std::uint64_t>& fiber_ids)
    : group_(group), index_(index), cfg_(cfg), fiber_ids_(fiber_ids), stacks_(pool_config(cfg)) {}

Worker::~Worker() {
  if (thread_.joinable()) {
    request_stop();
    join_thread();
  }
  // A thread whose push_inbox() woke the last fiber may still be finishing its
  // wake (a few instructions, or the eventfd write): wait for it before the fd and
  // this object go. acquire: pairs with push_inbox()'s release decrement.
  while (inbox_.pushers().load(std::memory_order_acquire) != 0) std::this_thread::yield();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  delete net_slot_.load(std::memory_order_acquire);
}

// ---------------------------------------------------------------- thread ----

void Worker::start() {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) throw StartupError(errno, "weft: eventfd for the worker wake failed");
  std::promise<void> started;
  auto fut = started.get_future();
  thread_ = std::thread([this, &started] { thread_main(&started); });
  try {
    fut.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

void Worker::thread_main(void* started_arg) {
  auto* started = static_cast<std::promise<void>*>(started_arg);
  std::string tname = cfg_.name.substr(0, 10) + "-w" + std::to_string(index_);
  pthread_setname_np(pthread_self(), tname.c_str());
  try {
    if (cfg_.engine == Engine::epoll) {
      epoll_ = std::make_unique<EpollEngine>(*this);
      epoll_->init(wake_fd_);
    } else {
      ring_.init(cfg_.ring_entries, cfg_.defer_taskrun);
    }
  } catch (...) {
    started->set_exception(std::current_exception());
    return;
  }
  if (epoll_)
    buf_ring_failed_ = true;  // no provided buffers: buffered reads use plain receives
  else
    files_.init(ring_, cfg_.fixed_files);
  explore_.init(cfg_.explore, index_);
  ring_.set_explorer(&explore_);
  t_state.worker = this;
  t_state.eh = this_thread_eh_state();  // before the first switch_context (context.hpp)
  install_overflow_handler(&overflow_probe);
  setup_thread_altstack();
  // The scheduler context runs on this thread's own stack.
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* lo = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &lo, &size);
    set_stack_bounds(&sched_ctx_, lo, size);
    pthread_attr_destroy(&attr);
  }
#if WEFT_TSAN
  sched_ctx_.tsan_fiber = __tsan_get_current_fiber();
#endif
  if (epoll_) {
    log::logger().debug("worker {} up: epoll engine, stacks guarded by {}", index_,
                        stacks_.mode() == GuardMode::madvise ? "madvise" : "mprotect");
  } else {
    log::logger().debug("worker {} up: ring {} entries, flags {:#x}, defer_taskrun={}, stacks guarded by {}", index_,
                        ring_.info().entries, ring_.info().setup_flags, ring_.info().defer_taskrun,
                        stacks_.mode() == GuardMode::madvise ? "madvise" : "mprotect");
    arm_wake_read();
  }
  started->set_value();  // `started` is gone after this line
  try {
    run_loop();
  } catch (const std::exception& e) {
    // The scheduler context has nothing to unwind to and its state is unknown
    // after a throw (every path it runs is meant not to throw): stop here, loudly.
    fatal_in_scheduler(e.what());
  } catch (...) {
    fatal_in_scheduler("a non-std exception");
  }
  // Timers still armed will never fire: disarm them, so each Timer is idle and
  // forgets this worker (it may be destroyed anywhere, or armed elsewhere).
  timers_.retire_all();
  if (buf_ring_) {
    buf_ring_->retire(ring_.raw());  // leases and queues still out keep the memory
    buf_ring_ = nullptr;
  }
  // Hand the last queued SQEs (file-table removals of sockets closed at the end)
  // to the kernel, then let every socket forget its slot: the ring's exit
  // releases what the table still holds.
  if (!epoll_ && ring_.pending_sqes() > 0) ring_.enter(false, 0);
  files_.retire();
  release_thread_altstack();
  t_state.eh = nullptr;
  t_state.worker = nullptr;
  LockGuard lk(stopped_mu_);
  stopped_ = true;
  stopped_cv_.notify_all();  // this worker (and its cv) lives until the thread is joined
}

void Worker::request_stop() {
  if (stop_requested_.exchange(true, std::memory_order_acq_rel)) return;
  // The worker may be asleep in io_uring_enter; the eventfd read op wakes it.
  write_wake_fd();
}

bool Worker::wait_stopped(std::chrono::milliseconds timeout) {
  if (!thread_.joinable()) return true;
  const auto until = std::chrono::steady_clock::now() + timeout;
  LockGuard lk(stopped_mu_);
  while (!stopped_)
    if (stopped_cv_.wait_until(stopped_mu_, until) == std::cv_status::timeout) return stopped_;
  return true;
}

void Worker::join_thread() {
  if (thread_.joinable()) thread_.join();
}

// ------------------------------------------------------------- the loop ----

void Worker::run_loop() {
  for (;;) {
    start_budget();
    if (FiberBase* next = pick_next()) resume(&sched_ctx_, false, next);
    count_activations();  // this tick's (the hot path counts nothing)
    // Checked right before the tick, which may block: the last fiber may just have
    // ended.
    if (stop_requested_.load(std::memory_order_acquire)) {
      if (!cancelled_all_) {
        cancel_all();
        arm_stop_report();
      }
      if (!all_head_ && !io_in_flight()) break;
      if (runq_.empty() && inbox_.empty() && !cancelled_multishots_) {
        // The cancelled fibers have unwound. Multishot ops still armed belong to
        // sockets nobody closed (kept past their fibers): cancel them, so their
        // last CQEs arrive and the loop can end (their sockets stay leaked).
        cancelled_multishots_ = true;
        ops_.for_each_multishot([this](std::uint64_t ud) { cancel_op(ud); });
        continue;
      }
      if (runq_.empty() && inbox_.empty() && !io_in_flight() && !timers_besides_report()) {
        // Every fiber was cancelled and nothing runnable, in flight or timed is
        // left here: what remains is parked with its cancellation deferred, with
        // no cancel hook, with an unpark owed by a thread that claimed its wait,
        // or on another runtime. A fiber of another worker of this
        // runtime may still wake it (a join, a hand-off): wait until they have all
        // ended (each wakes us as it ends).
        if (!peers_ended()) {
          tick();
          continue;
        }
        // A wake a peer sent before it ended may not be here yet (a MSG_RING
        // completion shows up when this ring next enters the kernel): look once.
        poll_io_now();
        drain_inbox();
        if (!runq_.empty() || io_in_flight()) continue;
        // A notifier on another thread that claimed a wait before the cancel hook
        // ran wakes the fiber a few instructions later: wait for that unpark.
        if (wake_owed()) {
          tick();
          continue;
        }
        // Nothing in this runtime can wake them now. Say who, and leave them.
        for (FiberBase* f = all_head_; f; f = f->all_next_)
          log::logger().error("shutdown: fiber {} abandoned while {} ({})", f->display_name(), state_name(f->state_),
                              f->wait_reason_);
        break;
      }
    }
    tick();
  }
  // release: our last wakes (inbox pushes, MSG_RINGs reaped above) happen before
  // a peer that reads this with acquire looks for them.
  loop_ended_.store(true, std::memory_order_release);
  for (const auto& peer : group_.workers)
    if (peer.get() != this) peer->write_wake_fd();  // re-check peers_ended()
  // Late pushes (a spawn racing the stop) are refused, never dropped silently.
  for (FiberBase* f = inbox_.take_all(); f;) {
    FiberBase* next = f->inbox_next_;
    if (f->state_ == FiberState::created) complete_without_running(f, std::make_exception_ptr(FiberCancelled()));
    f = next;
  }
}

bool Worker::peers_ended() noexcept {
  for (const auto& peer : group_.workers)
    if (peer.get() != this && !peer->loop_ended_.load(std::memory_order_acquire)) return false;
  return true;
}

bool Worker::timers_besides_report() const noexcept {
  return timers_.size() > (stop_report_.queued() ? 1u : 0u);
}

// While stopping, every kStopReportPeriod: which fibers the stop still waits for
// and on what (the shutdown caller names a fiber that runs without yielding; a
// fiber parked with nothing left to wake it is reported as abandoned instead).
void Worker::arm_stop_report() {
  stop_report_.worker = this;
  stop_report_.began_ns = monotonic_ns();
  stop_report_.fire_ = [](TimerNode* n) { static_cast<StopReport*>(n)->worker->report_stop_wait(); };
  timers_.rearm(&stop_report_, stop_report_.began_ns + std::chrono::nanoseconds(kStopReportPeriod).count());
}

void Worker::report_stop_wait() {
  const std::int64_t now = monotonic_ns();
  const long long ms = (now - stop_report_.began_ns) / 1'000'000;
  constexpr unsigned kNamed = 8;  // at most this many lines per report
  unsigned n = 0;
  for (const FiberBase* f = all_head_; f; f = f->all_next_, ++n) {
    if (n >= kNamed) continue;
    if (f->state_ == FiberState::parked)
      log::logger().warn(
          "shutdown of runtime '{}' waits for fiber {} on worker {}: parked on {}, {} ms after its cancellation{}",
          cfg_.name, f->display_name(), index_, f->wait_reason_, ms,
          io_in_flight()
              ? " (ops in flight here: " + std::to_string(ops_.in_flight() + (epoll_ ? epoll_->waiting() : 0)) + ")"
              : std::string(" (nothing in flight here)"));
    else
      log::logger().warn(
          "shutdown of runtime '{}' waits for fiber {} on worker {}: still {} {} ms after its cancellation (does it "
          "catch FiberCancelled and carry on?)",
          cfg_.name, f->display_name(), index_, state_name(f->state_), ms);
  }
  if (n > kNamed)
    log::logger().warn("shutdown of runtime '{}' waits for {} more fibers on worker {}", cfg_.name, n - kNamed, index_);
  if (n == 0)
    log::logger().warn("shutdown of runtime '{}' waits for worker {}: {} ops in flight, {} ms after it cancelled them",
                       cfg_.name, index_, ops_.in_flight(), ms);
  timers_.rearm(&stop_report_, now + std::chrono::nanoseconds(kStopReportPeriod).count());
}

bool Worker::io_in_flight() const noexcept {
  return ops_.in_flight() > 0 || (epoll_ && epoll_->waiting() > 0);
}

void Worker::poll_io_now() {
  if (epoll_) {
    epoll_->poll(0);
    return;
  }
  if (ring_.enter(false, 0) >= 0) reap();
}

// tick() on the epoll engine: the same steps, with epoll_wait for the enter.
void Worker::tick_epoll(bool idle) {
  if (idle) {
    std::int64_t timeout = -1;
    if (!timers_.empty()) timeout = std::max<std::int64_t>(timers_.next_deadline() - monotonic_ns(), 0);
    if (inbox_.prepare_sleep()) {
      epoll_->poll(timeout);
      inbox_.mark_running();
    }
  } else if (epoll_->waiting() > 0) {
    epoll_->poll(0);
  }
  drain_inbox();
  if (!timers_.empty()) timers_fired_.add(timers_.fire_due(monotonic_ns()));
}

void Worker::tick() {
  ++ticks_;
  inbox_.mark_running();
  if (epoll_) [[unlikely]] {
    drain_inbox();
    if (!timers_.empty()) timers_fired_.add(timers_.fire_due(monotonic_ns()));
    return tick_epoll(runq_.empty());
  }
  retry_deferred();
  drain_inbox();
  if (files_.remote_pending()) files_.drain_remote(ring_);
  if (buf_ring_ && buf_ring_->remote_pending()) buf_ring_->drain_remote();
  if (!timers_.empty()) timers_fired_.add(timers_.fire_due(monotonic_ns()));
  bool idle = runq_.empty();
  if (idle) {
    std::int64_t timeout = -1;
    if (!timers_.empty()) {
      timeout = timers_.next_deadline() - monotonic_ns();
      if (timeout < 0) timeout = 0;
    }
    // Never sleep with work only a later tick can do: the wake read unarmed (it
    // found no SQE), ops or cancels waiting for room, CQEs held back by the
    // explorer. Poll instead.
    if (!wake_read_armed_ || !ops_.overflow_empty() || ops_.deferred_cancels() > 0 || !held_.empty()) timeout = 0;
    if (inbox_.prepare_sleep()) {
      int r = ring_.enter(true, timeout);
      inbox_.mark_running();
      if (r < 0 && r != -EBUSY && r != -EAGAIN)
        log::logger().error("io_uring_enter failed: {}", errno_code(r).message());
    }
  } else if (ring_.pending_sqes() > 0 || ops_.in_flight() > 0) {
    int r = ring_.enter(false, 0);
    if (r < 0 && r != -EBUSY && r != -EAGAIN) log::logger().error("io_uring_enter failed: {}", errno_code(r).message());
  }
  reap();
  drain_inbox();
  if (!timers_.empty()) timers_fired_.add(timers_.fire_due(monotonic_ns()));
}

// The yield fast path ran out of budget, or a fiber yields with no other fiber
// ready (yield_slow, at every such yield). If the scheduler's tick would find
// nothing to do — no stop request, no push in the inbox, nothing to submit,
// no op in flight, no CQE waiting, no timer due — start a new budget here and
// keep switching fiber to fiber, instead of two switches through the scheduler
// context for nothing. Otherwise the caller takes the slow path to the tick.
bool Worker::quiet_tick() noexcept {
  if (stop_requested_.load(std::memory_order_relaxed) || !inbox_.empty()) return false;
  if (epoll_ ? epoll_->waiting() > 0 : ring_.pending_sqes() > 0 || ops_.in_flight() > 0 || ring_.cq_ready() > 0)
    return false;
  if (!timers_.empty() && timers_.next_deadline() <= monotonic_ns()) return false;
  count_activations();  // the stall detector's epoch must keep moving
  start_budget();
  return true;
}

void Worker::reap() {
  io_uring_cqe* batch[64];
  unsigned n;
  // Read before peeking: a peek that finds the CQ empty flushes the kernel's
  // overflow list and clears the flag (NODROP keeps every CQE; none is lost).
  const bool overflowed = ring_.cq_overflowed();
  if (explore_.on()) [[unlikely]]
    deliver_held();
  while ((n = ring_.peek(batch, 64)) > 0) {
    for (unsigned i = 0; i < n; ++i) {
      if (explore_.on() && hold_back(batch[i])) [[unlikely]]
        continue;
      dispatch_cqe(batch[i]);
    }
    ring_.advance(n);
    cqes_.add(n);
  }
  if (overflowed || ring_.cq_overflowed()) cq_overflow_.add();  // once per reap that saw it
}

// The explorer holds an op's CQE back for a few ticks (never a tag's, never a
// multishot op's: those carry a stream in order).
bool Worker::hold_back(const io_uring_cqe* cqe) noexcept {
  std::uint32_t idx;
  bool timeout_cqe;
  if (OpTable::is_tag(cqe->user_data) || !ops_.lookup(cqe->user_data, &idx, &timeout_cqe) || ops_.at(idx).sink)
    return false;
  const unsigned ticks = explore_.hold_cqe();
  if (ticks == 0 || !held_room(1)) return false;
  held_.push_back({cqe->user_data, cqe->res, cqe->flags, ticks_ + ticks});
  return true;
}

void Worker::dispatch_cqe(const io_uring_cqe* cqe) {
  const std::uint64_t ud = cqe->user_data;
  log::logger().trace("cqe user_data={:#x} res={} flags={:#x}", ud, cqe->res, cqe->flags);
  if (OpTable::is_tag(ud)) {
    if (ud == kTagIgnore) return;
    if (ud == kTagWake) {
      wakes_.add();
      wake_read_armed_ = false;
      if (cqe->res < 0 && cqe->res != -ECANCELED)
        log::logger().warn("worker wake read failed: {}", errno_code(cqe->res).message());
      arm_wake_read();
      return;
    }
    if (ud == kTagMsgRing) {
      wakes_.add();
      return;
    }
    if (((ud >> 32) & 0xff) == 3 && (ud >> 40) < group_.workers.size()) {
      // Our MSG_RING to another worker of this runtime (wake() sends none across
      // runtimes, so the index names the target) failed (e.g. -EOVERFLOW): never
      // lose the wake, fall back to its eventfd.
      if (cqe->res < 0) {
        log::logger().debug("MSG_RING wake failed ({}), using the eventfd", errno_code(cqe->res).message());
        group_.workers[ud >> 40]->write_wake_fd();
      }
      return;
    }
    stale_.add();  // a tag we never issued
    return;
  }
  std::uint32_t idx;
  bool timeout_cqe;
  if (!ops_.lookup(ud, &idx, &timeout_cqe)) {
    stale_.add();  // its slot was freed (and maybe reused): never dereference it
    return;
  }
  OpSlot& s = ops_.at(idx);
  if (s.sink) {
    // A multishot op: every CQE to its sink; the first without F_MORE is its last.
    auto* sink = s.sink;
    void* ctx = s.sink_ctx;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
      s.sink = nullptr;
      s.pending = 0;
      ops_.release(idx);
    }
    sink(ctx, cqe->res, cqe->flags);
    return;
  }
  if (!timeout_cqe) {
    s.res = cqe->res;
    s.cqe_flags = cqe->flags;
  } else {
    s.timer_fired = OpEnd::timer_fired(cqe->res);  // decides the op's cause (OpEnd::cause_of)
  }
  if (--s.pending == 0) {
    if (s.waiter)
      unpark_local(s.waiter);
    else
      ops_.release(idx);
  }
}

void Worker::arm_wake_read() noexcept {
  if (wake_read_armed_) return;
  io_uring_sqe* sqe = ring_.try_get_sqe();
  if (!sqe) return;  // no room: the next tick tries again, and does not sleep unarmed
  io_uring_prep_read(sqe, wake_fd_, &wake_buf_, sizeof wake_buf_, 0);
  io_uring_sqe_set_data64(sqe, kTagWake);
  wake_read_armed_ = true;
}

void Worker::drain_inbox() {
  for (FiberBase* f = inbox_.take_all(); f;) {
    FiberBase* next = f->inbox_next_;
    f->inbox_next_ = nullptr;
    if (f->state_ == FiberState::created) {
      incoming_.fetch_sub(1, std::memory_order_relaxed);
      if (adopt(f)) runq_.push_back(f);
    } else if (f->state_ == FiberState::parked) {
      f->state_ = FiberState::ready;
      runq_.push_back(f);
    } else {
      invariant_violation("remote unpark of a fiber that is not parked (double wake)", f);
    }
    f = next;
  }
}

// -------------------------------------------------------- fiber lifecycle ----

void Worker::push_inbox(FiberBase* f) {
  // relaxed: sequenced before the push, whose release publishes it to whoever
  // sees `f` (and so to a destructor that runs after `f` has run).
  inbox_.pushers().fetch_add(1, std::memory_order_relaxed);
  // Only when the worker announced sleep: the coalesced wake (one per sleep).
  if (inbox_.push(f)) wake();
  // release: every touch of this worker above happens before the destructor's
  // acquire load that sees the count drop.
  inbox_.pushers().fetch_sub(1, std::memory_order_release);
}

void Worker::write_wake_fd() noexcept {
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

// Wakes this (sleeping) worker from the calling thread. From another worker of
// the same runtime with MSG_RING: one SQE on the caller's own ring, submitted at
// once (latency matters more than batching here); the target's enter returns on
// the CQE it posts. A failed MSG_RING comes back as a CQE on the caller's ring
// naming the target by its index in the runtime (dispatch_cqe falls back to the
// eventfd), so wakes across runtimes, whose index would name a worker of the
// wrong runtime, take the eventfd, as does a caller whose SQ has no room. The
// hand-over itself went through the inbox's atomics, so TSan sees the edge.
// Never throws: notify(), unlock() and set() end here.
void Worker::wake() noexcept {
  Worker* me = t_state.worker;
  if (cfg_.wake == WakeMode::msg_ring && me && me != this && &me->group_.runtime == &group_.runtime &&
      me->ring_.info().has_op(IORING_OP_MSG_RING)) {
    if (io_uring_sqe* sqe = me->ring_.try_get_sqe()) {
      const bool fail = me->explore_.on() && me->explore_.fail_wake();  // tests the fallback below
      io_uring_prep_msg_ring(sqe, fail ? -1 : ring_.fd(), 0, kTagMsgRing, 0);
      io_uring_sqe_set_data64(sqe, msg_ring_sent_tag(index_));
      if (me->ring_.enter(false, 0) >= 0) return;
    }
  }
  write_wake_fd();
}

void Worker::unpark(FiberBase* f) {
  Worker* w = f->worker_;
  if (t_state.worker == w)
    w->unpark_local(f);
  else
    w->push_inbox(f);
}

void Worker::unpark_local(FiberBase* f) {
  if (f->state_ != FiberState::parked) invariant_violation("unpark of a fiber that is not parked (double wake)", f);
  f->state_ = FiberState::ready;
  runq_.push_back(f);
}

// Registers a new fiber of this worker; false when it was refused (shutdown).
bool Worker::adopt(FiberBase* f) {
  // Runtime::place() already named this worker before pushing (the handle's
  // cancel() reads it from another thread): write it only where it is unset.
  if (!f->worker_) f->worker_ = this;
  f->all_next_ = all_head_;
  if (all_head_) all_head_->all_prev_ = f;
  all_head_ = f;
  alive_.add();
  spawned_.add();
  if (cancelled_all_) {
    complete_without_running(f, std::make_exception_ptr(FiberCancelled()));
    return false;
  }
  return true;
}

void Worker::start_fiber(FiberBase* f, const SpawnOptions& opts) {
  if (next_id_ == id_limit_) {
    // relaxed: ids only need to be unique; reserve a block to keep the spawn path
    // free of a locked instruction per fiber.
    next_id_ = fiber_ids_.fetch_add(1024, std::memory_order_relaxed);
    id_limit_ = next_id_ + 1024;
  }
  f->id_ = next_id_++;
  f->set_name(opts.name);
  if (!adopt(f)) return;
  if (opts.launch == Launch::dispatch && t_state.fiber) {
    // Run the child now; the spawner resumes as soon as the child blocks or ends.
    FiberBase* self = t_state.fiber;
    self->state_ = FiberState::ready;
    runq_.push_front(self);
    runq_.push_front(f);
    switch_away(self);
  } else {
    runq_.push_back(f);
  }
}

bool Worker::give_stack(FiberBase* f) {
  try {
    f->stack_ = stacks_.acquire();
    stacks_live_.set(stacks_.live());
    stack_mappings_.set(stacks_.mappings());
  } catch (...) {
    log::logger().error("fiber {} cannot start: no stack", f->display_name());
    complete_without_running(f, std::current_exception());
    return false;
  }
  // The badge sits at the very top of the stack; frames start below it, lower
  // by a "color" of 0..7 cache lines that changes from one stack to the next.
  // Without it, two fibers running the same code switch with stack pointers
  // equal modulo 4 KiB (stacks are page-multiples apart): jump_fcontext's loads
  // from the incoming stack then alias the stores it just made to the outgoing
  // one (4K aliasing), which costs the switch several cycles.
  constexpr std::size_t kBadgeRoom = 64;
  static_assert(sizeof(FiberBadge) <= kBadgeRoom);
  f->badge_ = reinterpret_cast<FiberBadge*>(static_cast<char*>(f->stack_.top()) - kBadgeRoom);
  f->badge_->write(f->id_, f->raw_name());
  stack_color_ = (stack_color_ + 1) & 7;
  make_context(&f->ctx_, f->stack_.lo, f->stack_.size - kBadgeRoom - stack_color_ * 64, &fiber_entry);
#if WEFT_TSAN
  f->ctx_.tsan_fiber = __tsan_create_fiber(0);
#endif
  return true;
}

void Worker::publish_done(FiberBase* f) {
  if (f->held_mutexes_) [[unlikely]]
    report_mutexes_held_at_end(f);  // before a joiner can see it done
  // A joiner that reads stats() right after join() sees this fiber's activations.
  count_activations();
  f->cancel_hook_ = nullptr;
  f->state_ = FiberState::done;
  alive_.sub();
  // acq_rel: release publishes the result/exception to the joiner; acquire makes
  // the joiner's registration (its address) visible to us.
  std::uintptr_t old = f->join_word_.exchange(kJoinDone, std::memory_order_acq_rel);
  if (old == kJoinThread) {
    f->join_word_.notify_all();
  } else if (old != kJoinNone) {
    unpark(reinterpret_cast<FiberBase*>(old));
  }
}

void Worker::complete_without_running(FiberBase* f, std::exception_ptr why) {
  f->drop();  // its captures go here, before a joiner can see it done
  f->error_ = std::move(why);
  publish_done(f);
  reclaim(f);
}

void Worker::finish_current(FiberBase* self) {
  publish_done(self);
  zombie_ = self;
  switch_away(self);
  invariant_violation("a finished fiber was resumed", self);
}

void Worker::reclaim(FiberBase* f) {
  if (f->stack_.valid()) {
    stacks_.release(f->stack_);
    f->stack_ = Stack{};
    f->badge_ = nullptr;
#if WEFT_TSAN
    __tsan_destroy_fiber(f->ctx_.tsan_fiber);
    f->ctx_.tsan_fiber = nullptr;
#endif
  }
  if (f->all_prev_)
    f->all_prev_->all_next_ = f->all_next_;
  else if (all_head_ == f)
    all_head_ = f->all_next_;
  if (f->all_next_) f->all_next_->all_prev_ = f->all_prev_;
  f->all_prev_ = f->all_next_ = nullptr;
  f->release_ref();
  stacks_live_.set(stacks_.live());
  stack_mappings_.set(stacks_.mappings());
}

void Worker::cancel_all() {
  cancelled_all_ = true;
  log::logger().debug("worker {}: cancelling fibers for shutdown", index_);
  // Fibers that never started leave the run queue in one pass (O(n) however
  // many are queued); the walk below finishes them.
  RunQueue started;
  while (FiberBase* g = runq_.pop_front())
    if (g->state_ != FiberState::created) started.push_back(g);
  runq_ = started;
  for (FiberBase* f = all_head_; f;) {
    FiberBase* next = f->all_next_;
    if (f->state_ == FiberState::created) {
      f->cancel_requested_ = true;
      complete_without_running(f, std::make_exception_ptr(FiberCancelled()));
    } else {
      cancel_local(f);
    }
    f = next;
  }
}

// ------------------------------------------------------------- switching ----

FiberBase* Worker::pick_next() {
  // relaxed: a hint; once seen, the scheduler context cancels everything first.
  if (!cancelled_all_ && stop_requested_.load(std::memory_order_relaxed)) return nullptr;
  while (budget_ > 0) {
    FiberBase* n =
        explore_.on() ? runq_.take_nth(explore_.pick(std::min<std::size_t>(runq_.size(), 8))) : runq_.pop_front();
    if (!n) return nullptr;
    --budget_;
    prefetch_after();
    if (n->state_ != FiberState::created) return n;
    if (n->cancel_requested_) {  // JoinHandle::cancel before it ever ran
      complete_without_running(n, std::make_exception_ptr(FiberCancelled()));
      continue;
    }
    if (give_stack(n)) return n;
  }
  return nullptr;
}

// While the picked fiber runs, bring in what the next fibers will touch: the one after it
// gets its saved context and the frames above it (jump_fcontext pops the
// registers from there and the fiber returns through those frames), the one after
// that its object (read here at the next pick). One activation is long enough for
// the lines to arrive; with hundreds of fibers parked on I/O none of them is
// still cached otherwise. Only the scheduler's pick does this: the yield fast
// path between a few hot fibers has nothing to gain.
void Worker::prefetch_after() noexcept {
  FiberBase* next = runq_.front();
  if (!next) return;
  // 12 lines (768 bytes): the saved registers plus the scheduler and op frames a
  // parked fiber returns through (measured with 512 echo connections: 12 lines
  // took the worker's user time per request from 0.30-0.45 to 0.21-0.36 µs, 4 lines
  // left most of it).
  constexpr int kStackLines = 12;
  if (const char* sp = static_cast<const char*>(next->ctx_.fc)) {
    for (int line = 0; line < kStackLines; ++line) __builtin_prefetch(sp + 64 * line);
  }
  if (FiberBase* after = next->run_next_) __builtin_prefetch(after);
}

void Worker::yield_slow(FiberBase* self) {
  if (self->cancel_requested_ && !deferring_cancel(self)) throw FiberCancelled();
  if (runq_.empty()) {
    // Alone: this yield is an activation, and the moment to look for new work.
    // When the tick would find none (quiet_tick: no push, no SQE, no op in
    // flight, no CQE, no timer due) keep going; that also moves the stall
    // detector's epoch. Otherwise go through the tick now, so a fiber that
    // yields between slices of work holds back no timer, push or completion.
    if (budget_ > 0) --budget_;
    if (quiet_tick()) return;
    // End this tick's budget (its activations counted first), so that
    // switch_away goes to the scheduler instead of picking us straight back.
    count_activations();
    budget_ = tick_base_ = 0;
  }
  self->state_ = FiberState::ready;
  runq_.push_back(self);
  switch_away(self);
}

void Worker::check_cancel() {
  FiberBase* f = t_state.fiber;
  if (f && f->cancel_requested_ && !deferring_cancel(f)) throw FiberCancelled();
}

bool Worker::deferring_cancel(const FiberBase* self) noexcept {
  // The running fiber's exception state is the thread's (context.hpp).
  return self->cancel_defer_ > 0 || t_state.eh->uncaught > 0;
}

bool Worker::parked_deferring_cancel(const FiberBase* f) noexcept {
  // A parked fiber's exception state was saved into its context at the switch.
  return f->cancel_defer_ > 0 || f->ctx_.eh.uncaught > 0;
}

void Worker::cancel_local(FiberBase* f) noexcept {
  if (f->state_ == FiberState::done) return;
  f->cancel_requested_ = true;
  // Not started: pick_next() ends it without running. Ready or running: its next
  // blocking call throws. Parked: wake it through its hook, unless it waits with
  // the cancellation deferred (it then sees it at its next blocking call).
  if (f->state_ == FiberState::parked && f->cancel_hook_ && !parked_deferring_cancel(f)) run_cancel_hook(f);
}

void Worker::run_cancel_hook(FiberBase* f) noexcept {
  CancelHook hook = std::exchange(f->cancel_hook_, nullptr);
  hook(f, f->cancel_arg_);
  // Still parked: the hook lost the claim to a notifier, a deadline or a
  // completion, which unparks it (a notifier on another thread perhaps only now).
  if (f->state_ == FiberState::parked) f->wake_owed_ = true;
}

bool Worker::wake_owed() const noexcept {
  for (const FiberBase* f = all_head_; f; f = f->all_next_)
    if (f->state_ == FiberState::parked && f->wake_owed_) return true;
  return false;
}

void Worker::request_cancel(FiberBase* f) noexcept {
  if (f->is_done()) return;
  // worker_ was set before the spawn returned the handle (Runtime::place or
  // start_fiber) and never changes: a fiber does not migrate.
  Worker* w = f->worker_;
  if (t_state.worker == w) {
    w->cancel_local(f);
    return;
  }
  // Only the fiber's worker may touch its state: a small fiber there does it.
  // Its callable holds a reference, so `f` outlives the hand-over even if the
  // handle goes; the reference goes with the callable, whether the small fiber
  // runs, is ended unrun by a stopping worker, or is refused (the runtime is
  // shutting down, and its shutdown cancels every fiber anyway).
  struct Ref {
    FiberBase* f;
    explicit Ref(FiberBase* g) noexcept : f(g) {
      f->refs_.fetch_add(1, std::memory_order_relaxed);  // the caller's handle keeps it alive meanwhile
    }
    Ref(Ref&& o) noexcept : f(std::exchange(o.f, nullptr)) {}
    Ref(const Ref&) = delete;
    Ref& operator=(const Ref&) = delete;
    Ref& operator=(Ref&&) = delete;
    ~Ref() {
      if (f) f->release_ref();
    }
  };
  try {
    auto cancel = [ref = Ref(f)] { ref.f->worker_->cancel_local(ref.f); };
    auto* c = new FiberImpl<decltype(cancel), void>(std::move(cancel));
    w->place_here(c, {.name = "weft-cancel"});  // deletes c if refused
    c->release_ref();                           // the handle's reference: detached
  } catch (...) {
  }
}

// ------------------------------------------------------- introspection ----

std::string Worker::dump_fibers() const {
  std::string out;
  for (const FiberBase* f = all_head_; f; f = f->all_next_) {
    out += "worker " + std::to_string(index_) + "  " + f->display_name() + "  " + state_name(f->state_);
    if (f->state_ == FiberState::parked) out += std::string("  waiting on ") + f->wait_reason_;
    out += '\n';
  }
  return out;
}

void Worker::add_stats(Stats& s) const {
  s.fibers_alive += alive_.get();
  s.fibers_spawned += spawned_.get();
  s.switches += switches_.get();
  s.cqes_reaped += cqes_.get();
  s.stale_completions += stale_.get();
  s.cq_overflow += cq_overflow_.get();
  s.wakes += wakes_.get();
  s.timers_fired += timers_fired_.get();
  s.sqes_submitted += ring_.submitted.get();
  s.sq_full += ring_.sq_full.get();
  s.sq_waits += sq_waits_.get();
  explore_.add_stats(s);
  s.enters += ring_.enters.get();
  s.stacks_live += stacks_live_.get();
  s.stack_mappings += stack_mappings_.get();
  s.files_registered += files_.live();
  if (epoll_) {
    s.epoll_waits += epoll_->waits.get();
    s.wakes += epoll_->wakes.get();
    s.stale_completions += epoll_->stale.get();
  }
  if (const WorkerSlot* net = net_slot_.load(std::memory_order_acquire)) net->add_stats(s);
}

}  // namespace weft::detail
