// weft::Mutex: uncontended and contended locking for fibers (one worker, across
// workers) and threads, FIFO hand-off, lock_for (also "forever"), cancellation while queued, and
// the misuse diagnostics (recursive lock, foreign unlock, non-owner unlock,
// destruction with waiters).
// These tests lock and unlock across lambdas and misuse the Mutex on purpose
// (recursive lock, foreign unlock): clang's static lock analysis cannot follow that.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wthread-safety-analysis"
#endif
#include <atomic>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/test_access.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "sync_test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

void wait_for_waiters(const weft::Mutex& m) {
  while (!m.has_waiters()) weft::yield();
}
}  // namespace

TEST_CASE("an unbound Mutex binds to its first locker's domain and works uncontended") {
  weft::Mutex m{"plain"};
  REQUIRE_FALSE(weft::detail::TestAccess::binding(m).bound());
  m.lock();
  REQUIRE(weft::detail::TestAccess::binding(m).bound_threaded());
  REQUIRE(m.owned_by_caller());
  REQUIRE_FALSE(m.has_waiters());
  m.unlock();
  REQUIRE(m.try_lock());
  m.unlock();
  REQUIRE(m.lock_for(1ms));
  m.unlock();
  REQUIRE_FALSE(m.owned_by_caller());
}

TEST_CASE("fibers on one worker get the mutex in the order they queued (FIFO hand-off, no barging)") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::Mutex m{rt, "fifo"};
    std::vector<int> order;
    m.lock();
    std::vector<weft::JoinHandle<void>> hs;
    int started = 0;
    for (int i = 0; i < 5; ++i) {
      hs.push_back(weft::spawn([&, i] {
        ++started;  // then lock() parks in the same run: i is queued before i+1 starts
        weft::MutexGuard g(m);
        order.push_back(i);
      }));
      while (started <= i) weft::yield();
    }
    REQUIRE(order.empty());
    m.unlock();
    // The unlocker may not barge: after its unlock the mutex belongs to fiber 0.
    REQUIRE_FALSE(m.try_lock());
    for (auto& h : hs) h.join();
    REQUIRE(order == std::vector<int>{0, 1, 2, 3, 4});
    REQUIRE(m.try_lock());
    m.unlock();
  });
}

TEST_CASE("fibers on two workers contend on one mutex; every increment is kept") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::Mutex m{rt, "two-workers"};
  long counter = 0;
  const long per = weft::test::scaled(2000);
  auto hs = weft::test::spawn_across_workers(rt, 20, [&] {
    for (long k = 0; k < per; ++k) {
      weft::MutexGuard g(m);
      ++counter;
      if (k % 7 == 0) weft::yield();
    }
  });
  weft::test::join_all(hs);
  REQUIRE(counter == 20 * per);
}

TEST_CASE("threads contend on a Threaded mutex; every increment is kept") {
  weft::Mutex m{weft::threaded, "threads"};
  long counter = 0;
  const long per = weft::test::scaled(20000);
  auto ts = weft::test::start_threads(4, [&] {
    for (long k = 0; k < per; ++k) {
      std::lock_guard g(m);
      ++counter;
    }
  });
  weft::test::join_all(ts);
  REQUIRE(counter == 4 * per);
}

TEST_CASE("lock_for gives up when the holder keeps it, and the mutex stays usable") {
  SECTION("fiber") {
    weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
      weft::Mutex m{rt};
      m.lock();
      auto h = weft::spawn([&] { return m.lock_for(5ms); });
      REQUIRE_FALSE(h.join());
      REQUIRE_FALSE(m.has_waiters());
      m.unlock();
      auto h2 = weft::spawn([&] {
        bool ok = m.lock_for(1s);
        if (ok) m.unlock();
        return ok;
      });
      REQUIRE(h2.join());
    });
  }
  SECTION("thread") {
    weft::Mutex m{weft::threaded};
    m.lock();
    bool got = true;
    std::thread t([&] { got = m.lock_for(5ms); });
    t.join();
    REQUIRE_FALSE(got);
    m.unlock();
    std::thread t2([&] {
      got = m.lock_for(1s);
      if (got) m.unlock();
    });
    t2.join();
    REQUIRE(got);
  }
}

TEST_CASE("lock_for(hours::max()) waits for the mutex instead of giving up at once") {
  // The holder keeps the mutex a while before it checks: a lock_for that took
  // "forever" for "already due" has given up by then.
  SECTION("thread") {
    weft::Mutex m{weft::threaded, "forever"};
    m.lock();
    std::atomic<bool> done{false};
    bool got = false;
    std::thread t([&] {
      got = m.lock_for(std::chrono::hours::max());
      if (got) m.unlock();
      done = true;
    });
    while (!m.has_waiters() && !done.load()) std::this_thread::yield();
    std::this_thread::sleep_for(20ms);
    const bool gave_up = done.load();
    m.unlock();
    t.join();
    REQUIRE_FALSE(gave_up);
    REQUIRE(got);
  }
  SECTION("fiber") {
    weft::test::block_on_fresh_runtime([](weft::Runtime&) {
      weft::Mutex m{"forever"};
      m.lock();
      bool done = false;
      auto h = weft::spawn([&] {
        const bool got = m.lock_for(std::chrono::hours::max());
        if (got) m.unlock();
        done = true;
        return got;
      });
      while (!m.has_waiters() && !done) weft::yield();
      weft::sleep_for(20ms);
      const bool gave_up = done;
      m.unlock();
      REQUIRE(h.join());
      REQUIRE_FALSE(gave_up);
    });
  }
}

TEST_CASE("a timed-out waiter between live waiters does not take or lose the hand-off") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::Mutex m{rt};
    m.lock();
    auto a = weft::spawn([&] { return m.lock_for(2ms); });  // queues first, times out
    wait_for_waiters(m);
    auto b = weft::spawn([&] {
      weft::MutexGuard g(m);
      return 7;
    });
    REQUIRE_FALSE(a.join());
    m.unlock();
    REQUIRE(b.join() == 7);
    REQUIRE(m.try_lock());
    m.unlock();
  });
}

TEST_CASE("a fiber cancelled while queued (runtime shutdown) leaves the mutex consistent") {
  weft::Mutex m{"shutdown"};  // unbound: binds to the runtime's fibers
  std::atomic<bool> queued{false};
  weft::JoinHandle<void> holder, waiter;
  weft::Event never{weft::Event::Mode::manual_reset, "never"};  // outlives the runtime's fibers
  {
    weft::Runtime rt;
    holder = rt.spawn([&] {
      weft::MutexGuard g(m);
      never.wait();  // until cancelled
    });
    waiter = rt.spawn([&] {
      while (!weft::detail::TestAccess::binding(m).bound()) weft::yield();
      queued = true;
      weft::MutexGuard g(m);
    });
    while (!queued.load()) std::this_thread::sleep_for(1ms);
    rt.block_on([&] { wait_for_waiters(m); });
  }  // shutdown cancels both: the holder unwinds (unlock), the waiter's wait is cancelled
  REQUIRE_THROWS_AS(holder.join(), weft::FiberCancelled);
  REQUIRE_THROWS_AS(waiter.join(), weft::FiberCancelled);
  REQUIRE_FALSE(m.has_waiters());
}

TEST_CASE("a recursive lock is refused with resource_deadlock_would_occur before blocking") {
  SECTION("thread") {
    weft::Mutex m{weft::threaded, "rec"};
    m.lock();
    try {
      m.lock();
      FAIL("recursive lock did not throw");
    } catch (const std::system_error& e) {
      REQUIRE(e.code() == std::errc::resource_deadlock_would_occur);
      REQUIRE_THAT(std::string(e.what()), Contains("weft::Mutex 'rec'") && Contains("not recursive"));
    }
    REQUIRE_THROWS_AS(m.try_lock(), std::system_error);
    REQUIRE_THROWS_AS(m.lock_for(1ms), std::system_error);
    m.unlock();
  }
  SECTION("fiber") {
    weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
      weft::Mutex m{rt, "rec"};
      m.lock();
      REQUIRE_THROWS_AS(m.lock(), std::system_error);
      m.unlock();
    });
  }
}

TEST_CASE("a Mutex bound to a runtime refuses the main thread, naming both sides, and stays usable") {
  weft::Runtime rt(weft::Config{.name = "svc"});
  weft::Mutex m{rt, "conn-table"};
  try {
    m.lock();
    FAIL("lock from the main thread did not throw");
  } catch (const weft::CrossRuntimeError& e) {
    std::string msg = e.what();
    REQUIRE_THAT(msg, Contains("weft::Mutex 'conn-table'"));
    REQUIRE_THAT(msg, Contains("Evented(runtime 'svc')"));
    REQUIRE_THAT(msg, Contains("lock()"));
    REQUIRE_THAT(msg, Contains("thread '"));
    REQUIRE_THAT(msg, Contains("Threaded"));
    REQUIRE_THAT(msg, Contains("weft::Channel"));
  }
  REQUIRE(rt.block_on([&] {
    weft::MutexGuard g(m);
    return 1;
  }) == 1);
}

TEST_CASE("unlock by a thread that does not hold the mutex aborts with a clear message") {
  auto r = weft::test::run_in_child([] {
    weft::Mutex m{weft::threaded, "owned"};
    std::thread t([&] { m.lock(); });
    t.join();
    m.unlock();  // main does not hold it
    return 0;
  });
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft: FATAL: weft::Mutex 'owned'") && Contains("does not hold it"));
}

TEST_CASE("unlock of an unlocked mutex aborts with a clear message") {
  auto r = weft::test::run_in_child([] {
    weft::Mutex m{weft::threaded, "idle"};
    m.unlock();
    return 0;
  });
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft::Mutex 'idle'") && Contains("it is not locked"));
}

TEST_CASE("unlock from another domain aborts with the cross-domain message") {
  auto r = weft::test::run_in_child([] {
    weft::Runtime rt(weft::Config{.name = "owner-rt"});
    weft::Mutex m{rt, "evented"};
    m.unlock();  // the main thread is Threaded
    return 0;
  });
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft::Mutex 'evented'") && Contains("Evented(runtime 'owner-rt')") &&
                             Contains("unlock()") && Contains("Threaded"));
}

TEST_CASE("destroying a Mutex with a waiter aborts with a clear message") {
  auto r = weft::test::destroy_while_a_thread_waits(
      [] {
        auto* m = new weft::Mutex{weft::threaded, "doomed"};
        m->lock();
        return m;
      },
      [](weft::Mutex& m) { m.lock(); });
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft::Mutex 'doomed'") && Contains("destroyed while"));
}
