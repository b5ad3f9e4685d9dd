// Incident 001 (workaround 6) / 003: a mutex of one backend called from the other
// dereferenced a null thread-local or corrupted the heap. The misuse matrix: every
// primitive, bound to each domain, called from a fiber of its runtime on worker 0
// and on worker 1, a fiber of a second runtime, a pool thread, a plain std::thread
// and the main thread. Allowed callers work; forbidden ones get CrossRuntimeError
// naming both sides, and the primitive is still usable afterwards. Signals (set,
// reset, release, increment_and_wake, notify) never block and are accepted from
// every caller: the refusal each foreign caller gets comes from its blocking call.
// These tests lock and unlock across lambdas and misuse the Mutex on purpose
// (recursive lock, foreign unlock): clang's static lock analysis cannot follow that.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wthread-safety-analysis"
#endif
#include <pthread.h>

#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include <catch2/catch.hpp>

#include <weft/runtime/test_access.hpp>
#include <weft/sync/condition.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/futex_counter.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

enum class Caller { a_worker0, a_worker1, b_fiber, pool_thread, plain_thread, main_thread };
const Caller kCallers[] = {Caller::a_worker0,   Caller::a_worker1,    Caller::b_fiber,
                           Caller::pool_thread, Caller::plain_thread, Caller::main_thread};

const char* caller_name(Caller c) {
  switch (c) {
    case Caller::a_worker0:
      return "fiber of runtime 'alpha' on worker 0";
    case Caller::a_worker1:
      return "fiber of runtime 'alpha' on worker 1";
    case Caller::b_fiber:
      return "fiber of runtime 'beta'";
    case Caller::pool_thread:
      return "pool thread";
    case Caller::plain_thread:
      return "plain std::thread";
    case Caller::main_thread:
      return "main thread";
  }
  return "?";
}
/// How the caller appears in a message (describe_caller()).
const char* caller_tag(Caller c) {
  switch (c) {
    case Caller::a_worker0:
      return "fiber 'caller' on worker 0 of runtime 'alpha'";
    case Caller::a_worker1:
      return "fiber 'caller' on worker 1 of runtime 'alpha'";
    case Caller::b_fiber:
      return "fiber 'caller' on worker 0 of runtime 'beta'";
    case Caller::pool_thread:
      return "thread 'matrix-pool-";
    case Caller::plain_thread:
      return "thread 'plain-caller'";
    case Caller::main_thread:
      return "thread '";
  }
  return "?";
}

/// What one call did: nothing thrown, CrossRuntimeError (with its text), or another error.
struct Outcome {
  enum Kind { ok, cross, other } kind = ok;
  std::string what;
};

Outcome capture(const std::function<void()>& fn) {
  try {
    fn();
    return {};
  } catch (const weft::CrossRuntimeError& e) {
    return {Outcome::cross, e.what()};
  } catch (const std::exception& e) {
    return {Outcome::other, e.what()};
  }
}

struct World {
  weft::Runtime a{weft::Config{.name = "alpha", .workers = 2}};
  weft::Runtime b{weft::Config{.name = "beta"}};
  weft::ThreadPool pool{weft::ThreadPoolConfig{.name = "matrix-pool", .threads = 1}};

  Outcome run(Caller c, const std::function<void()>& fn) {
    auto body = [&fn] { return capture(fn); };
    switch (c) {
      case Caller::a_worker0:
        return a.spawn_on(0, body, {.name = "caller"}).join();
      case Caller::a_worker1:
        return a.spawn_on(1, body, {.name = "caller"}).join();
      case Caller::b_fiber:
        return b.spawn(body, {.name = "caller"}).join();
      case Caller::pool_thread: {
        std::promise<Outcome> p;
        auto f = p.get_future();
        pool.submit([&p, &body] { p.set_value(body()); });
        return f.get();
      }
      case Caller::plain_thread: {
        Outcome o;
        std::thread t([&] {
          pthread_setname_np(pthread_self(), "plain-caller");
          o = body();
        });
        t.join();
        return o;
      }
      case Caller::main_thread:
        return body();
    }
    return {Outcome::other, "bad caller"};
  }
};

bool allowed(bool evented_binding, Caller c) {
  const bool alpha_fiber = c == Caller::a_worker0 || c == Caller::a_worker1;
  const bool thread = c == Caller::pool_thread || c == Caller::plain_thread || c == Caller::main_thread;
  return evented_binding ? alpha_fiber : thread;
}

/// One primitive under test: a use that completes without anyone else's help.
struct Subject {
  const char* kind;
  std::function<void()> use;
};

void check_matrix(World& w, bool evented_binding, const std::function<Subject()>& make) {
  const Subject s = make();
  const std::string domain = evented_binding ? "Evented(runtime 'alpha')" : "Threaded";
  for (Caller c : kCallers) {
    INFO(s.kind << " bound to " << domain << ", called from the " << caller_name(c));
    const Outcome o = w.run(c, s.use);
    if (allowed(evented_binding, c)) {
      INFO(o.what);
      REQUIRE(o.kind == Outcome::ok);
    } else {
      REQUIRE(o.kind == Outcome::cross);
      REQUIRE_THAT(o.what, Contains(s.kind));
      REQUIRE_THAT(o.what, Contains("belongs to " + domain));
      REQUIRE_THAT(o.what, Contains(caller_tag(c)));
      REQUIRE_THAT(o.what, Contains("weft::Channel"));
      if (!evented_binding) REQUIRE_THAT(o.what, Contains("weft::offload"));
      // Still usable by its own side after the refusal.
      const Outcome again = w.run(evented_binding ? Caller::a_worker1 : Caller::plain_thread, s.use);
      INFO(again.what);
      REQUIRE(again.kind == Outcome::ok);
    }
  }
}

template <class P, class... Args>
std::shared_ptr<P> make_bound(World& w, bool evented_binding, Args... args) {
  if (evented_binding) return std::make_shared<P>(w.a, args...);
  return std::make_shared<P>(weft::threaded, args...);
}

}  // namespace

TEST_CASE("every primitive refuses callers of the other domain and serves its own (the misuse matrix)") {
  World w;
  for (bool evented : {true, false}) {
    SECTION(evented ? "bound to Evented(alpha)" : "bound to Threaded") {
      check_matrix(w, evented, [&] {
        auto m = make_bound<weft::Mutex>(w, evented, "matrix");
        return Subject{"weft::Mutex 'matrix'", [m] {
                         m->lock();
                         m->unlock();
                         if (m->try_lock()) m->unlock();
                         if (m->lock_for(1s)) m->unlock();
                       }};
      });
      check_matrix(w, evented, [&] {
        auto e = make_bound<weft::Event>(w, evented, weft::Event::Mode::manual_reset, "matrix");
        return Subject{"weft::Event 'matrix'", [e] {
                         e->set();
                         e->wait();
                         (void)e->wait_for(1ms);
                         e->reset();
                       }};
      });
      check_matrix(w, evented, [&] {
        auto e = make_bound<weft::Event>(w, evented, weft::Event::Mode::auto_reset, "matrix-auto");
        return Subject{"weft::Event 'matrix-auto'", [e] {
                         e->set();
                         e->wait();
                       }};
      });
      check_matrix(w, evented, [&] {
        auto c = make_bound<weft::FutexCounter>(w, evented, 0u, "matrix");
        return Subject{"weft::FutexCounter 'matrix'", [c] {
                         const std::uint32_t snap = c->value();
                         c->increment_and_wake();
                         c->wait_until_changed(snap);
                         (void)c->wait_until_changed(snap, 1ms);
                       }};
      });
      check_matrix(w, evented, [&] {
        auto s = make_bound<weft::Semaphore>(w, evented, std::ptrdiff_t{0}, "matrix");
        return Subject{"weft::Semaphore 'matrix'", [s] {
                         s->release(2);
                         s->acquire();
                         if (!s->try_acquire()) throw std::logic_error("no permit");
                         (void)s->acquire_for(1ms);
                       }};
      });
      check_matrix(w, evented, [&] {
        auto m = make_bound<weft::Mutex>(w, evented, "matrix-cv-mutex");
        auto cv = make_bound<weft::Condition>(w, evented, "matrix");
        return Subject{"weft::Condition 'matrix'", [m, cv] {
                         cv->notify_one();  // a signal: accepted from every caller
                         // A foreign caller is refused here, by the Condition, before it
                         // looks at the lock; its own side is told to lock the Mutex first.
                         std::unique_lock<weft::Mutex> lk(*m, std::defer_lock);
                         try {
                           (void)cv->wait_for(lk, 1ms);
                         } catch (const std::system_error&) {
                         }
                         lk.lock();
                         (void)cv->wait_for(lk, 1ms);
                       }};
      });
    }
  }
}

TEST_CASE("signals are accepted from every caller whatever the primitive's domain and do not bind") {
  World w;
  for (bool evented : {true, false}) {
    auto e = make_bound<weft::Event>(w, evented, weft::Event::Mode::manual_reset, "signals");
    auto sem = make_bound<weft::Semaphore>(w, evented, std::ptrdiff_t{0}, "signals");
    auto counter = make_bound<weft::FutexCounter>(w, evented, 0u, "signals");
    auto cv = make_bound<weft::Condition>(w, evented, "signals");
    weft::Event unbound;
    for (Caller c : kCallers) {
      INFO("bound to " << (evented ? "Evented(alpha)" : "Threaded") << ", signalled from the " << caller_name(c));
      const Outcome o = w.run(c, [&] {
        e->set();
        e->reset();
        sem->release();
        counter->increment_and_wake();
        cv->notify_one();
        cv->notify_all();
        unbound.set();
      });
      INFO(o.what);
      REQUIRE(o.kind == Outcome::ok);
    }
    REQUIRE(sem->available() == static_cast<std::ptrdiff_t>(std::size(kCallers)));
    REQUIRE(counter->value() == static_cast<std::uint32_t>(std::size(kCallers)));
    REQUIRE(weft::detail::TestAccess::binding(*sem).bound_threaded() == !evented);
    REQUIRE_FALSE(weft::detail::TestAccess::binding(unbound).bound());
  }
}

TEST_CASE("an unbound primitive binds to its first blocking caller and then refuses the other side") {
  weft::Runtime rt(weft::Config{.name = "first"});
  weft::Mutex m{"lazy"};
  weft::Semaphore sem{1, "lazy"};
  rt.block_on([&] {
    weft::MutexGuard g(m);
    sem.acquire();
  });
  REQUIRE(weft::detail::TestAccess::binding(m).bound());
  REQUIRE_FALSE(weft::detail::TestAccess::binding(m).bound_threaded());
  const Outcome o = capture([&] { m.lock(); });
  REQUIRE(o.kind == Outcome::cross);
  REQUIRE_THAT(o.what, Contains("Evented(runtime 'first')"));
  REQUIRE_THROWS_AS(sem.acquire(), weft::CrossRuntimeError);
  sem.release();  // a signal: accepted from the main thread, and the binding stays
  REQUIRE(sem.available() == 1);
  REQUIRE_FALSE(weft::detail::TestAccess::binding(sem).bound_threaded());
  REQUIRE(rt.block_on([&] { return sem.try_acquire(); }));
}

TEST_CASE("two runtimes with the same name are still told apart") {
  weft::Runtime a, b;  // both "weft"
  weft::Event e{a};
  const Outcome o = b.block_on([&] { return capture([&] { e.wait(); }); });
  REQUIRE(o.kind == Outcome::cross);
  REQUIRE_THAT(o.what, Contains("another Runtime object with the same name"));
}

TEST_CASE("a foreign Condition::wait is refused by the Condition before it looks at the lock") {
  weft::Runtime rt(weft::Config{.name = "cv-rt"});
  weft::Mutex m{rt};
  weft::Condition cv{rt, "cv"};
  std::unique_lock<weft::Mutex> lk(m, std::defer_lock);
  const Outcome o = capture([&] { cv.wait(lk); });
  REQUIRE(o.kind == Outcome::cross);
  REQUIRE_THAT(o.what, Contains("weft::Condition 'cv'") && Contains("wait()"));
}
