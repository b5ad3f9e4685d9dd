// net/close_handoff.cpp — a close() from where the owner's ops cannot be waited
// for (a plain thread, a fiber of another worker or runtime, a worker's scheduler
// context) is handed to the socket's worker, which runs the close protocol
// (socket.hpp) in a fiber there.
//
// Invariants:
//  - The owner's thread is reached through the core's WorkerLink
//    (runtime/worker_link.hpp): a hand-over holds its `mu` from reading `worker` to
//    the end of the spawn, so the Worker and Runtime are alive meanwhile.
//  - The handed fiber owns the core (HandedClose): it runs close_owned() and frees
//    the core. A fiber the runtime refuses (it is shutting down) or cancels before it
//    starts leaves the core to the link, closed and freed at the worker thread's
//    exit (at once if the thread is gone). Orphaned while the thread runs, the core
//    is first marked closing and its fd shut down (shut_down_now), from whatever
//    thread orphans it: the pending ops end at once and report the socket closed
//    (operation_canceled) as with any close, not the shutdown's 0 or EINVAL, and
//    the peer sees the end of stream at once. The fd is shut down under `mu`, so
//    the thread's exit cannot close it (and its number be reused) before.
//  - `closing` is the one field of an owned core written here from another thread
//    (socket_core.hpp says how).
#include <sys/socket.h>

#include <atomic>
#include <exception>
#include <memory>
#include <utility>

#include <weft/net/socket_core.hpp>
#include <weft/runtime/domain.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/tsa.hpp>
#include <weft/runtime/uring/ops.hpp>

namespace weft::net::detail {

using weft::detail::LockGuard;
using weft::detail::t_state;
using weft::detail::Worker;
using weft::detail::WorkerLink;

namespace {

// The core this thread is handing over: a HandedClose destroyed inside that spawn
// (the runtime refused it) leaves the core to close_elsewhere(), which holds `mu`.
thread_local SocketCore* t_handing = nullptr;

// Ends the ops pending on `c` (a core its worker has not closed and will not
// before its exit: the caller holds the link's `mu` and saw the thread running):
// they and any op begun later report the socket closed; the fd stays open, so its
// number cannot be reused under them, until the worker's exit closes it.
void shut_down_now([[maybe_unused]] WorkerLink& link, SocketCore* c) noexcept WEFT_REQUIRES(link.mu) {
  c->closing.store(true, std::memory_order_release);  // before the shutdown: see SocketCore::closing
  ::shutdown(c->fd, SHUT_RDWR);
}

// Leaves `c` to its worker thread's exit, or closes it here if that has passed.
void orphan(SocketCore* c) noexcept {
  const std::shared_ptr<WorkerLink> link = c->link;
  {
    LockGuard g(link->mu);
    if (link->worker) {
      shut_down_now(*link, c);
      return link->adopt(c);
    }
  }
  close_idle(c);
}

// The fiber body of a hand-over; owns the core until it has closed and freed it.
class HandedClose {
 public:
  explicit HandedClose(SocketCore* c) noexcept : c_(c) {}
  HandedClose(HandedClose&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  HandedClose& operator=(HandedClose&&) = delete;
  ~HandedClose() {
    if (c_ && c_ != t_handing) orphan(c_);  // the fiber never ran
  }
  void operator()() noexcept {
    SocketCore* c = std::exchange(c_, nullptr);
    close_owned(c, t_state.worker);  // spawned on the owner: this fiber is one of its
    delete c;
  }

 private:
  SocketCore* c_;
};

void log_refused(const SocketCore* c, const std::exception* e) noexcept {
  try {
    log::logger().warn(
        "weft::net: socket{} closed from {} while its worker could not take the close ({}); shut down now, its fd "
        "is closed when the worker exits",
        subject_of(c), describe_caller(), e ? e->what() : "unknown exception");
  } catch (...) {
  }
}

}  // namespace

void SocketCore::finish_orphan() noexcept {
  close_idle(this);
}

void close_elsewhere(SocketCore* c, bool wait) noexcept {
  const std::shared_ptr<WorkerLink> link = c->link;
  if (!link) return close_idle(c);  // never owned by a worker: nothing can be pending
  weft::JoinHandle<void> handed;
  {
    LockGuard g(link->mu);
    Worker* w = link->worker;
    if (w) {
      t_handing = c;
      try {
        handed = weft::detail::spawn_on_worker(w, HandedClose(c), {.name = "net close"});
      } catch (const std::exception& e) {
        log_refused(c, &e);
      } catch (...) {
        log_refused(c, nullptr);
      }
      t_handing = nullptr;
      if (!handed.valid()) {
        // Refused (the runtime is shutting down) or out of memory: end the pending
        // ops and the connection now; the worker's exit closes the fd.
        shut_down_now(*link, c);
        return link->adopt(c);
      }
    }
  }
  if (!handed.valid()) return close_idle(c);  // the worker's thread has exited
  if (!wait) return;                          // dropping the handle lets it run on
  try {
    handed.join();
  } catch (...) {
    // FiberCancelled: the runtime stopped before the fiber ran; the core is orphaned.
  }
}

}  // namespace weft::net::detail
