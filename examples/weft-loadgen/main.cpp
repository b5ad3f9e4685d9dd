// weft-loadgen: a closed-loop TCP echo load generator on weft, the client half of
// the demo (tools/demo). C connections each send a message of S bytes, wait for
// the whole echo (contents checked byte for byte), record the latency and send
// the next one. After W seconds of warmup it measures for T seconds and prints
//   peer=weft-loadgen conns=C size=S rps=... p50_us=... p99_us=... errors=E
//   [server_us_per_req=... server_cpu_pct=...]
// The server fields appear with --server-pid PID: the server's CPU time (user +
// sys of all its threads, /proc/PID/stat) over the measured window / requests.
//
// Invariants: one fiber per connection, spread over the workers by the runtime's
// placement; each fiber owns its stream and its latency samples; the main fiber
// reads them only after joining every connection fiber.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

namespace {

const char* const kUsage =
    "usage: weft-loadgen --port P [options]\n"
    "  --host H          server address [127.0.0.1]\n"
    "  --conns C         concurrent connections [64]\n"
    "  --size S          message bytes [64]\n"
    "  --warmup W        seconds before measuring [1]\n"
    "  --duration T      seconds measured [5]\n"
    "  --workers N       Evented workers of the generator [1]\n"
    "  --server-pid PID  also report the server's CPU time per request\n";

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "weft-loadgen: %s\n%s", msg.c_str(), kUsage);
  std::exit(2);
}

long parse_num(const std::string& flag, const std::string& text, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0' || v < lo || v > hi)
    usage_error("bad value for " + flag + ": '" + text + "' (expected " + std::to_string(lo) + ".." +
                std::to_string(hi) + ")");
  return v;
}

/// utime + stime of every thread of `pid`, in clock ticks; -1 if unreadable.
long long cpu_ticks(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto rp = all.rfind(')');  // the command name may contain spaces
  if (rp == std::string::npos) return -1;
  std::istringstream rest(all.substr(rp + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return utime + stime;
}

using Clock = std::chrono::steady_clock;

struct Conn {
  std::vector<std::uint32_t> lat_ns;  // measured window only (capped at ~4 s per sample)
  long errors = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> kv;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a.rfind("--", 0) != 0 || i + 1 >= argc) usage_error("unexpected argument " + a);
    kv[a] = argv[++i];
  }
  for (const auto& [k, v] : kv)
    if (k != "--host" && k != "--port" && k != "--conns" && k != "--size" && k != "--warmup" && k != "--duration" &&
        k != "--workers" && k != "--server-pid")
      usage_error("unknown option " + k);
  if (!kv.count("--port")) usage_error("--port is required");
  auto num = [&](const char* k, long def, long lo, long hi) { return kv.count(k) ? parse_num(k, kv[k], lo, hi) : def; };
  const std::string host = kv.count("--host") ? kv["--host"] : "127.0.0.1";
  const long port = num("--port", 0, 1, 65535);
  const long conns = num("--conns", 64, 1, 100000);
  const long size = num("--size", 64, 1, 1 << 20);
  const long warmup = num("--warmup", 1, 0, 3600);
  const long duration = num("--duration", 5, 1, 3600);
  const long workers = num("--workers", 1, 1, 64);
  const long server_pid = num("--server-pid", 0, 1, 1L << 30);

  weft::Config cfg;
  cfg.name = "loadgen";
  cfg.workers = static_cast<unsigned>(workers);
  weft::Runtime rt(cfg);
  std::vector<Conn> results(static_cast<std::size_t>(conns));
  const auto t_start = Clock::now();
  const auto t_measure = t_start + std::chrono::seconds(warmup);
  const auto t_end = t_measure + std::chrono::seconds(duration);
  std::atomic<long> connected{0};
  long long cpu0 = -1, cpu1 = -1;
  Clock::time_point m0, m1;

  std::string failure;
  try {
    rt.block_on([&] {
      std::vector<weft::JoinHandle<void>> hs;
      for (long c = 0; c < conns; ++c)
        hs.push_back(weft::spawn(
            [&, c] {
              Conn& me = results[static_cast<std::size_t>(c)];
              std::vector<char> msg(static_cast<std::size_t>(size)), back(static_cast<std::size_t>(size));
              try {
                auto s = weft::net::TcpStream::connect(host, std::to_string(port), std::chrono::seconds(5));
                s.set_nodelay(true);
                connected.fetch_add(1, std::memory_order_relaxed);
                for (std::uint64_t seq = 0;; ++seq) {
                  const auto t0 = Clock::now();
                  if (t0 >= t_end) break;
                  for (long i = 0; i < size; ++i) msg[static_cast<std::size_t>(i)] = static_cast<char>(seq + c + i);
                  s.write_all(msg.data(), msg.size(), std::chrono::seconds(5));
                  s.read_exact(back.data(), back.size(), std::chrono::seconds(5));
                  const auto t1 = Clock::now();
                  if (back != msg) {
                    ++me.errors;
                    break;
                  }
                  if (t0 >= t_measure)
                    me.lat_ns.push_back(static_cast<std::uint32_t>(std::min<long long>(
                        std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count(), 4'000'000'000LL)));
                }
              } catch (const std::exception& e) {
                ++me.errors;
                if (me.errors == 1 && c == 0) std::fprintf(stderr, "weft-loadgen: connection 0: %s\n", e.what());
              }
            },
            {.name = "conn"}));
      // Sample the server's CPU at the window's edges (this fiber sleeps between).
      weft::sleep_until(t_measure);
      m0 = Clock::now();
      if (server_pid) cpu0 = cpu_ticks(server_pid);
      weft::sleep_until(t_end);
      m1 = Clock::now();
      if (server_pid) cpu1 = cpu_ticks(server_pid);
      for (auto& h : hs) h.join();
    });
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    std::fprintf(stderr, "weft-loadgen: %s\n", failure.c_str());
    return 1;
  }
  std::vector<std::uint32_t> all;
  long errors = 0;
  for (auto& r : results) {
    all.insert(all.end(), r.lat_ns.begin(), r.lat_ns.end());
    errors += r.errors;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double q) {
    return all.empty()
               ? 0.0
               : all[std::min(all.size() - 1, static_cast<std::size_t>(q * static_cast<double>(all.size())))] / 1e3;
  };
  const double secs = std::chrono::duration<double>(m1 - m0).count();
  const double rps = secs > 0 ? static_cast<double>(all.size()) / secs : 0;
  std::printf(
      "peer=weft-loadgen conns=%ld size=%ld connected=%ld requests=%zu rps=%.0f p50_us=%.1f p99_us=%.1f errors=%ld",
      conns, size, connected.load(), all.size(), rps, pct(0.50), pct(0.99), errors);
  if (server_pid && cpu0 >= 0 && cpu1 >= 0 && !all.empty()) {
    const double cpu_us = static_cast<double>(cpu1 - cpu0) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
    std::printf(" server_us_per_req=%.2f server_cpu_pct=%.0f", cpu_us / static_cast<double>(all.size()),
                100.0 * cpu_us / 1e6 / secs);
  }
  std::printf("\n");
  return errors ? 1 : 0;
}
