// Channel<T> under load: ping-pong fiber<->thread and fiber<->fiber across two
// workers (every message checked), and MPMC with mixed fiber/thread producers and
// consumers (count and sum exact). Bounded: a watchdog aborts with the progress
// counters (and a fiber dump) instead of letting CI hang.
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/sync/channel.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"

using namespace std::chrono_literals;
using weft::Channel;
using weft::test::Watchdog;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

}  // namespace

TEST_CASE("ping-pong fiber<->thread: every message comes back in order") {
  const long n = weft::test::scaled(1000000);
  weft::Runtime rt;
  Channel<long> to_fiber(1), to_thread(1);
  std::atomic<long> fiber_seen{0}, thread_seen{0};
  Watchdog wd("ping-pong fiber<->thread", rt, {&fiber_seen, &thread_seen});
  auto echo = rt.spawn([&] {
    for (long i = 0; i < n; ++i) {
      auto v = to_fiber.recv();
      if (!v || *v != i) return false;
      fiber_seen.store(i + 1, std::memory_order_relaxed);
      to_thread.send(*v);
    }
    return true;
  });
  bool ok = true;
  for (long i = 0; i < n && ok; ++i) {
    to_fiber.send(i);
    auto v = to_thread.recv();
    ok = v && *v == i;
    thread_seen.store(i + 1, std::memory_order_relaxed);
  }
  REQUIRE(ok);
  REQUIRE(echo.join());
  REQUIRE(thread_seen.load() == n);
}

TEST_CASE("ping-pong fiber<->fiber across two workers: every message comes back in order") {
  const long n = weft::test::scaled(1000000);
  weft::Runtime rt(weft::Config{.workers = 2});
  Channel<long> ping(1), pong(1);
  std::atomic<long> a_seen{0}, b_seen{0};
  Watchdog wd("ping-pong fiber<->fiber", rt, {&a_seen, &b_seen});
  auto a = rt.spawn_on(0, [&] {
    for (long i = 0; i < n; ++i) {
      ping.send(i);
      auto v = pong.recv();
      if (!v || *v != i) return false;
      a_seen.store(i + 1, std::memory_order_relaxed);
    }
    return true;
  });
  auto b = rt.spawn_on(1, [&] {
    for (long i = 0; i < n; ++i) {
      auto v = ping.recv();
      if (!v || *v != i) return false;
      b_seen.store(i + 1, std::memory_order_relaxed);
      pong.send(*v);
    }
    return true;
  });
  REQUIRE(a.join());
  REQUIRE(b.join());
  REQUIRE(a_seen.load() == n);
}

TEST_CASE("MPMC: 2 fiber + 2 thread producers, 2 fiber + 2 thread consumers, count and sum exact") {
  const long per = weft::test::scaled(250000);
  constexpr int kProducers = 4;
  weft::Runtime rt(weft::Config{.workers = 2});
  Channel<long> ch(16);
  std::atomic<long> produced{0}, consumed{0}, sum{0};
  Watchdog wd("MPMC", rt, {&produced, &consumed});

  // Producer p sends p*per+1 .. p*per+per.
  auto produce = [&](int p) {
    for (long i = 1; i <= per; ++i) {
      ch.send(p * per + i);
      produced.fetch_add(1, std::memory_order_relaxed);
    }
  };
  auto consume = [&] {
    long c = 0, s = 0;
    while (auto v = ch.recv()) ++c, s += *v;
    consumed.fetch_add(c, std::memory_order_relaxed);
    sum.fetch_add(s, std::memory_order_relaxed);
  };
  std::vector<weft::JoinHandle<void>> fibers;
  fibers.push_back(rt.spawn_on(0, [&] { consume(); }));
  fibers.push_back(rt.spawn_on(1, [&] { consume(); }));
  std::vector<std::thread> consumers;
  for (int i = 0; i < 2; ++i) consumers.emplace_back(consume);

  auto fp0 = rt.spawn_on(0, [&] { produce(0); });
  auto fp1 = rt.spawn_on(1, [&] { produce(1); });
  std::thread tp2(produce, 2), tp3(produce, 3);
  fp0.join();
  fp1.join();
  tp2.join();
  tp3.join();
  ch.close();
  for (auto& f : fibers) f.join();
  for (auto& t : consumers) t.join();

  const long total = kProducers * per;
  REQUIRE(produced.load() == total);
  REQUIRE(consumed.load() == total);
  REQUIRE(sum.load() == total * (total + 1) / 2);
}
