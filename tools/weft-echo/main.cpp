// weft-echo: a TCP echo server on weft. A fiber per connection loops read_some ->
// write_all; one accept loop per worker (SO_REUSEPORT listeners when --workers > 1).
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

const char* kUsage =
    "usage: weft-echo [--port P] [--timeout S] [--workers N] [--buf B]\n"
    "  --port P      listen on 127.0.0.1:P [19003]\n"
    "  --timeout S   exit after S seconds (also on SIGTERM/SIGINT) [60]\n"
    "  --workers N   Evented workers, one listener each (SO_REUSEPORT) [1]\n"
    "  --buf B       per-connection buffer bytes [16384]\n";

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

void serve(weft::net::TcpStream s, std::size_t buf_size) {
  try {
    s.set_nodelay(true);
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

void accept_loop(unsigned port, bool reuse_port, std::size_t buf_size) {
  auto l = weft::net::TcpListener::bind(weft::net::Address::ipv4_loopback(static_cast<std::uint16_t>(port)),
                                        {.backlog = 4096, .reuse_addr = true, .reuse_port = reuse_port});
  for (;;) {
    weft::net::TcpStream s = l.accept();
    weft::spawn([s = std::move(s), buf_size]() mutable { serve(std::move(s), buf_size); }, {.name = "conn"}).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  long port = 19003, timeout = 60, workers = 1, buf = 16384;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!std::strcmp(a, "-h") || !std::strcmp(a, "--help")) {
      std::fputs(kUsage, stdout);
      return 0;
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
    else
      usage_error(std::string("unknown argument: ") + a);
  }
  struct sigaction sa {};
  sa.sa_handler = &on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  try {
    weft::Config cfg;
    cfg.name = "weft-echo";
    cfg.workers = static_cast<unsigned>(workers);
    cfg.ring_entries = 4096;
    // Each worker has its own SO_REUSEPORT listener, so the kernel already spreads
    // connections; a connection's fiber stays on the worker that accepted it.
    cfg.placement = weft::Placement::local;
    weft::Runtime rt(cfg);
    std::vector<weft::JoinHandle<void>> loops;
    for (unsigned w = 0; w < cfg.workers; ++w)
      loops.push_back(rt.spawn_on(w,
                                  [port, workers, buf] {
                                    accept_loop(static_cast<unsigned>(port), workers > 1,
                                                static_cast<std::size_t>(buf));
                                  },
                                  {.name = "accept"}));
    std::fprintf(stderr, "weft-echo: listening on 127.0.0.1:%ld with %ld worker(s)\n", port, workers);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
    while (!g_stop && std::chrono::steady_clock::now() < end) {
      for (auto& l : loops)
        if (l.done()) l.join();  // a listener that failed (e.g. port in use): rethrows
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
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
