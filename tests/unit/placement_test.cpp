// Placement of new fibers (Config::placement): local keeps a fiber's children on
// its worker; round_robin and least_loaded spread them, from fibers and threads.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <vector>

#include <weft/weft.hpp>
#include <weft/runtime/waiter.hpp>

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

TEST_CASE("spawn_on obeys the worker it is given, whatever the placement") {
  for (auto p : {weft::Placement::local, weft::Placement::round_robin, weft::Placement::least_loaded}) {
    auto rt = make(p);
    REQUIRE(rt.spawn_on(1, [] { return weft::current_domain().worker; }).join() == 1);
    REQUIRE(rt.spawn_on(0, [&rt] { return rt.spawn_on(1, [] { return weft::current_domain().worker; }).join(); })
                .join() == 1);
  }
}
