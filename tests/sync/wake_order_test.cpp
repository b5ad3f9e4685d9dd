// Who a notify wakes, as the headers promise: Semaphore::release and
// FutexCounter::increment_and_wake hand over to the OLDEST waiter first (FIFO),
// Condition::notify_one wakes exactly one waiter (the oldest), and an auto-reset
// Event releases exactly one fiber waiter per set().
//
// The waiters are fibers of one worker, queued one at a time: a fiber that starts
// runs until it parks in the primitive, so fiber i is queued before fiber i+1
// starts. After a notify the test fiber sleeps, so every fiber the notify made
// ready has run by the time it looks (one worker: ready fibers run before the
// sleeping one's timer is even checked). The checks inside the notify loops are
// CHECKs: after a failure the loop still releases every waiter, so the primitive
// is not destroyed with waiters (which aborts) and the failure is reported.
#include <atomic>
#include <mutex>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/sync/condition.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/futex_counter.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "sync_test_support.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
constexpr int kWaiters = 6;

/// Spawns kWaiters fibers; fiber i runs wait(i) and then records i in `woke`.
/// Returns once every one of them has started (and so is queued in wait()).
template <class Wait>
std::vector<weft::JoinHandle<void>> queue_in_order(std::vector<int>& woke, Wait wait) {
  std::vector<weft::JoinHandle<void>> hs;
  int started = 0;
  for (int i = 0; i < kWaiters; ++i) {
    hs.push_back(weft::spawn([&woke, &started, wait, i] {
      ++started;  // then wait() parks in the same run: i is queued before i+1 starts
      wait(i);
      woke.push_back(i);
    }));
    while (started <= i) weft::yield();
  }
  return hs;
}

/// Lets every fiber a notify made ready run (see the top of the file).
void settle() {
  weft::sleep_for(1ms);
}

std::vector<int> first_n(int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(i);
  return v;
}
}  // namespace

TEST_CASE("Semaphore::release hands each permit to the oldest waiter") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::Semaphore s{rt, 0, "fifo"};
    std::vector<int> woke;
    auto hs = queue_in_order(woke, [&s](int) { s.acquire(); });
    for (int k = 1; k <= kWaiters; ++k) {
      s.release();
      settle();
      CHECK(woke == first_n(k));  // one more, and it is the oldest left
    }
    REQUIRE(s.available() == 0);
    for (auto& h : hs) h.join();
  });
}

TEST_CASE("Semaphore::release(n) hands n permits to the n oldest waiters") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::Semaphore s{rt, 0, "fifo-n"};
    std::vector<int> woke;
    auto hs = queue_in_order(woke, [&s](int) { s.acquire(); });
    s.release(2);
    settle();
    CHECK(woke == first_n(2));
    s.release(kWaiters - 2);
    for (auto& h : hs) h.join();
    REQUIRE(woke == first_n(kWaiters));
  });
}

TEST_CASE("FutexCounter::increment_and_wake(1) wakes the oldest waiter, one per call") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::FutexCounter c{rt, 0, "fifo"};
    std::vector<int> woke;
    // Every waiter watches the same snapshot: after the first increment the value
    // has moved for all of them, yet only those woken may return.
    auto hs = queue_in_order(woke, [&c](int) { c.wait_until_changed(0); });
    for (int k = 1; k <= kWaiters; ++k) {
      CHECK(c.increment_and_wake(1) == 1);
      settle();
      CHECK(woke == first_n(k));
    }
    REQUIRE_FALSE(c.has_waiters());
    for (auto& h : hs) h.join();
  });
}

TEST_CASE("FutexCounter::increment_and_wake(n) wakes exactly the n oldest waiters") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::FutexCounter c{rt, 0, "fifo-n"};
    std::vector<int> woke;
    auto hs = queue_in_order(woke, [&c](int) { c.wait_until_changed(0); });
    CHECK(c.increment_and_wake(3) == 3);
    settle();
    CHECK(woke == first_n(3));
    REQUIRE(c.increment_and_wake(weft::FutexCounter::all) == kWaiters - 3);
    for (auto& h : hs) h.join();
    REQUIRE(woke == first_n(kWaiters));
  });
}

TEST_CASE("Condition::notify_one wakes exactly one waiter and it is the oldest") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::Mutex m{rt, "cv-mutex"};
    weft::Condition cv{rt, "one"};
    std::vector<int> woke;
    auto hs = queue_in_order(woke, [&](int) {
      std::unique_lock lk(m);
      cv.wait(lk);  // no predicate: every wake-up is counted
    });
    for (int k = 1; k <= kWaiters; ++k) {
      cv.notify_one();
      settle();
      CHECK(woke == first_n(k));
    }
    REQUIRE_FALSE(cv.has_waiters());
    for (auto& h : hs) h.join();
  });
}

TEST_CASE("Condition::notify_all wakes every waiter queued at the time") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::Mutex m{rt};
    weft::Condition cv{rt, "all"};
    std::vector<int> woke;
    auto hs = queue_in_order(woke, [&](int) {
      std::unique_lock lk(m);
      cv.wait(lk);
    });
    cv.notify_all();
    for (auto& h : hs) h.join();
    REQUIRE(woke.size() == static_cast<std::size_t>(kWaiters));
  });
}

TEST_CASE("an auto-reset Event releases exactly one fiber waiter per set()") {
  weft::test::block_on_fresh_runtime([](weft::Runtime& rt) {
    weft::Event e{rt, weft::Event::Mode::auto_reset, "one-per-set"};
    std::vector<int> woke;
    auto hs = queue_in_order(woke, [&e](int) { e.wait(); });
    REQUIRE(e.waiting() == static_cast<std::size_t>(kWaiters));
    for (int k = 1; k <= kWaiters; ++k) {
      e.set();
      CHECK(e.waiting() == static_cast<std::size_t>(kWaiters - k));  // one taken off the queue
      CHECK_FALSE(e.is_set());                                       // handed over, not left set
      settle();
      CHECK(woke.size() == static_cast<std::size_t>(k));
    }
    for (auto& h : hs) h.join();
  });
}

TEST_CASE("an auto-reset Event set from another worker releases exactly one fiber per set()") {
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::Event e{rt, weft::Event::Mode::auto_reset, "cross-worker"};
  constexpr int kN = 8;
  std::atomic<int> through{0};
  std::vector<weft::JoinHandle<void>> hs;
  for (int i = 0; i < kN; ++i)
    hs.push_back(rt.spawn_on(1, [&] {
      e.wait();
      through.fetch_add(1);
    }));
  rt.spawn_on(0, [&] {
      while (e.waiting() < kN) weft::yield();
      for (int k = 1; k <= kN; ++k) {
        e.set();
        // The queue shrinks by exactly one per set, whatever worker 1 is doing.
        CHECK(e.waiting() == static_cast<std::size_t>(kN - k));
        CHECK_FALSE(e.is_set());
        while (through.load() < k) weft::yield();
        CHECK(through.load() == k);  // the released one came through; nobody else could
      }
    }).join();
  for (auto& h : hs) h.join();
  REQUIRE(through.load() == kN);
}
