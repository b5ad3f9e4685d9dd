// Shutdown gives up on a fiber ("abandoned") only when nothing in the runtime can
// wake it any more: a fiber that defers its cancellation while it waits for a
// fiber of another worker, or sleeps, is waited for, and so is one whose wait a
// thread claimed before the shutdown's cancellation could.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include <weft/runtime/log.hpp>
#include <weft/runtime/waiter.hpp>
#include <weft/weft.hpp>

#include "../helpers/captured_log.hpp"
#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using weft::test::CapturedLog;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("shutdown waits for a fiber that joins a fiber of another worker with cancellation deferred") {
  CapturedLog log;
  std::atomic<bool> joined{false};
  std::atomic<bool> child_started{false};
  {
    weft::Runtime rt(weft::Config{.workers = 2});
    rt.spawn_on(0, [&] {
        weft::this_fiber::DeferCancellation defer;  // as a destructor that joins its children
        auto child = rt.spawn_on(1, [&] {
          weft::this_fiber::DeferCancellation d;
          child_started = true;
          weft::sleep_for(30ms);  // still running when worker 0 has nothing left to do
        });
        child.join();
        joined = true;
      }).detach();
    while (!child_started) std::this_thread::yield();
  }  // ~Runtime: shutdown
  INFO(log.text());
  REQUIRE(joined);
  REQUIRE(log.text().find("abandoned") == std::string::npos);
}

TEST_CASE("shutdown waits for a fiber that sleeps with cancellation deferred") {
  CapturedLog log;
  std::atomic<bool> woke{false};
  std::atomic<bool> started{false};
  {
    weft::Runtime rt;
    rt.spawn([&] {
        weft::this_fiber::DeferCancellation defer;
        started = true;
        weft::sleep_for(30ms);
        woke = true;
      }).detach();
    while (!started) std::this_thread::yield();
  }
  INFO(log.text());
  REQUIRE(woke);
  REQUIRE(log.text().find("abandoned") == std::string::npos);
}

TEST_CASE("shutdown waits for the unpark a thread owes a fiber whose wait it claimed") {
  // A Threaded notifier (a Channel sender, Event::set) claims a parked fiber's wait
  // under the primitive's lock and unparks it after releasing it. A shutdown whose
  // cancellation comes between the two finds the wait claimed: the fiber is not
  // stuck, its unpark is on the way. The thread here holds it back long enough
  // for the shutdown to have cancelled everything else.
  using weft::detail::Waiter;
  CapturedLog log;
  std::atomic<Waiter*> published{nullptr};
  std::atomic<bool> notified{false};
  std::thread notifier;
  {
    weft::Runtime rt;
    rt.spawn([&] {
        Waiter w;
        published = &w;
        notified = w.wait() == Waiter::Result::notified;
      }).detach();
    Waiter* w = nullptr;
    while (!(w = published.load())) std::this_thread::yield();
    REQUIRE(w->claim_notify());
    notifier = std::thread([w] {
      std::this_thread::sleep_for(200ms);
      w->wake();
    });
  }  // ~Runtime: shutdown
  notifier.join();
  INFO(log.text());
  REQUIRE(notified);
  REQUIRE(log.text().find("abandoned") == std::string::npos);
}

TEST_CASE("shutdown waits for a fiber that waits on an offloaded task with cancellation deferred") {
  // fs/ on the pool waits this way: the task owns the fiber's buffer until it returns.
  CapturedLog log;
  std::atomic<bool> started{false}, done{false};
  {
    weft::Runtime rt(weft::Config{.pool_threads = 1});
    rt.spawn([&] {
        weft::this_fiber::DeferCancellation defer;
        started = true;
        done = weft::offload([] {
          std::this_thread::sleep_for(100ms);  // still running when the worker has nothing left
          return true;
        });
      }).detach();
    while (!started) std::this_thread::yield();
  }
  INFO(log.text());
  REQUIRE(done);
  REQUIRE(log.text().find("abandoned") == std::string::npos);
}

TEST_CASE("shutdown waits for a fiber that waits for room in a full pool queue with cancellation deferred") {
  CapturedLog log;
  std::atomic<int> queued{0};
  std::atomic<bool> done{false};
  {
    weft::Runtime rt(weft::Config{.pool_threads = 1, .pool_queue = 1});
    // One task runs, one waits in the queue: the queue is full.
    for (int i = 0; i < 2; ++i)
      rt.spawn([&] {
          ++queued;
          weft::offload([] { std::this_thread::sleep_for(100ms); });
        }).detach();
    while (queued < 2) std::this_thread::yield();
    std::this_thread::sleep_for(20ms);  // both submitted (a late one only waits too)
    rt.spawn([&] {
        weft::this_fiber::DeferCancellation defer;
        done = weft::offload([] { return true; });
      }).detach();
    std::this_thread::sleep_for(20ms);
  }
  INFO(log.text());
  REQUIRE(done);
  REQUIRE(log.text().find("abandoned") == std::string::npos);
}
