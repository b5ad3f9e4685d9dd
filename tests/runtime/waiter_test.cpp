// Waiter: one claim ends a wait — notify, deadline or cancel — for fibers and
// threads alike; wakes are never lost or doubled, even when the waker runs while
// the waiting fiber is still switching out.
#include <atomic>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/tsa.hpp>
#include <weft/runtime/uring/timer_queue.hpp>
#include <weft/runtime/waiter.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using weft::detail::Waiter;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
std::int64_t in_ms(long ms) {
  return weft::detail::monotonic_ns() + ms * 1'000'000;
}
}  // namespace

TEST_CASE("a fiber's wait ends when a plain thread notifies it") {
  weft::Runtime rt;
  std::atomic<Waiter*> slot{nullptr};
  std::thread notifier([&] {
    Waiter* w;
    while (!(w = slot.load())) std::this_thread::yield();
    REQUIRE(w->notify());
  });
  auto r = rt.block_on([&] {
    Waiter w;
    REQUIRE(w.is_fiber());
    slot = &w;
    return w.wait();
  });
  notifier.join();
  REQUIRE(r == Waiter::Result::notified);
}

TEST_CASE("a fiber's wait times out at its deadline, and a late notify loses the claim") {
  weft::Runtime rt;
  rt.block_on([] {
    Waiter w;
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(w.wait(in_ms(5)) == Waiter::Result::timed_out);
    REQUIRE(std::chrono::steady_clock::now() - t0 >= 5ms);
    REQUIRE_FALSE(w.notify());
  });
}

TEST_CASE("a thread's wait ends when a fiber notifies it, or at its deadline") {
  weft::Runtime rt;
  Waiter w;
  REQUIRE_FALSE(w.is_fiber());
  auto h = rt.spawn([&] {
    weft::sleep_for(2ms);
    return w.notify();
  });
  REQUIRE(w.wait() == Waiter::Result::notified);
  REQUIRE(h.join());
  Waiter late;
  REQUIRE(late.wait(in_ms(3)) == Waiter::Result::timed_out);
}

TEST_CASE("shutdown cancels a fiber parked in a wait") {
  Waiter::Result r{};
  {
    weft::Runtime rt;
    rt.spawn([&] {
        Waiter w;
        r = w.wait();
      }).detach();
    rt.block_on([] { weft::sleep_for(2ms); });
  }
  REQUIRE(r == Waiter::Result::cancelled);
}

TEST_CASE("a thread notifying each fiber wait the moment it is published loses no wake in 100k rounds") {
  const long rounds = weft::test::scaled(100000);
  weft::Runtime rt;
  std::atomic<Waiter*> slot{nullptr};
  std::atomic<bool> stop{false};
  std::atomic<long> woken{0};
  std::thread waker([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      Waiter* w = slot.exchange(nullptr, std::memory_order_acq_rel);
      if (w && w->notify()) woken.fetch_add(1, std::memory_order_relaxed);
    }
  });
  rt.block_on([&] {
    for (long i = 0; i < rounds; ++i) {
      Waiter w;
      slot.store(&w, std::memory_order_release);  // the waker may fire right now
      REQUIRE(w.wait() == Waiter::Result::notified);
    }
  });
  stop = true;
  waker.join();
  REQUIRE(woken == rounds);
}

TEST_CASE("cross-worker: a fiber on worker 1 wakes a fiber on worker 0 50k times, none lost") {
  const long rounds = weft::test::scaled(50000);
  weft::Runtime rt(weft::Config{.workers = 2});
  std::atomic<Waiter*> slot{nullptr};
  auto waiter = rt.spawn_on(0, [&] {
    for (long i = 0; i < rounds; ++i) {
      Waiter w;
      slot.store(&w, std::memory_order_release);
      if (w.wait() != Waiter::Result::notified) return false;
    }
    return true;
  });
  auto waker = rt.spawn_on(1, [&] {
    long n = 0;
    while (n < rounds) {
      Waiter* w = slot.exchange(nullptr, std::memory_order_acq_rel);
      if (w && w->notify())
        ++n;
      else
        weft::yield();
    }
    return n;
  });
  REQUIRE(waiter.join());
  REQUIRE(waker.join() == rounds);
}

TEST_CASE("notify racing the deadline: exactly one claim wins and each side wins sometimes") {
  weft::Runtime rt;
  const long rounds = weft::test::scaled(2000);
  const long max_rounds = 50 * rounds;  // the bound while one outcome is still missing
  std::atomic<Waiter*> slot{nullptr};
  std::atomic<bool> stop{false};
  std::atomic<long> notified_by_waker{0};
  std::atomic<Waiter*> done{nullptr};  // the waker is finished with this one
  std::thread waker([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      Waiter* w = slot.exchange(nullptr, std::memory_order_acq_rel);
      if (!w) continue;
      if (w->notify()) notified_by_waker.fetch_add(1);
      done.store(w, std::memory_order_release);
    }
  });
  long notified = 0, timed_out = 0, ran = 0;
  rt.block_on([&] {
    // Deadlines of 0 to 40 us: some expire before the waker gets there, some
    // after. Go on past `rounds` until both outcomes were seen.
    for (; ran < max_rounds && (ran < rounds || notified == 0 || timed_out == 0); ++ran) {
      Waiter w;
      done.store(nullptr, std::memory_order_relaxed);  // `w` reuses last round's address
      slot.store(&w, std::memory_order_release);
      auto r = w.wait(weft::detail::monotonic_ns() + (ran % 41) * 1'000);
      // If the waker took it, let it finish with `w` before `w` goes away.
      if (slot.exchange(nullptr, std::memory_order_acq_rel) != &w)
        while (done.load(std::memory_order_acquire) != &w) weft::yield();
      if (r == Waiter::Result::notified)
        ++notified;
      else if (r == Waiter::Result::timed_out)
        ++timed_out;
    }
  });
  stop = true;
  waker.join();
  INFO("rounds " << ran << ": notified " << notified << ", timed out " << timed_out);
  REQUIRE(notified > 0);
  REQUIRE(timed_out > 0);
  REQUIRE(notified + timed_out == ran);    // no third outcome (a cancel, a bogus result)
  REQUIRE(notified == notified_by_waker);  // the waiter saw a notify exactly when the waker won its claim
}

TEST_CASE("a notify's claim holds the waiter past its deadline until wake() for fibers and threads") {
  weft::Runtime rt;
  // Thread waiter: claimed before its 1 ms deadline, it must not report a timeout
  // nor return before wake(), however long wake() takes.
  {
    Waiter w;
    REQUIRE(w.claim_notify());  // before the wait begins, so the claim surely precedes the deadline
    std::atomic<bool> returned{false};
    Waiter::Result r{};
    std::thread t([&] {
      r = w.wait(in_ms(1));
      returned = true;
    });
    std::this_thread::sleep_for(20ms);
    REQUIRE_FALSE(returned.load());
    REQUIRE_FALSE(w.notify());  // claimed: a second notify loses
    w.wake();
    t.join();
    REQUIRE(r == Waiter::Result::notified);
  }
  // Fiber waiter: its deadline timer fires while the claim is pending; it stays
  // parked until wake().
  std::atomic<Waiter*> slot{nullptr};
  std::atomic<bool> claimed{false}, returned{false};
  auto h = rt.spawn([&] {
    Waiter w;
    slot = &w;
    while (!claimed) weft::yield();  // the claim surely precedes the deadline
    auto r = w.wait(in_ms(1));
    returned = true;
    return r;
  });
  Waiter* w;
  while (!(w = slot.load())) std::this_thread::yield();
  REQUIRE(w->claim_notify());
  claimed = true;
  std::this_thread::sleep_for(20ms);
  REQUIRE_FALSE(returned.load());
  w->wake();
  REQUIRE(h.join() == Waiter::Result::notified);
}

TEST_CASE("a WakeList wakes its claimed waiters oldest first once the lock is gone") {
  weft::Runtime rt;
  constexpr int kN = 5;
  std::atomic<Waiter*> slots[kN] = {};
  std::vector<int> order;
  weft::detail::AnnotatedMutex order_mu;
  std::vector<weft::JoinHandle<void>> hs;
  for (int i = 0; i < kN; ++i)
    hs.push_back(rt.spawn([&, i] {
      Waiter w;
      slots[i] = &w;
      REQUIRE(w.wait() == Waiter::Result::notified);
      weft::detail::LockGuard g(order_mu);
      order.push_back(i);
    }));
  {
    weft::detail::WakeList wl;
    for (int i = 0; i < kN; ++i) {
      Waiter* w;
      while (!(w = slots[i].load())) std::this_thread::yield();
      REQUIRE(wl.claim(w));
      REQUIRE_FALSE(wl.claim(w));  // a second claim of the same waiter loses
    }
    std::this_thread::sleep_for(5ms);
    weft::detail::LockGuard g(order_mu);
    REQUIRE(order.empty());  // claimed, not woken: nobody ran yet
  }
  for (auto& h : hs) h.join();
  REQUIRE(order == std::vector<int>{0, 1, 2, 3, 4});
}
