// tests/explore/child.cpp — the child side of one explorer run: the Config a seed
// gives, the watchdog, the error-log sink, failing, and the documented outcomes.
//
// Invariants:
//  - Everything here is set up by run_child() on the child's main thread before
//    the scenario starts a runtime (the log sink is added to weft's logger then,
//    while no other thread logs).
//  - fail() never returns and runs no destructor: it prints and _exit(1)s, so a
//    runtime in a broken state cannot turn a failed invariant into a hang.
//  - The watchdog thread only reads the phase (an atomic pointer to a literal) and,
//    under wd_mu, the watched runtime; watch() takes wd_mu, so a runtime is never
//    dumped after the scenario stopped watching it.
#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include <spdlog/sinks/base_sink.h>

#include <weft/net/error.hpp>
#include <weft/runtime/log.hpp>

#include "../helpers/watchdog.hpp"
#include "explore.hpp"

namespace weft::explore {

std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

weft::Config Run::config(unsigned workers) const {
  Rng r = rng(0xc0f1);
  weft::Config c;
  c.name = "explore";
  c.workers = workers;
  static constexpr unsigned kRing[] = {8, 32, 256, 256};
  c.ring_entries = kRing[r.next() % 4];
  static constexpr unsigned kBudget[] = {1, 4, 64, 64};
  c.tick_budget = kBudget[r.next() % 4];
  static constexpr unsigned kFixed[] = {4096, 4096, 4096, 4, 0};
  c.fixed_files = kFixed[r.next() % 5];
  static constexpr unsigned kBufs[] = {256, 256, 4, 0};
  c.recv_buffers = kBufs[r.next() % 4];
  c.recv_buffer_size = r.next() % 2 ? 16384 : 4096;
  static constexpr weft::Placement kPlace[] = {weft::Placement::round_robin, weft::Placement::local,
                                               weft::Placement::least_loaded};
  c.placement = kPlace[r.next() % 3];
  c.pool_threads = 2;
  c.pool_queue = r.next() % 2 ? 4 : 1024;
  c.explore = {.seed = seed, .yields = yields, .faults = faults, .kinds = kinds};
  return c;
}

// ------------------------------------------------------------- failing ----

namespace {
std::string g_run;  // "scenario seed N", for messages
}

void fail(const char* file, int line, const std::string& what) {
  const char* base = std::strrchr(file, '/');
  std::fprintf(stderr, "INVARIANT [%s] %s:%d: %s\n", g_run.c_str(), base ? base + 1 : file, line, what.c_str());
  std::fflush(nullptr);
  _exit(1);
}

// ------------------------------------------------------------ watchdog ----

namespace {
std::atomic<const char*> g_phase{"starting"};  // relaxed: a tag for the dump only
std::mutex wd_mu;
weft::Runtime* g_watched = nullptr;  // under wd_mu

// ----------------------------------------------------------- error log ----

std::mutex log_mu;
std::vector<std::string> g_allowed;     // under log_mu
std::vector<std::string> g_error_logs;  // under log_mu

class ErrorSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (msg.level < spdlog::level::err) return;
    std::lock_guard g(log_mu);
    g_error_logs.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}
};
}  // namespace

void phase(const char* what) noexcept {
  g_phase.store(what, std::memory_order_relaxed);
}

void note(const std::string& line) {
  std::printf("note: %s\n", line.c_str());
}

void note_stats(weft::Runtime& rt) {
  const weft::Stats st = rt.stats();
  note("workers " + std::to_string(rt.workers()) + ", fibers " + std::to_string(st.fibers_spawned) + ", switches " +
       std::to_string(st.switches) + ", yields injected " + std::to_string(st.explore_yields) + ", faults injected " +
       std::to_string(st.faults_injected) + ", sq waits " + std::to_string(st.sq_waits));
}

void watch(weft::Runtime* rt) noexcept {
  std::lock_guard g(wd_mu);
  g_watched = rt;
}

int count_fds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n - 1;  // the directory's own fd
}

void allow_error_log(const char* substring) {
  std::lock_guard g(log_mu);
  g_allowed.emplace_back(substring);
}

std::size_t unexpected_error_logs() {
  std::lock_guard g(log_mu);
  std::size_t n = 0;
  for (const auto& line : g_error_logs) {
    bool ok = false;
    for (const auto& a : g_allowed) ok = ok || line.find(a) != std::string::npos;
    if (ok) continue;
    ++n;
    std::fprintf(stderr, "unexpected error log: %s\n", line.c_str());
  }
  return n;
}

std::size_t error_logs_with(const char* substring) {
  std::lock_guard g(log_mu);
  std::size_t n = 0;
  for (const auto& line : g_error_logs) n += line.find(substring) != std::string::npos;
  return n;
}

std::string first_error_log_with(const char* substring) {
  std::lock_guard g(log_mu);
  for (const auto& line : g_error_logs)
    if (line.find(substring) != std::string::npos) return line;
  return "";
}

// ------------------------------------------------------------ outcomes ----

const char* name_of(Outcome o) noexcept {
  switch (o) {
    case Outcome::ok:
      return "ok";
    case Outcome::timed_out:
      return "timed_out";
    case Outcome::canceled:
      return "operation_canceled";
    case Outcome::bad_fd:
      return "bad_file_descriptor";
    case Outcome::reset:
      return "reset";
    case Outcome::refused:
      return "refused";
    case Outcome::no_buffers:
      return "no_buffer_space";
    case Outcome::unexpected_eof:
      return "UnexpectedEof";
    case Outcome::fiber_cancelled:
      return "FiberCancelled";
    case Outcome::no_memory:
      return "bad_alloc";
    case Outcome::shut_down:
      return "shut down";
  }
  return "?";
}

Outcome classify(const Run& run, const std::exception_ptr& e, const char* op) {
  const std::string where = std::string(op) + ": ";
  try {
    std::rethrow_exception(e);
  } catch (const weft::FiberCancelled&) {
    return Outcome::fiber_cancelled;
  } catch (const weft::net::UnexpectedEof&) {
    return Outcome::unexpected_eof;
  } catch (const std::system_error& x) {
    const std::error_code c = x.code();
    if (c == std::errc::timed_out) return Outcome::timed_out;
    if (c == std::errc::operation_canceled) return Outcome::canceled;
    if (c == std::errc::bad_file_descriptor) return Outcome::bad_fd;
    // ENOTCONN: a shutdown(2) after the peer reset the connection.
    if (c == std::errc::connection_reset || c == std::errc::broken_pipe || c == std::errc::not_connected)
      return Outcome::reset;
    if (c == std::errc::connection_refused) return Outcome::refused;
    if (c == std::errc::no_buffer_space && run.op_faults()) return Outcome::no_buffers;
    FAIL_NOW(where + "an error no header documents here: " + c.message() + " (" + x.what() + ")");
  } catch (const std::bad_alloc&) {
    if (run.enomem()) return Outcome::no_memory;
    FAIL_NOW(where + "std::bad_alloc without injected ENOMEM");
  } catch (const Tagged& t) {
    FAIL_NOW(where + "a Tagged exception reached classify(): " + t.text);
  } catch (const weft::ShutDown& x) {
    if (std::string(x.what()).find("is shut down") != std::string::npos) return Outcome::shut_down;
    FAIL_NOW(where + "an exception no header documents here: " + typeid(x).name() + ": " + x.what());
  } catch (const std::exception& x) {
    FAIL_NOW(where + "an exception no header documents here: " + typeid(x).name() + ": " + x.what());
  } catch (...) {
    FAIL_NOW(where + "a non-std exception");
  }
}

void check_own(const Tagged& t, const char* where) {
  const std::uint64_t me = weft::this_fiber::id();
  EXPECT(t.fiber == me, std::string(where) + ": `throw;` in a handler of fiber " + std::to_string(me) +
                            " rethrew the exception of fiber " + std::to_string(t.fiber) + " (" + t.text + ")");
}

void handler_probe(Rng& r, const std::function<void()>& park) {
  const std::uint64_t me = weft::this_fiber::id();
  const std::string text = "probe of fiber " + std::to_string(me);
  try {
    try {
      throw Tagged(me, Outcome::ok, text);
    } catch (...) {
      if (park)
        park();
      else if (r.next() % 2)
        weft::yield();
      else
        weft::sleep_for(std::chrono::microseconds(r.between(0, 300)));
      throw;
    }
  } catch (const Tagged& t) {
    check_own(t, "handler probe");
    EXPECT(t.text == text, "the probe's exception changed under its handler: " + t.text);
  }
}

std::optional<Tagged> JoinSet::join() {
  weft::this_fiber::DeferCancellation defer;
  std::optional<Tagged> first;
  for (auto& h : hs_) {
    try {
      h.join();
    } catch (const Tagged& t) {
      if (!first) first = t;
    } catch (...) {
      const Outcome o = classify(run_, std::current_exception(), "a joined fiber");
      if (!first) first = Tagged(0, o, std::string("a fiber ended with ") + name_of(o));
    }
  }
  hs_.clear();
  return first;
}

void join_load_fiber(weft::JoinHandle<void>& h, const Run& run, bool interrupted, const char* what, bool may_cancel) {
  try {
    h.join();
  } catch (const Tagged& t) {
    EXPECT(interrupted, std::string(what) + " ended with " + t.text);
  } catch (...) {
    const Outcome o = classify(run, std::current_exception(), what);
    if (o == Outcome::fiber_cancelled && (interrupted || may_cancel)) return;
    if (o == Outcome::shut_down && interrupted) return;
    FAIL_NOW(std::string(what) + " ended with " + name_of(o));
  }
}

// ------------------------------------------------------------- the run ----

int run_child(const Scenario& s, Run& run, std::chrono::seconds limit) {
  g_run = std::string(s.name) + " seed " + std::to_string(run.seed);
  weft::log::logger().sinks().push_back(std::make_shared<ErrorSink>());
  weft::test::require_io_uring();  // exits 77 (skip) without it
  weft::test::Watchdog dog(
      limit,
      [limit] {
        std::string h = "WATCHDOG [";  // appended: patches-notes/gcc12-wrestrict-string.md
        h += g_run;
        h += "]: no end within ";
        h += std::to_string(limit.count());
        h += " s (phase: ";
        h += g_phase.load(std::memory_order_relaxed);
        h += "); fiber dump follows";
        return h;
      },
      [] {
        std::lock_guard g(wd_mu);
        try {
          return g_watched ? g_watched->dump_fibers() : std::string();
        } catch (const std::exception& e) {
          return std::string("(no fiber dump: ") + e.what() + ")";
        }
      },
      std::chrono::seconds(4));
  s.body(run);
  phase("checking the error log");
  if (const std::size_t n = unexpected_error_logs()) FAIL_NOW(std::to_string(n) + " unexpected error log line(s)");
  phase("done");
  return 0;
}

}  // namespace weft::explore
