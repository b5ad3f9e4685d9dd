// ThreadPool and offload: results and exceptions come back to the fiber on its own
// worker; a fiber waiting in offload never blocks its worker; a full queue parks
// fibers and blocks threads; shutdown runs or refuses (never drops) queued work;
// a timed-out offload's late result is destroyed exactly once.
#include <atomic>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/threaded/offload.hpp>
#include <weft/runtime/threaded/thread_pool.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using weft::ThreadPool;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

void spin_until(const std::atomic<bool>& flag) {
  for (int i = 0; i < 20000 && !flag.load(); ++i) std::this_thread::sleep_for(1ms);  // bounded: 20 s
  REQUIRE(flag.load());
}
}  // namespace

TEST_CASE("offload returns fn's value and rethrows its exception on the fiber's own worker") {
  weft::Runtime rt(weft::Config{.workers = 2});
  ThreadPool pool({.name = "t-value", .threads = 2});
  for (unsigned wk = 0; wk < 2; ++wk) {
    rt.spawn_on(wk, [&, wk] {
        REQUIRE(weft::current_domain().worker == static_cast<int>(wk));
        std::thread::id caller = std::this_thread::get_id();
        auto ran_on = weft::offload(pool, [] { return std::this_thread::get_id(); });
        REQUIRE(ran_on != caller);
        REQUIRE(weft::offload(pool, [] { return 42; }) == 42);
        REQUIRE(weft::current_domain().worker == static_cast<int>(wk));
        REQUIRE_THROWS_AS(weft::offload(pool, []() -> int { throw std::domain_error("boom"); }), std::domain_error);
        weft::offload(pool, [] {});
        REQUIRE(weft::current_domain().worker == static_cast<int>(wk));
      }).join();
  }
}

TEST_CASE("a fiber blocked in offload never blocks its worker") {
  weft::Runtime rt(weft::Config{.workers = 1});
  constexpr unsigned kThreads = 2;
  ThreadPool pool({.name = "t-nonblock", .threads = kThreads});
  rt.block_on([&] {
    std::atomic<unsigned> started{0};
    std::atomic<bool> first_returned{false};
    std::atomic<bool> stop{false};
    std::atomic<long> ticks{0};
    long at_all_started = -1;
    auto counter = weft::spawn([&] {
      while (!stop.load()) {
        ticks.fetch_add(1);
        weft::yield();
      }
    });
    std::vector<weft::JoinHandle<void>> hs;
    for (unsigned i = 0; i < 2 * kThreads; ++i) {
      hs.push_back(weft::spawn([&] {
        started.fetch_add(1);
        weft::offload(pool, [] { std::this_thread::sleep_for(50ms); });
        first_returned.store(true);
      }));
    }
    while (started.load() < 2 * kThreads) weft::yield();
    at_all_started = ticks.load();
    long before_first = -1;
    while (!first_returned.load()) {
      before_first = ticks.load();
      weft::yield();
    }
    for (auto& h : hs) h.join();
    stop = true;
    counter.join();
    REQUIRE(before_first > at_all_started);  // the counter fiber ran while all offloads were in flight
  });
}

TEST_CASE("a full queue parks a submitting fiber and blocks a submitting thread until space frees") {
  weft::Runtime rt;
  ThreadPool pool({.name = "t-full", .threads = 1, .queue_capacity = 1});
  std::atomic<bool> gate{false}, first_running{false};
  std::atomic<int> ran{0};
  pool.submit([&] {
    first_running = true;
    while (!gate.load()) std::this_thread::sleep_for(1ms);
    ++ran;
  });
  spin_until(first_running);
  pool.submit([&] { ++ran; });  // fills the queue (capacity 1)
  std::atomic<bool> fiber_done{false}, thread_done{false};
  auto h = rt.spawn([&] {
    pool.submit([&] { ++ran; });
    fiber_done = true;
  });
  std::thread th([&] {
    pool.submit([&] { ++ran; });
    thread_done = true;
  });
  for (int i = 0; i < 20000 && pool.stats().waiting_submitters < 2; ++i) std::this_thread::sleep_for(1ms);
  REQUIRE(pool.stats().waiting_submitters == 2);
  REQUIRE(pool.stats().queue_depth == 1);
  REQUIRE_FALSE(fiber_done.load());
  REQUIRE_FALSE(thread_done.load());
  gate = true;
  h.join();
  th.join();
  pool.shutdown();
  REQUIRE(ran.load() == 4);
  auto s = pool.stats();
  REQUIRE(s.submitted == 4);
  REQUIRE(s.completed == 4);
}

TEST_CASE("shutdown(run_queued) runs every queued task") {
  ThreadPool pool({.name = "t-drain", .threads = 1, .queue_capacity = 64});
  std::atomic<bool> gate{false};
  std::atomic<int> ran{0};
  pool.submit([&] {
    while (!gate.load()) std::this_thread::sleep_for(1ms);
  });
  for (int i = 0; i < 10; ++i) pool.submit([&] { ++ran; });
  std::thread opener([&] {
    std::this_thread::sleep_for(5ms);
    gate = true;
  });
  pool.shutdown(ThreadPool::Drain::run_queued);
  opener.join();
  REQUIRE(ran.load() == 10);
  REQUIRE(pool.stats().completed == 11);
  REQUIRE_THROWS_AS(pool.submit([] {}), weft::PoolShutDown);
  REQUIRE_THROWS_AS(pool.submit([] {}), weft::ShutDown);  // the one shut-down error of weft
}

TEST_CASE("shutdown(refuse_queued) tells each queued task: offload waiters get PoolShutDown") {
  weft::Runtime rt;
  ThreadPool pool({.name = "t-refuse", .threads = 1, .queue_capacity = 64});
  std::atomic<bool> gate{false}, first_running{false};
  pool.submit([&] {
    first_running = true;
    while (!gate.load()) std::this_thread::sleep_for(1ms);
  });
  spin_until(first_running);
  struct Counted {
    std::atomic<int>* refused;
    void operator()() {}
    void on_refused() { ++*refused; }
  };
  std::atomic<int> refused_plain{0};
  pool.submit(Counted{&refused_plain});
  std::atomic<int> got_shutdown{0};
  std::vector<weft::JoinHandle<void>> hs;
  for (int i = 0; i < 3; ++i) {
    hs.push_back(rt.spawn([&] {
      try {
        weft::offload(pool, [] { return 1; });
      } catch (const weft::PoolShutDown& e) {
        REQUIRE(std::string(e.what()).find("t-refuse") != std::string::npos);
        ++got_shutdown;
      }
    }));
  }
  for (int i = 0; i < 20000 && pool.stats().queue_depth < 4; ++i) std::this_thread::sleep_for(1ms);
  REQUIRE(pool.stats().queue_depth == 4);
  std::thread opener([&] {
    std::this_thread::sleep_for(5ms);
    gate = true;
  });
  pool.shutdown(ThreadPool::Drain::refuse_queued);
  opener.join();
  for (auto& h : hs) h.join();
  REQUIRE(got_shutdown.load() == 3);
  REQUIRE(refused_plain.load() == 1);
  auto s = pool.stats();
  REQUIRE(s.refused == 4);
  REQUIRE(s.submitted == s.completed + s.refused);
  REQUIRE_THROWS_AS(rt.block_on([&] { return weft::offload(pool, [] { return 1; }); }), weft::PoolShutDown);
}

namespace {
std::atomic<int> g_destroyed{0};
struct Late {
  bool live = true;
  Late() = default;
  Late(Late&& o) noexcept : live(std::exchange(o.live, false)) {}
  ~Late() {
    if (live) g_destroyed.fetch_add(1);
  }
};
}  // namespace

TEST_CASE("offload_for times out at its deadline and the late result is destroyed exactly once") {
  weft::Runtime rt;
  ThreadPool pool({.name = "t-timeout", .threads = 1});
  g_destroyed = 0;
  std::atomic<bool> finished{false};
  rt.block_on([&] {
    try {
      weft::offload_for(
          pool,
          [&] {
            std::this_thread::sleep_for(200ms);
            Late l;
            finished = true;
            return l;
          },
          5ms);
      FAIL("no timeout");
    } catch (const std::system_error& e) {
      REQUIRE(e.code() == std::make_error_code(std::errc::timed_out));
    }
  });
  spin_until(finished);
  for (int i = 0; i < 20000 && g_destroyed.load() == 0; ++i) std::this_thread::sleep_for(1ms);
  pool.shutdown();
  REQUIRE(g_destroyed.load() == 1);
}

TEST_CASE("offload from a plain thread runs fn inline") {
  ThreadPool pool({.name = "t-inline", .threads = 2});
  auto me = std::this_thread::get_id();
  REQUIRE(weft::offload(pool, [] { return std::this_thread::get_id(); }) == me);
  REQUIRE(weft::offload_for(
              pool, [] { return 7; }, 1ms) == 7);
  REQUIRE(pool.stats().submitted == 0);
}

TEST_CASE("weft::offload(fn) uses the runtime's own pool, started on first use and shut down with the runtime") {
  weft::Config cfg;
  cfg.name = "own";
  cfg.pool_threads = 3;
  cfg.pool_queue = 16;
  weft::Runtime rt(cfg);
  rt.block_on([&] {
    const std::thread::id worker = std::this_thread::get_id();
    REQUIRE(weft::offload([] { return std::this_thread::get_id(); }) != worker);
    REQUIRE(weft::offload_for([] { return 7; }, 5s) == 7);
    REQUIRE_THROWS_AS(weft::offload_for([] { std::this_thread::sleep_for(200ms); }, 1ms), std::system_error);
  });
  REQUIRE(rt.pool().name() == "own-pool");
  REQUIRE(rt.pool().stats().threads == 3);
  REQUIRE(rt.pool().stats().submitted == 3);
  // From a plain thread offload(fn) runs inline: no runtime pool is involved.
  REQUIRE(weft::offload([] { return std::this_thread::get_id(); }) == std::this_thread::get_id());
  rt.shutdown();
  REQUIRE(rt.pool().stats().completed == 3);  // the late task still ran before the pool joined
  REQUIRE_THROWS_AS(rt.pool().submit([] {}), weft::PoolShutDown);
}

TEST_CASE("a runtime that never offloads starts no pool, and refuses one after shutdown") {
  weft::Runtime rt;
  rt.block_on([] { weft::yield(); });
  rt.shutdown();
  REQUIRE_THROWS_AS(rt.pool(), weft::PoolShutDown);
}
