// weft-echo: a TCP echo server on weft. A fiber per connection loops read_buffer ->
// write_all (the bytes stay in the runtime's receive buffer; `--read copy` loops
// read_some into a buffer of the connection's instead); one accept loop per worker
// (SO_REUSEPORT listeners when --workers > 1).
// It serves 127.0.0.1:P and exits by itself after --timeout seconds, or on
// SIGTERM/SIGINT (the flag is polled by the main thread every 20 ms; the Runtime's
// destructor then cancels every fiber, which closes every socket).
//
// Invariants: each listener and each stream belongs to the worker whose fiber made
// it (net/socket.hpp); the main thread only waits and then destroys the Runtime.
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

namespace {

const char* const kUsage =
    "usage: weft-echo [--port P] [--timeout S] [--workers N] [--buf B] [--read buffer|copy] [--engine E] [--stats]\n"
    "  --port P      listen on 127.0.0.1:P [19003]\n"
    "  --timeout S   exit after S seconds (also on SIGTERM/SIGINT) [60]\n"
    "  --workers N   Evented workers, one listener each (SO_REUSEPORT) [1]\n"
    "  --buf B       bytes per receive buffer (the runtime's ring buffers, or each\n"
    "                connection's own with --read copy) [16384]\n"
    "  --read M      buffer: TcpStream::read_buffer (multishot receive into the\n"
    "                worker's buffer ring); copy: read_some into the connection's\n"
    "                buffer [buffer]\n"
    "  --ring-buffers N  buffers in each worker's ring, a power of two [256]\n"
    "  --ring-entries N  submission queue entries per worker (completion queue 4x) [4096]\n"
    "  --engine E    auto, io_uring or epoll (Config::engine; WEFT_ENGINE overrides) [auto]\n"
    "  --stats       print the runtime's counters to stderr at exit\n";

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "weft-echo: %s\n%s", msg.c_str(), kUsage);
  std::exit(2);
}

long parse_num(const char* flag, const char* text, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
    usage_error(std::string("bad value for ") + flag + ": '" + text + "' (expected " + std::to_string(lo) + ".." +
                std::to_string(hi) + ")");
  return v;
}

void serve(weft::net::TcpStream s, std::size_t buf_size, bool copy) {
  try {
    s.set_nodelay(true);
    if (!copy) {
      for (;;) {
        const weft::net::ReadBuffer b = s.read_buffer();
        if (b.empty()) return;  // the client closed
        s.write_all(b.data(), b.size());
      }
    }
    std::unique_ptr<char[]> buf(new char[buf_size]);
    for (;;) {
      const std::size_t n = s.read_some(buf.get(), buf_size);
      if (n == 0) return;  // the client closed
      s.write_all(buf.get(), n);
    }
  } catch (const std::system_error&) {
    // reset by the client, or closed at shutdown: this connection is over
  }
}

void print_stats(const weft::Stats& s) {
  const double enters = s.enters ? static_cast<double>(s.enters) : 1.0;
  std::fprintf(stderr,
               "weft-echo: stats fibers_spawned=%llu switches=%llu sqes=%llu cqes=%llu enters=%llu "
               "sqes_per_enter=%.1f cqes_per_enter=%.1f switches_per_enter=%.1f sq_full=%llu cq_overflow=%llu "
               "wakes=%llu stale=%llu recv_arms=%llu recv_starved=%llu recv_plain=%llu epoll_waits=%llu\n",
               static_cast<unsigned long long>(s.fibers_spawned), static_cast<unsigned long long>(s.switches),
               static_cast<unsigned long long>(s.sqes_submitted), static_cast<unsigned long long>(s.cqes_reaped),
               static_cast<unsigned long long>(s.enters), static_cast<double>(s.sqes_submitted) / enters,
               static_cast<double>(s.cqes_reaped) / enters, static_cast<double>(s.switches) / enters,
               static_cast<unsigned long long>(s.sq_full), static_cast<unsigned long long>(s.cq_overflow),
               static_cast<unsigned long long>(s.wakes), static_cast<unsigned long long>(s.stale_completions),
               static_cast<unsigned long long>(s.recv_arms), static_cast<unsigned long long>(s.recv_starved),
               static_cast<unsigned long long>(s.recv_plain), static_cast<unsigned long long>(s.epoll_waits));
}

void accept_loop(unsigned port, bool reuse_port, std::size_t buf_size, bool copy) {
  auto l = weft::net::TcpListener::bind(weft::net::Address::ipv4_loopback(static_cast<std::uint16_t>(port)),
                                        {.backlog = 4096, .reuse_addr = true, .reuse_port = reuse_port});
  for (;;) {
    weft::net::TcpStream s = l.accept();
    weft::spawn([s = std::move(s), buf_size, copy]() mutable { serve(std::move(s), buf_size, copy); }, {.name = "conn"})
        .detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  long port = 19003, timeout = 60, workers = 1, buf = 16384;
  long ring_bufs = 0;  // 0: the runtime's default
  long ring_entries = 4096;
  bool stats = false, copy = false;
  weft::Engine engine = weft::Engine::automatic;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!std::strcmp(a, "-h") || !std::strcmp(a, "--help")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (!std::strcmp(a, "--stats")) {
      stats = true;
      continue;
    }
    if (i + 1 >= argc) usage_error(std::string("missing value for ") + a);
    const char* v = argv[++i];
    if (!std::strcmp(a, "--port"))
      port = parse_num(a, v, 1, 65535);
    else if (!std::strcmp(a, "--timeout"))
      timeout = parse_num(a, v, 1, 86400);
    else if (!std::strcmp(a, "--workers"))
      workers = parse_num(a, v, 1, 256);
    else if (!std::strcmp(a, "--buf"))
      buf = parse_num(a, v, 1, 64L << 20);
    else if (!std::strcmp(a, "--ring-buffers"))
      ring_bufs = parse_num(a, v, 1, 32768);
    else if (!std::strcmp(a, "--ring-entries"))
      ring_entries = parse_num(a, v, 8, 32768);
    else if (!std::strcmp(a, "--engine")) {
      if (!std::strcmp(v, "auto"))
        engine = weft::Engine::automatic;
      else if (!std::strcmp(v, "io_uring"))
        engine = weft::Engine::io_uring;
      else if (!std::strcmp(v, "epoll"))
        engine = weft::Engine::epoll;
      else
        usage_error(std::string("bad value for --engine: '") + v + "' (expected auto, io_uring or epoll)");
    } else if (!std::strcmp(a, "--read")) {
      if (std::strcmp(v, "buffer") != 0 && std::strcmp(v, "copy") != 0)
        usage_error(std::string("bad value for --read: '") + v + "' (expected buffer or copy)");
      copy = !std::strcmp(v, "copy");
    } else
      usage_error(std::string("unknown argument: ") + a);
  }
  struct sigaction sa {};
  sa.sa_handler = &on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  try {
    weft::Config cfg;
    cfg.name = "weft-echo";
    cfg.engine = engine;
    cfg.workers = static_cast<unsigned>(workers);
    cfg.ring_entries = static_cast<unsigned>(ring_entries);
    cfg.recv_buffer_size = static_cast<unsigned>(buf);
    if (ring_bufs) cfg.recv_buffers = static_cast<unsigned>(ring_bufs);
    // Each worker has its own SO_REUSEPORT listener, so the kernel already spreads
    // connections; a connection's fiber stays on the worker that accepted it.
    cfg.placement = weft::Placement::local;
    weft::Runtime rt(cfg);
    std::vector<weft::JoinHandle<void>> loops;
    for (unsigned w = 0; w < cfg.workers; ++w)
      loops.push_back(rt.spawn_on(w,
                                  [port, workers, buf, copy] {
                                    accept_loop(static_cast<unsigned>(port), workers > 1, static_cast<std::size_t>(buf),
                                                copy);
                                  },
                                  {.name = "accept"}));
    std::fprintf(stderr, "weft-echo: listening on 127.0.0.1:%ld with %ld worker(s), engine %s\n", port, workers,
                 rt.stats().engine == weft::Engine::epoll ? "epoll" : "io_uring");
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
    while (!g_stop && std::chrono::steady_clock::now() < end) {
      for (auto& l : loops)
        if (l.done()) l.join();  // a listener that failed (e.g. port in use): rethrows
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (stats) print_stats(rt.stats());
    rt.shutdown();
    for (auto& l : loops) {
      try {
        if (l.valid()) l.join();
      } catch (const weft::FiberCancelled&) {
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-echo: %s\n", e.what());
    return 1;
  }
  return 0;
}
