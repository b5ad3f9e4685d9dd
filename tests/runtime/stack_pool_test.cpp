// tests/runtime/stack_pool_test.cpp — the fiber stack pool and the overflow handler,
// without the scheduler: guards fault, the mprotect budget holds, and an overflow
// is reported by fiber name. (A million guarded stacks in madvise mode:
// stack_pool_million_test.cpp, which skips on kernels without it.)
//
// Every test that expects a crash runs it in a fork()ed child whose stdout/stderr are
// captured or discarded, and never calls Catch from the child.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include <boost/context/detail/fcontext.hpp>
#include <catch2/catch.hpp>

#include <weft/runtime/fiber/overflow.hpp>
#include <weft/runtime/fiber/sanitizer.hpp>
#include <weft/runtime/fiber/stack_pool.hpp>

using weft::GuardMode;
using weft::detail::Stack;
using weft::detail::StackPool;
using weft::detail::StackPoolConfig;

namespace {

bool under_sanitizer() {
  const char* s = std::getenv("WEFT_SANITIZER");
  return weft::detail::kAsan || weft::detail::kTsan || (s != nullptr && *s != '\0');
}

std::size_t page() {
  return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

struct ChildResult {
  int status = 0;
  std::string err;  // the child's stderr
};

/// Runs `body` in a child with stdout discarded and stderr captured; the child
/// _exit()s with body's return value if it returns. The child starts with the default
/// SIGSEGV/SIGBUS dispositions, as a program has without a test framework (Catch's
/// fatal-signal handler allocates, which TSan reports, and prints to stdout).
ChildResult run_in_child(const std::function<int()>& body) {
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipefd[0]);
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, STDOUT_FILENO);  // Catch's fatal-signal report goes to stdout
    ::dup2(pipefd[1], STDERR_FILENO);
    ::signal(SIGSEGV, SIG_DFL);
    ::signal(SIGBUS, SIG_DFL);
    ::_exit(body());
  }
  ::close(pipefd[1]);
  ChildResult r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) r.err.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipefd[0]);
  REQUIRE(::waitpid(pid, &r.status, 0) == pid);
  return r;
}

/// The child crashed: killed by SIGSEGV/SIGBUS, or (sanitizers report and exit)
/// exited non-zero. A clean exit 0 means the fault never happened.
bool died_of_fault(int status) {
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS;
  return under_sanitizer() && WIFEXITED(status) && WEXITSTATUS(status) != 0;
}

/// Writing one byte at `p` kills a child process.
bool write_faults(char* p) {
  ChildResult r = run_in_child([p] {
    *static_cast<volatile char*>(p) = 1;
    return 0;
  });
  UNSCOPED_INFO("child status " << r.status << ", stderr: " << r.err);
  return died_of_fault(r.status);
}

StackPoolConfig config(GuardMode mode) {
  StackPoolConfig c;
  c.mode = mode;
  return c;
}

std::vector<GuardMode> testable_modes() {
  std::vector<GuardMode> m{GuardMode::mprotect};
  if (weft::detail::kernel_has_guard_install()) m.push_back(GuardMode::madvise);
  return m;
}

const char* name_of(GuardMode m) {
  return m == GuardMode::madvise ? "madvise" : "mprotect";
}

// ---- overflow fixture: a fake fiber on a pool stack ----

Stack g_fake_stack;
volatile int g_stop_recursion = 0;

bool fake_probe(weft::detail::OverflowProbe* out) noexcept {
  out->guard_lo = g_fake_stack.guard_lo;
  out->guard_size = g_fake_stack.guard_size;
  out->stack_lo = g_fake_stack.lo;
  out->fiber_name = "probe-fiber";
  out->fiber_id = 7;
  out->worker = 0;
  return true;
}

// A previous SIGSEGV handler that proves it ran: the handler weft's must hand faults to.
constexpr int kMarkerExit = 42;
constexpr char kMarker[] = "previous handler ran\n";

void marking_handler(int, siginfo_t*, void*) {
  (void)!::write(STDERR_FILENO, kMarker, sizeof kMarker - 1);
  ::_exit(kMarkerExit);
}

void install_marking_handler() {
  struct sigaction sa {};
  sa.sa_sigaction = &marking_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGSEGV, &sa, nullptr);
  ::sigaction(SIGBUS, &sa, nullptr);
}

[[gnu::noinline]] int recurse_without_bound(int depth) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(depth);
  if (g_stop_recursion != 0) return depth;
  // Using the result after the call rules out a tail call.
  return recurse_without_bound(depth + 1) + frame[0];
}

void overflowing_fiber(boost::context::detail::transfer_t) {
  recurse_without_bound(0);
  ::_exit(3);  // unreachable: the recursion never returns
}

/// In a child: a fake fiber "probe-fiber" owns a stack of `pool`; weft's handler and
/// this thread's altstack are installed.
void arm_fake_fiber(StackPool& pool) {
  g_fake_stack = pool.acquire();
  weft::detail::install_overflow_handler(&fake_probe);
  weft::detail::setup_thread_altstack();
}

/// Runs a bottomless recursion on the fake fiber's stack (it never comes back).
[[noreturn]] void overflow_fake_fiber() {
  namespace ctx = boost::context::detail;
  ctx::fcontext_t fc = ctx::make_fcontext(g_fake_stack.top(), g_fake_stack.size, &overflowing_fiber);
  ctx::jump_fcontext(fc, nullptr);
  ::_exit(4);  // unreachable
}

}  // namespace

TEST_CASE("guard page of a pool stack faults", "[stack_pool]") {
  for (GuardMode mode : testable_modes()) {
    SECTION(name_of(mode)) {
      StackPoolConfig cfg = config(mode);
      cfg.guard_pages = 2;
      StackPool pool(cfg);
      REQUIRE(pool.mode() == mode);
      Stack s = pool.acquire();
      // Just below lo (where an overflowing frame lands first) and the guard's bottom.
      REQUIRE(write_faults(static_cast<char*>(s.lo) - 1));
      REQUIRE(write_faults(static_cast<char*>(s.guard_lo)));
      pool.release(s);
    }
  }
}

TEST_CASE("mprotect fallback refuses past its budget with a clear error", "[stack_pool]") {
  StackPoolConfig cfg = config(GuardMode::mprotect);
  cfg.mprotect_budget = 8;
  StackPool pool(cfg);
  std::vector<Stack> stacks;
  for (int i = 0; i < 8; ++i) stacks.push_back(pool.acquire());
  REQUIRE(pool.mappings() == 16);
  try {
    (void)pool.acquire();
    FAIL("the 9th mprotect-guarded stack was handed out past a budget of 8");
  } catch (const std::system_error& e) {
    const std::string what = e.what();
    INFO(what);
    REQUIRE(e.code() == std::error_code(ENOMEM, std::generic_category()));
    REQUIRE(what.find("budget") != std::string::npos);
    REQUIRE(what.find("8 mprotect-guarded stacks") != std::string::npos);
    REQUIRE(what.find("vm.max_map_count=") != std::string::npos);
    REQUIRE(what.find("mprotect_guard_budget") != std::string::npos);
  }
  REQUIRE(pool.live() == 8);
  pool.release(stacks.back());
  stacks.back() = pool.acquire();
  REQUIRE(pool.live() == 8);
  for (const Stack& s : stacks) pool.release(s);
}

TEST_CASE("released stacks are reused LIFO", "[stack_pool]") {
  for (GuardMode mode : testable_modes()) {
    SECTION(name_of(mode)) {
      StackPool pool(config(mode));
      Stack a = pool.acquire();
      Stack b = pool.acquire();
      Stack c = pool.acquire();
      REQUIRE(pool.live() == 3);
      pool.release(a);
      pool.release(c);
      REQUIRE(pool.cached() == 2);
      REQUIRE(pool.acquire().lo == c.lo);  // the hottest first
      REQUIRE(pool.acquire().lo == a.lo);
      REQUIRE(pool.cached() == 0);
      Stack d = pool.acquire();  // a fresh one
      REQUIRE(d.lo != a.lo);
      REQUIRE(d.lo != b.lo);
      REQUIRE(d.lo != c.lo);
      for (Stack s : {a, b, c, d}) pool.release(s);
    }
  }
}

TEST_CASE("stack size is rounded to pages and the guard sits directly below lo", "[stack_pool]") {
  for (GuardMode mode : testable_modes()) {
    SECTION(name_of(mode)) {
      StackPoolConfig cfg = config(mode);
      cfg.stack_size = 3 * page() + 1;
      cfg.guard_pages = 3;
      cfg.stacks_per_chunk = 4;
      StackPool pool(cfg);
      REQUIRE(pool.stack_size() == 4 * page());
      REQUIRE(pool.guard_size() == 3 * page());
      std::vector<Stack> stacks;
      for (int i = 0; i < 9; ++i) {  // more than two chunks' worth in madvise mode
        Stack s = pool.acquire();
        REQUIRE(s.size == 4 * page());
        REQUIRE(s.guard_size == 3 * page());
        REQUIRE(static_cast<char*>(s.guard_lo) + s.guard_size == s.lo);
        REQUIRE(reinterpret_cast<std::uintptr_t>(s.lo) % page() == 0);
        REQUIRE(s.top() == static_cast<char*>(s.lo) + s.size);
        // The whole usable range is writable.
        static_cast<volatile char*>(s.lo)[0] = 1;
        static_cast<volatile char*>(s.top())[-1] = 1;
        stacks.push_back(s);
      }
      if (mode == GuardMode::madvise) REQUIRE(pool.mappings() == 3);
      if (mode == GuardMode::mprotect) REQUIRE(pool.mappings() == 18);
      for (const Stack& s : stacks) pool.release(s);
    }
  }
}

TEST_CASE("stacks released beyond the cache give their memory back and keep their guard", "[stack_pool]") {
  for (GuardMode mode : testable_modes()) {
    SECTION(name_of(mode)) {
      StackPoolConfig cfg = config(mode);
      cfg.cache_committed = 1;
      StackPool pool(cfg);
      Stack kept = pool.acquire();
      Stack dropped = pool.acquire();
      std::memset(kept.lo, 1, kept.size);
      std::memset(dropped.lo, 1, dropped.size);
      pool.release(kept);     // within the cache: stays committed
      pool.release(dropped);  // beyond it: MADV_DONTNEED
      const std::size_t pages = kept.size / page();
      std::vector<unsigned char> in_core(pages);
      REQUIRE(::mincore(kept.lo, kept.size, in_core.data()) == 0);
      REQUIRE(in_core[0] != 0);
      REQUIRE(::mincore(dropped.lo, dropped.size, in_core.data()) == 0);
      for (unsigned char c : in_core) REQUIRE((c & 1) == 0);
      // Still usable: zero-filled on the next touch.
      Stack again = pool.acquire();
      REQUIRE(again.lo == dropped.lo);
      REQUIRE(static_cast<char*>(again.top())[-1] == 0);
      REQUIRE(write_faults(static_cast<char*>(again.lo) - 1));  // the guard survived
      pool.release(again);
    }
  }
}

TEST_CASE("forced madvise mode on a kernel without it throws; automatic falls back", "[stack_pool]") {
  const bool has = weft::detail::kernel_has_guard_install();
  REQUIRE(StackPool(config(GuardMode::automatic)).mode() == (has ? GuardMode::madvise : GuardMode::mprotect));
  if (has) {
    REQUIRE(StackPool(config(GuardMode::madvise)).mode() == GuardMode::madvise);  // construction succeeds
    return;
  }
  try {
    StackPool pool(config(GuardMode::madvise));
    FAIL("GuardMode::madvise was accepted by a kernel without MADV_GUARD_INSTALL");
  } catch (const std::system_error& e) {
    const std::string what = e.what();
    INFO(what);
    REQUIRE(what.find("MADV_GUARD_INSTALL") != std::string::npos);
    REQUIRE(what.find("6.13") != std::string::npos);
  }
}

TEST_CASE("a fiber overflowing into its guard page is reported by name", "[overflow]") {
  for (GuardMode mode : testable_modes()) {
    SECTION(name_of(mode)) {
      ChildResult r = run_in_child([mode]() -> int {
        StackPool pool(config(mode));
        arm_fake_fiber(pool);
        overflow_fake_fiber();
      });
      INFO("child status " << r.status << ", stderr:\n" << r.err);
      REQUIRE(died_of_fault(r.status));
      REQUIRE(r.err.find(
                  "weft: FATAL: fiber stack overflow (fault in guard page) in fiber probe-fiber (id 7, worker 0)\n") !=
              std::string::npos);
    }
  }
}

TEST_CASE("after the report the fault is handed to the previous handler", "[overflow]") {
  ChildResult r = run_in_child([]() -> int {
    install_marking_handler();
    StackPool pool(config(GuardMode::automatic));
    arm_fake_fiber(pool);
    overflow_fake_fiber();
  });
  INFO("child status " << r.status << ", stderr:\n" << r.err);
  REQUIRE(WIFEXITED(r.status));
  REQUIRE(WEXITSTATUS(r.status) == kMarkerExit);
  const auto report = r.err.find("in fiber probe-fiber (id 7, worker 0)\n");
  const auto marker = r.err.find(kMarker);
  REQUIRE(report != std::string::npos);
  REQUIRE(marker != std::string::npos);
  REQUIRE(report < marker);
}

TEST_CASE("a fault outside the fiber's guard is not reported and goes to the previous handler", "[overflow]") {
  const auto fault_elsewhere = [](bool marking) {
    return run_in_child([marking] {
      if (marking) install_marking_handler();
      StackPool pool(config(GuardMode::automatic));
      arm_fake_fiber(pool);
      void* elsewhere = ::mmap(nullptr, page(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (elsewhere == MAP_FAILED) return 5;
      *static_cast<volatile char*>(elsewhere) = 1;
      return 0;
    });
  };
  SECTION("default disposition") {
    ChildResult r = fault_elsewhere(false);
    INFO("child status " << r.status << ", stderr:\n" << r.err);
    REQUIRE(died_of_fault(r.status));
    REQUIRE(r.err.find("fiber stack overflow") == std::string::npos);
  }
  SECTION("a previous handler") {
    ChildResult r = fault_elsewhere(true);
    INFO("child status " << r.status << ", stderr:\n" << r.err);
    REQUIRE(WIFEXITED(r.status));
    REQUIRE(WEXITSTATUS(r.status) == kMarkerExit);
    REQUIRE(r.err.find(kMarker) != std::string::npos);
    REQUIRE(r.err.find("fiber stack overflow") == std::string::npos);
  }
}

TEST_CASE("a signal sent with kill is passed on, not swallowed", "[overflow]") {
  ChildResult r = run_in_child([] {
    weft::detail::install_overflow_handler(&fake_probe);
    ::kill(::getpid(), SIGSEGV);
    return 0;
  });
  INFO("child status " << r.status << ", stderr:\n" << r.err);
  REQUIRE(died_of_fault(r.status));
  REQUIRE(r.err.find("fiber stack overflow") == std::string::npos);
}

TEST_CASE("the thread altstack is set up once and the previous one restored", "[overflow]") {
  stack_t before{};
  REQUIRE(::sigaltstack(nullptr, &before) == 0);
  weft::detail::setup_thread_altstack();
  stack_t ours{};
  REQUIRE(::sigaltstack(nullptr, &ours) == 0);
  REQUIRE((ours.ss_flags & SS_DISABLE) == 0);
  REQUIRE(ours.ss_size >= 64 * 1024);
  REQUIRE(ours.ss_size >= 4 * static_cast<std::size_t>(::sysconf(_SC_SIGSTKSZ)));
  weft::detail::setup_thread_altstack();  // a no-op
  stack_t again{};
  REQUIRE(::sigaltstack(nullptr, &again) == 0);
  REQUIRE(again.ss_sp == ours.ss_sp);
  weft::detail::release_thread_altstack();
  stack_t after{};
  REQUIRE(::sigaltstack(nullptr, &after) == 0);
  REQUIRE((after.ss_flags & SS_DISABLE) == (before.ss_flags & SS_DISABLE));
  if ((before.ss_flags & SS_DISABLE) == 0) REQUIRE(after.ss_sp == before.ss_sp);
  weft::detail::release_thread_altstack();  // a no-op
}
