// weft-bench: sync primitive benchmarks.
//   mutex        the peers' workload (bench_fiber.sh's mutex): F fibers (--fibers,
//                1000) share one weft::Mutex, N lock/unlock in total (N/F each); in
//                the critical section a fiber increments a counter and yields while
//                holding the lock. One worker by default (--workers W spreads the
//                fibers round-robin). ns per lock/unlock.
//   mutex_check  the domain check's cost: one fiber locks/unlocks an uncontended
//                Mutex N times (ns per pair, check included) and calls the check
//                alone N times (check_ns), so "without" = ns_per_op - 2 * check_ns
//                (lock and unlock each run one check).
#include <string>
#include <vector>

#include <weft/runtime/test_access.hpp>
#include <weft/sync/mutex.hpp>

#include "bench.hpp"

namespace weft_bench {
namespace {

Result bench_mutex(weft::Runtime& rt, const Args& args, long n) {
  const long fibers = args.num("--fibers", 1000);
  const long per = n / fibers;
  const long total = per * fibers;
  if (per <= 0) fail("mutex: --n must be at least --fibers");
  weft::Mutex m{rt, "bench"};
  long counter = 0;
  const unsigned workers = rt.workers();
  std::vector<weft::JoinHandle<void>> hs;
  hs.reserve(static_cast<std::size_t>(fibers));
  auto body = [&m, &counter, per] {
    for (long i = 0; i < per; ++i) {
      weft::MutexGuard g(m);
      ++counter;
      weft::yield();
    }
  };
  long long t0 = now_ns();
  for (long f = 0; f < fibers; ++f)
    hs.push_back(workers > 1 ? rt.spawn_on(static_cast<unsigned>(f) % workers, body) : weft::spawn(body));
  for (auto& h : hs) h.join();
  long long t1 = now_ns();
  if (counter != total) fail("mutex: counter " + std::to_string(counter) + " != " + std::to_string(total));
  return {static_cast<double>(total), t1 - t0,
          " fibers=" + std::to_string(fibers) + " workers=" + std::to_string(workers)};
}

Result bench_mutex_check(weft::Runtime& rt, const Args&, long n) {
  weft::Mutex m{rt, "bench"};
  long long t0 = now_ns();
  for (long i = 0; i < n; ++i) {
    m.lock();
    m.unlock();
  }
  long long t1 = now_ns();
  const weft::detail::DomainBinding& b = weft::detail::TestAccess::binding(m);
  const long checks = 10 * n;  // the check alone is sub-ns: more rounds for a stable figure
  long long c0 = now_ns();
  for (long i = 0; i < checks; ++i) {
    b.check_acquire("lock()");
    asm volatile("" ::: "memory");  // keep one check per iteration
  }
  long long c1 = now_ns();
  char extra[64];
  std::snprintf(extra, sizeof extra, " check_ns=%.2f", static_cast<double>(c1 - c0) / static_cast<double>(checks));
  return {static_cast<double>(n), t1 - t0, extra};
}

Registrar r_mutex{{"mutex", 1, 1000000, bench_mutex, "--fibers",
                   "mutex   --fibers F [1000] share one Mutex, N lock/unlock total, yield while holding; ns per op"}};
Registrar r_mutex_check{{"mutex_check", 1, 1000000, bench_mutex_check, "",
                         "mutex_check  uncontended lock+unlock (ns per pair) and the domain check alone (check_ns)"}};

}  // namespace
}  // namespace weft_bench
