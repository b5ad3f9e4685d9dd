// runtime/epoll/engine.cpp — the epoll engine: registrations, the syscall tried
// first, the park on readiness, and the tick's harvest. See engine.hpp.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <ctime>

#include <weft/runtime/epoll/engine.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/uring/worker.hpp>

#include "weft_build_config.hpp"

#if WEFT_VALGRIND
#include <valgrind/valgrind.h>
#endif

namespace weft::detail {

namespace {
// epoll_pwait2 (nanosecond timeouts, 5.11) until the kernel, a seccomp filter or
// valgrind (which does not know it) refuses it; then epoll_wait with milliseconds
// rounded up, for the whole process. relaxed: a hint each engine reads before its
// wait; a stale true costs one more refused call.
std::atomic<bool> g_pwait2{true};

bool pwait2_usable() noexcept {
#if WEFT_VALGRIND
  if (RUNNING_ON_VALGRIND) return false;
#endif
  return g_pwait2.load(std::memory_order_relaxed);
}

constexpr std::uint64_t kWakeData = ~std::uint64_t{0};  // the worker's eventfd
constexpr int kBatch = 128;                             // events per epoll_wait

bool writes(IoKind k) noexcept {
  switch (k) {
    case IoKind::send:
    case IoKind::sendmsg:
    case IoKind::write:
    case IoKind::writev:
    case IoKind::connect:
      return true;
    default:
      return false;
  }
}

// Whether the socket's receive side is shut down (by shutdown(2), here or by a
// close from another thread): a blocking receive would return 0 there, where a
// datagram socket's non-blocking one keeps saying EAGAIN and no edge comes again.
bool receive_shut_down(int fd) noexcept {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP) != 0;
}

// The fault class of an op the caller hinted as a socket or file op (explorer.hpp).
OpKind refine(OpKind hint, IoKind k) noexcept {
  if (hint == OpKind::other) return hint;
  if (k == IoKind::accept) return OpKind::accept;
  if (k == IoKind::connect) return OpKind::connect;
  return is_socket_transfer(k) || k == IoKind::read || k == IoKind::write ? hint : OpKind::other;
}

std::uint64_t event_data(int fd, std::uint32_t gen) noexcept {
  return (std::uint64_t{gen} << 32) | static_cast<std::uint32_t>(fd);
}
}  // namespace

struct EpollEngine::Waiter : TimerNode {
  EpollEngine* engine = nullptr;
  FiberBase* fiber = nullptr;
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  int fd = -1;
  bool write = false;
  bool linked = false;
  End end = End::none;
};

EpollEngine::~EpollEngine() {
  if (epfd_ >= 0) ::close(epfd_);
}

void EpollEngine::init(int wake_fd) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw StartupError(errno, "weft: epoll_create1 for the worker failed");
  wake_fd_ = wake_fd;
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: read (drained) whenever it is reported
  ev.data.u64 = kWakeData;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd, &ev) != 0)
    throw StartupError(errno, "weft: registering the worker's eventfd with epoll failed");
}

// ------------------------------------------------------------ registration ----

EpollEngine::FdState* EpollEngine::attach(int fd, std::uint64_t owner, int* err) {
  if (fd < 0) {
    *err = EBADF;
    return nullptr;
  }
  if (static_cast<std::size_t>(fd) >= fds_.size())
    fds_.resize(std::max<std::size_t>(static_cast<std::size_t>(fd) + 1, fds_.size() * 2));  // may throw bad_alloc
  FdState& s = fds_[static_cast<std::size_t>(fd)];
  if (s.registered && owner != 0 && s.owner == owner) return &s;
  if (s.registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);  // a former owner's (gone or moved)
  s.registered = false;
  // Every op here is tried without blocking the worker: accept and connect, which
  // take no per-call flag, need the fd itself non-blocking.
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || (!(fl & O_NONBLOCK) && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)) {
    *err = errno;
    return nullptr;
  }
  ++s.gen;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = event_data(fd, s.gen);
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0 &&
      (errno != EEXIST || ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0)) {
    *err = errno;  // EPERM: a regular file or a directory, which epoll cannot watch
    return nullptr;
  }
  s.registered = true;
  s.owner = owner;
  s.readable = s.writable = true;  // unknown: the first attempt finds out
  s.hung_up = false;
  return &s;
}

void EpollEngine::forget_fd(int fd, std::uint64_t owner) noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
  FdState& s = fds_[static_cast<std::size_t>(fd)];
  if (!s.registered || s.owner != owner) return;
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  s.registered = false;
  s.owner = 0;
}

// ------------------------------------------------------------------ waiting ----

void EpollEngine::unlink(Waiter* n) noexcept {
  FdState& s = n->engine->fds_[static_cast<std::size_t>(n->fd)];
  Waiter*& head = n->write ? s.writers : s.readers;
  if (n->prev)
    n->prev->next = n->next;
  else
    head = n->next;
  if (n->next) n->next->prev = n->prev;
  n->prev = n->next = nullptr;
  n->linked = false;
}

void EpollEngine::finish(Waiter* n, End why) noexcept {
  unlink(n);
  --waiting_;
  n->end = why;
  if (n->queued()) w_.timers().erase(n);
  w_.unpark_local(n->fiber);
}

void EpollEngine::wake_list(Waiter*& head, End why) noexcept {
  while (head) finish(head, why);  // finish() unlinks the head
}

EpollEngine::End EpollEngine::wait(int fd, bool write, Deadline deadline) {
  Waiter n;
  n.engine = this;
  n.fiber = t_state.fiber;
  n.fd = fd;
  n.write = write;
  FdState& s = fds_[static_cast<std::size_t>(fd)];
  Waiter*& head = write ? s.writers : s.readers;
  // FIFO: the list is nearly always empty or one long.
  Waiter* tail = head;
  while (tail && tail->next) tail = tail->next;
  n.prev = tail;
  (tail ? tail->next : head) = &n;
  n.linked = true;
  ++waiting_;
  if (!deadline.is_none()) {
    n.deadline_ns = deadline.ns();
    n.fire_ = [](TimerNode* t) {
      auto* w = static_cast<Waiter*>(t);
      w->engine->finish(w, End::timed_out);
    };
    w_.timers().push(&n);
  }
  w_.park_current(
      "io (epoll readiness)",
      [](FiberBase*, void* a) {
        auto* w = static_cast<Waiter*>(a);
        if (w->linked) w->engine->finish(w, End::cancelled);  // else already woken
      },
      &n);
  return n.end;
}

int EpollEngine::cancel_fd(int fd) noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return 0;
  FdState& s = fds_[static_cast<std::size_t>(fd)];
  wake_list(s.readers, End::cancelled);
  wake_list(s.writers, End::cancelled);
  return 0;
}

// ---------------------------------------------------------------------- ops ----

OpEnd EpollEngine::run(const IoOp& op_in, OpKind hint) {
  const IoOp* opp = &op_in;
  IoOp shortened;
  if (Explorer& ex = w_.explorer(); ex.on()) [[unlikely]] {
    // The faults the io_uring engine's issue() injects, the same way: an errno
    // instead of the op (-ECANCELED standing for its deadline), a short transfer.
    const OpKind kind = refine(hint, op_in.kind);
    const bool linked = !op_in.deadline.is_none();
    if (const int err = ex.fail_op(kind, linked); err != 0)
      return {err, OpEnd::cause_of(err, err == -ECANCELED && linked, false)};
    if (op_in.kind == IoKind::recv || op_in.kind == IoKind::send || op_in.kind == IoKind::read ||
        op_in.kind == IoKind::write) {
      shortened = op_in;
      shortened.len = ex.shorten(kind, op_in.len);
      opp = &shortened;
    }
  }
  const IoOp& op = *opp;
  switch (op.kind) {
    case IoKind::cancel_fd:
      return {cancel_fd(op.fd), OpEnd::Cause::completed};
    case IoKind::bind:
    case IoKind::listen:
    case IoKind::fsync:
    case IoKind::openat:
    case IoKind::statx:
    case IoKind::close:
      return {io_syscall(op, true), OpEnd::Cause::completed};  // never wait for readiness
    default:
      break;
  }
  int err = 0;
  if (!attach(op.fd, op.owner, &err)) {
    // EPERM: a file epoll cannot watch is always ready (fs/ sends regular files to
    // the Threaded pool instead); anything else is the op's error.
    return {err == EPERM ? io_syscall(op, true) : -err, OpEnd::Cause::completed};
  }
  const bool write = writes(op.kind) || (op.kind == IoKind::poll && (op.flags & POLLOUT) != 0);
  bool connecting = false;
  for (;;) {
    FdState& s = fds_[static_cast<std::size_t>(op.fd)];  // again after every park: fds_ may grow
    bool& ready = write ? s.writable : s.readable;
    if (ready) {
      int r;
      if (connecting) {
        // The connect in flight has ended: its result is the socket's error.
        int so = 0;
        socklen_t len = sizeof so;
        r = ::getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &so, &len) != 0 ? -errno : -so;
      } else {
        r = io_syscall(op, true);
        // After a hang-up event, a receive that would block is asked once whether
        // it never can end: then it ends with 0, as a blocking one does.
        if (r == -EAGAIN && s.hung_up && (op.kind == IoKind::recv || op.kind == IoKind::recvmsg) &&
            receive_shut_down(op.fd))
          r = 0;
      }
      if (op.kind == IoKind::connect && r == -EINPROGRESS) {
        connecting = true;  // wait for the edge the handshake's end makes
        r = -EAGAIN;
      }
      if (r != -EAGAIN) {
        // A stream read shorter than asked drained the socket: the next read waits
        // for an edge instead of a syscall that would say EAGAIN.
        if (hint == OpKind::stream_io && (op.kind == IoKind::recv || op.kind == IoKind::read) && r > 0 &&
            static_cast<std::uint32_t>(r) < op.len && !s.hung_up)
          s.readable = false;
        return {r, OpEnd::Cause::completed};
      }
      ready = false;
    }
    switch (wait(op.fd, write, op.deadline)) {
      case End::timed_out:
        return {-ECANCELED, OpEnd::Cause::timed_out};
      case End::cancelled:
        return {-ECANCELED, OpEnd::Cause::cancelled};
      default:
        break;
    }
  }
}

// --------------------------------------------------------------- the tick ----

void EpollEngine::drain_wake() noexcept {
  std::uint64_t v;
  [[maybe_unused]] ssize_t n = ::read(wake_fd_, &v, sizeof v);
}

void EpollEngine::poll(std::int64_t timeout_ns) {
  epoll_event evs[kBatch];
  int n;
  waits.add();
  if (timeout_ns > 0 && pwait2_usable()) {
    timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
    n = ::epoll_pwait2(epfd_, evs, kBatch, &ts, nullptr);
    if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
      g_pwait2.store(false, std::memory_order_relaxed);
      n = ::epoll_wait(epfd_, evs, kBatch, 0);  // the timer is checked again at the next tick
    }
  } else {
    int ms = timeout_ns < 0 ? -1 : 0;
    if (timeout_ns > 0) ms = static_cast<int>(std::min<std::int64_t>((timeout_ns + 999'999) / 1'000'000, INT_MAX));
    n = ::epoll_wait(epfd_, evs, kBatch, ms);
  }
  if (n < 0) {
    if (errno != EINTR) log::logger().error("epoll_wait failed: {}", errno_code(-errno).message());
    return;
  }
  events.add(static_cast<std::uint64_t>(n));
  for (int i = 0; i < n; ++i) {
    const std::uint64_t data = evs[i].data.u64;
    if (data == kWakeData) {
      wakes.add();
      drain_wake();
      continue;
    }
    const auto fd = static_cast<std::size_t>(data & 0xffffffffu);
    if (fd >= fds_.size() || !fds_[fd].registered || fds_[fd].gen != static_cast<std::uint32_t>(data >> 32)) {
      stale.add();  // a registration dropped since (the fd closed or changed hands)
      continue;
    }
    FdState& s = fds_[fd];
    const std::uint32_t ev = evs[i].events;
    if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s.hung_up = true;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      s.readable = true;
      wake_list(s.readers, End::ready);
    }
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
      s.writable = true;
      wake_list(s.writers, End::ready);
    }
  }
}

}  // namespace weft::detail
