// Wake storms: many plain threads hand work to workers that are going to sleep
// (or already asleep) at the same moment. 500 repetitions of each storm; every
// fiber must run / wake exactly once. A lost wakeup shows up as a repetition
// that never finishes: its watchdog fails the test with a fiber dump.
#include <atomic>
#include <barrier>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/waiter.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"

using namespace std::chrono_literals;
using weft::detail::Waiter;
using weft::test::Watchdog;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

constexpr int kReps = 500;
constexpr int kThreads = 6;
constexpr int kPerThread = 8;  // fibers started / woken by each thread per repetition

/// Spins `us` microseconds: lets a storm start before, during or after the
/// workers' descent into io_uring_enter.
void spin_us(int us) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  while (std::chrono::steady_clock::now() < until) {
  }
}

/// Ends when `total` arrivals were counted; the last arrival notifies the waiter.
struct Countdown {
  explicit Countdown(long total) : left(total) {}
  void arrive() {
    // acq_rel: the last arrival sees every earlier one's writes, and the main
    // thread (woken through the Waiter's claim) sees them all.
    if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) done.notify();
  }
  std::atomic<long> left;
  Waiter done;  // bound to the main thread (constructed there)
};

void run_storms(weft::WakeMode mode) {
  weft::Config cfg;
  cfg.workers = 2;
  cfg.wake = mode;
  weft::Runtime rt(cfg);
  weft::test::Rng rng(static_cast<std::uint64_t>(mode) + 1);  // seeded from WEFT_SEED
  std::atomic<long> reps_done{0}, ran{0};
  for (int rep = 0; rep < kReps; ++rep) {
    Watchdog wd("wake storm repetition", rt, {&reps_done, &ran}, 60s);
    const int delay_us = static_cast<int>(rng.between(0, 199));
    // Storm 1: every thread spawns fibers onto both workers at once.
    {
      Countdown cd(kThreads * kPerThread);
      std::barrier go(kThreads);
      std::vector<std::thread> ts;
      for (int t = 0; t < kThreads; ++t)
        ts.emplace_back([&, t] {
          go.arrive_and_wait();
          for (int i = 0; i < kPerThread; ++i)
            rt.spawn_on(static_cast<unsigned>((t + i) % 2), [&] {
                ran.fetch_add(1, std::memory_order_relaxed);
                cd.arrive();
              }).detach();
        });
      spin_us(delay_us);
      for (auto& t : ts) t.join();
      REQUIRE(cd.done.wait() == Waiter::Result::notified);
    }
    // Storm 2: fibers parked on both workers, woken by all threads at once.
    {
      constexpr int kFibers = kThreads * kPerThread;
      std::vector<std::unique_ptr<std::atomic<Waiter*>>> slots;
      for (int i = 0; i < kFibers; ++i) slots.push_back(std::make_unique<std::atomic<Waiter*>>(nullptr));
      Countdown parked(kFibers), woken(kFibers);
      for (int i = 0; i < kFibers; ++i)
        rt.spawn_on(static_cast<unsigned>(i % 2), [&, i] {
            Waiter w;
            slots[static_cast<std::size_t>(i)]->store(&w, std::memory_order_release);
            parked.arrive();
            if (w.wait() == Waiter::Result::notified) woken.arrive();
          }).detach();
      REQUIRE(parked.done.wait() == Waiter::Result::notified);
      // The workers now run out of work and head for sleep while we fire.
      spin_us(delay_us);
      std::barrier go(kThreads);
      std::vector<std::thread> ts;
      for (int t = 0; t < kThreads; ++t)
        ts.emplace_back([&, t] {
          go.arrive_and_wait();
          for (int i = t; i < kFibers; i += kThreads) {
            Waiter* w = slots[static_cast<std::size_t>(i)]->load(std::memory_order_acquire);
            if (!w->notify()) std::abort();  // nobody else claims these waits
          }
        });
      for (auto& t : ts) t.join();
      REQUIRE(woken.done.wait() == Waiter::Result::notified);
    }
    reps_done.fetch_add(1, std::memory_order_relaxed);
  }
  REQUIRE(ran.load() == static_cast<long>(kReps) * kThreads * kPerThread);
}

}  // namespace

TEST_CASE("wake storm: 500 repetitions of many threads waking sleeping workers, none lost (MSG_RING config)") {
  run_storms(weft::WakeMode::msg_ring);
}

TEST_CASE("wake storm: 500 repetitions of many threads waking sleeping workers, none lost (eventfd config)") {
  run_storms(weft::WakeMode::eventfd);
}
