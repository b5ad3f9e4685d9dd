// net/socket.cpp — the fd owner: caller checks, ops counted while in flight, the
// close protocol of incident 002. See socket.hpp for the states and invariants.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <new>
#include <system_error>

#include <weft/net/socket.hpp>
#include <weft/net/socket_core.hpp>
#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/park.hpp>
#include <weft/runtime/io_op.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/uring/ops.hpp>

namespace weft::net {

using detail::SocketCore;
using weft::detail::IoKind;
using weft::detail::IoOp;
using weft::detail::t_state;
using weft::detail::Worker;

namespace {

[[noreturn]] void throw_wrong_worker(const SocketCore* c, const char* op) {
  weft::detail::throw_owned_elsewhere(
      std::string(op) + ": the socket" + subject_of(c), c->owner,
      "A socket is used by fibers of one worker at a time: move it into a fiber of the other worker (an idle socket "
      "changes hands when moved), run the work on its worker (Runtime::spawn_on), or pass data through a "
      "weft::Channel.");
}

// Registered files. The slot is installed by the first op on a worker and removed
// when another worker claims the socket, or before close(2). From the slot owner's
// thread the removal is queued on its ring; from any other thread the slot owner
// applies it at its next tick.
// A removal that failed (out of memory, or the ring refused the SQE): the table
// keeps a reference to the file, so the connection stays open until the runtime
// stops. Said once, from a noexcept path.
void log_slot_failure(const SocketCore* c, const std::exception& e) noexcept {
  try {
    log::logger().error("weft::net: socket{}: removing it from the registered-file table failed: {}", subject_of(c),
                        e.what());
  } catch (...) {
  }
}

}  // namespace

namespace detail {

void remove_slot(SocketCore* c) noexcept {
  const int slot = c->slot.load(std::memory_order_relaxed);
  if (slot < 0) return;
  Worker* w = c->slot_owner;
  try {
    if (t_state.worker == w)
      weft::detail::remove_file(w, slot);
    else
      weft::detail::remove_file_remote(w, &c->slot);
  } catch (const std::exception& e) {
    log_slot_failure(c, e);
  }
}

std::string subject_of(const SocketCore* c) {
  if (!c) return " (no socket)";
  std::string s = " (fd " + std::to_string(c->fd);
  if (c->role && c->known_address.family() != Address::Family::none)
    s += std::string(", ") + c->role + " " + c->known_address.to_string();
  return s + ")";
}

[[noreturn]] void throw_for(const SocketCore* c, Failure why, int res, const char* op) {
  throw_net_error(why, res, op, subject_of(c));
}

SocketCore* enter_op(SocketCore* c, const char* op) {
  if (!t_state.fiber) weft::detail::throw_not_in_fiber(op);
  weft::detail::explore_yield();  // tests only: nothing of the socket is touched yet
  if (!c) throw_for(c, Failure::use_after_close, 0, op);
  if (c->owner != t_state.worker) {
    if (c->owner) throw_wrong_worker(c, op);
    c->link = weft::detail::this_worker_link();  // released by a move: the first op claims it
    c->owner = t_state.worker;
  }
  weft::detail::check_cancel();
  if (c->closing.load(std::memory_order_acquire)) throw_for(c, Failure::closing, 0, op);
  if (c->fd < 0) throw_for(c, Failure::use_after_close, 0, op);
  return c;
}

// enter() for an op that goes through the ring: the socket is also installed in
// the owner's registered-file table (first op on this worker), after leaving the
// table of the worker that used it before.
SocketCore* enter_ring_op(SocketCore* c, const char* op) {
  enter_op(c, op);
  Worker* w = c->owner;
  if (c->slot_owner != w) {
    remove_slot(c);
    c->slot_owner = nullptr;
  }
  if (c->slot.load(std::memory_order_relaxed) < 0 && !c->fixed_refused &&
      weft::detail::install_file(w, c->fd, &c->slot) >= 0)
    c->slot_owner = w;
  return c;
}

void leave(SocketCore* c) noexcept {
  // The closer waits for the buffered receive too (it wakes it itself otherwise).
  if (--c->pending == 0 && c->drainer && !read_buffer_in_flight(c))
    weft::detail::unpark_local(std::exchange(c->drainer, nullptr));
}

OpCount::~OpCount() {
  leave(c_);
}

}  // namespace detail

using detail::enter_op;
using detail::enter_ring_op;
using detail::leave;
using detail::OpCount;
using detail::read_buffer_release;
using detail::remove_slot;
using detail::subject_of;
using detail::throw_for;

namespace {

// Before close(2): while the table holds the file, closing the fd would not end
// the connection (nor free a listener's port). From a fiber of the slot's worker
// the removal is an op we wait for, so the close(2) that follows drops the file's
// last reference and close() returns with the socket really closed. From anywhere
// else it is queued (or handed to that worker), and the connection ends when its
// ring issues it, at its next tick. False: the removal op failed (logged); it is
// queued again like a remote one, and the table keeps the file until it runs.
// The slot stays the socket's until its removal has run or is queued: freed
// before, another socket could be installed in it ahead of a removal still waiting
// for room in the SQ (which would then empty that socket's slot), or, when the op
// cannot be had at all, take a slot that still holds this file.
bool close_slot(SocketCore* c) noexcept {
  const int slot = c->slot.load(std::memory_order_relaxed);
  if (slot < 0) return true;
  Worker* w = c->slot_owner;
  if (!t_state.fiber || t_state.worker != w) {
    remove_slot(c);
    return true;
  }
  try {
    const int r = weft::detail::remove_file_now(w, slot);
    if (r < 0) detail::throw_net_error(detail::Failure::errno_result, r, "FILES_UPDATE", "");
    weft::detail::forget_file(w, slot);
    return true;
  } catch (const std::exception& e) {
    log_slot_failure(c, e);
    remove_slot(c);  // queued now, or at the worker's next tick; frees the slot then
    return false;
  }
}

// Which faults the explorer (tests only) may inject into this socket's ops; the
// engine refines it by the op (an accept, a connect, a transfer).
weft::detail::OpKind op_kind(const SocketCore* c) noexcept {
  return c->stream ? weft::detail::OpKind::stream_io : weft::detail::OpKind::dgram_io;
}

// The slot was empty (-EBADF: the FILES_UPDATE that installed it failed): drop it
// and run the op again on the fd; nothing was done by the failed attempt. Out of
// line, so the logging's buffers stay off the stack of every op.
[[gnu::noinline, gnu::cold]] weft::detail::OpEnd retry_on_fd(SocketCore* c, Worker* w, IoOp& io) {
  log::logger().debug("weft::net: socket{}: registered-file slot {} refused (-EBADF); using the fd", subject_of(c),
                      io.fixed);
  c->fixed_refused = true;
  remove_slot(c);
  io.fixed = -1;
  return weft::detail::await_io(w, io, nullptr, op_kind(c));
}

// One op on the socket, run by the worker's engine, naming the socket's slot when
// it has one and the socket as the fd's owner. `io` lives in this frame until the
// op has ended (await_io's rule).
weft::detail::OpEnd await_socket_op(SocketCore* c, Worker* w, const IoOp& op) {
  IoOp io = op;
  io.fixed = c->slot.load(std::memory_order_relaxed);
  io.owner = c->id;
  const weft::detail::OpEnd end = weft::detail::await_io(w, io, nullptr, op_kind(c));
  if (end.res == -EBADF && io.fixed >= 0 && !c->closing.load(std::memory_order_acquire)) [[unlikely]]
    return retry_on_fd(c, w, io);
  return end;
}

// One op counted in c->pending. Returns its raw result, or throws when it ended
// because the fiber was cancelled, the socket closed or its linked timeout fired:
// the op's own CQEs say which (failure_of(), net/error.cpp); no clock is read.
// -EINTR not explained by those is returned for the caller to retry. A fiber
// cancelled while the op was in flight gets FiberCancelled whenever the op failed,
// also with an errno of its own (a connect refused as the cancel came): only a
// result the call returns (bytes moved, a new fd) stands against a cancellation.
int counted_op(SocketCore* c, Worker* w, const IoOp& io, const char* op) {
  weft::detail::OpEnd end;
  bool closing;
  {
    const OpCount counted(c);
    end = await_socket_op(c, w, io);
    closing = c->closing.load(std::memory_order_acquire);
  }
  const detail::Failure why = detail::failure_of(end, closing);
  if (why != detail::Failure::errno_result) {
    weft::detail::check_cancel();  // FiberCancelled first, now that the completion has arrived
    throw_for(c, why, end.res, op);
  }
  if (end.res < 0) weft::detail::check_cancel();
  return end.res;
}

SocketCore* new_core(int fd) {
  SocketCore* c = nullptr;
  try {
    c = new SocketCore;
    c->link = weft::detail::this_worker_link();
  } catch (...) {
    delete c;
    ::close(fd);
    throw;
  }
  c->fd = fd;
  c->id = weft::detail::new_io_owner();
  c->owner = t_state.worker;
  return c;
}

// Asks the engine to end every op pending on the fd (IoKind::cancel_fd; on
// io_uring an ASYNC_CANCEL by fd, ALL) and waits for the cancel itself, so it is
// issued before the fd number can be closed and reused (it could cancel another
// socket's ops). It names only the fd (nothing on a stack). Each op completes with
// -ECANCELED, or with its own result if it won the race. Where that cannot be done
// (no fd cancel before 5.19, the cancel refused, or no op slot or SQE to be had: a
// throw), shutdown(2) ends the socket's pending ops instead: receives see 0, sends
// EPIPE, accepts EINVAL, all reported as "closed" since the socket is closing.
void cancel_pending(SocketCore* c, Worker* w) noexcept {
  const int fd = c->fd;
  IoOp cancel = IoOp::on_fd(IoKind::cancel_fd, fd);
  cancel.owner = c->id;
  int r;
  try {
    r = weft::detail::await_io(w, cancel).res;
  } catch (...) {
    r = -ENOMEM;
  }
  if (r < 0 && r != -ENOENT && r != -EALREADY) ::shutdown(fd, SHUT_RDWR);
}

}  // namespace

// --------------------------------------------------------------- lifetime ----

Socket::~Socket() {
  close();
  delete core_;
}

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    close();
    delete core_;
    core_ = std::exchange(o.core_, nullptr);
    release_if_idle();
  }
  return *this;
}

void Socket::release_if_idle() noexcept {
  // Only an idle socket may change hands: ops in flight tie it to their worker.
  // Its registered-file slot stays until another worker claims it.
  if (core_ && core_->pending == 0 && !core_->closing.load(std::memory_order_acquire) &&
      !detail::read_buffer_busy(core_))
    core_->owner = nullptr;
}

Socket Socket::open(const char* op, int domain, int type, int protocol) {
  if (!t_state.fiber) weft::detail::throw_not_in_fiber(op);
  const int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
  if (fd < 0) detail::throw_net_error(detail::Failure::errno_result, -errno, op, "");
  SocketCore* c = new_core(fd);
  c->stream = (type & 0xf) == SOCK_STREAM;
  return Socket(c);
}

Socket Socket::adopt(const char* op, int fd) {
  if (!t_state.fiber) {
    ::close(fd);
    weft::detail::throw_not_in_fiber(op);
  }
  return Socket(new_core(fd));
}

bool Socket::is_open() const noexcept {
  return core_ && core_->fd >= 0 && !core_->closing.load(std::memory_order_acquire);
}
int Socket::fd() const noexcept {
  return core_ ? core_->fd : -1;
}

void Socket::close() noexcept {
  if (core_ && t_state.fiber) weft::detail::explore_yield();  // tests only: before anything is touched
  SocketCore* c = core_;
  if (!c || c->fd < 0) return;
  Worker* w = t_state.worker;
  if (t_state.fiber && !c->owner) {
    // Released by a move (so idle): this fiber's worker takes it, as an op would.
    try {
      c->link = weft::detail::this_worker_link();
    } catch (...) {
      // Out of memory: the old link only serves a close from another thread, and
      // none can come while this close runs.
    }
    c->owner = w;
  }
  if (t_state.fiber && c->owner == w) return detail::close_owned(c, w);
  core_ = nullptr;
  if (!c->owner) return detail::close_idle(c);  // released by a move: nothing can be pending
  // A plain thread waits for the worker; a fiber of another worker parks; the
  // scheduler context (a Timer callback) must not block, so it lets it run on.
  detail::close_elsewhere(c, /*wait=*/t_state.fiber != nullptr || w == nullptr);
}

namespace detail {

void close_owned(SocketCore* c, Worker* w) noexcept {
  if (c->fd < 0) return;
  if (c->closing.load(std::memory_order_acquire)) {
    // Another fiber is closing it: wait until the fd is closed (the core may be
    // gone once we are woken, so nothing is touched after the park).
    CloserNode node{t_state.fiber, c->closers};
    c->closers = &node;
    weft::detail::park_running("net close: another fiber is closing", nullptr, nullptr);
    return;
  }
  // First of all: no op is admitted from here on, so none can start while this
  // fiber parks below and re-install the socket in a file table or outlive the fd.
  c->closing.store(true, std::memory_order_relaxed);  // see SocketCore::closing
  if (c->pending > 0 || read_buffer_in_flight(c)) {
    cancel_pending(c, w);
    if (c->pending > 0 || read_buffer_in_flight(c)) {
      // No cancel hook: the wait ends only when the kernel is done with the fd;
      // the last op out (leave()), or the buffered receive's last CQE, unparks us.
      c->drainer = t_state.fiber;
      weft::detail::park_running("net close: draining pending ops", nullptr, nullptr);
    }
  }
  read_buffer_release(c);
  // A table that may still hold the file would keep the connection open after
  // close(2): end it now.
  if (!close_slot(c)) ::shutdown(c->fd, SHUT_RDWR);
  // Nothing is pending on the fd: its engine drops what it keeps for it.
  weft::detail::forget_fd(w, c->fd, c->id);
  ::close(c->fd);
  c->fd = -1;
  c->closing.store(false, std::memory_order_relaxed);
  // Fibers that called close() meanwhile; they touch nothing once woken.
  for (CloserNode* n = std::exchange(c->closers, nullptr); n;) {
    CloserNode* next = n->next;
    weft::detail::unpark_local(n->fiber);
    n = next;
  }
}

void close_idle(SocketCore* c) noexcept {
  read_buffer_release(c);
  remove_slot(c);
  if (c->fd >= 0) {
    // On the thread whose engine ran its ops, that engine forgets the fd. Anywhere
    // else it cannot be asked; it sees a later holder of the fd number by its id.
    if (weft::detail::is_link_thread(c->link.get())) weft::detail::forget_fd(t_state.worker, c->fd, c->id);
    ::close(c->fd);
  }
  delete c;
}

}  // namespace detail

// ------------------------------------------------------------------- ops ----

int Socket::run(const char* op, const IoOp& io, short poll_events) {
  SocketCore* c = enter_ring_op(core_, op);
  Worker* w = c->owner;
  for (;;) {
    // Between counted_op's leave() and here nothing switches, so `c` is still live
    // and still open (closing would have made counted_op throw).
    const int res = counted_op(c, w, io, op);
    if (res >= 0) return res;
    if (res == -EINTR) continue;
    if (res == -EAGAIN && poll_events != 0) {
      // Only on old kernels or odd fds: wait for readiness, then retry the op.
      IoOp poll = IoOp::on_fd(IoKind::poll, c->fd);
      poll.flags = poll_events;
      poll.deadline = io.deadline;
      const int pr = counted_op(c, w, poll, op);
      if (pr < 0 && pr != -EINTR) throw_for(c, detail::Failure::errno_result, pr, op);
      if (c->closing.load(std::memory_order_acquire)) {
        // A close began while the poll was pending and the poll still reported
        // readiness (the close's fallback shutdown(2) makes the fd ready): the
        // retry would be a new op on a closing socket, one its cancel never saw,
        // and would end as an ordinary result (0, EINVAL) once the fd is closed.
        weft::detail::check_cancel();
        throw_for(c, detail::Failure::closed, 0, op);
      }
      continue;
    }
    throw_for(c, detail::Failure::errno_result, res, op);
  }
}

void Socket::backoff(const char* op, Timeout d, Deadline deadline) {
  SocketCore* c = enter_op(core_, op);
  const Deadline until = Deadline::earlier(Deadline::after(d), deadline);
  bool closing;
  {
    const OpCount counted(c);
    weft::detail::sleep_until_ns(until.ns());
    closing = c->closing.load(std::memory_order_acquire);
  }
  if (closing) throw_for(c, detail::Failure::closed, 0, op);
  // The sleep ran to its end (a cancellation throws): if that end was the
  // call's deadline, the call has timed out. No clock is read.
  if (until == deadline) throw_for(c, detail::Failure::timed_out, 0, op);
}

int Socket::checked_fd(const char* op) const {
  return enter_op(core_, op)->fd;
}

// -------------------------------------------------- known address, errors ----

void Socket::set_known_address(const char* role, const Address& a) {
  if (!core_) return;
  core_->role = role;
  core_->known_address = a;
}

const Address& Socket::known_address() const {
  static const Address kNone;
  return core_ ? core_->known_address : kNone;
}

std::string Socket::subject() const {
  return subject_of(core_);
}

void Socket::fail(int res, const char* op) const {
  throw_for(core_, detail::Failure::errno_result, res, op);
}

// ------------------------------------------------------ synchronous calls ----

void Socket::set_option(const char* op, int level, int name, int value) {
  const int fd = checked_fd(op);
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) fail(-errno, op);
}

int Socket::get_option(const char* op, int level, int name) const {
  const int fd = checked_fd(op);
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, level, name, &value, &len) != 0) fail(-errno, op);
  return value;
}

Address Socket::local_address(const char* op) const {
  const int fd = checked_fd(op);
  Address a;
  socklen_t len = Address::capacity();
  if (::getsockname(fd, a.storage(), &len) != 0) fail(-errno, op);
  a.set_size(len);
  return a;
}

Address Socket::remote_address(const char* op) const {
  const int fd = checked_fd(op);
  Address a;
  socklen_t len = Address::capacity();
  if (::getpeername(fd, a.storage(), &len) != 0) fail(-errno, op);
  a.set_size(len);
  return a;
}

void Socket::shutdown(const char* op, Shutdown how) {
  const int fd = checked_fd(op);
  if (::shutdown(fd, static_cast<int>(how)) != 0) fail(-errno, op);
}

}  // namespace weft::net
