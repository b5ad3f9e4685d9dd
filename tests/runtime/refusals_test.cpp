// Misuse that weft refuses with an exception instead of undefined behaviour, and
// the state it leaves: spawn_on with a worker index out of range throws
// std::out_of_range naming the index (the function and its captures are
// destroyed, no fiber is created, the runtime goes on); a Timer used from a
// worker other than the one it is bound to throws CrossRuntimeError naming both
// (and keeps working on its own worker).
#include <atomic>
#include <stdexcept>
#include <string>
#include <utility>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

/// Counts live copies: a capture that is never destroyed leaves `live` above 0.
struct Tracked {
  std::atomic<int>* live;
  explicit Tracked(std::atomic<int>* l) : live(l) { live->fetch_add(1); }
  Tracked(const Tracked& o) : live(o.live) { live->fetch_add(1); }
  Tracked(Tracked&& o) noexcept : live(o.live) { live->fetch_add(1); }
  ~Tracked() { live->fetch_sub(1); }
};
}  // namespace

TEST_CASE("spawn_on a worker that does not exist throws out_of_range and leaks nothing") {
  weft::Runtime rt(weft::Config{.workers = 2});
  std::atomic<int> live{0};
  std::atomic<int> ran{0};
  const auto spawned_before = rt.stats().fibers_spawned;
  for (unsigned bad : {2u, 3u, 1000u, ~0u}) {
    INFO("worker " << bad);
    REQUIRE_THROWS_WITH(rt.spawn_on(bad, [t = Tracked(&live), &ran] { ran.fetch_add(1); }),
                        Contains("spawn_on") && Contains("no worker " + std::to_string(bad)));
    REQUIRE(live.load() == 0);  // the function and its captures are gone
  }
  // The same from a fiber of the runtime.
  rt.block_on([&] {
    auto fn = [t = Tracked(&live), &ran] { ran.fetch_add(1); };
    REQUIRE_THROWS_AS(rt.spawn_on(2, std::move(fn)), std::out_of_range);
  });
  REQUIRE(live.load() == 0);
  REQUIRE(ran.load() == 0);
  REQUIRE(rt.stats().fibers_spawned == spawned_before + 1);  // only block_on's own fiber
  REQUIRE(rt.spawn_on(1, [] { return weft::current_domain().worker; }).join() == 1);
}

TEST_CASE("a Timer armed on one worker refuses a fiber of another worker and still works on its own") {
  weft::Timer t;  // outlives rt: shutdown disarms it, even when a REQUIRE below fails
  weft::Runtime rt(weft::Config{.workers = 2});
  rt.spawn_on(0, [&] { t.reset(1h); }).join();  // armed on worker 0
  // On worker 1: every call, each refused; the messages, one per line.
  auto from_worker1 = [&] {
    std::string all;
    int refused = 0;
    auto attempt = [&](auto call) {
      try {
        call();
        all += "(a call was not refused)\n";
      } catch (const weft::CrossRuntimeError& e) {
        all += std::string(e.what()) + "\n";
        ++refused;
      }
    };
    attempt([&] { t.reset(1ms); });
    attempt([&] { t.reset_at(std::chrono::steady_clock::now()); });
    attempt([&] { t.cancel(); });
    attempt([&] { t.wait(); });
    return std::pair(refused, all);
  };
  const auto [refused, msg] = rt.spawn_on(1, from_worker1).join();
  INFO(msg);
  REQUIRE(refused == 4);
  REQUIRE_THAT(msg, Contains("weft::Timer::reset: this Timer is armed on worker 0"));
  REQUIRE_THAT(msg, Contains("weft::Timer::cancel: this Timer is armed on worker 0"));
  REQUIRE_THAT(msg, Contains("weft::Timer::wait: this Timer is armed on worker 0"));
  REQUIRE_THAT(msg, Contains("worker 1"));  // the refused caller is named
  REQUIRE_THAT(msg, Contains("use a Timer per worker"));
  // The refusals changed nothing: still armed for an hour on worker 0.
  rt.spawn_on(0, [&] {
      REQUIRE(t.armed());
      REQUIRE(t.reset(1ms));
      REQUIRE(t.wait());
      REQUIRE(t.expirations() == 1);
    }).join();
}
