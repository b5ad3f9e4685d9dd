// Event, Semaphore, FutexCounter and Condition may be destroyed as soon as a call
// on them that returned has returned, on either side: a waiter that was released
// (or that found the signal already there) may destroy the primitive at once,
// while the call that released it is still on its way out; and a signaller may
// destroy it once its signal returned, while the waiter it woke is still waking.
// (The notifier claims its waiters under the primitive's lock and wakes them
// after its last access to the primitive.) Each case runs on threads and fibers in
// every combination; see tests/helpers/destroy_after_return.hpp for the round.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <random>

#include <catch2/catch.hpp>

#include <weft/sync/condition.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/futex_counter.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/weft.hpp>

#include "../helpers/destroy_after_return.hpp"
#include "../helpers/test_support.hpp"

using weft::test::Order;
using weft::test::Side;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

constexpr Side kSides[] = {Side::thread, Side::fiber};

std::uint64_t seed_once() {
  static const std::uint64_t kSeed = [] {
    const std::uint64_t v = (static_cast<std::uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
    std::printf("destroy_after_return: seed %llu\n", static_cast<unsigned long long>(v));
    std::fflush(stdout);
    return v;
  }();
  return kSeed;
}

/// Every combination of sides: the destroyer waits (released by the peer's
/// signal, or finding it already there), or the destroyer signals a queued peer.
template <class Obj, class Make, class Wait, class Signal>
void check_all_sides(const char* what, Make make, Wait wait, Signal signal) {
  const long rounds = weft::test::scaled(500);
  auto queued = [](Obj& o) { return o.has_waiters(); };
  for (Side d : kSides) {
    for (Side p : kSides) {
      {
        INFO(what << ": " << side_name(d) << " waits and destroys it at once; " << side_name(p) << " signals it");
        const auto r =
            weft::test::destroy_after_return<Obj>(d, p, Order::racing, rounds, seed_once(), make, wait, signal, queued);
        INFO(r.error);
        REQUIRE(r.error.empty());
        INFO("written after destruction in " << r.corrupted << " of " << r.rounds << " rounds, first round "
                                             << r.first_corrupted);
        REQUIRE(r.rounds == rounds);
        REQUIRE(r.corrupted == 0);
      }
      {
        INFO(what << ": " << side_name(d) << " signals a queued " << side_name(p) << " and destroys it at once");
        const auto r = weft::test::destroy_after_return<Obj>(d, p, Order::peer_first, rounds, seed_once(), make, signal,
                                                             wait, queued);
        INFO(r.error);
        REQUIRE(r.error.empty());
        INFO("written after destruction in " << r.corrupted << " of " << r.rounds << " rounds, first round "
                                             << r.first_corrupted);
        REQUIRE(r.rounds == rounds);
        REQUIRE(r.corrupted == 0);
      }
    }
  }
}

/// A Condition; the Mutex and the flag it guards outlive the round (the woken
/// waiter re-checks the flag after the notifier may have destroyed the box).
struct CvBox {
  CvBox(weft::Mutex& mu, std::atomic<bool>& f) : m(mu), flag(f) { flag.store(false); }
  weft::Mutex& m;
  std::atomic<bool>& flag;
  weft::Condition cv;
  [[nodiscard]] bool has_waiters() const { return cv.has_waiters(); }
};
}  // namespace

TEST_CASE("a thread or fiber may destroy a manual-reset Event as soon as its wait or set returned") {
  check_all_sides<weft::Event>(
      "manual-reset Event", [](void* p) { return new (p) weft::Event(weft::Event::Mode::manual_reset); },
      [](weft::Event& e) { e.wait(); }, [](weft::Event& e) { e.set(); });
}

TEST_CASE("a thread or fiber may destroy an auto-reset Event as soon as its wait or set returned") {
  check_all_sides<weft::Event>(
      "auto-reset Event", [](void* p) { return new (p) weft::Event(weft::Event::Mode::auto_reset); },
      [](weft::Event& e) { e.wait(); }, [](weft::Event& e) { e.set(); });
}

TEST_CASE("a thread or fiber may destroy a Semaphore as soon as its acquire or release returned") {
  check_all_sides<weft::Semaphore>(
      "Semaphore", [](void* p) { return new (p) weft::Semaphore(0); }, [](weft::Semaphore& s) { s.acquire(); },
      [](weft::Semaphore& s) { s.release(); });
}

TEST_CASE("a thread or fiber may destroy a FutexCounter as soon as its wait or increment returned") {
  check_all_sides<weft::FutexCounter>(
      "FutexCounter", [](void* p) { return new (p) weft::FutexCounter(0); },
      [](weft::FutexCounter& c) { c.wait_until_changed(0); }, [](weft::FutexCounter& c) { c.increment_and_wake(); });
}

TEST_CASE("a thread or fiber may destroy a Condition as soon as its wait or notify returned") {
  // The waiter's Mutex binds to its side, and both parties run on that side:
  // threads (a Threaded Mutex) or fibers (an Evented one, on two workers).
  const long rounds = weft::test::scaled(500);
  for (Side s : kSides) {
    auto wait = [](CvBox& b) {
      std::atomic<bool>& flag = b.flag;  // the box may be gone when the predicate runs again
      std::unique_lock<weft::Mutex> lk(b.m);
      b.cv.wait(lk, [&flag] { return flag.load(); });
    };
    auto notify = [](CvBox& b) {
      b.flag.store(true);
      b.cv.notify_one();  // outside the Mutex: the waiter may return while this runs
    };
    auto queued = [](CvBox& b) { return b.has_waiters(); };
    {
      weft::Mutex m;  // binds to the first locker's side (each run has its own runtime)
      std::atomic<bool> flag{false};
      auto make = [&m, &flag](void* p) { return new (p) CvBox(m, flag); };
      INFO("Condition: " << side_name(s) << " waits and destroys it at once");
      // destroyer_first: a notify that came before the wait would leave the
      // waiter's return unrelated to it (the predicate was already true).
      const auto r = weft::test::destroy_after_return<CvBox>(s, s, Order::destroyer_first, rounds, seed_once(), make,
                                                             wait, notify, queued);
      INFO(r.error);
      REQUIRE(r.error.empty());
      INFO("written after destruction in " << r.corrupted << " of " << r.rounds << " rounds");
      REQUIRE(r.corrupted == 0);
    }
    {
      weft::Mutex m;
      std::atomic<bool> flag{false};
      auto make = [&m, &flag](void* p) { return new (p) CvBox(m, flag); };
      INFO("Condition: " << side_name(s) << " notifies a queued waiter and destroys it at once");
      const auto r = weft::test::destroy_after_return<CvBox>(s, s, Order::peer_first, rounds, seed_once(), make, notify,
                                                             wait, queued);
      INFO(r.error);
      REQUIRE(r.error.empty());
      INFO("written after destruction in " << r.corrupted << " of " << r.rounds << " rounds");
      REQUIRE(r.corrupted == 0);
    }
  }
}
