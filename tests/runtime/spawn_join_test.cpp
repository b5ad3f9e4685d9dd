// Fibers: spawn, join, results, exceptions, names, launch order, joins from threads.
#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}

TEST_CASE("100k fibers spawned and joined all run exactly once and return their results") {
  weft::Runtime rt;
  const long total = 100000;
  // TSan keeps a full thread state per live fiber: cap how many are alive at once.
  const long batch = weft::test::under_tsan() ? 1000 : total;
  std::vector<int> runs(static_cast<std::size_t>(total));  // per fiber; all on one worker
  long sum = rt.block_on([&] {
    long s = 0;
    std::vector<weft::JoinHandle<long>> hs;
    hs.reserve(static_cast<std::size_t>(batch));
    for (long done = 0; done < total; done += batch) {
      for (long i = done; i < done + batch; ++i)
        hs.push_back(weft::spawn([i, &runs] {
          ++runs[static_cast<std::size_t>(i)];
          return i;
        }));
      for (auto& h : hs) s += h.join();
      hs.clear();
    }
    return s;
  });
  REQUIRE(sum == total * (total - 1) / 2);
  REQUIRE(std::count(runs.begin(), runs.end(), 1) == total);
  auto st = rt.stats();
  REQUIRE(st.fibers_spawned >= static_cast<std::uint64_t>(total));
}

TEST_CASE("an exception thrown in a fiber is rethrown by join") {
  weft::Runtime rt;
  rt.block_on([] {
    auto h = weft::spawn([]() -> int { throw std::runtime_error("boom in child"); });
    REQUIRE_THROWS_WITH(h.join(), "boom in child");
    // The runtime keeps running after it.
    REQUIRE(weft::spawn([] { return 7; }).join() == 7);
  });
}

TEST_CASE("block_on rethrows the exception of its fiber on the calling thread") {
  weft::Runtime rt;
  REQUIRE_THROWS_AS(rt.block_on([]() -> int { throw std::out_of_range("from fiber"); }), std::out_of_range);
  REQUIRE(rt.block_on([] { return 1; }) == 1);
}

TEST_CASE("an exception nobody joins is counted and the runtime keeps running") {
  weft::Runtime rt;
  auto before = rt.stats().unjoined_exceptions;
  rt.block_on([] {
    weft::spawn([] { throw std::runtime_error("nobody joins me"); }, {.name = "orphan"}).detach();
    weft::sleep_for(1ms);
    weft::yield();
  });
  REQUIRE(rt.stats().unjoined_exceptions == before + 1);
  REQUIRE(rt.block_on([] { return 3; }) == 3);
}

TEST_CASE("a fiber can be joined from a plain thread") {
  weft::Runtime rt;
  auto h = rt.spawn([] {
    weft::sleep_for(5ms);
    return std::string("done");
  });
  std::string got;
  std::thread t([&] { got = h.join(); });
  t.join();
  REQUIRE(got == "done");
}

TEST_CASE("fibers have unique ids and the names they were given") {
  weft::Runtime rt;
  rt.block_on([] {
    auto a = weft::spawn([] { return weft::this_fiber::name(); }, {.name = "conn-handler#17"});
    auto b = weft::spawn([] { return weft::this_fiber::name(); });
    auto ida = a.id(), idb = b.id();
    REQUIRE(ida != idb);
    REQUIRE(a.join() == "conn-handler#17");
    REQUIRE(b.join() == "fiber#" + std::to_string(idb));
  });
}

TEST_CASE("launch dispatch runs the child before the spawner continues; post runs it later") {
  weft::Runtime rt;
  rt.block_on([] {
    std::vector<int> order;
    auto d = weft::spawn([&] { order.push_back(1); }, {.launch = weft::Launch::dispatch});
    order.push_back(2);
    auto p = weft::spawn([&] { order.push_back(3); });
    order.push_back(4);
    d.join();
    p.join();
    REQUIRE(order == std::vector<int>{1, 2, 4, 3});
  });
}

TEST_CASE("yield interleaves the ready fibers of a worker in FIFO order") {
  weft::Runtime rt;
  rt.block_on([] {
    std::string trace;
    auto mk = [&](char c) {
      return weft::spawn([&trace, c] {
        for (int i = 0; i < 3; ++i) {
          trace += c;
          weft::yield();
        }
      });
    };
    auto a = mk('a');
    auto b = mk('b');
    a.join();
    b.join();
    REQUIRE(trace == "ababab");
  });
}

TEST_CASE("a dropped handle detaches the fiber, which still runs to completion") {
  weft::Runtime rt;
  int steps = 0;  // one worker: no race
  rt.block_on([&] {
    {
      auto h = weft::spawn([&] {
        ++steps;
        weft::sleep_for(1ms);
        ++steps;
      });
      weft::yield();  // it starts and parks in its sleep
      REQUIRE(steps == 1);
    }                                        // the handle is dropped here: no join(), no detach()
    while (steps < 2) weft::sleep_for(1ms);  // bounded by the test's timeout
    REQUIRE(rt.stats().fibers_alive == 1);   // it finished and is gone; only this fiber is left
  });
  REQUIRE(steps == 2);
  REQUIRE(rt.stats().fibers_alive == 0);
}

TEST_CASE("fibers spawned from another thread with Runtime::spawn run on the runtime") {
  weft::Runtime rt;
  std::vector<std::thread> ts;
  std::atomic<long> sum{0};
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      std::vector<weft::JoinHandle<int>> hs;
      for (int i = 0; i < 200; ++i)
        hs.push_back(rt.spawn([] {
          weft::yield();
          return weft::current_domain().evented() ? 1 : 0;
        }));
      for (auto& h : hs) sum += h.join();
    });
  for (auto& t : ts) t.join();
  REQUIRE(sum == 800);
}

TEST_CASE("stats count switches and alive fibers") {
  weft::Runtime rt;
  rt.block_on([] {
    for (int i = 0; i < 10; ++i) weft::yield();
  });
  auto s = rt.stats();
  REQUIRE(s.switches > 0);
  REQUIRE(s.fibers_alive == 0);
}

TEST_CASE("spawn_detached from plain threads runs every task once on the runtime") {
  weft::Runtime rt(weft::Config{.workers = 2});
  constexpr int kTasks = 1000;
  std::vector<std::atomic<int>> runs(kTasks);  // per task: how often it ran in a fiber
  std::atomic<int> ran{0}, off_runtime{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = t * 250; i < (t + 1) * 250; ++i)
        rt.spawn_detached([&, i] {
          if (!weft::current_domain().evented()) off_runtime.fetch_add(1);
          runs[static_cast<std::size_t>(i)].fetch_add(1);
          ran.fetch_add(1);
        });
    });
  for (auto& t : ts) t.join();
  rt.block_on([&] {
    while (ran.load() < kTasks) weft::sleep_for(1ms);  // bounded by the test's timeout
  });
  rt.shutdown();  // a task running twice would have done so by now
  REQUIRE(off_runtime.load() == 0);
  int once = 0;
  for (auto& r : runs) once += r.load() == 1;
  REQUIRE(once == kTasks);
}

TEST_CASE("the deprecated Runtime::post still starts a detached fiber with its options") {
  weft::Runtime rt;
  std::atomic<bool> ran{false};
  std::string name;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  rt.post(
      [&] {
        name = weft::this_fiber::name();
        ran.store(true, std::memory_order_release);
      },
      {.name = "old-post"});
#pragma GCC diagnostic pop
  rt.block_on([&] {
    while (!ran.load(std::memory_order_acquire)) weft::sleep_for(1ms);  // bounded by the test's timeout
  });
  REQUIRE(name == "old-post");
}

TEST_CASE("a fiber's captures are destroyed in the fiber itself, before join returns") {
  // Where a capture dies matters: a captured socket's close() can wait for the
  // kernel only in a fiber of its worker (net/socket.hpp).
  struct Probe {
    std::atomic<std::uint64_t>* seen;
    bool armed = true;
    Probe(std::atomic<std::uint64_t>* s) : seen(s) {}
    Probe(Probe&& o) noexcept : seen(o.seen) { o.armed = false; }
    ~Probe() {
      if (!armed) return;
      try {
        seen->store(weft::this_fiber::id() + 1);
      } catch (...) {
        seen->store(~std::uint64_t{0});  // not in a fiber
      }
    }
  };
  weft::Runtime rt;
  std::atomic<std::uint64_t> seen{0};
  std::uint64_t fiber_id = 0;
  rt.block_on([&] {
    auto h = weft::spawn([p = Probe(&seen), &fiber_id] { fiber_id = weft::this_fiber::id(); });
    h.join();
    // join() returned: the capture is gone already, and it died in the child.
    REQUIRE(seen.load() == fiber_id + 1);
  });
}

// A fiber alone on its worker that yields must let the tick's work in at its next
// yield: a timer that fell due, a fiber spawned from another thread. (Before, a lone yield
// only counted down the tick budget, so that work waited up to 64 yields.)
TEST_CASE("a fiber alone on its worker runs a due timer's fiber within two yields, not a tick budget later") {
  weft::Runtime rt;
  const long worst = rt.block_on([] {
    long worst_rep = 0;
    for (int rep = 0; rep < 20; ++rep) {
      bool woke = false;
      auto sleeper = weft::spawn([&woke] {
        weft::sleep_for(1ms);
        woke = true;
      });
      weft::yield();  // the sleeper runs and parks: its deadline is at most 1 ms from now
      const auto due_by = std::chrono::steady_clock::now() + 1ms;
      long yields_while_due = 0;
      while (!woke) {
        const bool due = std::chrono::steady_clock::now() >= due_by;
        weft::yield();
        if (due) ++yields_while_due;
      }
      sleeper.join();
      worst_rep = std::max(worst_rep, yields_while_due);
    }
    return worst_rep;
  });
  REQUIRE(worst <= 2);  // one yield enters the tick (timer fires), the next runs the sleeper
}

TEST_CASE("a fiber alone on its worker runs a fiber spawned from a thread within two yields of the spawn") {
  weft::Runtime rt;
  long worst = 0;
  for (int rep = 0; rep < 20; ++rep) {
    std::atomic<bool> spinning{false}, spawned{false}, ran{false};
    auto spinner = rt.spawn([&] {
      spinning.store(true, std::memory_order_release);
      long yields_after_spawn = 0;
      while (!ran.load(std::memory_order_acquire)) {
        const bool p = spawned.load(std::memory_order_acquire);  // the new fiber is in the inbox
        weft::yield();
        if (p) ++yields_after_spawn;
      }
      return yields_after_spawn;
    });
    while (!spinning.load(std::memory_order_acquire)) std::this_thread::yield();
    rt.spawn_detached([&ran] { ran.store(true, std::memory_order_release); });
    spawned.store(true, std::memory_order_release);
    worst = std::max(worst, spinner.join());
  }
  REQUIRE(worst <= 2);  // one yield drains the inbox, the next runs the new fiber
}
