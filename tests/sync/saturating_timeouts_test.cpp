// Every sync call that takes a duration saturates it: hours::max() (or any duration
// too long for int64 nanoseconds) means "no deadline in practice" instead of
// wrapping to a negative time that expires at once. Each timed call here waits
// with hours::max() for a signal another thread sends a little later, and must
// report success, from a plain thread and from a fiber.
#include <chrono>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

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
using std::chrono::hours;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

/// Runs `signal` on a thread after a while; joined on destruction.
class Later {
 public:
  template <class Fn>
  explicit Later(Fn signal)
      : t_([signal] {
          std::this_thread::sleep_for(30ms);
          signal();
        }) {}
  ~Later() { t_.join(); }

 private:
  std::thread t_;
};

/// Runs fn as a fiber and returns its result. The runtime lives for the whole
/// run: the Later thread that woke the fiber may still be inside that wake (it
/// touches the worker) when block_on returns.
template <class Fn>
auto in_fiber(Fn fn) {
  static weft::Runtime rt;
  return rt.block_on(fn);
}
}  // namespace

TEST_CASE("Event::wait_for(hours::max()) waits for the set instead of expiring at once") {
  {
    weft::Event e;
    Later l([&] { e.set(); });
    REQUIRE(e.wait_for(hours::max()));
  }
  {
    weft::Event e;
    Later l([&] { e.set(); });
    REQUIRE(in_fiber([&] { return e.wait_for(hours::max()); }));
  }
  {
    weft::Event e;
    Later l([&] { e.set(); });
    REQUIRE(e.wait_for(std::chrono::seconds::max()));
  }
  {
    weft::Event e;
    Later l([&] { e.set(); });
    REQUIRE(e.wait_for(std::chrono::duration<double>(1e300)));
  }
}

TEST_CASE("Semaphore::acquire_for(hours::max()) waits for the release instead of expiring at once") {
  {
    weft::Semaphore s;
    Later l([&] { s.release(); });
    REQUIRE(s.acquire_for(hours::max()));
  }
  {
    weft::Semaphore s;
    Later l([&] { s.release(); });
    REQUIRE(in_fiber([&] { return s.acquire_for(hours::max()); }));
  }
}

TEST_CASE("FutexCounter::wait_until_changed(snapshot hours::max()) waits for the increment") {
  {
    weft::FutexCounter c;
    Later l([&] { c.increment_and_wake(); });
    REQUIRE(c.wait_until_changed(0, hours::max()));
  }
  {
    weft::FutexCounter c;
    Later l([&] { c.increment_and_wake(); });
    REQUIRE(in_fiber([&] { return c.wait_until_changed(0, hours::max()); }));
  }
}

TEST_CASE("Condition::wait_for(hours::max()) waits for the notify instead of expiring at once") {
  weft::Mutex m{weft::threaded};
  weft::Condition cv{weft::threaded};
  bool ready = false;
  {
    Later l([&] {
      std::lock_guard lk(m);
      ready = true;
      cv.notify_all();
    });
    std::unique_lock<weft::Mutex> lk(m);
    REQUIRE(cv.wait_for(lk, hours::max(), [&] { return ready; }));
  }
  ready = false;
  {
    Later l([&] {
      std::lock_guard lk(m);
      ready = true;
      cv.notify_all();
    });
    std::unique_lock<weft::Mutex> lk(m);
    while (!ready) REQUIRE(cv.wait_for(lk, hours::max()));
  }
}

TEST_CASE("Channel::send_for and recv_for with hours::max() wait for the other side") {
  {
    weft::Channel<int> ch(0);
    Later l([&] { (void)ch.recv(); });
    REQUIRE(ch.send_for(1, hours::max()) == weft::SendStatus::ok);
  }
  {
    weft::Channel<int> ch(0);
    Later l([&] { ch.send(2); });
    REQUIRE(ch.recv_for(hours::max()).value == 2);
  }
  {
    weft::Channel<int> ch(0);
    Later l([&] { ch.send(3); });
    REQUIRE(in_fiber([&] { return ch.recv_for(hours::max()).value; }) == 3);
  }
  {
    weft::Channel<int> ch(1);
    ch.send(0);
    Later l([&] { (void)ch.recv(); });
    REQUIRE(in_fiber([&] { return ch.send_for(4, hours::max()); }) == weft::SendStatus::ok);
  }
}

TEST_CASE("offload_for with hours::max() waits for fn instead of expiring at once") {
  auto slow = [] {
    std::this_thread::sleep_for(30ms);
    return 7;
  };
  REQUIRE(in_fiber([&] { return weft::offload_for(slow, hours::max()); }) == 7);
  weft::ThreadPool pool({.name = "sat", .threads = 1});
  REQUIRE(in_fiber([&] { return weft::offload_for(pool, slow, hours::max()); }) == 7);
}
