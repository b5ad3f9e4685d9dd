// weft::Condition with weft::Mutex: producer/consumer with predicates for fibers
// (two workers) and threads, notify_one vs notify_all, wait_for, the owner check,
// re-locking on timeout and on cancellation.
#include <atomic>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/sync/condition.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "sync_test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("fibers on two workers pass items through a queue guarded by Mutex + Condition") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::Mutex m{rt};
  weft::Condition cv{rt, "items"};
  std::deque<int> q;
  long sum = 0;
  const int n = static_cast<int>(weft::test::scaled(2000));
  auto consumer = rt.spawn_on(1, [&] {
    for (int i = 0; i < n; ++i) {
      std::unique_lock lk(m);
      cv.wait(lk, [&] { return !q.empty(); });
      sum += q.front();
      q.pop_front();
    }
  });
  auto producer = rt.spawn_on(0, [&] {
    for (int i = 1; i <= n; ++i) {
      {
        std::unique_lock lk(m);
        q.push_back(i);
      }
      cv.notify_one();
      if (i % 16 == 0) weft::yield();
    }
  });
  producer.join();
  consumer.join();
  REQUIRE(sum == static_cast<long>(n) * (n + 1) / 2);
}

TEST_CASE("notify_all wakes every thread waiter; each returns owning the mutex") {
  weft::Mutex m{weft::threaded};
  weft::Condition cv{weft::threaded};
  bool go = false;
  int owners = 0;
  auto ts = weft::test::start_threads(4, [&] {
    std::unique_lock lk(m);
    cv.wait(lk, [&] { return go; });
    if (m.owned_by_caller()) ++owners;
  });
  {
    std::unique_lock lk(m);
    go = true;
  }
  cv.notify_all();
  weft::test::join_all(ts);
  REQUIRE(owners == 4);
}

TEST_CASE("wait_for times out owning the mutex again") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::Mutex m{rt};
    weft::Condition cv{rt};
    std::unique_lock lk(m);
    REQUIRE_FALSE(cv.wait_for(lk, 2ms));
    REQUIRE(m.owned_by_caller());
    REQUIRE_FALSE(cv.wait_for(lk, 2ms, [] { return false; }));
    REQUIRE(m.owned_by_caller());
    REQUIRE_FALSE(cv.has_waiters());
  });
}

TEST_CASE("waiting without owning the mutex is refused with operation_not_permitted") {
  weft::Mutex m{weft::threaded};
  weft::Condition cv{weft::threaded, "cv"};
  std::unique_lock lk(m, std::defer_lock);
  try {
    cv.wait(lk);
    FAIL("wait without the lock did not throw");
  } catch (const std::system_error& e) {
    REQUIRE(e.code() == std::errc::operation_not_permitted);
    REQUIRE_THAT(std::string(e.what()), Contains("weft::Condition 'cv'"));
  }
}

TEST_CASE("a fiber cancelled in wait() throws FiberCancelled owning the mutex again") {
  weft::Mutex m{"cancel"};
  weft::Condition cv{"cancel"};
  std::atomic<bool> owned_after{false}, waiting{false};
  weft::JoinHandle<void> h;
  {
    weft::Runtime rt;
    h = rt.spawn([&] {
      std::unique_lock lk(m);
      waiting = true;
      try {
        cv.wait(lk);
      } catch (const weft::FiberCancelled&) {
        owned_after = m.owned_by_caller();
        throw;
      }
    });
    while (!waiting.load() || !cv.has_waiters()) std::this_thread::sleep_for(1ms);
  }
  REQUIRE_THROWS_AS(h.join(), weft::FiberCancelled);
  REQUIRE(owned_after.load());
  REQUIRE_FALSE(cv.has_waiters());
  REQUIRE_FALSE(m.has_waiters());
}

TEST_CASE("destroying a Condition with a waiter aborts with a clear message") {
  auto r = weft::test::destroy_while_a_thread_waits(
      [] {
        return new weft::Condition{weft::threaded, "doomed"};
      },
      [](weft::Condition& cv) {
        auto* m = new weft::Mutex{weft::threaded};  // never freed: the child aborts
        std::unique_lock lk(*m);
        cv.wait(lk);
      });
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft::Condition 'doomed'") && Contains("destroyed while"));
}
