// Shutdown gives up on a fiber ("abandoned") only when nothing in the runtime can
// wake it any more: a fiber that defers its cancellation while it waits for a
// fiber of another worker, or sleeps, is waited for.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include <weft/runtime/log.hpp>
#include <weft/weft.hpp>

#include "../helpers/captured_log.hpp"
#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using weft::test::CapturedLog;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("shutdown waits for a fiber that joins a fiber of another worker with cancellation deferred") {
  CapturedLog log;
  std::atomic<bool> joined{false};
  std::atomic<bool> child_started{false};
  {
    weft::Runtime rt(weft::Config{.workers = 2});
    rt.spawn_on(0, [&] {
        weft::this_fiber::DeferCancellation defer;  // as a destructor that joins its children
        auto child = rt.spawn_on(1, [&] {
          weft::this_fiber::DeferCancellation d;
          child_started = true;
          weft::sleep_for(30ms);  // still running when worker 0 has nothing left to do
        });
        child.join();
        joined = true;
      }).detach();
    while (!child_started) std::this_thread::yield();
  }  // ~Runtime: shutdown
  INFO(log.text());
  REQUIRE(joined);
  REQUIRE(log.text().find("abandoned") == std::string::npos);
}

TEST_CASE("shutdown waits for a fiber that sleeps with cancellation deferred") {
  CapturedLog log;
  std::atomic<bool> woke{false};
  std::atomic<bool> started{false};
  {
    weft::Runtime rt;
    rt.spawn([&] {
        weft::this_fiber::DeferCancellation defer;
        started = true;
        weft::sleep_for(30ms);
        woke = true;
      }).detach();
    while (!started) std::this_thread::yield();
  }
  INFO(log.text());
  REQUIRE(woke);
  REQUIRE(log.text().find("abandoned") == std::string::npos);
}
