// weft-bench: weft's micro-benchmarks, in the peers' key=value form, so that
// the peers' bench_fiber.sh (tools/bench --peers) can run weft interleaved with
// the peers:
//   peer=weft bench=switch threads=1 n=10000000 ... ms=... ns_per_op=... peak_rss_kb=...
// Each benchmark lives in its own file and registers itself (bench.hpp).
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "bench.hpp"

namespace weft_bench {

std::map<std::string, Bench>& registry() {
  static std::map<std::string, Bench> r;
  return r;
}

namespace {

const char* const kCommon =
    "common options:\n"
    "  --n N           operations (each benchmark has its own default)\n"
    "  --stack-kib K   fiber stack size in KiB [64]\n"
    "  --tick-budget T fiber activations between two reaps of the ring [64]\n"
    "  --wake W        cross-worker wake: eventfd | msg_ring [msg_ring]\n"
    "  --workers W     Evented workers (default: what the benchmark needs)\n"
    "  --placement P   new fibers: local | round_robin | least_loaded [round_robin]\n"
    "output: one line 'peer=weft bench=... key=value ...'\n";

void usage(FILE* out) {
  std::fputs("usage: weft-bench --bench NAME [options]     (weft-bench --list: the names)\nbenchmarks:\n", out);
  for (const auto& [name, b] : registry())
    std::fprintf(out, "  %s%s%s\n", b.help, *b.options ? "\n    options: " : "", b.options);
  std::fputs(kCommon, out);
}

[[noreturn]] void bad_usage(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

long peak_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

bool listed(const char* options, const std::string& key) {
  std::istringstream in(options);
  std::string o;
  while (in >> o)
    if (o == key) return true;
  return false;
}

}  // namespace

long Args::num(const char* k, long def) const {
  auto it = kv.find(k);
  if (it == kv.end()) return def;
  char* end = nullptr;
  long v = std::strtol(it->second.c_str(), &end, 10);
  if (*end || v <= 0) bad_usage(std::string("bad value for ") + k + ": '" + it->second + "'");
  return v;
}

std::string Args::str(const char* k, const char* def) const {
  auto it = kv.find(k);
  return it == kv.end() ? def : it->second;
}

std::string percentiles(std::vector<long long>& s) {
  if (s.empty()) return "";
  std::sort(s.begin(), s.end());
  auto at = [&](double q) {
    return s[std::min(s.size() - 1, static_cast<std::size_t>(q * static_cast<double>(s.size())))];
  };
  return " p50_ns=" + std::to_string(at(0.50)) + " p99_ns=" + std::to_string(at(0.99));
}

}  // namespace weft_bench

int main(int argc, char** argv) {
  using namespace weft_bench;
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    }
    if (a == "--list") {
      for (const auto& [name, b] : registry()) std::puts(name.c_str());
      return 0;
    }
    if (a.rfind("--", 0) != 0 || i + 1 >= argc) bad_usage("unexpected argument " + a);
    args.kv[a] = argv[++i];
  }
  const std::string name = args.str("--bench", "");
  auto it = registry().find(name);
  if (it == registry().end())
    bad_usage(name.empty() ? "--bench NAME is required" : "no benchmark named '" + name + "'");
  const Bench& bench = it->second;
  for (const auto& [k, v] : args.kv)
    if (!listed("--bench --n --stack-kib --tick-budget --wake --workers --placement", k) && !listed(bench.options, k))
      bad_usage("unknown option " + k + " for --bench " + name);

  weft::Config cfg;
  cfg.name = "bench";
  cfg.workers = static_cast<unsigned>(args.num("--workers", bench.workers));
  cfg.tick_budget = static_cast<unsigned>(args.num("--tick-budget", static_cast<long>(cfg.tick_budget)));
  cfg.stack_size = static_cast<std::size_t>(args.num("--stack-kib", 64)) * 1024;
  const std::string wake = args.str("--wake", "msg_ring");
  if (wake != "eventfd" && wake != "msg_ring") bad_usage("--wake must be eventfd|msg_ring");
  cfg.wake = wake == "eventfd" ? weft::WakeMode::eventfd : weft::WakeMode::msg_ring;
  const std::string placement = args.str("--placement", "round_robin");
  if (placement == "local")
    cfg.placement = weft::Placement::local;
  else if (placement == "round_robin")
    cfg.placement = weft::Placement::round_robin;
  else if (placement == "least_loaded")
    cfg.placement = weft::Placement::least_loaded;
  else
    bad_usage("--placement must be local|round_robin|least_loaded");
  if (cfg.workers < bench.workers)
    bad_usage("--bench " + name + " needs at least " + std::to_string(bench.workers) + " workers");
  const long n = args.num("--n", bench.default_n);

  weft::Runtime rt(cfg);
  Result r = rt.block_on([&] { return bench.run(rt, args, n); });
  const double ns = static_cast<double>(r.ns);
  std::printf("peer=weft bench=%s threads=%u n=%ld%s stack_kib=%zu ms=%.2f ns_per_op=%.2f peak_rss_kb=%ld\n",
              name.c_str(), cfg.workers, n, r.extra.c_str(), cfg.stack_size / 1024, ns / 1e6, ns / r.ops,
              peak_rss_kb());
  return 0;
}
