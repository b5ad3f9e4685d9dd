// weft::Mutex owner identities are never reused: a fiber or thread that did not
// lock the Mutex cannot unlock it even when it took over the memory of the one
// that did (fiber blocks and thread-locals are recycled), and a fiber or thread
// that ends holding a Mutex is reported by name while the next locker simply
// waits. Each case runs in a forked child (an abort, or the log, is the outcome).
// These tests lock and unlock across lambdas and misuse the Mutex on purpose:
// clang's static lock analysis cannot follow that.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wthread-safety-analysis"
#endif
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include <catch2/catch.hpp>

#include <weft/sync/mutex.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "sync_test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

/// lock_for(20ms) by the caller: 0 when it timed out, 1 when it got the lock,
/// 2 when it was refused as a recursive lock (the caller is taken for the owner).
int next_locker_outcome(weft::Mutex& m) {
  try {
    if (!m.lock_for(20ms)) return 0;
    m.unlock();
    return 1;
  } catch (const std::system_error&) {
    return 2;
  }
}
}  // namespace

TEST_CASE("unlock by a fiber other than the owner is refused after the owner ended") {
  auto r = weft::test::run_in_child([] {
    weft::Runtime rt;
    weft::Mutex m{rt, "orphan"};
    rt.block_on([&] {
      // Same capture, same size class: the second fiber takes the first one's block.
      weft::spawn([&m] { m.lock(); }, {.name = "owner"}).join();
      weft::yield();  // let the worker free the ended fiber's block
      weft::spawn([&m] { m.unlock(); }, {.name = "intruder"}).join();
    });
    return 0;
  });
  INFO(r.output);
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft::Mutex 'orphan'") && Contains("unlock() by fiber 'intruder'") &&
                             Contains("does not hold it") && Contains("which ended without unlocking it"));
}

TEST_CASE("a unique_lock moved to a fiber on another worker cannot unlock there") {
  auto r = weft::test::run_in_child([] {
    weft::Runtime rt(weft::Config{.workers = 2});
    weft::Mutex m{rt, "moved"};
    struct Ctx {
      weft::Mutex& m;
      std::unique_lock<weft::Mutex> lk;
    } ctx{m, {}};
    rt.spawn_on(0, [&] {
        weft::spawn([&ctx] { ctx.lk = std::unique_lock<weft::Mutex>(ctx.m); }, {.name = "locker"}).join();
        weft::yield();  // let the worker free the ended fiber's block
        // Allocated on this thread like the locker: it may take the locker's block.
        rt.spawn_on(1, [&ctx] { ctx.lk.unlock(); }, {.name = "mover"}).join();
      }).join();
    return 0;
  });
  INFO(r.output);
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft::Mutex 'moved'") && Contains("unlock() by fiber 'mover'") &&
                             Contains("does not hold it"));
}

TEST_CASE("a unique_lock moved to a live fiber on another worker cannot unlock there") {
  auto r = weft::test::run_in_child([] {
    weft::Runtime rt(weft::Config{.workers = 2});
    weft::Mutex m{rt, "moved-live"};
    rt.spawn_on(0, [&] {
        std::unique_lock<weft::Mutex> lk(m);
        rt.spawn_on(1, [lk = std::move(lk)]() mutable { lk.unlock(); }, {.name = "mover"}).join();
      }).join();
    return 0;
  });
  INFO(r.output);
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft::Mutex 'moved-live'") && Contains("unlock() by fiber 'mover'") &&
                             Contains("does not hold it"));
}

TEST_CASE("a Threaded Mutex whose owning thread exited is refused to a new thread") {
  auto r = weft::test::run_in_child([] {
    weft::Mutex m{weft::threaded, "thread-owned"};
    std::thread([&] { m.lock(); }).join();
    std::thread([&] { m.unlock(); }).join();  // may get the first thread's stack and thread-locals
    return 0;
  });
  INFO(r.output);
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft::Mutex 'thread-owned'") && Contains("does not hold it") &&
                             Contains("which ended without unlocking it"));
}

TEST_CASE("a fiber that ends holding a Mutex is reported by name and the next locker waits normally") {
  auto r = weft::test::run_in_child([] {
    weft::Runtime rt;
    weft::Mutex m{rt, "kept"};
    return rt.block_on([&] {
      weft::spawn([&m] { return m.try_lock() ? 0 : 9; }, {.name = "leaky"}).join();
      weft::yield();  // let the worker free the ended fiber's block
      return weft::spawn([&m] { return next_locker_outcome(m); }, {.name = "next"}).join();
    });
  });
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);  // timed out: the Mutex stays held by the fiber that ended
  REQUIRE_THAT(r.output, Contains("fiber 'leaky'") && Contains("ended holding weft::Mutex 'kept'"));
}

TEST_CASE("a thread that exits holding a Mutex is reported by name and the next locker waits normally") {
  auto r = weft::test::run_in_child([] {
    weft::Mutex m{weft::threaded, "kept"};
    std::thread([&] {
      pthread_setname_np(pthread_self(), "leaky-thread");
      m.lock();
    }).join();
    int outcome = -1;
    std::thread([&] { outcome = next_locker_outcome(m); }).join();
    return outcome;
  });
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Contains("thread 'leaky-thread'") && Contains("ended holding weft::Mutex 'kept'"));
}

TEST_CASE("a fiber that unlocks out of order or destroys a Mutex it holds ends with nothing reported") {
  auto r = weft::test::run_in_child([] {
    weft::Runtime rt;
    weft::Mutex a{rt, "a"}, b{rt, "b"};
    rt.block_on([&] {
      weft::spawn([&] {
        a.lock();
        b.lock();
        auto* c = new weft::Mutex{"c"};
        c->lock();
        a.unlock();  // not the most recent one
        delete c;    // held by this fiber: allowed
        b.unlock();
      }).join();
    });
    return rt.block_on([&] {
      int rc = 0;
      if (a.try_lock())
        a.unlock();
      else
        rc = 1;
      if (b.try_lock())
        b.unlock();
      else
        rc = 1;
      return rc;
    });
  });
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, !Contains("ended holding"));
}

TEST_CASE("destroying a Mutex that another thread holds aborts naming the holder") {
  auto r = weft::test::run_in_child([] {
    auto* m = new weft::Mutex{weft::threaded, "held"};
    std::atomic<bool> locked{false};
    std::thread t([&] {
      m->lock();
      locked = true;
      for (;;) std::this_thread::sleep_for(1s);  // holds it until the process dies
    });
    while (!locked.load()) std::this_thread::yield();
    delete m;  // aborts here
    t.detach();
    return 0;
  });
  INFO(r.output);
  REQUIRE(r.signaled);
  REQUIRE_THAT(r.output, Contains("weft::Mutex 'held'") && Contains("destroyed by thread") &&
                             Contains("while thread #") && Contains("holds it"));
}
