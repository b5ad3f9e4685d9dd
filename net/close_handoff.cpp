// net/close_handoff.cpp — a close() from where the owner's ops cannot be waited
// for (a plain thread, a fiber of another worker or runtime, a worker's scheduler
// context) is handed to the socket's worker, which runs the close protocol
// (socket.hpp) in a fiber there.
//
// Invariants:
//  - Each worker thread that owned a socket has one WorkerLink, held by a
//    thread_local of that thread and by every socket it owns. `worker` is set while
//    the thread runs; the thread_local's destructor resets it at the thread's exit,
//    after the worker's loop ended: from then on no op of that worker is in flight,
//    so a core it owned may be closed by whoever drops it (close_idle).
//  - A hand-over holds `mu` from reading `worker` to the end of the spawn: the thread
//    cannot finish exiting meanwhile, so its Worker and Runtime are alive.
//  - The handed fiber owns the core (HandedClose): it runs close_owned() and frees
//    the core. A fiber the runtime refuses (it is shutting down) or cancels before it
//    starts leaves the core in `orphans`, closed and freed at the worker thread's
//    exit (at once if the thread is gone). Orphaned while the thread runs, the core
//    is first marked closing and its fd shut down (shut_down_now), from whatever
//    thread orphans it: the pending ops end at once and report the socket closed
//    (operation_canceled) as with any close, not the shutdown's 0 or EINVAL, and
//    the peer sees the end of stream at once. The fd is shut down under `mu`, so
//    the thread's exit cannot close it (and its number be reused) before.
//  - `worker` and `orphans` are touched under `mu` only; `closing` is the one field
//    of an owned core written here from another thread (socket_core.hpp says how).
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

struct WorkerLink {
  explicit WorkerLink(Worker* w) : worker(w) {}
  weft::detail::AnnotatedMutex mu;
  Worker* worker WEFT_GUARDED_BY(mu);                 // null once the thread has exited
  SocketCore* orphans WEFT_GUARDED_BY(mu) = nullptr;  // linked through next_orphan
};

namespace {

// At the worker thread's exit: no op can be in flight any more; close what was
// left to this moment.
struct LinkHolder {
  std::shared_ptr<WorkerLink> link;
  LinkHolder() = default;
  LinkHolder(const LinkHolder&) = delete;
  LinkHolder& operator=(const LinkHolder&) = delete;
  ~LinkHolder() {
    if (!link) return;
    SocketCore* left;
    {
      LockGuard g(link->mu);
      link->worker = nullptr;
      left = std::exchange(link->orphans, nullptr);
    }
    while (left) close_idle(std::exchange(left, left->next_orphan));
  }
};
thread_local LinkHolder t_link;

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
      c->next_orphan = link->orphans;
      link->orphans = c;
      return;
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

std::shared_ptr<WorkerLink> this_worker_link() {
  if (!t_link.link) t_link.link = std::make_shared<WorkerLink>(t_state.worker);
  return t_link.link;
}

bool on_link_thread(const SocketCore* c) noexcept {
  // A worker's thread makes at most one link, and its t_state.worker is reset when
  // its loop ends, before the thread_local goes: the link alone would still match
  // while LinkHolder closes the orphans.
  return t_state.worker && c->link && c->link == t_link.link;
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
        c->next_orphan = link->orphans;
        link->orphans = c;
        return;
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
