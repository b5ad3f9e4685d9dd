// A thread's wake of the last fiber may still be running when that fiber's
// block_on returns and the runtime is destroyed: the destruction waits for it
// (no write to a closed eventfd, no touch of a freed worker; ASan and TSan see
// nothing), many rounds.
#include <atomic>
#include <optional>
#include <thread>

#include <catch2/catch.hpp>

#include <weft/sync/event.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("a runtime destroyed right after a thread's wake returns control waits for that wake to finish") {
  const long rounds = weft::test::scaled(3000);
  long done = 0;
  for (long i = 0; i < rounds; ++i) {
    weft::Event ready;  // outlives the runtime: only the runtime goes under the waker
    std::optional<weft::Runtime> rt;
    rt.emplace();
    std::atomic<bool> go{false};
    std::thread waker([&] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      ready.set();  // wakes the fiber below, which lets main destroy the runtime
    });
    rt->block_on([&] {
      go.store(true, std::memory_order_release);
      ready.wait();
    });
    rt.reset();  // the waker may still be inside set()'s wake
    waker.join();
    ++done;
  }
  REQUIRE(done == rounds);
}
