// Offload ping-pong: many fibers round-trip through a small pool; every result
// comes back to the right fiber, none is lost or doubled, nothing hangs.
#include <atomic>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/threaded/offload.hpp>
#include <weft/runtime/threaded/thread_pool.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("offload ping-pong: every round trip from several fibers returns its own result") {
  const long total = weft::test::scaled(1000000);
  constexpr int kFibers = 8;
  weft::Runtime rt(weft::Config{.workers = 2});
  weft::ThreadPool pool({.name = "stress", .threads = 2, .queue_capacity = 4});
  std::atomic<long> ok{0};
  weft::test::Watchdog wd("offload ping-pong", rt, {&ok});
  std::vector<weft::JoinHandle<void>> hs;
  for (int f = 0; f < kFibers; ++f) {
    hs.push_back(rt.spawn_on(static_cast<unsigned>(f % 2), [&, f] {
      const long mine = total / kFibers + (f < total % kFibers ? 1 : 0);
      long good = 0;
      for (long i = 0; i < mine; ++i) {
        long x = i * kFibers + f;
        if (weft::offload(pool, [x] { return x * 3 + 1; }) == x * 3 + 1) ++good;
      }
      ok.fetch_add(good);
    }));
  }
  for (auto& h : hs) h.join();
  REQUIRE(ok.load() == total);
  pool.shutdown();
  auto s = pool.stats();
  REQUIRE(s.submitted == static_cast<std::uint64_t>(total));
  REQUIRE(s.completed == static_cast<std::uint64_t>(total));
}

namespace {
std::atomic<long> g_live{0};  // results constructed and not yet destroyed
struct Tracked {
  long v;
  explicit Tracked(long x) : v(x) { g_live.fetch_add(1); }
  Tracked(Tracked&& o) noexcept : v(o.v) { g_live.fetch_add(1); }
  ~Tracked() { g_live.fetch_sub(1); }
};
}  // namespace

TEST_CASE("offload_for deadlines racing completions: both outcomes happen and each result is taken or destroyed") {
  const long per_fiber = weft::test::scaled(20000);
  constexpr long kMaxExtra = 2000;  // per fiber, while one outcome is still missing
  constexpr int kFibers = 4;
  std::atomic<long> good{0}, timed_out{0}, rounds{0};
  {
    weft::Runtime rt(weft::Config{.workers = 2});
    weft::ThreadPool pool({.name = "stress-to", .threads = 2, .queue_capacity = 8});
    weft::test::Watchdog wd("offload_for deadlines", rt, {&good, &timed_out});
    std::vector<weft::JoinHandle<void>> hs;
    for (int f = 0; f < kFibers; ++f) {
      hs.push_back(rt.spawn_on(static_cast<unsigned>(f % 2), [&, f] {
        for (long i = 0; i < per_fiber + kMaxExtra; ++i) {
          // 0..20 us: a deadline on the edge of a round trip, so both claims win
          // often. Past per_fiber only while an outcome is missing, biased to it:
          // 10 ms when none completed yet, 0 when none timed out yet.
          std::chrono::microseconds d(i % 21);
          if (i >= per_fiber) {
            if (good.load() > 0 && timed_out.load() > 0) break;
            d = good.load() == 0 ? std::chrono::microseconds(10'000) : std::chrono::microseconds(0);
          }
          const long x = i * kFibers + f;
          rounds.fetch_add(1);
          try {
            Tracked t = weft::offload_for(
                pool, [x] { return Tracked(x); }, d);
            if (t.v == x) good.fetch_add(1);
          } catch (const std::system_error& e) {
            if (e.code() == std::make_error_code(std::errc::timed_out)) timed_out.fetch_add(1);
          }
        }
      }));
    }
    for (auto& h : hs) h.join();
    pool.shutdown();  // every late task has finished and dropped its reference
  }
  INFO("rounds " << rounds.load() << ": completed " << good.load() << ", timed out " << timed_out.load());
  REQUIRE(good.load() > 0);
  REQUIRE(timed_out.load() > 0);
  REQUIRE(good.load() + timed_out.load() == rounds.load());  // each right, or a timeout: nothing else
  REQUIRE(g_live.load() == 0);
}
