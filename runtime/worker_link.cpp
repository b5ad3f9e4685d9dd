// runtime/worker_link.cpp — the link's thread_local holder, which finishes the
// orphans at the worker thread's exit (the invariants are in worker_link.hpp).
#include <utility>

#include <weft/runtime/fiber/context.hpp>
#include <weft/runtime/worker_link.hpp>

namespace weft::detail {

namespace {

struct LinkHolder {
  std::shared_ptr<WorkerLink> link;
  LinkHolder() = default;
  LinkHolder(const LinkHolder&) = delete;
  LinkHolder& operator=(const LinkHolder&) = delete;
  // At the thread's exit, after its worker's loop ended: no op can be in flight
  // any more; finish what was left to this moment.
  ~LinkHolder() {
    if (!link) return;
    Orphan* left;
    {
      LockGuard g(link->mu);
      link->worker = nullptr;
      left = std::exchange(link->orphans, nullptr);
    }
    while (left) std::exchange(left, left->next_orphan)->finish_orphan();
  }
};
thread_local LinkHolder t_link;

}  // namespace

std::shared_ptr<WorkerLink> this_worker_link() {
  if (!t_link.link) t_link.link = std::make_shared<WorkerLink>(t_state.worker);
  return t_link.link;
}

bool is_link_thread(const WorkerLink* link) noexcept {
  // A worker's thread makes at most one link, and its t_state.worker is reset when
  // its loop ends, before the thread_local goes: the link alone would still match
  // while the holder finishes the orphans.
  return t_state.worker && link && link == t_link.link.get();
}

void orphan_to(WorkerLink& link, Orphan* o) noexcept {
  {
    LockGuard g(link.mu);
    if (link.worker) return link.adopt(o);
  }
  o->finish_orphan();
}

}  // namespace weft::detail
