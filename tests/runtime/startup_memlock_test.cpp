// Startup under a memlock limit too low for the ring: on a kernel that charges
// io_uring rings to RLIMIT_MEMLOCK (before 5.12) the Runtime constructor throws a
// StartupError naming the limit. Newer kernels charge rings to the memory cgroup
// instead: there the precondition is missing and the binary skips (exit 77).
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

// In a child: CAP_IPC_LOCK dropped (root bypasses memlock accounting with it) and
// RLIMIT_MEMLOCK 0; then a Runtime. Prints what happened.
weft::test::ChildResult start_without_memlock() {
  return weft::test::run_in_child([] {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    rlimit rl{0, 0};
    if (syscall(SYS_capget, &hdr, data) != 0) return 3;
    data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
    if (syscall(SYS_capset, &hdr, data) != 0 || setrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
      std::puts("SETUP-FAILED");
      return 3;
    }
    try {
      weft::Runtime rt;
      std::puts("STARTED");
      return 1;
    } catch (const weft::StartupError& e) {
      std::printf("StartupError: %s\n", e.what());
      return 0;
    }
  });
}
}  // namespace

TEST_CASE("RLIMIT_MEMLOCK too low for the ring gives a startup error naming the limit") {
  auto r = start_without_memlock();
  INFO(r.output);
  REQUIRE(r.output.find("SETUP-FAILED") == std::string::npos);
  if (r.output.find("STARTED") != std::string::npos)
    weft::test::skip("this kernel does not charge io_uring rings to RLIMIT_MEMLOCK (5.12+): nothing to check");
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Contains("RLIMIT_MEMLOCK"));
}
