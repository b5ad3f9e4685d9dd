// weft-bench: the bridges between the Evented and Threaded sides.
//   offload  one fiber offloads N trivial tasks to the runtime's pool, one at a
//            time: fiber -> pool thread -> fiber (two cross-thread handoffs).
//            ns per round trip (mean), p50/p99. Compare with two
//            pthread-condvar-2cpu handoffs (that peer's ns_per_op is one).
//   channel  a fiber and a plain thread exchange N messages through two
//            capacity-1 Channels (ping-pong). ns per one-way message, p50/p99.
//            --mode stream: the fiber sends N messages into a capacity-1024
//            Channel, the thread receives them; ns per message (throughput).
#include <string>
#include <thread>
#include <vector>

#include <weft/runtime/threaded/offload.hpp>
#include <weft/runtime/threaded/thread_pool.hpp>
#include <weft/sync/channel.hpp>

#include "bench.hpp"

namespace weft_bench {
namespace {

Result bench_offload(weft::Runtime& rt, const Args&, long n) {
  weft::offload([] { return 0; });  // starts the pool and its threads outside the timing
  std::vector<long long> rtt;
  rtt.reserve(static_cast<std::size_t>(n));
  long sum = 0;
  long long t0 = now_ns();
  for (long i = 0; i < n; ++i) {
    long long s = now_ns();
    sum += weft::offload([i] { return i; });
    rtt.push_back(now_ns() - s);
  }
  long long t1 = now_ns();
  if (sum != n * (n - 1) / 2) fail("offload: results do not add up");
  const weft::ThreadPoolStats ps = rt.pool().stats();
  return {static_cast<double>(n), t1 - t0, " pool_threads=" + std::to_string(ps.threads) + percentiles(rtt)};
}

Result bench_channel(weft::Runtime&, const Args& args, long n) {
  const std::string mode = args.str("--mode", "pingpong");
  if (mode == "stream") {
    weft::Channel<long> ch(1024);
    long got = 0;
    std::thread consumer([&] {
      while (auto v = ch.recv()) got += *v;
    });
    long long t0 = now_ns();
    for (long i = 0; i < n; ++i) ch.send(i);
    ch.close();
    consumer.join();
    long long t1 = now_ns();
    if (got != n * (n - 1) / 2) fail("channel stream: sum mismatch");
    return {static_cast<double>(n), t1 - t0, " mode=stream capacity=1024"};
  }
  if (mode != "pingpong") fail("--mode must be pingpong|stream");
  weft::Channel<long> ping(1), pong(1);
  std::thread echo([&] {
    while (auto v = ping.recv()) pong.send(*v + 1);
  });
  std::vector<long long> rtt;
  rtt.reserve(static_cast<std::size_t>(n));
  long long t0 = now_ns();
  for (long i = 0; i < n; ++i) {
    long long s = now_ns();
    ping.send(i);
    if (pong.recv() != i + 1) fail("channel: wrong reply");
    rtt.push_back((now_ns() - s) / 2);
  }
  long long t1 = now_ns();
  ping.close();
  echo.join();
  return {2.0 * static_cast<double>(n), t1 - t0, " mode=pingpong" + percentiles(rtt)};
}

Registrar r_offload{{"offload", 1, 100000, bench_offload, "",
                     "offload fiber -> runtime pool -> fiber round trips; ns per round trip, p50/p99"}};
Registrar r_channel{{"channel", 1, 100000, bench_channel, "--mode",
                     "channel fiber<->thread messages over Channels (--mode pingpong|stream); ns per message"}};

}  // namespace
}  // namespace weft_bench
