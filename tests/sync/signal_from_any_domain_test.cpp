// The domain contract for signals: a call that never blocks (Event::set/reset,
// Semaphore::release, FutexCounter::increment_and_wake, Condition::notify_one/all)
// is accepted from any domain — a plain thread, a fiber of any runtime — and wakes
// the waiters of the primitive's own domain; blocking calls from the wrong side are
// still refused with CrossRuntimeError. (A Timer callback's signals are tested with
// the scheduler context, in runtime/scheduler_context_test.cpp.)
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/test_access.hpp>
#include <weft/sync/condition.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/futex_counter.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

/// One of each primitive, bound by the caller, and a flag the Condition waits for.
struct Kit {
  weft::Event manual;
  weft::Event automatic;
  weft::Semaphore sem;
  weft::FutexCounter counter;
  weft::Mutex m;
  weft::Condition cv;
  std::atomic<bool> flag{false};

  template <class Bind>
  explicit Kit(Bind& b)
      : manual(b, weft::Event::Mode::manual_reset, "manual"),
        automatic(b, weft::Event::Mode::auto_reset, "auto"),
        sem(b, 0, "sem"),
        counter(b, 0, "counter"),
        m(b, "m"),
        cv(b, "cv") {}

  // The waits, each run by its own fiber or thread of the kit's domain.
  void wait_manual() { manual.wait(); }
  void wait_auto() { automatic.wait(); }
  void wait_sem() { sem.acquire(); }
  void wait_counter() { counter.wait_until_changed(0); }
  void wait_cv() {
    std::unique_lock<weft::Mutex> lk(m);
    cv.wait(lk, [this] { return flag.load(); });
  }

  [[nodiscard]] bool all_queued() const {
    return manual.has_waiters() && automatic.has_waiters() && sem.has_waiters() && counter.has_waiters() &&
           cv.has_waiters();
  }
  /// Every signal once, from whoever calls it (the foreign side).
  void signal_all() {
    manual.set();
    automatic.set();
    sem.release();
    REQUIRE(counter.increment_and_wake() == 1);
    flag.store(true);  // the waiter is queued in cv (all_queued()): the notify finds it
    cv.notify_all();
  }
};

using Wait = void (Kit::*)();
constexpr Wait kWaits[] = {&Kit::wait_manual, &Kit::wait_auto, &Kit::wait_sem, &Kit::wait_counter, &Kit::wait_cv};

void spin_until(const std::function<bool()>& ready) {
  while (!ready()) std::this_thread::sleep_for(100us);
}

template <class Fn>
std::string refusal(Fn&& fn) {
  try {
    fn();
  } catch (const weft::CrossRuntimeError& e) {
    return e.what();
  }
  return {};
}
}  // namespace

TEST_CASE("a plain thread's signals release fibers waiting on Evented primitives") {
  weft::Runtime rt(weft::Config{.name = "evented", .workers = 2});
  Kit kit(rt);
  std::vector<weft::JoinHandle<void>> hs;
  unsigned i = 0;
  for (Wait w : kWaits) hs.push_back(rt.spawn_on(i++ % 2, [&kit, w] { (kit.*w)(); }));
  spin_until([&] { return kit.all_queued(); });
  kit.signal_all();  // from the main thread
  for (auto& h : hs) h.join();
  REQUIRE_FALSE(kit.manual.has_waiters());
  REQUIRE(kit.sem.available() == 0);
  REQUIRE_FALSE(kit.automatic.is_set());  // handed to its waiter, not left raised
}

TEST_CASE("a fiber's signals release threads waiting on Threaded primitives") {
  weft::Runtime rt(weft::Config{.name = "signaller"});
  Kit kit(weft::threaded);
  std::vector<std::thread> ts;
  for (Wait w : kWaits) ts.emplace_back([&kit, w] { (kit.*w)(); });
  spin_until([&] { return kit.all_queued(); });
  rt.block_on([&] { kit.signal_all(); });
  for (auto& t : ts) t.join();
  REQUIRE(kit.sem.available() == 0);
}

TEST_CASE("a fiber of runtime A releases fibers of runtime B waiting on B's primitives") {
  weft::Runtime a(weft::Config{.name = "alpha"});
  weft::Runtime b(weft::Config{.name = "beta", .workers = 2});
  Kit kit(b);
  std::vector<weft::JoinHandle<void>> hs;
  unsigned i = 0;
  for (Wait w : kWaits) hs.push_back(b.spawn_on(i++ % 2, [&kit, w] { (kit.*w)(); }));
  spin_until([&] { return kit.all_queued(); });
  a.block_on([&] { kit.signal_all(); });
  for (auto& h : hs) h.join();
}

TEST_CASE("reset() and a signal with nobody waiting are accepted from another domain and do not bind") {
  weft::Runtime rt;
  weft::Event unbound;
  weft::Semaphore sem_unbound;
  rt.block_on([&] {
    unbound.set();
    unbound.reset();
    sem_unbound.release(2);
  });
  REQUIRE_FALSE(weft::detail::TestAccess::binding(unbound).bound());
  REQUIRE_FALSE(weft::detail::TestAccess::binding(sem_unbound).bound());
  weft::Event evented{rt};
  evented.set();  // main thread, Evented event
  REQUIRE(evented.is_set());
  evented.reset();
  REQUIRE_FALSE(evented.is_set());
}

TEST_CASE("blocking calls from the wrong side are still refused while signals pass") {
  weft::Runtime a(weft::Config{.name = "alpha"});
  weft::Runtime b(weft::Config{.name = "beta"});
  Kit on_a(a);
  Kit on_threads(weft::threaded);
  // A plain thread may signal A's primitives but not wait on them.
  on_a.manual.set();
  const std::string from_thread = refusal([&] { on_a.manual.wait(); });
  REQUIRE_THAT(from_thread, Contains("weft::Event 'manual' belongs to Evented(runtime 'alpha')"));
  REQUIRE_THAT(from_thread, Contains("wait()"));
  on_a.sem.release();
  REQUIRE_THAT(refusal([&] { on_a.sem.acquire(); }), Contains("weft::Semaphore 'sem'"));
  // A fiber of B may signal A's primitives but not wait on them.
  const std::string from_b = b.block_on([&] {
    on_a.counter.increment_and_wake();
    on_a.cv.notify_one();
    return refusal([&] { on_a.counter.wait_until_changed(0); });
  });
  REQUIRE_THAT(from_b, Contains("weft::FutexCounter 'counter' belongs to Evented(runtime 'alpha')"));
  REQUIRE_THAT(from_b, Contains("runtime 'beta'"));
  // A fiber may signal Threaded primitives but not wait on them.
  const std::string from_fiber = a.block_on([&] {
    on_threads.automatic.set();
    on_threads.sem.release();
    return refusal([&] { on_threads.automatic.wait(); });
  });
  REQUIRE_THAT(from_fiber, Contains("weft::Event 'auto' belongs to Threaded"));
  REQUIRE_THAT(from_fiber, Contains("weft::offload"));
  // The signals took effect: each side still finds them.
  REQUIRE(a.block_on([&] { return on_a.sem.try_acquire() && on_a.counter.value() == 1; }));
  REQUIRE(on_threads.sem.try_acquire());
  on_threads.automatic.wait();  // consumes the fiber's set()
}

TEST_CASE("a thread and a fiber ping-pong through each other's auto-reset Events") {
  const long rounds = weft::test::scaled(20000);
  weft::Runtime rt(weft::Config{.name = "ping"});
  weft::Event to_fiber{rt, weft::Event::Mode::auto_reset, "to-fiber"};
  weft::Event to_thread{weft::threaded, weft::Event::Mode::auto_reset, "to-thread"};
  std::atomic<long> fiber_seen{0}, thread_seen{0};
  weft::test::Watchdog wd("cross-domain ping-pong", rt, {&fiber_seen, &thread_seen}, 120s);
  auto h = rt.spawn([&] {
    for (long i = 0; i < rounds; ++i) {
      to_fiber.wait();
      fiber_seen.fetch_add(1);
      to_thread.set();  // a fiber wakes a thread
    }
  });
  for (long i = 0; i < rounds; ++i) {
    to_fiber.set();  // a thread wakes a fiber
    to_thread.wait();
    thread_seen.fetch_add(1);
  }
  h.join();
  REQUIRE(fiber_seen.load() == rounds);
  REQUIRE(thread_seen.load() == rounds);
}
