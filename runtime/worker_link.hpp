// weft/runtime/worker_link.hpp — what another thread may learn of a worker's
// thread: whether it still runs (so a fiber can be handed to it), and a list of
// cores (a socket's, a file's) that its exit is to finish. A close() from
// elsewhere (net/, fs/) goes through it.
//
// Invariants:
//  - A worker thread has at most one WorkerLink, made at its first call of
//    this_worker_link() and held by a thread_local of that thread and by every
//    core it owns. `worker` is set while the thread runs; the thread_local's
//    destructor resets it at the thread's exit, after the worker's loop ended:
//    from then on no op of that worker is in flight, so a core it owned may be
//    closed by whoever drops it.
//  - Whoever hands a fiber to the worker holds `mu` from reading `worker` to the
//    end of the spawn: the thread cannot finish exiting meanwhile, so its Worker
//    and Runtime are alive.
//  - An Orphan is adopted under `mu` while `worker` is set; the thread's exit
//    takes the list and finishes each, with `worker` already null: none comes late.
#pragma once

#include <memory>

#include <weft/runtime/tsa.hpp>

namespace weft::detail {

class Worker;

/// A core left to its worker thread's exit, when none of that worker's ops can
/// still name its fd.
class Orphan {
 public:
  /// Closes what it holds and frees it: on the exiting thread, or wherever it is
  /// dropped once that thread has gone. Called once.
  virtual void finish_orphan() noexcept = 0;
  Orphan* next_orphan = nullptr;  ///< in a WorkerLink's list

 protected:
  Orphan() = default;
  ~Orphan() = default;
  Orphan(const Orphan&) = default;
  Orphan& operator=(const Orphan&) = default;
};

struct WorkerLink {
  explicit WorkerLink(Worker* w) : worker(w) {}
  /// Leaves `o` to the thread's exit; the caller saw `worker` set.
  void adopt(Orphan* o) noexcept WEFT_REQUIRES(mu) {
    o->next_orphan = orphans;
    orphans = o;
  }

  AnnotatedMutex mu;
  Worker* worker WEFT_GUARDED_BY(mu);  ///< null once the thread has exited
  Orphan* orphans WEFT_GUARDED_BY(mu) = nullptr;
};

/// The calling worker thread's link, made at its first call (may throw bad_alloc).
std::shared_ptr<WorkerLink> this_worker_link();

/// True on `link`'s thread while that thread runs its worker (so its engine may be
/// asked to forget an fd).
bool is_link_thread(const WorkerLink* link) noexcept;

/// Leaves `o` to `link`'s thread exit, or finishes it here if that has passed.
void orphan_to(WorkerLink& link, Orphan* o) noexcept;

}  // namespace weft::detail
