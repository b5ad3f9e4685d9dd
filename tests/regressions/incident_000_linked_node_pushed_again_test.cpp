// Incident 000's class on weft's own intrusive lists: a node pushed (or
// re-initialised) while it is still linked rewrites its links in place, which cuts
// the list or turns it into a cycle, and everything queued behind it is lost. Each
// list checks for it with one pointer test and aborts with a message naming the
// list (and the fiber) instead: the run queue, the inbox, the sync primitives'
// waiter queues, and the op table's slots (a slot released twice would be handed
// to two ops at once). Every misuse runs in a forked child.
#include <atomic>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/uring/inbox.hpp>
#include <weft/runtime/uring/op_table.hpp>
#include <weft/runtime/uring/worker.hpp>
#include <weft/runtime/waiter.hpp>
#include <weft/sync/waiter_queue.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using Catch::Matchers::Contains;
using weft::detail::FiberBase;
using weft::detail::Inbox;
using weft::detail::RunQueue;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

/// A fiber control block that never runs: only its links are used.
FiberBase* idle_fiber(const char* name) {
  auto* f = new weft::detail::FiberImpl<void (*)(), void>(+[] {});
  f->set_name(name);
  return f;
}

void require_aborted_with(const weft::test::ChildResult& r, const std::string& text) {
  INFO("child output:\n" << r.output);
  REQUIRE(r.signaled);
  REQUIRE(r.signal == SIGABRT);
  REQUIRE_THAT(r.output, Contains(text));
}

/// The child printed this after the line that must have aborted: it did not.
constexpr const char* kNotCaught = "NOT CAUGHT";
}  // namespace

TEST_CASE("incident 000 class: a fiber pushed into a run queue it is linked in aborts naming it") {
  for (int where : {0, 1, 2}) {  // the head, the middle, the tail of three
    INFO("position " << where);
    auto r = weft::test::run_in_child([where] {
      RunQueue q;
      FiberBase* f[3] = {idle_fiber("rq-0"), idle_fiber("rq-1"), idle_fiber("rq-2")};
      for (FiberBase* x : f) q.push_back(x);
      if (where == 1)
        q.push_front(f[1]);
      else
        q.push_back(f[where]);
      std::puts(kNotCaught);
      return 0;
    });
    require_aborted_with(r, "fiber 'rq-" + std::to_string(where) + "'");
    REQUIRE_THAT(r.output, Contains("pushed into its worker's run queue while already linked"));
  }
}

TEST_CASE("a run queue takes a fiber back once it has been popped") {
  RunQueue q;
  FiberBase* a = idle_fiber("a");
  FiberBase* b = idle_fiber("b");
  q.push_back(a);
  q.push_back(b);
  REQUIRE(q.pop_front() == a);
  q.push_back(a);  // popped: not linked any more
  REQUIRE(q.pop_front() == b);
  REQUIRE(q.pop_front() == a);
  REQUIRE(q.empty());
  q.push_front(a);
  REQUIRE(q.exchange_front(b) == a);
  REQUIRE(q.pop_front() == b);
  a->release_ref(), a->release_ref();
  b->release_ref(), b->release_ref();
}

TEST_CASE("incident 000 class: a fiber pushed into an inbox it is still in aborts naming it") {
  for (int where : {0, 1}) {  // the newest entry, the oldest (whose link a plain null test misses)
    INFO((where == 0 ? "newest" : "oldest"));
    auto r = weft::test::run_in_child([where] {
      Inbox in;
      FiberBase* old = idle_fiber("inbox-old");
      FiberBase* young = idle_fiber("inbox-young");
      in.push(old);
      in.push(young);
      in.push(where == 0 ? young : old);
      std::puts(kNotCaught);
      return 0;
    });
    require_aborted_with(r, where == 0 ? "fiber 'inbox-young'" : "fiber 'inbox-old'");
    REQUIRE_THAT(r.output, Contains("pushed into a worker's inbox while already linked"));
  }
}

TEST_CASE("an inbox takes a fiber back once its worker has taken it") {
  Inbox in;
  FiberBase* a = idle_fiber("a");
  FiberBase* b = idle_fiber("b");
  in.push(a);
  in.push(b);
  // What the worker does (drain_inbox): take all, oldest first, nulling each link.
  auto drain = [&in] {
    std::vector<FiberBase*> got;
    for (FiberBase* f = in.take_all(); f;) {
      FiberBase* next = f->inbox_next_;
      f->inbox_next_ = nullptr;
      got.push_back(f);
      f = next;
    }
    return got;
  };
  REQUIRE(drain() == std::vector<FiberBase*>{a, b});
  in.push(b);
  in.push(a);
  REQUIRE(drain() == std::vector<FiberBase*>{b, a});
  REQUIRE(in.take_all() == nullptr);
  a->release_ref(), a->release_ref();
  b->release_ref(), b->release_ref();
}

TEST_CASE("incident 000 class: a parked fiber unparked twice before its worker drains the inbox aborts") {
  // Through the runtime: the fiber parks; a second fiber keeps the worker busy so
  // the inbox is not drained; a thread unparks the parked fiber twice.
  auto r = weft::test::run_in_child([] {
    weft::Config cfg;
    cfg.stall_threshold = std::chrono::milliseconds(0);  // the spinner is meant to hog
    weft::Runtime rt(cfg);
    std::atomic<FiberBase*> parked{nullptr};
    std::atomic<bool> spinning{false}, hold{true};
    rt.spawn(
          [&] {
            parked = weft::detail::t_state.fiber;
            weft::detail::t_state.worker->park_current("test", nullptr, nullptr);
          },
          {.name = "woken-twice"})
        .detach();
    rt.spawn([&] {
        spinning = true;                                // runs once the first has parked (one worker)
        while (hold.load(std::memory_order_relaxed)) {  // for ever: nobody clears it
        }
      }).detach();
    while (!spinning.load()) std::this_thread::yield();
    FiberBase* f = parked.load();
    weft::detail::Worker::unpark(f);
    weft::detail::Worker::unpark(f);
    std::puts(kNotCaught);
    std::fflush(stdout);
    _exit(0);  // the worker spins for ever: no clean shutdown
    return 0;
  });
  require_aborted_with(r, "fiber 'woken-twice'");
  REQUIRE_THAT(r.output, Contains("pushed into a worker's inbox while already linked"));
}

TEST_CASE("incident 000 class: a Waiter pushed into a waiter queue it is linked in aborts") {
  for (int where : {0, 1}) {  // the head, the tail
    INFO("position " << where);
    auto r = weft::test::run_in_child([where] {
      weft::detail::WaiterQueue q;
      weft::detail::Waiter a, b;
      q.push_back(&a);
      q.push_back(&b);
      q.push_back(where == 0 ? &a : &b);
      std::puts(kNotCaught);
      return 0;
    });
    require_aborted_with(r, "push_back of a Waiter already in this queue");
  }
  // Popped or erased: it may queue again.
  weft::detail::WaiterQueue q;
  weft::detail::Waiter a, b;
  q.push_back(&a);
  q.push_back(&b);
  q.erase(&a);
  q.push_back(&a);
  REQUIRE(q.pop_front() == &b);
  REQUIRE(q.pop_front() == &a);
  q.push_back(&a);
  REQUIRE(q.pop_front() == &a);
  REQUIRE(q.empty());
}

TEST_CASE("incident 000 class: an op slot released twice aborts before two ops share it") {
  auto r = weft::test::run_in_child([] {
    weft::detail::OpTable t;
    const std::uint32_t idx = t.acquire(1);
    t.at(idx).pending = 0;  // its CQE arrived
    t.release(idx);
    t.release(idx);  // twice: the free list would hold it twice
    std::puts(kNotCaught);
    return 0;
  });
  require_aborted_with(r, "release of a slot that is not in flight");
  // Released once, it is reused at the next generation.
  weft::detail::OpTable t;
  const std::uint32_t idx = t.acquire(1);
  const std::uint64_t ud = t.user_data(idx);
  t.at(idx).pending = 0;
  t.release(idx);
  REQUIRE(t.acquire(1) == idx);
  REQUIRE(t.user_data(idx) != ud);
  REQUIRE(t.in_flight() == 1);
}
