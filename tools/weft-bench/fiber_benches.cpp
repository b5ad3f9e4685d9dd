// weft-bench: the fiber workloads of the peers' harness (bench_fiber.sh; the
// peers live beside the repository, see tools/bench --peers) and the
// cross-worker wake latency.
//   switch  two fibers each yield() N times (2N switches); ns per switch
//   spawn   create+run+join N trivial fibers, BATCH alive at a time; ns per fiber
//   skynet  1M leaves, fan-out 10, each leaf returns its number, the root checks
//           the sum; children joined (launch=dispatch like the Boost.Fiber peer,
//           or --launch post); ns per leaf
//   place   an acceptor-like fiber spawns N jobs of uneven CPU cost (a fixed
//           pseudo-random mix: most tiny, a few heavy, some yielding midway)
//           and waits for all; ms total and the jobs each worker ran. Run with
//           --placement local|round_robin|least_loaded to compare policies.
//   wake    a fiber on worker 0 and one on worker 1 wake each other in turn, each
//           parked (its worker asleep) until woken; ns per one-way wake, p50/p99
#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include <weft/runtime/waiter.hpp>

#include "bench.hpp"

namespace weft_bench {
namespace {

Result bench_switch(weft::Runtime&, const Args&, long n) {
  auto body = [n] {
    for (long i = 0; i < n; ++i) weft::yield();
  };
  long long t0 = now_ns();
  auto a = weft::spawn(body);
  auto b = weft::spawn(body);
  a.join();
  b.join();
  return {2.0 * static_cast<double>(n), now_ns() - t0, ""};
}

Result bench_spawn(weft::Runtime&, const Args& args, long n) {
  const long batch = args.num("--batch", 1000);
  long ran = 0;
  std::vector<weft::JoinHandle<void>> live;
  live.reserve(static_cast<std::size_t>(batch));
  long long t0 = now_ns();
  for (long done = 0; done < n;) {
    long k = std::min(batch, n - done);
    for (long i = 0; i < k; ++i) live.push_back(weft::spawn([&ran] { ++ran; }));
    for (auto& f : live) f.join();
    live.clear();
    done += k;
  }
  long long t1 = now_ns();
  if (ran != n) fail("spawn: ran " + std::to_string(ran) + " fibers, expected " + std::to_string(n));
  return {static_cast<double>(n), t1 - t0, " batch=" + std::to_string(batch)};
}

long skynet(long num, long size, long div, weft::Launch launch) {
  if (size == 1) return num;
  weft::JoinHandle<long> kids[10];
  for (long i = 0; i < div; ++i) {
    long sub = num + i * (size / div);
    kids[i] =
        weft::spawn([sub, size, div, launch] { return skynet(sub, size / div, div, launch); }, {.launch = launch});
  }
  long sum = 0;
  for (long i = 0; i < div; ++i) sum += kids[i].join();
  return sum;
}

Result bench_skynet(weft::Runtime&, const Args& args, long n) {
  const std::string launch = args.str("--launch", "dispatch");
  if (launch != "dispatch" && launch != "post") fail("--launch must be dispatch|post");
  const weft::Launch l = launch == "post" ? weft::Launch::post : weft::Launch::dispatch;
  long long t0 = now_ns();
  long result = skynet(0, n, 10, l);
  long long t1 = now_ns();
  long expect = n * (n - 1) / 2;
  if (result != expect) fail("skynet: got " + std::to_string(result) + ", expected " + std::to_string(expect));
  return {static_cast<double>(n), t1 - t0, " result=" + std::to_string(result) + " launch=" + launch};
}

/// A job of `units` units of CPU work, yielding every 16 units (a well-behaved
/// fiber); returns the worker it ran on.
unsigned cpu_job(long units) {
  volatile unsigned long x = 0;
  for (long u = 0; u < units; ++u) {
    for (int i = 0; i < 2000; ++i) x = x + static_cast<unsigned long>(i);
    if (u % 16 == 15) weft::yield();
  }
  return static_cast<unsigned>(weft::current_domain().worker);
}

Result bench_place(weft::Runtime& rt, const Args&, long n) {
  std::vector<long> cost(static_cast<std::size_t>(n));
  unsigned long seed = 88172645463325252ULL;  // xorshift: the same mix every run
  for (auto& c : cost) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    const unsigned long r = seed % 100;
    c = r < 80 ? 1 : r < 97 ? 8 : 200;
  }
  std::vector<weft::JoinHandle<unsigned>> jobs;
  jobs.reserve(cost.size());
  long long t0 = now_ns();
  for (long c : cost) jobs.push_back(weft::spawn([c] { return cpu_job(c); }));
  std::vector<long> per(rt.workers());
  for (auto& j : jobs) ++per[j.join()];
  long long t1 = now_ns();
  std::string extra = " placement=";
  switch (rt.config().placement) {
    case weft::Placement::local:
      extra += "local";
      break;
    case weft::Placement::round_robin:
      extra += "round_robin";
      break;
    case weft::Placement::least_loaded:
      extra += "least_loaded";
      break;
  }
  extra += " jobs_per_worker=";
  for (std::size_t i = 0; i < per.size(); ++i) {
    if (i) extra += ',';
    extra += std::to_string(per[i]);
  }
  return {static_cast<double>(n), t1 - t0, extra};
}

Result bench_wake(weft::Runtime& rt, const Args&, long n) {
  using weft::detail::Waiter;
  std::atomic<Waiter*> to_a{nullptr}, to_b{nullptr};
  // Each side publishes its Waiter, then waits; the other side takes it (spinning
  // with yield until it is there) and notifies it. One sample = one round trip.
  auto take = [](std::atomic<Waiter*>& slot) {
    Waiter* w;
    while (!(w = slot.exchange(nullptr, std::memory_order_acq_rel))) weft::yield();
    return w;
  };
  std::vector<long long> rtt;
  rtt.reserve(static_cast<std::size_t>(n));
  long long t0 = now_ns();
  auto b = rt.spawn_on(1, [&] {
    for (long i = 0; i < n; ++i) {
      Waiter w;
      to_b.store(&w, std::memory_order_release);
      w.wait();
      take(to_a)->notify();
    }
  });
  for (long i = 0; i < n; ++i) {
    Waiter* peer = take(to_b);
    Waiter w;
    to_a.store(&w, std::memory_order_release);
    long long s = now_ns();
    peer->notify();
    w.wait();
    rtt.push_back((now_ns() - s) / 2);  // one-way: half a round trip
  }
  b.join();
  long long t1 = now_ns();
  return {2.0 * static_cast<double>(n), t1 - t0,
          std::string(" workers=2 wake=") + (rt.config().wake == weft::WakeMode::msg_ring ? "msg_ring" : "eventfd") +
              percentiles(rtt)};
}

Registrar r_switch{{"switch", 1, 10000000, bench_switch, "", "switch  two fibers yield N times each; ns per switch"}};
Registrar r_spawn{{"spawn", 1, 1000000, bench_spawn, "--batch",
                   "spawn   create+run+join N fibers, --batch B alive at once [1000]; ns per fiber"}};
Registrar r_skynet{{"skynet", 1, 1000000, bench_skynet, "--launch",
                    "skynet  N leaves, fan-out 10 (--launch dispatch|post [dispatch]); ns per leaf"}};
Registrar r_place{{"place", 2, 20000, bench_place, "",
                   "place   a fiber spawns N uneven CPU jobs (see --placement); ms total, jobs per worker"}};
Registrar r_wake{{"wake", 2, 100000, bench_wake, "",
                  "wake    fibers on two workers wake each other in turn; ns per one-way wake, p50/p99"}};

}  // namespace
}  // namespace weft_bench
