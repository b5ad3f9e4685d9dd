// The scheduler context (code a worker runs outside any fiber: a Timer callback) is
// a domain of its own. Every call there that may block is refused with a
// CrossRuntimeError naming it, before it touches any state and without binding an
// unbound primitive: a blocked callback would stall its whole worker (and the
// fibers it would wait for, and the runtime's shutdown). Calls that never block
// (try_send/try_recv, try_acquire, signals, a submit into a pool with room) work.
// On the old code these calls blocked the worker thread: each test that expects a
// refusal gives the blocked call a way out (a timeout, or a thread that releases
// it), so it fails with a message instead of hanging.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wthread-safety-analysis"  // locks taken inside a callback on purpose
#endif
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include <weft/runtime/test_access.hpp>
#include <weft/runtime/threaded/offload.hpp>
#include <weft/runtime/threaded/thread_pool.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/condition.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/futex_counter.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

constexpr const char* kWho = "the scheduler context (a Timer callback) of worker 0 of runtime 'sched'";

/// "" when fn returned; "refused: <what>" for a CrossRuntimeError; "other: <what>".
template <class Fn>
std::string capture(Fn& fn) {
  try {
    fn();
    return {};
  } catch (const weft::CrossRuntimeError& e) {
    return std::string("refused: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("other: ") + e.what();
  }
}

/// Runs fn in the callback of a Timer on worker 0 of rt; returns capture(fn).
template <class Fn>
std::string in_timer_callback(weft::Runtime& rt, Fn fn) {
  return rt
      .spawn_on(0,
                [&fn] {
                  std::string out = "(the callback did not run)";
                  weft::Timer t([&] { out = capture(fn); });
                  t.reset(1ms);
                  t.wait();  // returns after the expiry, whose callback has run by then
                  return out;
                })
      .join();
}

/// The refusal of `op` on `what` in worker 0's scheduler context.
void require_refused(const std::string& out, const std::string& what, const std::string& op) {
  INFO(out);
  REQUIRE_THAT(
      out, StartsWith("refused: " + what + ": " + op + " may block, which a worker's scheduler context must never do"));
  REQUIRE_THAT(out, Contains("but the caller is " + std::string(kWho)));
  REQUIRE_THAT(out, Contains("Runtime::spawn"));
}

/// Runs `release` on a thread after a while, so that a call the old code blocked
/// on returns; joined on destruction.
class Rescuer {
 public:
  template <class Fn>
  explicit Rescuer(Fn release)
      : t_([release] {
          std::this_thread::sleep_for(300ms);
          release();
        }) {}
  ~Rescuer() { t_.join(); }

 private:
  std::thread t_;
};

weft::Config sched_config() {
  return weft::Config{.name = "sched", .workers = 2};
}
}  // namespace

TEST_CASE("current_domain in a Timer callback is the scheduler context of its worker") {
  weft::Runtime rt(sched_config());
  weft::Domain d;
  (void)in_timer_callback(rt, [&] { d = weft::current_domain(); });
  REQUIRE(d.scheduler());
  REQUIRE_FALSE(d.threaded());
  REQUIRE_FALSE(d.evented());
  REQUIRE(d.runtime == &rt);
  REQUIRE(d.runtime_id == rt.id());
  REQUIRE(d.worker == 0);
  REQUIRE(d.name() == "Scheduler(runtime 'sched', worker 0)");
}

TEST_CASE("a Timer callback waiting on an Event is refused and leaves it unbound") {
  weft::Runtime rt(sched_config());
  weft::Event e{weft::Event::Mode::manual_reset, "ev"};
  {
    Rescuer r([&] { e.set(); });  // the old code blocked the worker in wait()
    require_refused(in_timer_callback(rt, [&] { e.wait(); }), "weft::Event 'ev'", "wait()");
  }
  REQUIRE_FALSE(weft::detail::TestAccess::binding(e).bound());
  e.reset();
  require_refused(in_timer_callback(rt, [&] { (void)e.wait_for(50ms); }), "weft::Event 'ev'", "wait_for()");
  REQUIRE_FALSE(weft::detail::TestAccess::binding(e).bound());
  e.set();  // even a wait that would not block is refused: it is a blocking call
  require_refused(in_timer_callback(rt, [&] { e.wait(); }), "weft::Event 'ev'", "wait()");
}

TEST_CASE("a Timer callback locking a Threaded Mutex or an unbound Mutex is refused") {
  weft::Runtime rt(sched_config());
  weft::Mutex threaded_m{weft::threaded, "threaded-m"};
  weft::Mutex unbound_m{"unbound-m"};
  require_refused(in_timer_callback(rt,
                                    [&] {
                                      threaded_m.lock();
                                      threaded_m.unlock();
                                    }),
                  "weft::Mutex 'threaded-m'", "lock()");
  require_refused(in_timer_callback(rt,
                                    [&] {
                                      unbound_m.lock();
                                      unbound_m.unlock();
                                    }),
                  "weft::Mutex 'unbound-m'", "lock()");
  REQUIRE_FALSE(weft::detail::TestAccess::binding(unbound_m).bound());
  require_refused(in_timer_callback(rt,
                                    [&] {
                                      if (unbound_m.lock_for(50ms)) unbound_m.unlock();
                                    }),
                  "weft::Mutex 'unbound-m'", "lock_for()");
  REQUIRE_FALSE(weft::detail::TestAccess::binding(unbound_m).bound());
  // Still usable by threads afterwards.
  threaded_m.lock();
  threaded_m.unlock();
}

TEST_CASE("a Timer callback acquiring a Semaphore is refused but try_acquire works without binding it") {
  weft::Runtime rt(sched_config());
  weft::Semaphore sem{0, "sem"};
  require_refused(in_timer_callback(rt, [&] { (void)sem.acquire_for(50ms); }), "weft::Semaphore 'sem'",
                  "acquire_for()");
  {
    Rescuer r([&] { sem.release(); });
    require_refused(in_timer_callback(rt, [&] { sem.acquire(); }), "weft::Semaphore 'sem'", "acquire()");
  }
  REQUIRE_FALSE(weft::detail::TestAccess::binding(sem).bound());
  bool took = false;
  REQUIRE(in_timer_callback(rt, [&] { took = sem.try_acquire(); }).empty());
  REQUIRE(took);  // the rescuer's permit
  REQUIRE_FALSE(weft::detail::TestAccess::binding(sem).bound());
}

TEST_CASE("a Timer callback waiting on a FutexCounter or a Condition is refused") {
  weft::Runtime rt(sched_config());
  weft::FutexCounter counter{0, "counter"};
  weft::Mutex m{rt, "cv-m"};
  weft::Condition cv{"cv"};
  require_refused(in_timer_callback(rt, [&] { (void)counter.wait_until_changed(0, 50ms); }),
                  "weft::FutexCounter 'counter'", "wait_until_changed()");
  REQUIRE_FALSE(weft::detail::TestAccess::binding(counter).bound());
  require_refused(in_timer_callback(rt,
                                    [&] {
                                      std::unique_lock<weft::Mutex> lk(m, std::defer_lock);
                                      (void)cv.wait_for(lk, 50ms);
                                    }),
                  "weft::Condition 'cv'", "wait_for()");
  REQUIRE_FALSE(weft::detail::TestAccess::binding(cv).bound());
}

TEST_CASE("a Timer callback's Channel send and recv are refused before queueing while try_send and try_recv work") {
  weft::Runtime rt(sched_config());
  weft::Channel<int> ch(1);
  {
    Rescuer r([&] { (void)ch.send_for(7, 1s); });  // the old code blocked in recv()
    require_refused(in_timer_callback(rt, [&] { (void)ch.recv(); }), "weft::Channel", "recv()");
  }
  REQUIRE(ch.try_recv().value == 7);  // nobody took the rescuer's value: recv() queued nothing
  require_refused(in_timer_callback(rt, [&] { (void)ch.recv_for(50ms); }), "weft::Channel", "recv_for()");
  ch.send(1);  // full now
  {
    Rescuer r([&] { (void)ch.recv_for(1s); });  // the old code blocked in send()
    require_refused(in_timer_callback(rt, [&] { ch.send(2); }), "weft::Channel", "send()");
  }
  require_refused(in_timer_callback(rt, [&] { (void)ch.send_for(3, 50ms); }), "weft::Channel", "send_for()");
  // A send with room is refused too: it is a blocking call whether or not it waits.
  REQUIRE(ch.size() == 0);
  require_refused(in_timer_callback(rt, [&] { ch.send(4); }), "weft::Channel", "send()");
  REQUIRE(ch.size() == 0);
  weft::SendStatus sent = weft::SendStatus::full;
  weft::RecvResult<int> got{weft::RecvStatus::empty, std::nullopt};
  REQUIRE(in_timer_callback(rt, [&] {
            int v = 5;
            sent = ch.try_send(v);
            got = ch.try_recv();
          }).empty());
  REQUIRE(sent == weft::SendStatus::ok);
  REQUIRE(got.value == 5);
}

TEST_CASE("a Timer callback submitting into a full pool is refused and into a pool with room is accepted") {
  weft::Runtime rt(sched_config());
  weft::ThreadPool pool({.name = "full", .threads = 1, .queue_capacity = 1});
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::atomic<int> ran{0};
  pool.submit([open, &ran] {
    open.wait();
    ran.fetch_add(1);
  });  // occupies the only thread
  while (pool.stats().queue_depth != 0) std::this_thread::yield();
  pool.submit([&ran] { ran.fetch_add(1); });  // fills the queue
  {
    Rescuer r([&] { gate.set_value(); });  // the old code blocked the worker until a slot freed
    require_refused(in_timer_callback(rt, [&] { pool.submit([&ran] { ran.fetch_add(1); }); }),
                    "weft::ThreadPool 'full'", "submit() into a full queue");
  }
  while (ran.load() != 2) std::this_thread::yield();
  REQUIRE(in_timer_callback(rt, [&] { pool.submit([&ran] { ran.fetch_add(1); }); }).empty());
  pool.shutdown();
  REQUIRE(ran.load() == 3);
}

TEST_CASE("offload from a Timer callback is refused instead of running fn on the worker") {
  weft::Runtime rt(sched_config());
  weft::ThreadPool pool({.name = "off", .threads = 1});
  std::atomic<int> ran{0};
  require_refused(in_timer_callback(rt, [&] { weft::offload([&] { ran.fetch_add(1); }); }), "weft::offload",
                  "offload(fn)");
  require_refused(in_timer_callback(rt, [&] { weft::offload(pool, [&] { ran.fetch_add(1); }); }), "weft::offload",
                  "offload(fn)");
  require_refused(in_timer_callback(rt, [&] { weft::offload_for([&] { ran.fetch_add(1); }, 1s); }), "weft::offload",
                  "offload(fn)");
  REQUIRE(ran.load() == 0);
}

TEST_CASE("join from a Timer callback is refused naming the scheduler context") {
  weft::Runtime rt(sched_config());
  weft::Event go{rt};
  auto running = rt.spawn_on(1, [&] { go.wait(); });
  require_refused(in_timer_callback(rt, [&] { running.join(); }), "weft::JoinHandle", "join()");
  go.set();
  running.join();
  // Refused even when the fiber is done: join() is a blocking call there.
  auto done = rt.spawn_on(1, [] { return 3; });
  while (!done.done()) std::this_thread::yield();
  require_refused(in_timer_callback(rt, [&] { (void)done.join(); }), "weft::JoinHandle", "join()");
  REQUIRE(done.join() == 3);
}

TEST_CASE("sleep_for from a Timer callback names the scheduler context") {
  weft::Runtime rt(sched_config());
  const std::string out = in_timer_callback(rt, [] { weft::sleep_for(1ms); });
  INFO(out);
  REQUIRE_THAT(out, StartsWith("refused: weft::sleep_for"));
  REQUIRE_THAT(out, Contains("is Evented-only"));
  REQUIRE_THAT(out, Contains(kWho));
}

TEST_CASE("a Timer callback's signals wake fibers on another worker and plain threads") {
  weft::Runtime rt(sched_config());
  weft::Event fiber_ev{rt, weft::Event::Mode::auto_reset, "fiber-ev"};
  weft::Semaphore fiber_sem{rt, 0, "fiber-sem"};
  weft::FutexCounter fiber_counter{rt, 0, "fiber-counter"};
  weft::Event thread_ev{weft::threaded, weft::Event::Mode::manual_reset, "thread-ev"};
  weft::Semaphore thread_sem{weft::threaded, 0, "thread-sem"};
  weft::Mutex thread_m{weft::threaded};
  weft::Condition thread_cv{weft::threaded, "thread-cv"};
  std::atomic<bool> flag{false};
  auto fiber = rt.spawn_on(1, [&] {
    fiber_ev.wait();
    fiber_sem.acquire();
    fiber_counter.wait_until_changed(0);
  });
  std::thread thread([&] {
    thread_ev.wait();
    thread_sem.acquire();
    std::unique_lock<weft::Mutex> lk(thread_m);
    thread_cv.wait(lk, [&] { return flag.load(); });
  });
  while (!fiber_ev.has_waiters() || !thread_ev.has_waiters()) std::this_thread::sleep_for(1ms);
  REQUIRE(in_timer_callback(rt, [&] {
            fiber_ev.set();
            fiber_sem.release();
            fiber_counter.increment_and_wake();
            thread_ev.set();
            thread_sem.release();
          }).empty());
  while (!thread_cv.has_waiters()) std::this_thread::sleep_for(1ms);
  REQUIRE(in_timer_callback(rt, [&] {
            flag.store(true);
            thread_cv.notify_all();
          }).empty());
  fiber.join();
  thread.join();
}
