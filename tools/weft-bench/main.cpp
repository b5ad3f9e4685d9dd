// weft-bench: weft's fiber micro-benchmarks, the workloads of the peer harness
// (../shared/peers/README.md) on one worker, printed in the peers' key=value form:
//   peer=weft bench=switch n=10000000 ns_per_op=... ms=... peak_rss_kb=...
//
//   switch  two fibers each yield() N times (2N switches); ns per switch
//   spawn   create+run+join N trivial fibers, BATCH alive at a time; ns per fiber
//   skynet  1M leaves, fan-out 10, each leaf returns its number, the root checks
//           the sum; children joined (launch=dispatch like the Boost.Fiber peer,
//           or --launch post); ns per leaf, ms total
//   wake    cross-worker wake: a fiber on worker 0 and one on worker 1 wake each
//           other in turn, each parked (its worker asleep) until woken; ns per
//           one-way wake (--wake eventfd|msg_ring picks the mechanism)
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <weft/weft.hpp>
#include <weft/runtime/waiter.hpp>

namespace {

const char* kUsage =
    "usage: weft-bench --bench NAME [options]     (weft-bench --list: the benchmark names)\n"
    "  --n N           switch: round trips [10000000]; spawn: fibers [1000000]; skynet: leaves [1000000]\n"
    "  --batch B       spawn: fibers alive at once [1000]\n"
    "  --launch L      skynet: dispatch (child runs first, as the Boost.Fiber peer) | post [dispatch]\n"
    "  --stack-kib K   fiber stack size in KiB [64]\n"
    "  --wake W        wake: eventfd | msg_ring [msg_ring]\n"
    "  --tick-budget T fiber activations between two reaps of the ring [64]\n"
    "output: one line 'peer=weft bench=... key=value ...'\n";

long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

long peak_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

struct Args {
  std::map<std::string, std::string> kv;
  long num(const char* k, long def) const {
    auto it = kv.find(k);
    if (it == kv.end()) return def;
    char* end = nullptr;
    long v = std::strtol(it->second.c_str(), &end, 10);
    if (*end || v <= 0) {
      std::fprintf(stderr, "error: bad value for %s\n%s", k, kUsage);
      std::exit(2);
    }
    return v;
  }
  std::string str(const char* k, const char* def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
};

struct Result {
  double ops = 0;
  long long ns = 0;
  std::string extra;
};

Result bench_switch(long n) {
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

Result bench_spawn(long n, long batch) {
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
  if (ran != n) {
    std::fprintf(stderr, "spawn: ran %ld != %ld\n", ran, n);
    std::exit(1);
  }
  return {static_cast<double>(n), t1 - t0, " batch=" + std::to_string(batch)};
}

weft::Launch g_launch = weft::Launch::dispatch;
weft::Runtime* g_rt = nullptr;

long skynet(long num, long size, long div) {
  if (size == 1) return num;
  weft::JoinHandle<long> kids[10];
  for (long i = 0; i < div; ++i) {
    long sub = num + i * (size / div);
    kids[i] = weft::spawn([sub, size, div] { return skynet(sub, size / div, div); }, {.launch = g_launch});
  }
  long sum = 0;
  for (long i = 0; i < div; ++i) sum += kids[i].join();
  return sum;
}

Result bench_skynet(long n) {
  long long t0 = now_ns();
  long result = skynet(0, n, 10);
  long long t1 = now_ns();
  long expect = n * (n - 1) / 2;
  if (result != expect) {
    std::fprintf(stderr, "skynet: got %ld want %ld\n", result, expect);
    std::exit(1);
  }
  return {static_cast<double>(n), t1 - t0,
          " result=" + std::to_string(result) +
              (g_launch == weft::Launch::dispatch ? " launch=dispatch" : " launch=post")};
}

Result bench_wake(long n) {
  using weft::detail::Waiter;
  std::atomic<Waiter*> to_a{nullptr}, to_b{nullptr};
  auto take = [](std::atomic<Waiter*>& slot) {
    Waiter* w;
    while (!(w = slot.exchange(nullptr, std::memory_order_acq_rel))) weft::yield();
    return w;
  };
  weft::Runtime& rt = *g_rt;
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
    peer->notify();
    w.wait();
  }
  b.join();
  return {2.0 * static_cast<double>(n), now_ns() - t0,
          std::string(" workers=2 wake=") + (rt.config().wake == weft::WakeMode::msg_ring ? "msg_ring" : "eventfd")};
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--list") {
      std::puts("switch\nspawn\nskynet\nwake");
      return 0;
    }
    if (a.rfind("--", 0) != 0 || i + 1 >= argc) {
      std::fprintf(stderr, "error: unexpected argument %s\n%s", a.c_str(), kUsage);
      return 2;
    }
    args.kv[a] = argv[++i];
  }
  for (const auto& [k, v] : args.kv) {
    if (k != "--bench" && k != "--n" && k != "--batch" && k != "--launch" && k != "--stack-kib" && k != "--wake" &&
        k != "--tick-budget") {
      std::fprintf(stderr, "error: unknown argument %s\n%s", k.c_str(), kUsage);
      return 2;
    }
  }
  const std::string bench = args.str("--bench", "");
  const long n = args.num("--n", bench == "switch" ? 10000000 : bench == "wake" ? 100000 : 1000000);
  const long batch = args.num("--batch", 1000);
  const std::string launch = args.str("--launch", "dispatch");
  if (launch != "dispatch" && launch != "post") {
    std::fprintf(stderr, "error: --launch must be dispatch|post\n%s", kUsage);
    return 2;
  }
  g_launch = launch == "post" ? weft::Launch::post : weft::Launch::dispatch;

  weft::Config cfg;
  cfg.name = "bench";
  cfg.workers = 1;
  cfg.tick_budget = static_cast<unsigned>(args.num("--tick-budget", static_cast<long>(cfg.tick_budget)));
  cfg.stack_size = static_cast<std::size_t>(args.num("--stack-kib", 64)) * 1024;
  std::function<Result()> run;
  if (bench == "switch") run = [n] { return bench_switch(n); };
  else if (bench == "spawn") run = [n, batch] { return bench_spawn(n, batch); };
  else if (bench == "skynet") run = [n] { return bench_skynet(n); };
  else if (bench == "wake") run = [n] { return bench_wake(n); };
  else {
    std::fprintf(stderr, "error: --bench must be one of: switch spawn skynet wake\n%s", kUsage);
    return 2;
  }
  const std::string wake = args.str("--wake", "msg_ring");
  if (wake != "eventfd" && wake != "msg_ring") {
    std::fprintf(stderr, "error: --wake must be eventfd|msg_ring\n%s", kUsage);
    return 2;
  }
  cfg.wake = wake == "eventfd" ? weft::WakeMode::eventfd : weft::WakeMode::msg_ring;
  if (bench == "wake") cfg.workers = 2;
  weft::Runtime rt(cfg);
  g_rt = &rt;
  Result r = rt.block_on(run);
  const double ns = static_cast<double>(r.ns);
  std::printf("peer=weft bench=%s threads=%u n=%ld%s stack_kib=%zu ms=%.2f ns_per_op=%.2f peak_rss_kb=%ld\n",
              bench.c_str(), cfg.workers, n, r.extra.c_str(), cfg.stack_size / 1024, ns / 1e6, ns / r.ops, peak_rss_kb());
  return 0;
}
