// tests/helpers/test_support.hpp — what every test binary shares: the skip
// convention (exit 77 when a precondition is missing), sanitizer-aware scaling,
// a seeded PRNG, child-process helpers for tests that must observe a crash, and
// the checks of a shutdown at its worst moment (fd closed, spawns refused).
//
// Randomness: every Rng of a run derives from one run seed, WEFT_SEED when set,
// else a fresh random one; the seed is printed at the start of every test binary
// and again after a failing test case (tests/helpers/catch_main.cpp), so
// `WEFT_SEED=<n> build/.../tests/<name>` replays a failing run's random choices.
#pragma once

#include <fcntl.h>
#include <liburing.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <weft/runtime/error.hpp>

namespace weft::test {

/// "address", "thread" or "" (set by tests/meson.build).
inline std::string sanitizer() {
  const char* s = std::getenv("WEFT_SANITIZER");
  return s ? s : "";
}
inline bool under_tsan() {
  return sanitizer() == "thread";
}
inline bool under_asan() {
  return sanitizer() == "address";
}

/// The run seed: WEFT_SEED (decimal or 0x-hex) when set, else a fresh random
/// seed, chosen once per process (a forked child inherits it).
inline std::uint64_t run_seed() {
  static const std::uint64_t kSeed = [] {
    if (const char* s = std::getenv("WEFT_SEED"); s && *s) {
      char* end = nullptr;
      const unsigned long long v = std::strtoull(s, &end, 0);
      if (end && *end == '\0') return static_cast<std::uint64_t>(v);
      std::fprintf(stderr, "WEFT_SEED='%s' is not a number\n", s);
      std::exit(2);
    }
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  return kSeed;
}

/// splitmix64: spreads a seed's bits (distinct streams from nearby numbers).
inline std::uint64_t mix_seed(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// A small PRNG (xorshift64*). `stream` tells a test's generators apart; each
/// starts from the run seed mixed with its stream, so a run is replayed by
/// setting WEFT_SEED to the seed it printed.
struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t stream) : Rng(Exact{}, mix_seed(run_seed() ^ mix_seed(stream))) {}
  /// Seeded from `stream` alone, without the run seed: the same stream draws the
  /// same choices in every process (the explorer's --seed replays).
  static Rng exact(std::uint64_t stream) { return Rng(Exact{}, mix_seed(stream)); }
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ULL;
  }
  /// Uniform in [lo, hi].
  std::size_t between(std::size_t lo, std::size_t hi) { return lo + next() % (hi - lo + 1); }

 private:
  struct Exact {};
  Rng(Exact, std::uint64_t seed) : s(seed == 0 ? 1 : seed) {}
};

/// Scales an iteration count by WEFT_STRESS_SCALE percent (at least 1).
inline long scaled(long n) {
  const char* s = std::getenv("WEFT_STRESS_SCALE");
  long pct = s ? std::atol(s) : 100;
  if (pct <= 0) pct = 100;
  long v = n * pct / 100;
  return v > 0 ? v : 1;
}

/// Ends the whole test binary with exit status 77 (meson: SKIP), saying why. For a
/// missing precondition (kernel feature, sanitizer): such a test never passes
/// without having checked anything. A test that may skip lives in a binary of its
/// own (or with tests of the same precondition), since nothing after it runs.
[[noreturn]] inline void skip(const std::string& why) {
  std::fprintf(stderr, "SKIP: %s\n", why.c_str());
  std::fflush(nullptr);
  _exit(77);
}

/// Exits the whole test binary with 77 (meson: SKIP) unless io_uring works here.
inline void require_io_uring() {
  io_uring ring;
  int r = io_uring_queue_init(4, &ring, 0);
  if (r < 0) skip(std::string("io_uring unavailable here (") + std::strerror(-r) + ")");
  io_uring_queue_exit(&ring);
}

/// Skips (exit 77) where the runtime would not run io_uring: io_uring unavailable,
/// or WEFT_ENGINE=epoll (the suite's run on the epoll engine). For tests of
/// io_uring's own features (SQEs, CQEs, the ring's sizes, registered files).
inline void require_io_uring_engine() {
  if (const char* e = std::getenv("WEFT_ENGINE"); e && std::string(e) == "epoll")
    skip("an io_uring feature; this run uses WEFT_ENGINE=epoll");
  require_io_uring();
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
  std::fflush(nullptr);  // or the child writes this process's buffered output again
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

/// Runs this test binary again in a fresh process (fork + exec of /proc/self/exe)
/// with `args` (e.g. the name of a hidden test case) and the environment of this
/// process with `env` set on top, and this run's WEFT_SEED; stdout and stderr
/// captured. For what a forked child cannot show: state a process reads once at
/// first use (WEFT_LOG).
/// `terminal`: the child writes to a pseudo-terminal (raw mode) instead of a pipe,
/// as a program run from a shell does (what it writes then may carry colours).
inline ChildResult exec_self(const std::vector<std::string>& args,
                             const std::vector<std::pair<std::string, std::string>>& env, bool terminal = false) {
  // Everything the child needs is built before fork (no allocation after it).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    bool overridden = false;
    for (const auto& [k, v] : env) overridden |= std::strncmp(*e, k.c_str(), k.size()) == 0 && (*e)[k.size()] == '=';
    overridden |= std::strncmp(*e, "WEFT_SEED=", 10) == 0;  // set below
    if (!overridden) env_strings.emplace_back(*e);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  bool seed_given = false;
  for (const auto& [k, v] : env) seed_given |= k == "WEFT_SEED";
  if (!seed_given) env_strings.push_back("WEFT_SEED=" + std::to_string(run_seed()));  // same random choices
  std::vector<char*> envp, argv;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe";
  std::vector<std::string> arg_strings{self};
  arg_strings.insert(arg_strings.end(), args.begin(), args.end());
  for (auto& a : arg_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];  // [0] the parent reads, [1] the child writes
  if (terminal) {
    fds[0] = posix_openpt(O_RDWR | O_NOCTTY);
    if (fds[0] < 0 || grantpt(fds[0]) != 0 || unlockpt(fds[0]) != 0) std::abort();
    fds[1] = open(ptsname(fds[0]), O_RDWR | O_NOCTTY);
    termios raw{};
    if (fds[1] < 0 || tcgetattr(fds[1], &raw) != 0) std::abort();
    cfmakeraw(&raw);  // no "\n" -> "\r\n"
    tcsetattr(fds[1], TCSANOW, &raw);
  } else if (pipe(fds) != 0) {
    std::abort();
  }
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    execve(self.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  ChildResult r;
  char buf[4096];
  ssize_t n;
  // A terminal reads EIO, not 0, once the child has closed its side.
  while ((n = read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) r.output.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exited = WIFEXITED(status);
  r.exit_code = r.exited ? WEXITSTATUS(status) : -1;
  r.signaled = WIFSIGNALED(status);
  r.signal = r.signaled ? WTERMSIG(status) : 0;
  return r;
}

/// True when `fd` is closed (no longer a descriptor of this process).
inline bool fd_closed(int fd) {
  errno = 0;
  return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

/// Spawns empty fibers on `rt` (a weft::Runtime, still accepting fibers or shutting
/// down) until one is refused with ShutDown: from then on it refuses every spawn.
template <class Runtime>
void wait_until_spawns_refused(Runtime& rt) {
  for (;;) {
    try {
      rt.spawn([] {}).detach();
    } catch (const weft::ShutDown&) {
      return;
    }
    std::this_thread::yield();
  }
}

}  // namespace weft::test
