// An exception thrown by offloaded work travels pool thread -> fiber -> (joiner, or
// the log of an unjoined fiber) with every hand-over visible to TSan: the party that
// publishes an exception_ptr gives up its reference before the other side can see
// it, so the object is never freed by a thread that did not read it last. (The
// ordering carried only by exception_ptr's reference count inside libsupc++ is
// invisible to TSan, which reported a race between the pool thread freeing the
// exception and the worker logging it.) Built for the tsan build: run there it
// must stay silent; elsewhere it checks that every failure arrives intact.
#include <algorithm>
#include <atomic>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/threaded/offload.hpp>
#include <weft/runtime/threaded/thread_pool.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

/// An exception whose what() and destructor run instrumented code (this file), so
/// TSan sees every read of it and its release.
class Boom : public std::exception {
 public:
  explicit Boom(long n) : msg_("offloaded work " + std::to_string(n) + " failed") {}
  const char* what() const noexcept override { return msg_.c_str(); }

 private:
  std::string msg_;
};

constexpr int kBatch = 32;
}  // namespace

TEST_CASE("offloaded work that throws: fibers that end unjoined with its exception log it and TSan stays silent") {
  const long total = weft::test::scaled(4000);
  const std::uint64_t before = weft::detail::unjoined_exceptions_total();
  std::atomic<long> ended{0};
  {
    weft::Runtime rt(weft::Config{.name = "handover", .workers = 2});
    weft::ThreadPool pool({.name = "throwers", .threads = 2, .queue_capacity = 8});
    weft::test::Watchdog wd("unjoined offload exceptions", rt, {&ended});
    for (long i = 0; i < total; i += kBatch) {
      const long n = std::min<long>(kBatch, total - i);
      for (long k = 0; k < n; ++k) {
        rt.spawn_on(static_cast<unsigned>(k % 2), [&pool, &ended, x = i + k] {
            struct Count {
              std::atomic<long>& n;
              ~Count() { n.fetch_add(1); }
            } count{ended};
            weft::offload(pool, [x]() -> int { throw Boom(x); });  // ends the fiber with Boom, unjoined
          }).detach();
      }
      while (ended.load() < i + n) std::this_thread::sleep_for(100us);
    }
  }  // the runtime is gone: every fiber was freed (and its exception logged)
  REQUIRE(weft::detail::unjoined_exceptions_total() - before == static_cast<std::uint64_t>(total));
}

TEST_CASE("offloaded work that throws: joiners get its exception intact and TSan stays silent") {
  const long total = weft::test::scaled(4000);
  std::atomic<long> intact{0};
  weft::Runtime rt(weft::Config{.name = "handover", .workers = 2});
  weft::ThreadPool pool({.name = "throwers", .threads = 2, .queue_capacity = 8});
  weft::test::Watchdog wd("joined offload exceptions", rt, {&intact});
  for (long i = 0; i < total; i += kBatch) {
    std::vector<weft::JoinHandle<void>> hs;
    const long n = std::min<long>(kBatch, total - i);
    for (long k = 0; k < n; ++k)
      hs.push_back(rt.spawn_on(static_cast<unsigned>(k % 2),
                               [&pool, x = i + k] { weft::offload(pool, [x]() -> int { throw Boom(x); }); }));
    // Joined half from this thread, half from a fiber of the runtime.
    for (long k = 0; k < n; ++k) {
      auto join = [&, k] {
        try {
          hs[static_cast<std::size_t>(k)].join();
        } catch (const Boom& b) {
          if (std::string(b.what()) == "offloaded work " + std::to_string(i + k) + " failed") intact.fetch_add(1);
        }
      };
      if (k % 2)
        rt.block_on(join);
      else
        join();
    }
  }
  REQUIRE(intact.load() == total);
}

TEST_CASE("offloads refused at pool shutdown end their fibers with PoolShutDown and TSan stays silent") {
  const long rounds = weft::test::scaled(200);
  std::atomic<long> refused{0};
  weft::Runtime rt(weft::Config{.name = "handover", .workers = 2});
  weft::test::Watchdog wd("refused offloads", rt, {&refused});
  for (long r = 0; r < rounds; ++r) {
    weft::ThreadPool pool({.name = "refuser", .threads = 1, .queue_capacity = 8});
    std::atomic<bool> started{false}, release{false};
    pool.submit([&started, &release] {
      started.store(true);
      while (!release.load()) std::this_thread::sleep_for(50us);
    });
    while (!started.load()) std::this_thread::sleep_for(50us);  // the only thread is busy: offloads queue
    std::vector<weft::JoinHandle<void>> hs;
    for (int k = 0; k < 4; ++k)
      hs.push_back(rt.spawn_on(static_cast<unsigned>(k % 2), [&pool] { weft::offload(pool, [] { return 1; }); }));
    while (pool.stats().queue_depth != 4) std::this_thread::sleep_for(50us);
    std::thread closer([&pool] { pool.shutdown(weft::ThreadPool::Drain::refuse_queued); });
    while (pool.stats().refused != 4) std::this_thread::sleep_for(50us);  // the queue is the closer's
    release.store(true);
    closer.join();
    for (auto& h : hs) {
      try {
        h.join();
      } catch (const weft::PoolShutDown& e) {
        if (std::string(e.what()).find("refuser") != std::string::npos) refused.fetch_add(1);
      }
    }
  }
  REQUIRE(refused.load() == rounds * 4);
}
