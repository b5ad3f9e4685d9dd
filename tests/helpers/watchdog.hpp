// tests/helpers/watchdog.hpp — a bound on a stress test's wall time. If it is
// not disarmed (destroyed) within its limit, it prints the test's progress
// counters and (best effort, bounded) the runtime's fiber dump, then aborts: a
// hang fails CI with a diagnosis instead of eating the job's time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <weft/runtime/runtime.hpp>

namespace weft::test {

using namespace std::chrono_literals;

/// Aborts the process if not disarmed within `limit`, after printing `what`'s
/// progress counters and (best effort, bounded) the runtime's fiber dump.
class Watchdog {
 public:
  Watchdog(const char* what, weft::Runtime& rt, std::vector<std::atomic<long>*> counters,
           std::chrono::seconds limit = 420s)
      : Watchdog(what, &rt, std::move(counters), limit) {}
  /// `rt` may be null (a test of threads only): then no fiber dump.
  Watchdog(const char* what, weft::Runtime* rt, std::vector<std::atomic<long>*> counters,
           std::chrono::seconds limit = 420s)
      : thread_([this, what, rt, counters, limit] {
          std::unique_lock lk(mu_);
          if (cv_.wait_for(lk, limit, [this] { return done_; })) return;
          std::fprintf(stderr, "WATCHDOG: '%s' did not finish within %llds; progress:", what,
                       static_cast<long long>(limit.count()));
          for (auto* c : counters) std::fprintf(stderr, " %ld", c->load());
          std::fprintf(stderr, "\n");
          std::fflush(stderr);
          if (rt) {
            // dump_fibers needs live workers; if they are wedged it may not return.
            std::thread([rt] {
              std::string d = rt->dump_fibers();
              std::fprintf(stderr, "%s\n", d.c_str());
              std::fflush(stderr);
            }).detach();
            std::this_thread::sleep_for(5s);
          }
          std::abort();
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts after the members it uses exist
};

}  // namespace weft::test
