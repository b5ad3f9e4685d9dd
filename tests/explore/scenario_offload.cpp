// tests/explore/scenario_offload.cpp — the offload scenario: fibers on every
// worker call weft::offload / offload_for on the runtime's pool (a queue of 4 or
// 1024, from the seed) with work that returns a value, throws, or sleeps past a
// short timeout; some fibers are cancelled meanwhile; a plain thread offloads
// too (inline).
// Invariants:
//  - each call ends with its own result or its own exception (tagged with the
//    call's id), or timed_out (offload_for), or FiberCancelled (a cancelled fiber);
//  - the work ran at most once, and exactly once when its result or exception
//    came back;
//  - every result object is destroyed exactly once, also a late one that nobody
//    took (live count back to 0 once the pool is joined, no double destruction);
//  - a handler that parks before `throw;` rethrows the call's own exception.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "explore.hpp"

namespace weft::explore::offload {
namespace {

std::atomic<long> g_live{0};  // result objects alive

/// A result that counts its copies and catches a second destruction.
struct Result {
  static constexpr std::uint64_t kAlive = 0xa11fe, kDead = 0xdead;
  std::uint64_t id = 0;
  std::uint64_t state = kAlive;
  explicit Result(std::uint64_t i) : id(i) { g_live.fetch_add(1); }
  Result(Result&& o) noexcept : id(o.id) { g_live.fetch_add(1); }
  Result(const Result&) = delete;
  ~Result() {
    if (state != kAlive) {
      std::fprintf(stderr, "INVARIANT: offload result %llu destroyed twice\n", static_cast<unsigned long long>(id));
      std::abort();
    }
    state = kDead;
    g_live.fetch_sub(1);
  }
};

struct WorkError : std::runtime_error {
  std::uint64_t id;
  explicit WorkError(std::uint64_t i) : std::runtime_error("work " + std::to_string(i) + " failed"), id(i) {}
};

class OffloadLoad final : public Load {
 public:
  OffloadLoad(weft::Runtime& rt, const Run& run, bool interrupted)
      : rt_(rt), run_(run), interrupted_(interrupted), r_(run.rng(5)) {}

  void start() override {
    const unsigned fibers = static_cast<unsigned>(r_.between(4, 12));
    calls_ = static_cast<unsigned>(weft::test::scaled(static_cast<long>(r_.between(20, 60))));
    runs_ = std::vector<std::atomic<int>>(static_cast<std::size_t>(fibers + 1) * calls_);
    returned_ = std::vector<std::atomic<bool>>(runs_.size());
    for (unsigned f = 0; f < fibers; ++f) {
      auto h =
          rt_.spawn_on(f % rt_.workers(), [this, f, seed = r_.next()] { caller(f, Rng(seed)); }, {.name = "offloader"});
      handles_.push_back(std::move(h));
    }
    // A plain thread: offload runs the work inline there.
    thread_ = std::thread([this, fibers, seed = r_.next()] {
      Rng r(seed);
      for (unsigned i = 0; i < calls_; ++i) {
        const std::uint64_t id = std::uint64_t{fibers} * calls_ + i;
        const Result v = weft::offload([this, id] { return work(id, false, 0); });
        EXPECT(v.id == id, "an inline offload returned another call's result");
        returned_[id] = true;
      }
    });
    if (!interrupted_) {
      std::this_thread::sleep_for(std::chrono::microseconds(r_.between(0, 4000)));
      for (auto& h : handles_)
        if (r_.next() % 4 == 0) h.cancel();
    }
  }

  void finish() override {
    phase("offload: joining");
    for (auto& h : handles_) join_load_fiber(h, run_, interrupted_, "an offloading fiber", true);
    thread_.join();
    if (interrupted_) check_after_pool();  // the runtime, and with it the pool, is gone
  }

  /// Once the pool is joined (the runtime is gone): what ran, ran once.
  void check_after_pool() {
    long ran = 0, returned = 0;
    for (std::size_t id = 0; id < runs_.size(); ++id) {
      ran += runs_[id].load();
      returned += returned_[id].load();
    }
    note("calls " + std::to_string(runs_.size()) + ", ran " + std::to_string(ran) + ", came back " +
         std::to_string(returned));
    for (std::size_t id = 0; id < runs_.size(); ++id) {
      const int n = runs_[id].load();
      EXPECT(n <= 1, "work " + std::to_string(id) + " ran " + std::to_string(n) + " times");
      if (returned_[id]) EXPECT(n == 1, "work " + std::to_string(id) + " returned without running");
    }
    EXPECT(g_live.load() == 0, std::to_string(g_live.load()) + " offload result(s) never destroyed");
  }

 private:
  Result work(std::uint64_t id, bool fail, unsigned sleep_us) {
    runs_[id].fetch_add(1);
    if (sleep_us) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    if (fail) throw WorkError(id);
    return Result(id);
  }

  void caller(unsigned f, Rng r) {
    for (unsigned i = 0; i < calls_; ++i) {
      const std::uint64_t id = std::uint64_t{f} * calls_ + i;
      const bool fail = r.next() % 4 == 0;
      const unsigned sleep_us = r.next() % 3 == 0 ? static_cast<unsigned>(r.between(0, 3000)) : 0;
      const bool timed = r.next() % 2;
      const auto timeout = std::chrono::microseconds(r.between(0, 3000));
      auto fn = [this, id, fail, sleep_us] { return work(id, fail, sleep_us); };
      try {
        try {
          const Result v = timed ? weft::offload_for(fn, timeout) : weft::offload(fn);
          EXPECT(v.id == id,
                 "offload of work " + std::to_string(id) + " returned the result of work " + std::to_string(v.id));
          EXPECT(!fail, "work " + std::to_string(id) + " threw, yet its offload returned a value");
          returned_[id] = true;
        } catch (const WorkError&) {
          // Park inside the handler before `throw;`: the rethrow must be this call's.
          if (!weft::this_fiber::cancelled()) {
            if (r.next() % 2)
              weft::yield();
            else
              weft::sleep_for(std::chrono::microseconds(r.between(0, 300)));
          }
          throw;
        }
      } catch (const WorkError& e) {
        keep(std::current_exception());
        EXPECT(e.id == id, "offload of work " + std::to_string(id) + " threw the exception of work " +
                               std::to_string(e.id) + " (" + e.what() + ")");
        EXPECT(fail, "work " + std::to_string(id) + " did not throw, yet its offload did");
        returned_[id] = true;
      } catch (const weft::FiberCancelled&) {
        throw;
      } catch (const std::system_error& e) {
        EXPECT(timed && e.code() == std::errc::timed_out,
               std::string("offload ended with an error it does not document: ") + e.what());
      } catch (const weft::PoolShutDown& e) {
        EXPECT(interrupted_, std::string("PoolShutDown outside a shutdown: ") + e.what());
        throw weft::FiberCancelled();
      }
      if (r.next() % 8 == 0) handler_probe(r);
    }
  }

  // The caught exceptions, kept until the pool is joined: were the pool thread the
  // last to let go of one (OffloadState's end), TSan would report its free as a
  // race with our reads, not seeing libstdc++'s reference count.
  void keep(std::exception_ptr e) {
    std::lock_guard g(kept_mu_);
    kept_.push_back(std::move(e));
  }

  weft::Runtime& rt_;
  const Run& run_;
  bool interrupted_;
  Rng r_;
  std::mutex kept_mu_;
  std::vector<std::exception_ptr> kept_;
  unsigned calls_ = 0;
  std::vector<std::atomic<int>> runs_;
  std::vector<std::atomic<bool>> returned_;
  std::vector<weft::JoinHandle<void>> handles_;
  std::thread thread_;
};

void body(Run& run) {
  const unsigned workers = 1 + static_cast<unsigned>(run.rng(0).next() % 2);
  std::unique_ptr<OffloadLoad> load;
  {
    weft::Runtime rt(run.config(workers));
    watch(&rt);
    phase("offload: running");
    load = std::make_unique<OffloadLoad>(rt, run, false);
    load->start();
    load->finish();
    EXPECT(rt.stats().unjoined_exceptions == 0, "an exception nobody joined");
    note_stats(rt);
    watch(nullptr);
    phase("offload: runtime destructor (joins the pool)");
  }
  load->check_after_pool();
}

}  // namespace
}  // namespace weft::explore::offload

namespace weft::explore {
std::unique_ptr<Load> make_offload_load(weft::Runtime& rt, const Run& run, bool interrupted) {
  return std::make_unique<offload::OffloadLoad>(rt, run, interrupted);
}

const Scenario kOffload{"offload", "offload/offload_for from many fibers: values, exceptions, timeouts, cancels",
                        &offload::body};
}  // namespace weft::explore
