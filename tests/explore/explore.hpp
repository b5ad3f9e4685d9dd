// tests/explore/explore.hpp — what the explorer's scenarios share: the run they are
// given (seed, explorer rates, a Config built from them), the way they fail, and
// the outcomes the public API documents.
//
// Invariants:
//  - A scenario runs in a child process forked by explore.cpp, once per seed. All
//    its random choices come from generators derived from Run::seed (Run::rng(k)),
//    so a seed replays the same decisions; the kernel's timing and the threads'
//    interleaving are not under its control.
//  - A broken invariant calls fail() (through EXPECT): the message, prefixed with
//    "INVARIANT", goes to stderr and the child exits with status 1 at once (no
//    destructors: the runtime may be in any state). Passing returns normally.
//  - An outcome that the public API does not document (an exception type or errno
//    no header promises) is a broken invariant too: classify() decides.
//  - The watchdog (child.cpp) dumps the runtime given to watch() and aborts when
//    the run outlives its limit; phase() says where the scenario is.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

namespace weft::explore {

/// The scenarios' generator: weft::test::Rng seeded from its stream alone. The
/// plain one mixes in the process's run seed (random unless WEFT_SEED is set):
/// each child would then draw other choices for the same --seed, and a replay
/// would replay nothing.
struct Rng : weft::test::Rng {
  explicit Rng(std::uint64_t stream) : weft::test::Rng(weft::test::Rng::exact(stream)) {}
};
using Clock = std::chrono::steady_clock;

/// splitmix64 of (a, b): independent streams from one seed.
std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept;

/// One run of one scenario (a child process).
struct Run {
  std::string scenario;
  std::uint64_t seed = 1;
  unsigned yields = 0;  ///< Explore::yields for this run
  unsigned faults = 0;  ///< Explore::faults for this run
  std::uint32_t kinds = ~0u;

  /// A generator for stream `k` of this run (one per fiber or thread).
  [[nodiscard]] Rng rng(std::uint64_t k) const { return Rng(mix(seed, k)); }
  /// A Config for `workers` workers with the explorer on and a few knobs drawn
  /// from the seed (ring size, tick budget, registered files, buffer ring).
  [[nodiscard]] weft::Config config(unsigned workers) const;
  /// True when the explorer may inject ENOMEM (std::bad_alloc out of an op).
  [[nodiscard]] bool enomem() const { return faults > 0 && (kinds & weft::Explore::enomem) != 0; }
  /// True when the explorer may end an op with an errno (ENOBUFS, ECONNRESET...).
  [[nodiscard]] bool op_faults() const { return faults > 0 && (kinds & weft::Explore::fail_op) != 0; }
};

/// A scenario: drives the public API from `run` and checks its invariants.
struct Scenario {
  const char* name;
  const char* summary;
  void (*body)(Run& run);
};
extern const Scenario kSockets, kSync, kTimers, kOffload, kFiles, kShutdown;

/// A scenario's work on a runtime, also run by the shutdown scenario, which
/// ends the runtime at a random moment (`interrupted`: only the per-op rules
/// hold then, not the end-state ones). start() spawns its fibers and threads;
/// finish() (from the main thread, after the runtime's shutdown when
/// interrupted) joins them and checks what is left to check.
struct Load {
  virtual ~Load() = default;
  virtual void start() = 0;
  virtual void finish() = 0;
};
std::unique_ptr<Load> make_sockets_load(weft::Runtime& rt, const Run& run, bool interrupted);
std::unique_ptr<Load> make_sync_load(weft::Runtime& rt, const Run& run, bool interrupted);
std::unique_ptr<Load> make_timers_load(weft::Runtime& rt, const Run& run, bool interrupted);
std::unique_ptr<Load> make_offload_load(weft::Runtime& rt, const Run& run, bool interrupted);
std::unique_ptr<Load> make_files_load(weft::Runtime& rt, const Run& run, bool interrupted);

[[noreturn]] void fail(const char* file, int line, const std::string& what);
#define EXPECT(cond, msg)                                                                        \
  do {                                                                                           \
    if (!(cond)) [[unlikely]]                                                                    \
      ::weft::explore::fail(__FILE__, __LINE__, std::string("(" #cond ") ") + std::string(msg)); \
  } while (0)
#define FAIL_NOW(msg) ::weft::explore::fail(__FILE__, __LINE__, std::string(msg))

/// Where the scenario is (shown by the watchdog). A string literal.
void phase(const char* what) noexcept;
/// A line about the run (counts, what it covered) in its log: `--verbose` shows it.
void note(const std::string& line);
/// note()s the explorer's counters of `rt` (yields and faults injected).
void note_stats(weft::Runtime& rt);
/// The runtime the watchdog dumps (nullptr: none).
void watch(weft::Runtime* rt) noexcept;
/// Open file descriptors of this process.
int count_fds();
/// Error-level log lines containing `substring` are expected from now on.
void allow_error_log(const char* substring);
/// Error-level log lines seen that no allow_error_log() covered (and prints them).
std::size_t unexpected_error_logs();
/// Error-level log lines seen that contain `substring`.
std::size_t error_logs_with(const char* substring);
/// The first of them ("" if none).
std::string first_error_log_with(const char* substring);

/// How a call ended, as the public API documents it.
enum class Outcome {
  ok,
  timed_out,        ///< std::errc::timed_out
  canceled,         ///< std::errc::operation_canceled (closed by another fiber)
  bad_fd,           ///< std::errc::bad_file_descriptor (the socket was closed)
  reset,            ///< ECONNRESET / EPIPE: the peer is gone
  refused,          ///< ECONNREFUSED
  no_buffers,       ///< ENOBUFS (injected only)
  unexpected_eof,   ///< net::UnexpectedEof
  fiber_cancelled,  ///< weft::FiberCancelled
  no_memory,        ///< std::bad_alloc (ENOMEM injected in fiber context)
  shut_down,        ///< weft::ShutDown from Runtime::spawn: the runtime is shut down
};
const char* name_of(Outcome o) noexcept;

/// The Outcome of the exception `e` thrown by `op`; fails on anything the public
/// API does not document for it (and on bad_alloc / ENOBUFS when `run` cannot
/// inject them).
Outcome classify(const Run& run, const std::exception_ptr& e, const char* op);

/// An error a fiber rethrows through its own handlers, tagged with the fiber that
/// threw it: `throw;` in a handler must rethrow this very object.
struct Tagged : std::exception {
  std::uint64_t fiber;
  Outcome outcome;
  std::string text;
  Tagged(std::uint64_t f, Outcome o, std::string t) : fiber(f), outcome(o), text(std::move(t)) {}
  [[nodiscard]] const char* what() const noexcept override { return text.c_str(); }
};

/// After a handler of this fiber rethrew `t` with `throw;`: it must be this
/// fiber's own exception (fails otherwise).
void check_own(const Tagged& t, const char* where);
/// Throws a Tagged of this fiber and catches it, parking inside the handler
/// (`park`, or a yield or a short sleep) before `throw;`: the rethrow must be
/// the same exception, whatever ran on the worker meanwhile. Fibers only.
void handler_probe(Rng& r, const std::function<void()>& park = {});

/// Fibers that use the frame that spawned them: all joined before the frame goes,
/// also when it unwinds (cancellation deferred meanwhile), so none outlives what
/// it refers to. The set is used by one fiber.
class JoinSet {
 public:
  explicit JoinSet(const Run& run) : run_(run) {}
  JoinSet(const JoinSet&) = delete;
  JoinSet& operator=(const JoinSet&) = delete;
  ~JoinSet() { (void)join(); }
  /// Keeps `h`; the reference stays valid (to cancel it) until join().
  weft::JoinHandle<void>& add(weft::JoinHandle<void> h) { return hs_.emplace_back(std::move(h)); }
  /// Joins them all; returns the first one's failure, if any: its Tagged, or a
  /// Tagged(0, outcome) for a documented exception (FiberCancelled of a fiber
  /// that never ran, a refused spawn). Anything else fails the run.
  std::optional<Tagged> join();

 private:
  const Run& run_;
  std::deque<weft::JoinHandle<void>> hs_;
};

/// Joins `h` from a load's finish(): it must end normally, or (when `interrupted`,
/// or `may_cancel`) with FiberCancelled, or (when `interrupted`) with a spawn
/// refused by the shut-down runtime. Anything else fails the run, naming `what`.
void join_load_fiber(weft::JoinHandle<void>& h, const Run& run, bool interrupted, const char* what,
                     bool may_cancel = false);

/// Milliseconds since `t0`, for messages.
inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// A few yields (0..max) of the calling fiber: a random point in the schedule.
inline void jitter(Rng& r, unsigned max = 3) {
  for (auto n = r.between(0, max); n > 0; --n) weft::yield();
}

}  // namespace weft::explore
