// Startup: where io_uring is refused, the default engine (automatic) runs on epoll
// and says why, in the log and in stats(); Config::engine = io_uring gets a
// StartupError that names the cause and the remedy. A ring size beyond the
// kernel's limit is refused by the constructor (std::invalid_argument); never a
// crash or a half-started runtime. (A memlock limit too low for the ring:
// startup_memlock_test.cpp, which may skip.)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/echo_once.hpp"
#include "../helpers/test_support.hpp"

using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

// A seccomp filter answering `err` to io_uring_setup and allowing everything else.
bool deny_io_uring_setup(int err) {
  sock_filter prog[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog fprog{static_cast<unsigned short>(sizeof prog / sizeof prog[0]), prog};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0;
}

// Runs a Runtime constructor (Config::engine = io_uring, WEFT_ENGINE unset) in a
// child after `setup`; prints the error text.
weft::test::ChildResult start_in_child(const std::function<bool()>& setup) {
  return weft::test::run_in_child([&] {
    ::unsetenv("WEFT_ENGINE");
    if (!setup()) {
      std::puts("SETUP-FAILED");
      return 3;
    }
    try {
      weft::Config cfg;
      cfg.engine = weft::Engine::io_uring;
      weft::Runtime rt(cfg);
      std::puts("STARTED");
      return 1;
    } catch (const weft::StartupError& e) {
      std::printf("StartupError: %s\n", e.what());
      return 0;
    }
  });
}
}  // namespace

// In a child under `setup`, with the default Config: a Runtime whose fibers serve
// one TCP echo over loopback; prints the engine, its reason and the echo.
weft::test::ChildResult echo_in_child(const std::function<bool()>& setup) {
  return weft::test::run_in_child([&] {
    ::unsetenv("WEFT_ENGINE");
    if (!setup()) {
      std::puts("SETUP-FAILED");
      return 3;
    }
    weft::Runtime rt;
    const weft::Stats st = rt.stats();
    std::printf("ENGINE %s\nREASON %s\n", st.engine == weft::Engine::epoll ? "epoll" : "io_uring",
                st.engine_reason.c_str());
    const std::string echoed = rt.spawn(&weft::test::echo_once).join();
    std::printf("ECHO %s\n", echoed.c_str());
    return 0;
  });
}

TEST_CASE("under a seccomp filter refusing io_uring_setup the default config serves TCP on epoll and says why") {
  auto r = echo_in_child([] { return deny_io_uring_setup(EPERM); });
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Contains("ENGINE epoll"));
  REQUIRE_THAT(r.output, Contains("ECHO ping"));
  // The reason, in stats() and once in the log (a warning), names the cause and the remedy.
  REQUIRE_THAT(r.output, Contains("REASON epoll, because io_uring cannot be used here"));
  REQUIRE_THAT(r.output, Contains("seccomp"));
  REQUIRE_THAT(r.output, Contains("Remedy"));
  REQUIRE_THAT(r.output, Contains("[warning]"));
}

TEST_CASE("where the kernel answers ENOSYS the default config runs on epoll, naming the kernel") {
  auto r = echo_in_child([] { return deny_io_uring_setup(ENOSYS); });
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Contains("ENGINE epoll"));
  REQUIRE_THAT(r.output, Contains("ECHO ping"));
  REQUIRE_THAT(r.output, Contains("has no io_uring"));
  REQUIRE_THAT(r.output, Contains("Linux "));
}

TEST_CASE("where io_uring works the default config runs on io_uring") {
  auto r = echo_in_child([] { return true; });
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Contains("ENGINE io_uring"));
  REQUIRE_THAT(r.output, Contains("ECHO ping"));
}

TEST_CASE("WEFT_ENGINE overrides Config::engine, and a value naming no engine is refused") {
  auto r = weft::test::run_in_child([] {
    ::setenv("WEFT_ENGINE", "epoll", 1);
    weft::Config cfg;
    cfg.engine = weft::Engine::io_uring;
    {
      weft::Runtime rt(cfg);
      const weft::Stats st = rt.stats();
      std::printf("ENGINE %s REASON %s\n", st.engine == weft::Engine::epoll ? "epoll" : "io_uring",
                  st.engine_reason.c_str());
    }
    ::setenv("WEFT_ENGINE", "kqueue", 1);
    try {
      weft::Runtime rt;
      std::puts("STARTED");
    } catch (const std::invalid_argument& e) {
      std::printf("REFUSED %s\n", e.what());
    }
    return 0;
  });
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Contains("ENGINE epoll REASON epoll, as WEFT_ENGINE=epoll asks"));
  REQUIRE_THAT(r.output, Contains("REFUSED weft: WEFT_ENGINE='kqueue' names no engine"));
}

TEST_CASE("a seccomp filter refusing io_uring_setup (EPERM) gives a startup error naming seccomp") {
  auto r = start_in_child([] { return deny_io_uring_setup(EPERM); });
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Contains("io_uring_setup failed"));
  REQUIRE_THAT(r.output, Contains("seccomp"));
  REQUIRE_THAT(r.output, Contains("Remedy"));
}

TEST_CASE("a kernel answering ENOSYS gives a startup error saying io_uring is missing") {
  auto r = start_in_child([] { return deny_io_uring_setup(ENOSYS); });
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Contains("has no io_uring"));
  REQUIRE_THAT(r.output, Contains("Remedy"));
}

TEST_CASE("ring_entries of 0 or above 32768 is refused by the constructor, naming the limit") {
  for (unsigned n : {0u, 32769u, 65536u}) {
    INFO("ring_entries = " << n);
    weft::Config cfg;
    cfg.ring_entries = n;
    REQUIRE_THROWS_WITH(weft::Runtime(cfg), Contains("ring_entries must be 1..32768") && Contains(std::to_string(n)));
  }
}

TEST_CASE("ring_entries of 32768 starts: its completion queue is capped at the kernel's 65536, not 4x") {
  weft::test::require_io_uring_engine();
  weft::Config cfg;
  cfg.ring_entries = 32768;
  weft::Runtime rt(cfg);
  REQUIRE(rt.spawn([] { return 7; }).join() == 7);
}
