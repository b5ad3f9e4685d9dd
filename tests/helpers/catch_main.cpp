// The shared Catch2 main for every test binary. It prints the run seed of
// weft::test::Rng (WEFT_SEED, see test_support.hpp) when the run starts and
// after every failing test case, so a failure can be replayed.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "test_support.hpp"

namespace {

class SeedReporter : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;
  void testRunStarting(const Catch::TestRunInfo&) override {
    stream << "weft test seed: WEFT_SEED=" << weft::test::run_seed() << '\n';
  }
  void testCaseEnded(const Catch::TestCaseStats& stats) override {
    if (!stats.totals.assertions.allOk())
      stream << "weft test seed of the failed test case '" << stats.testInfo.name
             << "': replay with WEFT_SEED=" << weft::test::run_seed() << '\n';
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(SeedReporter)
