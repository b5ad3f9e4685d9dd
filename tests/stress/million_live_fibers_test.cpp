// One million fibers alive at once, each on its own guarded stack, must fit under
// the default vm.max_map_count (65530): guards by MADV_GUARD_INSTALL cost no
// mapping (runtime/fiber/stack_pool.hpp). Sanitizer builds scale down and prove less:
// under ASan (it shadows every stack) 50k fibers, with the same mapping checks;
// under TSan (a full thread state per live fiber, and mappings of its own per
// fiber) 5k fibers, which only all park and are released. Kernels without
// MADV_GUARD_INSTALL lack the precondition: the binary skips (exit 77).
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

long count_mappings() {
  std::ifstream maps("/proc/self/maps");
  long n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}
}  // namespace

TEST_CASE(
    "a million live fibers (50k under ASan) cost no mapping per guarded stack; 5k under TSan all park and are "
    "released") {
  long live = 1000000;
  if (weft::test::under_tsan())
    live = 5000;
  else if (weft::test::under_asan())
    live = 50000;
  weft::Runtime rt;
  if (rt.guard_mode() != weft::GuardMode::madvise)
    weft::test::skip("kernel lacks MADV_GUARD_INSTALL: mprotect guards are budgeted instead; nothing to check here");
  rt.block_on([&] {
    weft::Timer gate;  // every fiber parks on it; one expiry releases them all
    gate.reset(std::chrono::hours(1));
    long started = 0, released = 0;
    std::vector<weft::JoinHandle<void>> hs;
    hs.reserve(static_cast<std::size_t>(live));
    for (long i = 0; i < live; ++i)
      hs.push_back(weft::spawn([&] {
        ++started;
        if (gate.wait()) ++released;
      }));
    while (started < live) weft::sleep_for(std::chrono::milliseconds(1));
    const auto st = rt.stats();
    const long maps = count_mappings();
    INFO("live fibers " << live << ", stacks live " << st.stacks_live << ", mappings " << maps);
    REQUIRE(st.stacks_live >= static_cast<std::uint64_t>(live));
    REQUIRE(maps < 65530);
    // Chunks, not stacks, cost mappings. (TSan maps state of its own per fiber.)
    if (!weft::test::under_tsan()) REQUIRE(maps < 1000 + live / 100);
    gate.reset(std::chrono::nanoseconds(0));
    for (auto& h : hs) h.join();
    REQUIRE(released == live);
  });
  REQUIRE(rt.stats().fibers_alive == 0);
}
