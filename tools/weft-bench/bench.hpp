// weft-bench/bench.hpp — what a benchmark of weft-bench is: a name, a default
// worker count, and a body run inside the runtime (block_on) that returns how
// many operations it did in how many nanoseconds. main.cpp parses the options,
// builds the Runtime and prints the peers' key=value line.
//
// A benchmark file registers itself with a static Registrar:
//   static weft_bench::Registrar reg{"switch", 1, run_switch};
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <weft/weft.hpp>

namespace weft_bench {

/// The --key value options given on the command line.
struct Args {
  std::map<std::string, std::string> kv;
  /// A positive integer option, or `def` when absent (exits 2 on a bad value).
  [[nodiscard]] long num(const char* k, long def) const;
  [[nodiscard]] std::string str(const char* k, const char* def) const;
};

struct Result {
  double ops = 0;     ///< operations measured (switches, fibers, lock/unlock pairs...)
  long long ns = 0;   ///< wall time of those operations
  std::string extra;  ///< more " key=value" fields for the output line (leading space)
};

struct Bench {
  const char* name;
  unsigned workers;  ///< Runtime workers the benchmark needs
  long default_n;
  std::function<Result(weft::Runtime&, const Args&, long n)> run;  ///< runs inside block_on
  const char* options = "";  ///< its own options, space separated ("--batch --launch")
  const char* help = "";     ///< one usage line: what it measures, per what
};

std::map<std::string, Bench>& registry();

struct Registrar {
  explicit Registrar(Bench b) { registry().emplace(b.name, std::move(b)); }
};

inline long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Exits 1 with a message: a benchmark that computed a wrong answer prints no figure.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "weft-bench: %s\n", what.c_str());
  std::exit(1);
}

/// " p50_ns=... p99_ns=..." of `samples` (sorted in place).
std::string percentiles(std::vector<long long>& samples);

}  // namespace weft_bench
