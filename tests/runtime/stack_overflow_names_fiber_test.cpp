// A fiber that overflows its stack must not corrupt a neighbour silently (Seastar
// #718, Photon #406): it hits its guard page and the process dies with a message
// naming the fiber (runtime/fiber/stack_pool.hpp; incident 001's optimizer-dependent
// crash in the fiber switch is the same class: a crash must say where it was).
#include <csignal>
#include <string>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

__attribute__((noinline)) int recurse(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  if (depth < 0) return 0;  // never: depth only grows (keeps compilers from warning)
  int r = recurse(depth + 1);
  return r + frame[0];
}

weft::test::ChildResult overflow_in_child(weft::GuardMode mode) {
  return weft::test::run_in_child([mode] {
    weft::Config cfg;
    cfg.guard_mode = mode;
    cfg.stall_threshold = std::chrono::milliseconds(0);
    weft::Runtime rt(cfg);
    rt.block_on([] { return recurse(0); }, {.name = "overflow-victim#1"});
    return 0;  // unreachable: the overflow kills the process
  });
}

void require_died_naming_fiber(const weft::test::ChildResult& r) {
  INFO("child output:\n" << r.output);
  REQUIRE_THAT(r.output, Contains("weft: FATAL: fiber stack overflow"));
  REQUIRE_THAT(r.output, Contains("overflow-victim#1"));
  // Killed by the re-raised fault, or (under a sanitizer) by its report.
  REQUIRE((r.signaled || (r.exited && r.exit_code != 0)));
  if (weft::test::sanitizer().empty()) {
    REQUIRE(r.signaled);
    REQUIRE(r.signal == SIGSEGV);
  }
}
}  // namespace

TEST_CASE("stack overflow in a fiber kills the process with the fiber's name (default guards)") {
  require_died_naming_fiber(overflow_in_child(weft::GuardMode::automatic));
}

TEST_CASE("stack overflow in a fiber kills the process with the fiber's name (mprotect guards)") {
  require_died_naming_fiber(overflow_in_child(weft::GuardMode::mprotect));
}
