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
#include <functional>
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
      : Watchdog(
            limit,
            [what, counters, limit] {
              // Appended piece by piece (patches-notes/gcc12-wrestrict-string.md).
              std::string h = "WATCHDOG: '";
              h += what;
              h += "' did not finish within ";
              h += std::to_string(limit.count());
              h += "s; progress:";
              for (auto* c : counters) {
                h += ' ';
                h += std::to_string(c->load());
              }
              return h;
            },
            rt ? std::function<std::string()>([rt] { return rt->dump_fibers(); }) : nullptr) {}
  /// The general form: at expiry prints `headline()`, then the text `dump()`
  /// returns (if given; from a detached thread, waited for `grace` at most, since
  /// a wedged runtime may never answer), then aborts.
  Watchdog(std::chrono::seconds limit, std::function<std::string()> headline, std::function<std::string()> dump,
           std::chrono::seconds grace = 5s)
      : thread_([this, limit, headline = std::move(headline), dump = std::move(dump), grace] {
          std::unique_lock lk(mu_);
          if (cv_.wait_for(lk, limit, [this] { return done_; })) return;
          std::fprintf(stderr, "%s\n", headline().c_str());
          std::fflush(stderr);
          if (dump) {
            std::thread([dump] {
              std::string d = dump();
              std::fprintf(stderr, "%s\n", d.c_str());
              std::fflush(stderr);
            }).detach();
            std::this_thread::sleep_for(grace);
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
