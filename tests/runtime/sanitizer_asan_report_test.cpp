// Users build their servers on weft with sanitizers too: a bug of theirs inside a
// fiber must still be reported with the fiber's own frames. Here a heap
// use-after-free in a fiber, in a forked child: AddressSanitizer reports it, and
// its stack traces (the bad access, the free, the allocation) name the functions
// on the fiber's stack. Builds without ASan skip (exit 77).
#include <chrono>
#include <string>

#include <catch2/catch.hpp>

#include <weft/runtime/fiber/sanitizer.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

int* volatile g_dangling = nullptr;  // volatile: the compiler may not see through the free
volatile int g_after_free = 0;

[[gnu::noinline]] void frees_in_fiber() {
  delete g_dangling;
  g_after_free = 1;  // not a tail call: this frame stays in the free's trace
}

[[gnu::noinline]] int reads_after_free_in_fiber() {
  g_dangling = new int(42);
  frees_in_fiber();
  return *g_dangling;  // heap-use-after-free
}

[[gnu::noinline]] int user_fiber_body() {
  return reads_after_free_in_fiber() + 1;
}
}  // namespace

TEST_CASE("a heap use-after-free in a fiber is reported by ASan with the fiber's frames") {
  if (!weft::detail::kAsan) weft::test::skip("not an AddressSanitizer build");
  auto r = weft::test::run_in_child([] {
    weft::Config cfg;
    cfg.stall_threshold = std::chrono::milliseconds(0);  // the report takes a while: no stall lines in it
    weft::Runtime rt(cfg);
    return rt.block_on([] { return user_fiber_body(); }, {.name = "uaf-fiber"});
  });
  INFO("child output:\n" << r.output);
  REQUIRE_FALSE((r.exited && r.exit_code == 0));  // the report ends the child
  REQUIRE_THAT(r.output, Contains("ERROR: AddressSanitizer: heap-use-after-free"));
  REQUIRE_THAT(r.output, Contains("reads_after_free_in_fiber"));  // the bad read
  REQUIRE_THAT(r.output, Contains("user_fiber_body"));            // its caller, deeper on the fiber stack
  REQUIRE_THAT(r.output, Contains("frees_in_fiber"));             // the free's trace
}
