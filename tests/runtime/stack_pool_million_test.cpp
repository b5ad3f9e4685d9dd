// tests/runtime/stack_pool_million_test.cpp — guard pages installed with
// MADV_GUARD_INSTALL cost no mapping: a million live guarded stacks (100k under
// sanitizers, whose shadow memory makes 1M x 68 KiB of address space heavy) fit
// under the default vm.max_map_count, one mapping per chunk of stacks. Kernels
// without MADV_GUARD_INSTALL (before 6.13) lack the precondition: the binary
// skips (exit 77).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/fiber/sanitizer.hpp>
#include <weft/runtime/fiber/stack_pool.hpp>

#include "../helpers/test_support.hpp"

using weft::GuardMode;
using weft::detail::Stack;
using weft::detail::StackPool;
using weft::detail::StackPoolConfig;

namespace {

bool under_sanitizer() {
  return weft::detail::kAsan || weft::detail::kTsan || !weft::test::sanitizer().empty();
}

std::size_t maps_lines() {
  std::ifstream maps("/proc/self/maps");
  REQUIRE(maps.good());
  return static_cast<std::size_t>(
      std::count(std::istreambuf_iterator<char>(maps), std::istreambuf_iterator<char>(), '\n'));
}

}  // namespace

TEST_CASE(
    "guarded stacks in madvise mode cost one mapping per chunk: 1M (100k under sanitizers) fit under vm.max_map_count",
    "[stack_pool]") {
  if (!weft::detail::kernel_has_guard_install())
    weft::test::skip("kernel lacks MADV_GUARD_INSTALL (Linux 6.13+): madvise guards cannot be tested here");
  const std::size_t n = under_sanitizer() ? 100'000 : 1'000'000;
  StackPoolConfig cfg;
  cfg.mode = GuardMode::madvise;
  StackPool pool(cfg);
  REQUIRE(pool.mode() == GuardMode::madvise);
  std::vector<Stack> stacks;
  stacks.reserve(n);
  for (std::size_t i = 0; i < n; ++i) stacks.push_back(pool.acquire());
  const std::size_t lines = maps_lines();
  INFO("/proc/self/maps lines with " << n << " live stacks: " << lines << ", pool mappings " << pool.mappings());
  REQUIRE(lines < 65530);
  REQUIRE(lines < 10000);
  REQUIRE(pool.live() == n);
  REQUIRE(pool.mappings() <= n / 256 + 1);
  // Each stack is memory of its own: a value written at the top of one (the first
  // byte a fiber would push) is not changed by the writes to the others.
  const std::size_t sample[] = {0, 1, n / 2, n - 2, n - 1};
  for (std::size_t k = 0; k < std::size(sample); ++k)
    static_cast<volatile unsigned char*>(stacks[sample[k]].top())[-1] = static_cast<unsigned char>(0xa0 + k);
  for (std::size_t k = 0; k < std::size(sample); ++k) {
    INFO("stack " << sample[k]);
    REQUIRE(static_cast<volatile unsigned char*>(stacks[sample[k]].top())[-1] == 0xa0 + k);
  }
  // Releasing beyond the cache MADV_DONTNEEDs the stacks: that splits nothing either.
  for (const Stack& s : stacks) pool.release(s);
  REQUIRE(pool.live() == 0);
  REQUIRE(pool.cached() == n);
  REQUIRE(maps_lines() < 10000);
}
