// docs/deploy/seccomp-weft-io_uring.json, the minimal seccomp profile the
// deployment notes give, is enough for weft on io_uring: a child that loads
// exactly its allowlist (everything else EPERM) starts a Runtime with
// Config::engine = io_uring and serves a TCP echo. And the same list less the
// io_uring syscalls (what container runtimes' defaults do) makes the default
// config fall back to epoll and still serve. Needs libseccomp (skips without).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/echo_once.hpp"
#include "../helpers/test_support.hpp"

#if WEFT_HAVE_LIBSECCOMP
#include <seccomp.h>
#endif

using Catch::Matchers::Contains;

namespace {

// Every string in the profile's "names" arrays (the format is ours to keep simple).
std::vector<std::string> profile_names() {
  std::ifstream in(WEFT_SECCOMP_PROFILE);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::string> names;
  for (std::size_t at = text.find("\"names\""); at != std::string::npos; at = text.find("\"names\"", at + 1)) {
    const std::size_t open = text.find('[', at), close = text.find(']', open);
    for (std::size_t q = text.find('"', open); q < close; q = text.find('"', q + 1)) {
      const std::size_t end = text.find('"', q + 1);
      names.push_back(text.substr(q + 1, end - q - 1));
      q = end;
    }
  }
  return names;
}

#if WEFT_HAVE_LIBSECCOMP
// Loads a filter allowing `names` only (EPERM for the rest). False with a reason
// printed when a name is unknown or the filter cannot be loaded.
bool allow_only(const std::vector<std::string>& names, bool io_uring) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx) return false;
  for (const std::string& n : names) {
    if (!io_uring && n.rfind("io_uring_", 0) == 0) continue;
    const int nr = seccomp_syscall_resolve_name(n.c_str());
    if (nr == __NR_SCMP_ERROR || seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0) {
      std::printf("UNKNOWN SYSCALL %s\n", n.c_str());
      seccomp_release(ctx);
      return false;
    }
  }
  const bool ok = seccomp_load(ctx) == 0;
  seccomp_release(ctx);
  return ok;
}

// In a child under the profile (with or without its io_uring syscalls): a Runtime
// with `engine` serving one TCP echo; prints the engine and the echo.
weft::test::ChildResult echo_under_profile(bool io_uring, weft::Engine engine) {
  const std::vector<std::string> names = profile_names();
  return weft::test::run_in_child([&] {
    ::unsetenv("WEFT_ENGINE");
    if (!allow_only(names, io_uring)) {
      std::puts("SETUP-FAILED");
      return 3;
    }
    try {
      weft::Config cfg;
      cfg.engine = engine;
      weft::Runtime rt(cfg);
      const std::string got = rt.spawn(&weft::test::echo_once).join();
      std::printf("ENGINE %s ECHO %s\n", rt.stats().engine == weft::Engine::epoll ? "epoll" : "io_uring", got.c_str());
      return 0;
    } catch (const std::exception& e) {
      std::printf("FAILED: %s\n", e.what());
      return 1;
    }
  });
}
#endif

}  // namespace

TEST_CASE("the deployment notes' seccomp profile lets a server run on io_uring and nothing more is needed") {
#if !WEFT_HAVE_LIBSECCOMP
  weft::test::skip("built without libseccomp (apt-get install libseccomp-dev)");
#else
  weft::test::require_io_uring_engine();
  const auto r = echo_under_profile(true, weft::Engine::io_uring);
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Contains("ENGINE io_uring ECHO ping"));
#endif
}

TEST_CASE("the same profile without its io_uring syscalls makes the default config serve on epoll") {
#if !WEFT_HAVE_LIBSECCOMP
  weft::test::skip("built without libseccomp (apt-get install libseccomp-dev)");
#else
  const auto r = echo_under_profile(false, weft::Engine::automatic);
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Contains("ENGINE epoll ECHO ping"));
  REQUIRE_THAT(r.output, Contains("seccomp"));
#endif
}
