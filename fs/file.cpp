// fs/file.cpp — the File as an fd owner: opening, the caller checks, moves that
// release it, and the close protocol (file.hpp). The ops are in file_ops.cpp.
//
// Invariants:
//  - A core is created by open() only, with the opening fiber's worker as owner;
//    it is freed by the File that holds it, or by the fiber a close from elsewhere
//    was handed to (the File forgets it first).
//  - A close from elsewhere reaches the owner through the core's WorkerLink
//    (runtime/worker_link.hpp), holding its `mu` from reading `worker` to the end
//    of the spawn. A handed fiber the stopping runtime refuses, or cancels before
//    it runs, leaves the core to the owner thread's exit, when no op can be in
//    flight: the fd is closed and the core freed there (at once where the thread
//    has gone, as for a File that outlived its runtime).
//  - close(2) of the fd happens once, after `pending` reached 0 with the file
//    closing, or at the owner thread's exit, so no op names a closed (and maybe
//    reused) fd number.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <memory>
#include <new>
#include <utility>

#include <weft/fs/file.hpp>
#include <weft/fs/file_core.hpp>
#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/park.hpp>
#include <weft/runtime/io_op.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/threaded/offload.hpp>
#include <weft/runtime/tsa.hpp>
#include <weft/runtime/uring/ops.hpp>

namespace weft::fs {

using detail::FileCore;
using weft::detail::IoKind;
using weft::detail::IoOp;
using weft::detail::LockGuard;
using weft::detail::t_state;
using weft::detail::Worker;
using weft::detail::WorkerLink;

namespace {

[[noreturn]] void throw_wrong_worker(const FileCore* c, const char* op) {
  weft::detail::throw_owned_elsewhere(
      std::string(op) + ": the file " + c->path, c->owner,
      "A File is used by fibers of one worker at a time: move it into a fiber of the other worker (an idle File "
      "changes hands when moved), or run the work on its worker (Runtime::spawn_on).");
}

// `w` owns the core from now on; its engine decides where the File's ops run
// (file.hpp).
void set_owner(FileCore* c, Worker* w) noexcept {
  c->owner = w;
  c->epoll = weft::detail::worker_engine(w) == weft::Engine::epoll;
  if (c->epoll && !c->stream) c->on_pool = true;
}

// The calling fiber's worker owns the core, and its link serves a close from
// elsewhere. Throws bad_alloc (the worker's first link) before any change.
void bind_here(FileCore* c) {
  c->link = weft::detail::this_worker_link();
  set_owner(c, t_state.worker);
}

// close(2) of the fd where the engine closes files: IORING_OP_CLOSE on the ring,
// the pool on epoll; the plain syscall when neither can be had. Never throws.
void close_fd(FileCore* c) noexcept {
  const weft::this_fiber::DeferCancellation defer;  // a close is never cut short
  IoOp op = IoOp::on_fd(IoKind::close, c->fd);
  int r;
  try {
    if (c->epoll) {
      weft::detail::forget_fd(c->owner, c->fd, c->id);
      r = weft::offload([op] { return weft::detail::io_syscall(op, false); });
    } else {
      r = weft::detail::await_io(c->owner, op).res;
    }
  } catch (...) {
    r = ::close(c->fd) == 0 ? 0 : -errno;  // no op or pool to be had: close here
  }
  if (r < 0 && r != -EINTR) {
    try {
      log::logger().warn("weft::fs: close of {} (fd {}): {}", c->path, c->fd, weft::errno_code(r).message());
    } catch (...) {
    }
  }
}

// Ends every op pending on the fd: a cancel by fd, waited for so it is issued
// before the fd number can be closed and reused. Ops on the pool cannot be
// cancelled; the caller waits for them.
void cancel_pending(FileCore* c) noexcept {
  if (c->on_pool || !weft::detail::engine_supports(c->owner, IoKind::cancel_fd)) return;
  try {
    const weft::this_fiber::DeferCancellation defer;
    (void)weft::detail::await_io(c->owner, IoOp::on_fd(IoKind::cancel_fd, c->fd));
  } catch (...) {
    // No op slot: the pending ops end on their own (a FIFO read when a writer comes).
  }
}

// The core a close() on this thread is handing over: a HandedClose destroyed inside
// that spawn (the runtime refused it) leaves the core to close_elsewhere(), which
// holds the link's `mu`.
thread_local FileCore* t_handing = nullptr;

// The fiber body a close from elsewhere is handed to: owns the core until it has
// closed and freed it.
class HandedClose {
 public:
  explicit HandedClose(FileCore* c) noexcept : c_(c) {}
  HandedClose(HandedClose&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  HandedClose& operator=(HandedClose&&) = delete;
  HandedClose(const HandedClose&) = delete;
  HandedClose& operator=(const HandedClose&) = delete;
  ~HandedClose() {
    // Never ran: the stopping runtime cancelled it, and its worker drops it (the
    // runtime's complete-without-running). Other fibers of the worker may still be
    // in ops on the fd: the thread's exit closes it.
    if (c_ && c_ != t_handing) weft::detail::orphan_to(*c_->link, c_);
  }
  void operator()() noexcept {
    detail::close_owned(c_);
    delete std::exchange(c_, nullptr);
  }

 private:
  FileCore* c_;
};

void log_refused(const FileCore* c) noexcept {
  try {
    log::logger().warn(
        "weft::fs: {} closed from {} while its runtime was stopping; its fd is closed when the worker exits", c->path,
        describe_caller());
  } catch (...) {
  }
}

// A close from where the owner's ops cannot be waited for (a plain thread, a fiber
// of another worker, the scheduler context): handed to the owner's worker, which
// runs close_owned() in a fiber and frees the core. A plain thread blocks and a
// fiber parks until it has; the scheduler context lets it run on. Where the owner's
// thread has exited, closes here; where its runtime refuses the fiber (it is
// stopping, and its shutdown ends the pending ops), leaves it to that thread's exit.
void close_elsewhere(FileCore* c) noexcept {
  const std::shared_ptr<WorkerLink> link = c->link;
  JoinHandle<void> handed;
  {
    LockGuard g(link->mu);
    if (Worker* owner = link->worker) {
      t_handing = c;
      try {
        handed = weft::detail::spawn_on_worker(owner, HandedClose(c), {.name = "fs close"});
      } catch (...) {
      }
      t_handing = nullptr;
      if (!handed.valid()) {
        log_refused(c);
        return link->adopt(c);
      }
    }
  }
  if (!handed.valid()) return c->finish_orphan();  // the owner's thread has exited: nothing is in flight
  try {
    if (t_state.fiber) {
      const weft::this_fiber::DeferCancellation defer;  // the close is under way: see it through
      handed.join();                                    // parks until the fd is closed
    } else if (!t_state.worker) {
      handed.join();  // a plain thread blocks until the fd is closed
    } else {
      // The scheduler context, which must not block: dropping the handle lets it run on.
    }
  } catch (...) {
    // The handed fiber was cancelled before it ran (its runtime stops): the core
    // is orphaned (HandedClose).
  }
}

}  // namespace

namespace detail {

[[noreturn]] void throw_for(const FileCore* c, Failure why, int res, const char* op) {
  throw_fs_error(why, res, op, c ? c->path : std::string("(no file)"));
}

FileCore* enter_op(FileCore* c, const char* op) {
  if (!t_state.fiber) weft::detail::throw_not_in_fiber(op);
  weft::detail::explore_yield();  // tests only: nothing of the file is touched yet
  if (!c) throw_for(c, Failure::use_after_close, 0, op);
  if (c->owner != t_state.worker) {
    if (c->owner) throw_wrong_worker(c, op);
    bind_here(c);  // released by a move: the first call claims it
  }
  weft::detail::check_cancel();
  if (c->closing) throw_for(c, Failure::closing, 0, op);
  if (c->fd < 0) throw_for(c, Failure::use_after_close, 0, op);
  return c;
}

OpCount::~OpCount() {
  if (--c_->pending == 0 && c_->drainer) weft::detail::unpark_local(std::exchange(c_->drainer, nullptr));
}

void close_owned(FileCore* c) noexcept {
  if (c->fd < 0) return;
  if (c->closing) {
    // Another fiber is closing it: wait until the fd is closed (the core may be
    // gone once we are woken, so nothing is touched after the park).
    CloserNode node{t_state.fiber, c->closers};
    c->closers = &node;
    weft::detail::park_running("fs close: another fiber is closing", nullptr, nullptr);
    return;
  }
  c->closing = true;  // first: no op is admitted while this fiber parks below
  if (c->pending > 0) {
    cancel_pending(c);
    if (c->pending > 0) {
      // No cancel hook: only the last op out (OpCount) ends this wait.
      c->drainer = t_state.fiber;
      weft::detail::park_running("fs close: draining pending ops", nullptr, nullptr);
    }
  }
  close_fd(c);
  c->fd = -1;
  c->closing = false;
  for (CloserNode* n = std::exchange(c->closers, nullptr); n;) {
    CloserNode* next = n->next;
    weft::detail::unpark_local(n->fiber);
    n = next;
  }
}

void run_on_pool(File& f) noexcept {
  if (f.core_ && !f.core_->stream) f.core_->on_pool = true;
}

}  // namespace detail

// --------------------------------------------------------------- lifetime ----

File::File(File&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {
  release_if_idle();
}

File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    close();
    delete core_;
    core_ = std::exchange(o.core_, nullptr);
    release_if_idle();
  }
  return *this;
}

File::~File() {
  close();
  delete core_;
}

void File::release_if_idle() noexcept {
  if (core_ && core_->pending == 0 && !core_->closing) core_->owner = nullptr;
}

File File::open(std::string_view path, int flags, mode_t mode, Timeout timeout) {
  static constexpr const char* kOp = "weft::fs::open";
  const Deadline d = Deadline::after(timeout);
  std::string p(path);
  IoOp op = IoOp::transfer(IoKind::openat, AT_FDCWD, nullptr, mode, flags | O_CLOEXEC, d);
  op.path = p.c_str();
  const int fd = detail::run_unowned(op, kOp, p);
  if (fd < 0) detail::throw_fs_error(detail::Failure::errno_result, fd, kOp, p);
  auto* c = new (std::nothrow) FileCore;
  struct stat st {};
  int err = 0;
  if (!c) {
    err = -ENOMEM;
  } else if (::fstat(fd, &st) != 0) {
    err = -errno;
  } else {
    c->stream = S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISSOCK(st.st_mode);
    try {
      bind_here(c);
    } catch (...) {
      err = -ENOMEM;
    }
  }
  if (err < 0) {
    ::close(fd);
    delete c;
    detail::throw_fs_error(detail::Failure::errno_result, err, kOp, p);
  }
  c->fd = fd;
  c->path = std::move(p);
  c->id = weft::detail::new_io_owner();
  // The epoll engine waits for readiness: a FIFO's or tty's reads must not block.
  if (c->epoll && c->stream) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return File(c);
}

bool File::is_open() const noexcept {
  return core_ && core_->fd >= 0 && !core_->closing;
}
int File::fd() const noexcept {
  return core_ ? core_->fd : -1;
}
const std::string& File::path() const noexcept {
  static const std::string kNone;
  return core_ ? core_->path : kNone;
}

void File::close() noexcept {
  FileCore* c = core_;
  if (!c || c->fd < 0) return;
  Worker* w = t_state.worker;
  if (t_state.fiber && !c->owner) {
    // Released by a move (so idle): this fiber's worker takes it, as a call would.
    try {
      bind_here(c);
    } catch (...) {
      // No memory for the worker's first link: the old one only serves a close
      // from another thread, and none can come while this close runs.
      set_owner(c, w);
    }
  }
  if (t_state.fiber && c->owner == w) return detail::close_owned(c);
  if (!c->owner) {  // released, and no fiber here: nothing can be pending
    ::close(c->fd);
    c->fd = -1;
    return;
  }
  core_ = nullptr;
  close_elsewhere(c);
}

void detail::FileCore::finish_orphan() noexcept {
  if (fd >= 0) ::close(fd);
  delete this;
}

}  // namespace weft::fs
