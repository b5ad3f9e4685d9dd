// Placement of new fibers (Config::placement): local keeps a fiber's children on
// its worker; round_robin and least_loaded spread them, from fibers and threads;
// least_loaded sends them to the worker with fewer live fibers, which
// round_robin does not.
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/waiter.hpp>
#include <weft/sync/event.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using weft::detail::Waiter;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

weft::Runtime make(weft::Placement p) {
  weft::Config cfg;
  cfg.workers = 2;
  cfg.placement = p;
  return weft::Runtime(cfg);
}

/// Spawns `n` fibers from a fiber on worker 0 that stay alive (parked) until
/// released; returns how many landed on each worker.
std::vector<int> spread_from_fiber(weft::Runtime& rt, int n) {
  std::vector<int> per(2);
  rt.spawn_on(0, [&] {
      std::vector<std::atomic<Waiter*>> slots(static_cast<std::size_t>(n));
      std::vector<weft::JoinHandle<int>> hs;
      for (int i = 0; i < n; ++i)
        hs.push_back(weft::spawn([&slots, i] {
          Waiter w;
          slots[static_cast<std::size_t>(i)].store(&w, std::memory_order_release);
          w.wait();
          return weft::current_domain().worker;
        }));
      for (int i = 0; i < n; ++i) {
        Waiter* w;
        while (!(w = slots[static_cast<std::size_t>(i)].load(std::memory_order_acquire))) weft::yield();
        w->notify();
      }
      for (auto& h : hs) ++per[static_cast<std::size_t>(h.join())];
    }).join();
  return per;
}
}  // namespace

TEST_CASE("Placement::local keeps a fiber's children on its own worker") {
  auto rt = make(weft::Placement::local);
  auto per = spread_from_fiber(rt, 100);
  REQUIRE(per[0] == 100);
  REQUIRE(per[1] == 0);
}

TEST_CASE("Placement::round_robin alternates workers, from a fiber and from a thread") {
  auto rt = make(weft::Placement::round_robin);
  auto per = spread_from_fiber(rt, 100);
  REQUIRE(per[0] == 50);
  REQUIRE(per[1] == 50);
  std::vector<int> from_thread(2);
  std::vector<weft::JoinHandle<int>> hs;
  for (int i = 0; i < 10; ++i) hs.push_back(rt.spawn([] { return weft::current_domain().worker; }));
  for (auto& h : hs) ++from_thread[static_cast<std::size_t>(h.join())];
  REQUIRE(from_thread[0] == 5);
  REQUIRE(from_thread[1] == 5);
}

TEST_CASE("Placement::least_loaded balances live fibers across workers") {
  auto rt = make(weft::Placement::least_loaded);
  auto per = spread_from_fiber(rt, 100);
  INFO("worker 0: " << per[0] << ", worker 1: " << per[1]);
  REQUIRE(per[0] + per[1] == 100);
  REQUIRE(std::abs(per[0] - per[1]) <= 4);  // loads are hints read while fibers are adopted
}

TEST_CASE("Placement::least_loaded sends every new fiber to the idle worker while the other holds 40 parked fibers") {
  // Worker 0 holds 40 live fibers; 20 new ones (10 spawned from a thread, 10 from
  // a fiber on worker 0) keep worker 1 below that however they are counted, so
  // all 20 go there. Round-robin would put 10 of them on worker 0.
  auto rt = make(weft::Placement::least_loaded);
  weft::Event release{rt, weft::Event::Mode::manual_reset, "release"};
  constexpr int kLoad = 40, kFromThread = 10, kFromFiber = 10;
  std::vector<weft::JoinHandle<int>> hs;
  auto parked_here = [&release] {
    const int w = weft::current_domain().worker;
    release.wait();
    return w;
  };
  for (int i = 0; i < kLoad; ++i) hs.push_back(rt.spawn_on(0, parked_here));
  while (release.waiting() < kLoad) std::this_thread::yield();
  std::vector<weft::JoinHandle<int>> fresh;
  for (int i = 0; i < kFromThread; ++i) fresh.push_back(rt.spawn(parked_here));
  rt.spawn_on(0, [&] {
      for (int i = 0; i < kFromFiber; ++i) fresh.push_back(weft::spawn(parked_here));
    }).join();
  while (release.waiting() < kLoad + kFromThread + kFromFiber) std::this_thread::yield();
  rt.spawn_on(0, [&] { release.set(); }).join();
  std::vector<int> per(2);
  for (auto& h : fresh) ++per[static_cast<std::size_t>(h.join())];
  for (auto& h : hs) h.join();
  INFO("new fibers on worker 0: " << per[0] << ", on worker 1: " << per[1]);
  REQUIRE(per[1] == kFromThread + kFromFiber);
  REQUIRE(per[0] == 0);
}

TEST_CASE("spawn_on obeys the worker it is given, whatever the placement") {
  for (auto p : {weft::Placement::local, weft::Placement::round_robin, weft::Placement::least_loaded}) {
    auto rt = make(p);
    REQUIRE(rt.spawn_on(1, [] { return weft::current_domain().worker; }).join() == 1);
    REQUIRE(rt.spawn_on(0, [&rt] {
                return rt.spawn_on(1, [] { return weft::current_domain().worker; }).join();
              }).join() == 1);
  }
}
