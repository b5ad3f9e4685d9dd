// Domains: Evented-only calls from a plain thread throw CrossRuntimeError naming
// both sides; Threaded-only calls from a fiber are refused the same way.
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}

TEST_CASE("sleep_for from a plain thread throws CrossRuntimeError naming both sides") {
  std::string msg;
  std::thread t([&] {
    pthread_setname_np(pthread_self(), "plain-thread");
    try {
      weft::sleep_for(1ms);
    } catch (const weft::CrossRuntimeError& e) {
      msg = e.what();
    }
  });
  t.join();
  REQUIRE_THAT(msg, Contains("weft::sleep_for"));
  REQUIRE_THAT(msg, Contains("Evented-only"));
  REQUIRE_THAT(msg, Contains("Threaded"));
  REQUIRE_THAT(msg, Contains("plain-thread"));
  REQUIRE_THAT(msg, Contains("Runtime::spawn"));
}

TEST_CASE("yield, spawn and this_fiber from the main thread throw CrossRuntimeError, never crash") {
  REQUIRE_THROWS_AS(weft::yield(), weft::CrossRuntimeError);
  REQUIRE_THROWS_AS(weft::spawn([] {}), weft::CrossRuntimeError);
  REQUIRE_THROWS_AS(weft::this_fiber::name(), weft::CrossRuntimeError);
  REQUIRE_THROWS_AS(weft::sleep_until(std::chrono::steady_clock::now()), weft::CrossRuntimeError);
  weft::Timer t;
  REQUIRE_THROWS_AS(t.reset(1ms), weft::CrossRuntimeError);
  REQUIRE_THROWS_AS(t.wait(), weft::CrossRuntimeError);
}

TEST_CASE("the same calls work after a refusal: the refusal touched no state") {
  weft::Runtime rt;
  REQUIRE_THROWS_AS(weft::sleep_for(1ms), weft::CrossRuntimeError);
  REQUIRE(rt.block_on([] {
    weft::sleep_for(1ms);
    return 5;
  }) == 5);
}

TEST_CASE("current_domain tells fibers from threads and runtimes apart") {
  REQUIRE(weft::current_domain().threaded());
  weft::Runtime a(weft::Config{.name = "alpha"});
  weft::Runtime b(weft::Config{.name = "beta"});
  auto da = a.block_on([] { return weft::current_domain(); });
  auto db = b.block_on([] { return weft::current_domain(); });
  REQUIRE(da.evented());
  REQUIRE(da.runtime == &a);
  REQUIRE(db.runtime == &b);
  REQUIRE_FALSE(da == db);
  REQUIRE(da.name() == "Evented(runtime 'alpha')");
}

TEST_CASE("block_on from a fiber is refused with CrossRuntimeError instead of blocking a worker") {
  weft::Runtime rt;
  std::string msg = rt.block_on([&] {
    try {
      rt.block_on([] { return 0; });
    } catch (const weft::CrossRuntimeError& e) {
      return std::string(e.what());
    }
    return std::string();
  });
  REQUIRE_THAT(msg, Contains("Threaded-only"));
  REQUIRE_THAT(msg, Contains("fiber 'block_on'"));
}

TEST_CASE("a Timer bound to one runtime's fiber refuses a plain thread after binding") {
  weft::Runtime rt;
  weft::Timer t;
  rt.block_on([&] { t.reset(1h); });
  REQUIRE_THROWS_AS(t.cancel(), weft::CrossRuntimeError);
  rt.block_on([&] { REQUIRE(t.cancel()); });
}
