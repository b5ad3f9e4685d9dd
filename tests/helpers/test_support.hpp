// tests/helpers/test_support.hpp — what every test binary shares: the skip
// convention (exit 77 when the kernel lacks a feature), sanitizer-aware scaling,
// a deterministic PRNG, and child-process helpers for tests that must observe a crash.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include <liburing.h>

namespace weft::test {

/// "address", "thread" or "" (set by tests/meson.build).
inline std::string sanitizer() {
  const char* s = std::getenv("WEFT_SANITIZER");
  return s ? s : "";
}
inline bool under_tsan() { return sanitizer() == "thread"; }
inline bool under_asan() { return sanitizer() == "address"; }

/// A small deterministic PRNG (xorshift64*), so a failing run can be replayed.
struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t seed) : s(seed ? seed : 1) {}
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ULL;
  }
  /// Uniform in [lo, hi].
  std::size_t between(std::size_t lo, std::size_t hi) { return lo + next() % (hi - lo + 1); }
};

/// Scales an iteration count by WEFT_STRESS_SCALE percent (at least 1).
inline long scaled(long n) {
  const char* s = std::getenv("WEFT_STRESS_SCALE");
  long pct = s ? std::atol(s) : 100;
  if (pct <= 0) pct = 100;
  long v = n * pct / 100;
  return v > 0 ? v : 1;
}

/// Exits the whole test binary with 77 (meson: SKIP) unless io_uring works here.
inline void require_io_uring() {
  io_uring ring;
  int r = io_uring_queue_init(4, &ring, 0);
  if (r < 0) {
    std::fprintf(stderr, "SKIP: io_uring unavailable here (%s)\n", std::strerror(-r));
    std::exit(77);
  }
  io_uring_queue_exit(&ring);
}

struct ChildResult {
  bool exited = false;
  int exit_code = -1;
  bool signaled = false;
  int signal = 0;
  std::string output;  ///< stderr and stdout of the child
};

/// Runs `body` in a forked child with stdout/stderr captured; the child exits with
/// body's return value. Use only from a single-threaded test process.
inline ChildResult run_in_child(const std::function<int()>& body) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    // The child must die of its own signals: the parent's handlers (Catch2's
    // fatal-signal reporter) would run unsafe code in the handler, which TSan
    // (halt_on_error=1) turns into exit(66) instead of the expected SIGABRT.
    for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE}) std::signal(sig, SIG_DFL);
    int rc = body();
    std::fflush(nullptr);
    _exit(rc);
  }
  close(fds[1]);
  ChildResult r;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) r.output.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exited = WIFEXITED(status);
  r.exit_code = r.exited ? WEXITSTATUS(status) : -1;
  r.signaled = WIFSIGNALED(status);
  r.signal = r.signaled ? WTERMSIG(status) : 0;
  return r;
}

}  // namespace weft::test
