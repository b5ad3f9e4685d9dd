// runtime/uring/worker_ops.cpp — what a fiber of the Evented worker waits on: a
// sleep (a TimerNode on its stack), an op (one OpSlot, an SQE, optionally a linked
// timeout), a multishot op whose CQEs go to a sink, and the provided-buffer ring;
// and runtime/uring/ops.hpp, the same offered to net/ without the Worker.
//
// Invariants (see worker.hpp for the tick and the op slots):
//  - All of it runs on the worker's own thread; await_op and sleep_until from a
//    fiber of this worker, the rest from a fiber or the scheduler context.
//  - A parked fiber is woken exactly once: by its timer or by its cancel hook for
//    a sleep (the hook claims the node only while it is still queued), and by the
//    op's final CQE for an op (a cancel only asks the kernel, the fiber stays
//    parked until that CQE, so the kernel never writes into a dead frame).
//  - A slot goes back to the table only after its final CQE: await_op releases it
//    after the wake, a multishot slot is freed by the CQE without F_MORE.
//  - An op takes its SQEs only once the ring has room for all of them (op and
//    linked timeout), so a pair is never split; without room it waits in the op
//    table's overflow queue and the tick issues it in order. Its slot is taken
//    first, so a throw (no memory for a slot) leaves nothing issued. A cancel
//    that finds no room is marked on its slot and issued at the next tick.
#include <cerrno>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/epoll/engine.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/park.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/uring/io_prep.hpp>
#include <weft/runtime/uring/worker.hpp>

namespace weft::detail {

namespace {
struct SleepNode : TimerNode {
  FiberBase* fiber = nullptr;
};
}  // namespace

void Worker::sleep_until(std::int64_t deadline_ns) {
  SleepNode node;
  node.fiber = t_state.fiber;
  node.deadline_ns = deadline_ns;
  node.fire_ = [](TimerNode* t) {
    FiberBase* f = static_cast<SleepNode*>(t)->fiber;
    f->worker_->unpark_local(f);
  };
  check_cancel();
  timers_.push(&node);
  park_current(
      "sleep",
      [](FiberBase* f, void* arg) {
        auto* n = static_cast<SleepNode*>(arg);
        if (n->queued()) {  // claim: the timer has not fired, so nobody else will wake us
          f->worker_->timers_.erase(n);
          f->worker_->unpark_local(f);
        }
      },
      &node);
  check_cancel();
}

// ------------------------------------------------------------------ ops ----

void Worker::wait_for_sq_room(unsigned n) {
  while (!ring_.reserve(n)) {
    check_cancel();
    sq_waits_.add();
    // Through the scheduler's tick, which reaps the completions the kernel wants
    // gone before it takes more SQEs; then try again.
    FiberBase* self = t_state.fiber;
    count_activations();
    budget_ = tick_base_ = 0;
    self->state_ = FiberState::ready;
    runq_.push_back(self);
    switch_away(self);
  }
}

namespace {
// The fault class of an op the caller hinted as a socket or file op (explorer.hpp).
OpKind refine(OpKind hint, std::uint8_t opcode) noexcept {
  if (hint == OpKind::other) return hint;
  switch (opcode) {
    case IORING_OP_ACCEPT:
      return OpKind::accept;
    case IORING_OP_CONNECT:
      return OpKind::connect;
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_READV:
    case IORING_OP_WRITEV:
    case IORING_OP_RECV:
    case IORING_OP_SEND:
    case IORING_OP_RECVMSG:
    case IORING_OP_SENDMSG:
      return hint;
    default:
      return OpKind::other;
  }
}
}  // namespace

void Worker::issue(std::uint32_t idx) noexcept {
  OpSlot& s = ops_.at(idx);
  io_uring_sqe* sqe = ring_.take();
  s.prep(sqe, s.prep_arg);
  if (explore_.on()) [[unlikely]] {
    const OpKind kind = refine(static_cast<OpKind>(s.kind), sqe->opcode);
    if (const int err = explore_.fail_op(kind, s.pending == 2); err != 0 && held_room(2)) {
      // Never issued: a NOP takes its place, and its CQEs (the errno, and the
      // linked timeout's) arrive at the next reap, as the kernel's would. An
      // injected -ECANCELED is the deadline: its timeout's CQE says it fired
      // (-ETIME); otherwise the op ended first (-ECANCELED).
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, kTagIgnore);
      held_.push_back({ops_.user_data(idx), err, 0, ticks_});
      if (s.pending == 2)
        held_.push_back({ops_.user_data(idx, true), err == -ECANCELED ? -ETIME : -ECANCELED, 0, ticks_});
      return;
    }
    switch (sqe->opcode) {  // the ops whose len is a byte count
      case IORING_OP_READ:
      case IORING_OP_WRITE:
      case IORING_OP_RECV:
      case IORING_OP_SEND:
        sqe->len = explore_.shorten(kind, sqe->len);
        break;
      default:
        break;
    }
  }
  io_uring_sqe_set_data64(sqe, ops_.user_data(idx));
  if (s.pending == 2) {  // with its linked timeout, in the same submit
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe* t = ring_.take();
    io_uring_prep_link_timeout(t, &s.ts, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(t, ops_.user_data(idx, true));
  }
}

OpEnd Worker::await_op(PrepFn prep, void* arg, Deadline deadline, std::uint32_t* cqe_flags, OpKind kind) {
  if (epoll_) [[unlikely]]
    fatalf("worker %u: an io_uring op (await_op) on a worker that runs epoll: describe it as an IoOp (await_io)",
           index_);
  FiberBase* self = t_state.fiber;
  const bool linked = !deadline.is_none();
  const std::uint8_t sqes = linked ? 2 : 1;
  if (explore_.on() && explore_.enomem()) [[unlikely]]
    throw std::bad_alloc();                      // as ops_.acquire() growing the table would
  const std::uint32_t idx = ops_.acquire(sqes);  // may throw bad_alloc: nothing issued yet
  OpSlot& s = ops_.at(idx);                      // stable: slots live in fixed chunks
  s.prep = prep;
  s.prep_arg = arg;
  s.kind = static_cast<std::uint8_t>(kind);
  if (linked) {
    s.ts.tv_sec = deadline.ns() / 1'000'000'000;
    s.ts.tv_nsec = deadline.ns() % 1'000'000'000;
  }
  s.waiter = self;
  if (ops_.overflow_empty() && ring_.reserve(sqes)) [[likely]] {
    issue(idx);
  } else {
    ops_.enqueue(idx);  // the tick issues it, in order, when there is room
    sq_waits_.add();
  }
  park_current(
      "io",
      [](FiberBase* f, void* a) {
        Worker* w = f->worker_;
        auto i = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(a));
        OpSlot& slot = w->ops_.at(i);
        if (slot.queued) {  // never given to the kernel: it ends here (nothing is held for it)
          w->ops_.dequeue(i);
          slot.res = -ECANCELED;
          slot.pending = 0;
          w->unpark_local(f);
          return;
        }
        // Ask the kernel to cancel; the fiber stays parked until the op's final CQE.
        if (slot.cancel_sent) return;
        slot.cancel_sent = true;
        w->cancel_op(w->ops_.user_data(i));
      },
      reinterpret_cast<void*>(static_cast<std::uintptr_t>(idx)));
  const OpEnd end{s.res, OpEnd::cause_of(s.res, s.timer_fired, s.cancel_sent)};
  if (cqe_flags) *cqe_flags = s.cqe_flags;
  ops_.release(idx);
  return end;
}

OpEnd Worker::await_io(const IoOp& op, std::uint32_t* cqe_flags, OpKind hint) {
  if (epoll_) [[unlikely]] {
    if (cqe_flags) *cqe_flags = 0;
    return epoll_->run(op, hint);
  }
  // `op` lives in the caller's frame, parked until the op's last CQE, so a prep
  // that runs at a later tick (the overflow queue) still reads it.
  return await_op(
      [](io_uring_sqe* sqe, void* a) { prep_io(sqe, *static_cast<const IoOp*>(a), t_state.worker->ring_info()); },
      const_cast<IoOp*>(&op), op.deadline, cqe_flags, hint);
}

std::uint64_t Worker::arm_multishot(PrepFn prep, void* arg, void (*sink)(void*, int, std::uint32_t), void* ctx) {
  if (epoll_) return 0;             // no ring: the caller does without the op
  if (!ring_.reserve(1)) return 0;  // the SQ stays full: the caller reads another way
  const std::uint32_t idx = ops_.acquire(1);
  OpSlot& s = ops_.at(idx);
  s.sink = sink;
  s.sink_ctx = ctx;
  io_uring_sqe* sqe = ring_.take();
  prep(sqe, arg);
  const std::uint64_t ud = ops_.user_data(idx);
  io_uring_sqe_set_data64(sqe, ud);
  return ud;
}

void Worker::cancel_op(std::uint64_t user_data) noexcept {
  if (epoll_) return;  // no io_uring op can be in flight
  if (io_uring_sqe* c = ring_.try_get_sqe()) {
    io_uring_prep_cancel64(c, user_data, 0);
    io_uring_sqe_set_data64(c, kTagIgnore);
    return;
  }
  // No room now: the next tick issues it (the op stays in flight until then).
  std::uint32_t idx;
  bool timeout_cqe;
  if (ops_.lookup(user_data, &idx, &timeout_cqe)) ops_.defer_cancel(idx);
}

bool Worker::held_room(std::size_t n) noexcept {
  try {
    held_.reserve(held_.size() + n);
    return true;
  } catch (...) {
    return false;  // no memory to hold it: the fault is not injected
  }
}

void Worker::explore_point() {
  FiberBase* self = t_state.fiber;
  if (!self || !explore_.yield_now()) return;
  self->state_ = FiberState::ready;
  runq_.push_back(self);
  switch_away(self);
}

void Worker::deliver_held() noexcept {
  // Due ones in the order they were held; a dispatch never adds to held_ (only
  // await_op and reap do), so the indices stay valid.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < held_.size(); ++i) {
    if (held_[i].due > ticks_) {
      held_[kept++] = held_[i];
      continue;
    }
    io_uring_cqe cqe{};
    cqe.user_data = held_[i].user_data;
    cqe.res = held_[i].res;
    cqe.flags = held_[i].flags;
    dispatch_cqe(&cqe);
  }
  held_.resize(kept);
}

void Worker::retry_deferred() noexcept {
  while (!ops_.overflow_empty()) {
    const std::uint32_t idx = ops_.overflow_front();
    if (!ring_.reserve(ops_.at(idx).pending)) break;
    ops_.dequeue(idx);
    issue(idx);
  }
  if (!wake_read_armed_) arm_wake_read();
  if (ops_.deferred_cancels() == 0) return;
  ops_.for_each_in_flight([this](std::uint32_t idx) {
    if (!ops_.at(idx).cancel_deferred) return;
    io_uring_sqe* c = ring_.try_get_sqe();
    if (!c) return;
    ops_.cancel_issued(idx);
    io_uring_prep_cancel64(c, ops_.user_data(idx), 0);
    io_uring_sqe_set_data64(c, kTagIgnore);
  });
}

void Worker::make_buf_ring() {
  buf_ring_failed_ = true;  // until it works: one attempt per worker
  if (cfg_.recv_buffers == 0) return;
  int err = 0;
  buf_ring_ = BufRing::create(ring_.raw(), this, cfg_.recv_buffers, cfg_.recv_buffer_size, &err);
  if (buf_ring_) {
    buf_ring_failed_ = false;
    log::logger().debug("worker {}: provided-buffer ring of {} x {} bytes", index_, cfg_.recv_buffers,
                        cfg_.recv_buffer_size);
  } else {
    log::logger().info("worker {}: no provided-buffer ring ({}); buffered reads use plain receives", index_,
                       errno_code(err).message());
  }
}

void Worker::submit_raw(PrepFn prep, void* arg, std::uint64_t user_data) {
  if (epoll_) fatalf("worker %u: submit_raw() is an io_uring test hook; this worker runs epoll", index_);
  wait_for_sq_room(1);
  io_uring_sqe* sqe = ring_.take();
  prep(sqe, arg);
  io_uring_sqe_set_data64(sqe, user_data);
}

// ------------------------------------------ runtime/uring/ops.hpp, for net/ ----

OpEnd await_io(Worker* w, const IoOp& op, std::uint32_t* cqe_flags, OpKind hint) {
  return w->await_io(op, cqe_flags, hint);
}

bool engine_supports(const Worker* w, IoKind k) noexcept {
  return w->engine() == Engine::epoll || uring_supports(w->ring_info(), k);
}

Engine worker_engine(const Worker* w) noexcept {
  return w->engine();
}

void forget_fd(Worker* w, int fd, std::uint64_t owner) noexcept {
  if (EpollEngine* e = w->epoll()) e->forget_fd(fd, owner);
}

std::uint64_t arm_multishot_recv(Worker* w, int fd, int fixed, void (*sink)(void*, int, std::uint32_t), void* ctx) {
  if (w->engine() == Engine::epoll) return 0;  // no provided buffers: the caller reads plainly
  IoOp op = IoOp::on_fd(IoKind::recv, fd);
  op.fixed = fixed;
  return w->arm_multishot(
      [](io_uring_sqe* sqe, void* a) {
        const auto* o = static_cast<const IoOp*>(a);
        io_uring_prep_recv_multishot(sqe, o->fd, nullptr, 0, 0);
        if (o->fixed >= 0) {
          sqe->fd = o->fixed;
          sqe->flags |= IOSQE_FIXED_FILE;
        }
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BufRing::kGroup;
      },
      &op, sink, ctx);
}

int remove_file_now(Worker* w, int slot) {
  return w->await_op(&FixedFiles::prep_remove, &slot).res;
}

OpEnd await_op(Worker* w, PrepFn prep, void* arg, Deadline deadline, std::uint32_t* cqe_flags, OpKind kind) {
  return w->await_op(prep, arg, deadline, cqe_flags, kind);
}

std::uint64_t arm_multishot(Worker* w, PrepFn prep, void* arg, void (*sink)(void*, int, std::uint32_t), void* ctx) {
  return w->arm_multishot(prep, arg, sink, ctx);
}

void cancel_op(Worker* w, std::uint64_t user_data) noexcept {
  w->cancel_op(user_data);
}

void explore_yield() {
  t_state.worker->explore_yield();
}

const RingInfo& ring_info(const Worker* w) noexcept {
  return w->ring_info();
}

const Config& worker_config(const Worker* w) noexcept {
  return w->config();
}

BufRing* buf_ring(Worker* w) {
  return w->buf_ring();
}

int install_file(Worker* w, int fd, std::atomic<int>* holder) {
  if (w->epoll()) return -1;  // no registered files there: ops name the fd
  return w->files().install(w->ring(), fd, holder);
}

void remove_file(Worker* w, int slot) {
  w->files().remove(w->ring(), slot);
}

void forget_file(Worker* w, int slot) {
  w->files().forget(slot);
}

void remove_file_remote(Worker* w, std::atomic<int>* holder) {
  w->remove_file_remote(holder);
}

void place_on(Worker* w, FiberBase* f, const SpawnOptions& opts) {
  w->place_here(f, opts);
}

void throw_owned_elsewhere(const std::string& subject, const Worker* owner, std::string_view advice) {
  throw CrossRuntimeError(cross_domain_message(subject + " belongs to worker " + std::to_string(worker_index(owner)) +
                                                   " of runtime '" + runtime_name(worker_runtime(owner)) + "'",
                                               advice));
}

WorkerSlot* net_slot(Worker* w) noexcept {
  return w->net_slot();
}

void set_net_slot(Worker* w, std::unique_ptr<WorkerSlot> slot) noexcept {
  w->set_net_slot(std::move(slot));
}

RecvCqe recv_cqe(std::uint32_t flags) noexcept {
  RecvCqe r;
  r.has_buffer = (flags & IORING_CQE_F_BUFFER) != 0;
  r.buffer = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
  r.more = (flags & IORING_CQE_F_MORE) != 0;
  return r;
}

}  // namespace weft::detail
