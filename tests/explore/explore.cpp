// tests/explore/explore.cpp — the explorer: runs scenarios of random operations on
// the public API under Config::explore (random schedules, injected faults), one
// forked child per (scenario, seed), and judges each child.
//
//   explore [--scenario NAME[,NAME...]|all] [--seeds N] [--first-seed S] [--seed S]
//           [--repeat N] [--timeout SEC] [--jobs N] [--budget SEC] [--stop]
//           [--yields N] [--faults N] [--without KIND,...] [--log-lines N]
//           [--verbose] [--list]
//
// Invariants:
//  - The parent never starts a runtime or a thread: it only forks, reads the
//    children's output (stdout and stderr, one pipe each) and waits for them.
//  - A child passes with exit status 0. Status 1 is a broken invariant (its line
//    starts with INVARIANT), 77 a skip (no io_uring); anything else, or a signal,
//    is a crash (a sanitizer report, an abort). A hang ends in the child's own
//    watchdog (a fiber dump, then abort) or, past --timeout, in SIGKILL from here.
//  - A run's explorer rates and every random choice derive from its seed alone
//    (--yields/--faults/--without override them and are then part of the replay
//    command), so `tools/explore --scenario X --seed S` replays run (X, S): its
//    decisions, not the kernel's timing, so a failure may take a few replays
//    (--repeat N runs each seed N times).
//  - Without --seeds: 40 seeds, scaled by WEFT_STRESS_SCALE (meson test sets it
//    lower in the sanitizer builds). The size of each run scales with it too, so
//    the replay command names it when it is set.
//  - --budget SEC: no run starts after SEC seconds (the rest are reported as not
//    run); a bound on the wall time of the meson test.
//  - Exit status: 0 when every run passed, 77 when all were skipped, 1 otherwise.
#include "explore.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EXPLORE_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define EXPLORE_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define EXPLORE_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define EXPLORE_TSAN 1
#endif

// Sanitizer defaults for the children (the environment still overrides them): any
// report fails the run at once. The names are the sanitizers' hooks.
extern "C" const char* __asan_default_options() {  // NOLINT(readability-identifier-naming)
  return "halt_on_error=1:detect_leaks=1:abort_on_error=0";
}
extern "C" const char* __ubsan_default_options() {  // NOLINT(readability-identifier-naming)
  return "halt_on_error=1:print_stacktrace=1";
}
extern "C" const char* __tsan_default_options() {  // NOLINT(readability-identifier-naming)
  return "halt_on_error=1:second_deadlock_stack=1";
}

namespace weft::explore {
int run_child(const Scenario& s, Run& run, std::chrono::seconds limit);
}

namespace {

using namespace weft::explore;

const Scenario* const kAll[] = {&kSockets, &kSync, &kTimers, &kOffload, &kFiles, &kShutdown};

const char* build_name() {
#if defined(EXPLORE_ASAN)
  return "asan";
#elif defined(EXPLORE_TSAN)
  return "tsan";
#else
  return "release";
#endif
}

struct Options {
  std::vector<const Scenario*> scenarios;
  std::uint64_t first_seed = 1;
  std::uint64_t seeds = 0;  // 0: 40 scaled by WEFT_STRESS_SCALE
  unsigned repeat = 1;      // runs per seed
  unsigned timeout = 60;
  unsigned jobs = 1;
  double budget = 0;  // seconds; 0: none
  bool stop = false;
  int yields = -1, faults = -1;
  std::uint32_t without = 0;
  std::string without_arg;
  unsigned log_lines = 60;
  bool verbose = false;
};

struct Kind {
  const char* name;
  std::uint32_t bit;
};
constexpr Kind kKinds[] = {
    {"short_transfer", weft::Explore::short_transfer},
    {"fail_op", weft::Explore::fail_op},
    {"hold_cqe", weft::Explore::hold_cqe},
    {"sq_full", weft::Explore::sq_full},
    {"refuse_submit", weft::Explore::refuse_submit},
    {"enomem", weft::Explore::enomem},
    {"fail_wake", weft::Explore::fail_wake},
};

[[noreturn]] void usage(const char* why) {
  if (why) std::fprintf(stderr, "explore: %s\n", why);
  std::fprintf(stderr,
               "usage: explore [--scenario NAME,...|all] [--seeds N] [--first-seed S] [--seed S] [--repeat N]\n"
               "               [--timeout SEC] [--jobs N] [--budget SEC] [--stop] [--yields N] [--faults N]\n"
               "               [--without KIND,...] [--log-lines N] [--verbose] [--list]\n"
               "WEFT_SEED in the environment sets --first-seed when it is not given.\n");
  std::exit(2);
}

std::uint64_t number(const char* opt, const char* v) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(v ? v : "", &end, 0);
  if (!v || !*v || *end || errno) usage((std::string("bad number for ") + opt).c_str());
  return n;
}

Options parse(int argc, char** argv) {
  Options o;
  bool first_given = false, seeds_given = false, single = false;
  std::string names = "all";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--list") {
      for (const Scenario* s : kAll) std::printf("%-10s %s\n", s->name, s->summary);
      std::exit(0);
    } else if (a == "--scenario") {
      const char* v = val();
      if (!v) usage("--scenario needs a name");
      names = v;
    } else if (a == "--seeds") {
      o.seeds = number("--seeds", val()), seeds_given = true;
    } else if (a == "--first-seed") {
      o.first_seed = number("--first-seed", val()), first_given = true;
    } else if (a == "--seed") {
      o.first_seed = number("--seed", val()), first_given = true, single = true;
    } else if (a == "--repeat") {
      o.repeat = static_cast<unsigned>(std::clamp<std::uint64_t>(number("--repeat", val()), 1, 10000));
    } else if (a == "--timeout") {
      o.timeout = static_cast<unsigned>(number("--timeout", val()));
    } else if (a == "--jobs") {
      o.jobs = std::max(1u, static_cast<unsigned>(number("--jobs", val())));
    } else if (a == "--budget") {
      o.budget = static_cast<double>(number("--budget", val()));
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--stop") {
      o.stop = true;
    } else if (a == "--yields") {
      o.yields = static_cast<int>(std::min<std::uint64_t>(1000, number("--yields", val())));
    } else if (a == "--faults") {
      o.faults = static_cast<int>(std::min<std::uint64_t>(1000, number("--faults", val())));
    } else if (a == "--without") {
      const char* v = val();
      if (!v) usage("--without needs fault kinds");
      o.without_arg = v;
      std::string rest = v;
      while (!rest.empty()) {
        const std::string k = rest.substr(0, rest.find(','));
        rest = rest.size() > k.size() ? rest.substr(k.size() + 1) : "";
        const Kind* f = std::find_if(std::begin(kKinds), std::end(kKinds), [&](const Kind& x) { return k == x.name; });
        if (f == std::end(kKinds)) usage(("unknown fault kind " + k).c_str());
        o.without |= f->bit;
      }
    } else if (a == "--log-lines") {
      o.log_lines = static_cast<unsigned>(number("--log-lines", val()));
    } else if (a == "-h" || a == "--help") {
      usage(nullptr);
    } else {
      usage(("unknown argument " + a).c_str());
    }
  }
  if (!first_given)
    if (const char* s = std::getenv("WEFT_SEED"); s && *s) o.first_seed = number("WEFT_SEED", s);
  if (o.first_seed == 0) usage("seed 0 turns the explorer off; seeds start at 1");
  if (!seeds_given) o.seeds = single ? 1 : static_cast<std::uint64_t>(weft::test::scaled(40));
  for (std::string rest = names; !rest.empty();) {
    const std::string n = rest.substr(0, rest.find(','));
    rest = rest.size() > n.size() ? rest.substr(n.size() + 1) : "";
    bool known = false;
    for (const Scenario* s : kAll)
      if (n == "all" || n == s->name) {
        known = true;
        if (std::find(o.scenarios.begin(), o.scenarios.end(), s) == o.scenarios.end()) o.scenarios.push_back(s);
      }
    if (!known) usage(("unknown scenario " + n + " (see --list)").c_str());
  }
  if (o.scenarios.empty()) usage("no scenario named");
  if (o.timeout < 10) usage("--timeout must be at least 10 s");
  return o;
}

// The rates of a run: from its seed, unless given on the command line.
Run make_run(const Options& o, const Scenario& s, std::uint64_t seed) {
  Run r;
  r.scenario = s.name;
  r.seed = seed;
  const std::uint64_t x = mix(seed, 0x5eed);
  static constexpr unsigned kYields[] = {0, 30, 150, 400};
  static constexpr unsigned kFaults[] = {0, 10, 40, 120};
  r.yields = o.yields >= 0 ? static_cast<unsigned>(o.yields) : kYields[x % 4];
  r.faults = o.faults >= 0 ? static_cast<unsigned>(o.faults) : kFaults[(x >> 8) % 4];
  r.kinds = ~o.without;
  return r;
}

std::string replay_command(const Options& o, const Run& r) {
  std::string c;
  if (const char* s = std::getenv("WEFT_STRESS_SCALE"); s && *s) c = std::string("WEFT_STRESS_SCALE=") + s + " ";
  c += "tools/explore";
  if (std::strcmp(build_name(), "release") != 0) c += std::string(" --build ") + build_name();
  c += " --scenario " + r.scenario + " --seed " + std::to_string(r.seed);
  if (o.yields >= 0) c += " --yields " + std::to_string(o.yields);
  if (o.faults >= 0) c += " --faults " + std::to_string(o.faults);
  if (!o.without_arg.empty()) c += " --without " + o.without_arg;
  return c;
}

struct Job {
  const Scenario* s = nullptr;
  Run run;
  pid_t pid = -1;
  int fd = -1;
  std::string out;
  Clock::time_point t0;
  bool killed = false;
};

// The line that says why a failed run failed.
std::string reason(const Job& j, int status) {
  static const char* const kMarks[] = {"INVARIANT",
                                       "WATCHDOG",
                                       "ERROR: AddressSanitizer",
                                       "ERROR: LeakSanitizer",
                                       "WARNING: ThreadSanitizer",
                                       "runtime error:",
                                       "terminate called",
                                       "FATAL",
                                       "Assertion"};
  for (const char* m : kMarks) {
    const std::size_t p = j.out.find(m);
    if (p == std::string::npos) continue;
    const std::size_t b = j.out.rfind('\n', p);
    const std::size_t start = b == std::string::npos ? 0 : b + 1;
    return j.out.substr(start, j.out.find('\n', p) - start);
  }
  if (j.killed) return "hang: killed after --timeout";
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "exit status " + std::to_string(WEXITSTATUS(status));
}

void start(Job& j, unsigned timeout) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    setvbuf(stdout, nullptr, _IONBF, 0);
    for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGPIPE}) std::signal(sig, SIG_DFL);
    const auto limit = std::chrono::seconds(std::max(timeout * 3 / 4, timeout - 8));
    const int rc = run_child(*j.s, j.run, limit);
    std::fflush(nullptr);
    std::exit(rc);  // not _exit: LeakSanitizer checks at exit
  }
  close(fds[1]);
  j.pid = pid;
  j.fd = fds[0];
  j.t0 = Clock::now();
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  setenv("WEFT_LOG", "warn", 0);
  signal(SIGPIPE, SIG_IGN);

  std::deque<Job> todo;
  for (std::uint64_t k = 0; k < o.seeds; ++k)
    for (const Scenario* s : o.scenarios)
      for (unsigned rep = 0; rep < o.repeat; ++rep) {
        Job j;
        j.s = s;
        j.run = make_run(o, *s, o.first_seed + k);
        todo.push_back(std::move(j));
      }
  const std::size_t total = todo.size();
  std::printf("explore: %zu run(s): %zu scenario(s) x %llu seed(s) from %llu (build %s, timeout %u s, jobs %u)\n",
              total, o.scenarios.size(), static_cast<unsigned long long>(o.seeds),
              static_cast<unsigned long long>(o.first_seed), build_name(), o.timeout, o.jobs);
  std::fflush(stdout);

  const Clock::time_point t_start = Clock::now();
  std::vector<Job> running;
  std::size_t passed = 0, failed = 0, skipped = 0, done = 0;
  bool have_first = false;
  Job first;
  std::string first_reason;
  double first_found = 0, first_took = 0;
  std::size_t first_index = 0;

  while (!todo.empty() || !running.empty()) {
    const bool out_of_budget = o.budget > 0 && ms_since(t_start) / 1000 > o.budget;
    while (running.size() < o.jobs && !todo.empty() && !out_of_budget && !(o.stop && have_first)) {
      running.push_back(std::move(todo.front()));
      todo.pop_front();
      start(running.back(), o.timeout);
    }
    if (running.empty()) break;
    std::vector<pollfd> pfds;
    for (const Job& j : running) pfds.push_back({j.fd, POLLIN, 0});
    poll(pfds.data(), pfds.size(), 200);
    for (std::size_t i = 0; i < running.size();) {
      Job& j = running[i];
      bool eof = false;
      if (pfds[i].revents) {
        char buf[8192];
        const ssize_t n = read(j.fd, buf, sizeof buf);
        if (n > 0)
          j.out.append(buf, static_cast<std::size_t>(n));
        else
          eof = true;
      }
      if (!eof && !j.killed && ms_since(j.t0) / 1000 > o.timeout) {
        kill(j.pid, SIGKILL);  // our own child, by its pid
        j.killed = true;
      }
      if (!eof) {
        ++i;
        continue;
      }
      int status = 0;
      waitpid(j.pid, &status, 0);
      close(j.fd);
      const double took = ms_since(j.t0) / 1000;
      ++done;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !j.killed) {
        ++passed;
        if (o.verbose) {
          std::printf("pass %s seed=%llu (yields=%u faults=%u) %.1fs\n", j.s->name,
                      static_cast<unsigned long long>(j.run.seed), j.run.yields, j.run.faults, took);
          for (std::size_t p = 0, e; (e = j.out.find('\n', p)) != std::string::npos; p = e + 1)
            if (j.out.compare(p, 6, "note: ") == 0) std::printf("  %s\n", j.out.substr(p + 6, e - p - 6).c_str());
        }
      } else if (WIFEXITED(status) && WEXITSTATUS(status) == 77 && !j.killed) {
        ++skipped;
      } else {
        ++failed;
        const std::string why = reason(j, status);
        std::printf("FAIL %s seed=%llu (yields=%u faults=%u) %.1fs: %s\n", j.s->name,
                    static_cast<unsigned long long>(j.run.seed), j.run.yields, j.run.faults, took, why.c_str());
        std::fflush(stdout);
        if (!have_first) {
          have_first = true;
          first_found = ms_since(t_start) / 1000;
          first_took = took;
          first_index = done;
          first_reason = why;
          first = std::move(j);
        }
      }
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
      pfds.erase(pfds.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }

  const double elapsed = ms_since(t_start) / 1000;
  if (have_first) {
    std::printf("\nfirst failure: %s seed %llu, found after %.1f s (run %zu of %zu); that run took %.1f s\n",
                first.s->name, static_cast<unsigned long long>(first.run.seed), first_found, first_index, total,
                first_took);
    std::printf("why: %s\n", first_reason.c_str());
    std::printf("replay: %s\n", replay_command(o, first.run).c_str());
    // The end of its log (sanitizer reports and fiber dumps are at the end).
    std::vector<std::size_t> starts{0};
    for (std::size_t p = 0; (p = first.out.find('\n', p)) != std::string::npos; ++p) starts.push_back(p + 1);
    const std::size_t lines = starts.size();
    const std::size_t from = lines > o.log_lines ? starts[lines - o.log_lines] : 0;
    std::printf("--- its log%s ---\n%s", from ? " (last lines)" : "", first.out.substr(from).c_str());
    if (!first.out.empty() && first.out.back() != '\n') std::printf("\n");
    std::printf("---\n");
  }
  const std::size_t not_run = total - done;
  std::printf("summary: %zu run(s): %zu passed, %zu failed, %zu skipped%s in %.1f s\n", done, passed, failed, skipped,
              not_run ? (", " + std::to_string(not_run) + " not run (budget or --stop)").c_str() : "", elapsed);
  if (failed) return 1;
  if (done > 0 && skipped == done) return 77;
  return 0;
}
