// Echo on loopback at scale: 10,000 messages over 1,000 concurrent connections
// (scaled down under sanitizers), every echoed byte checked against what was
// sent. Server: a fiber per connection doing read_some -> write_all. Bounded by
// a watchdog that prints the progress and a fiber dump instead of hanging.
#include <atomic>
#include <cstdio>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"
#include "../net/net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::Address;
using weft::net::TcpListener;
using weft::net::TcpStream;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

void echo(TcpStream s) {
  try {
    weft::test::echo_until_eof(s);
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "echo server connection failed: %s\n", e.what());
    throw;
  }
}

void run_echo(unsigned workers, long conns, long messages) {
  const long limit = weft::test::raise_nofile_limit();
  if (2 * conns + 64 > limit) conns = (limit - 64) / 2;
  REQUIRE(conns > 0);
  const long per_conn = (messages + conns - 1) / conns;
  std::atomic<long> connected{0}, echoed{0}, mismatches{0};
  const int fds_before = weft::test::stable_open_fds();
  {
    weft::Runtime rt(weft::Config{.workers = workers});
    weft::test::Watchdog wd("tcp echo stress", rt, {&connected, &echoed, &mismatches}, 400s);
    rt.block_on([&] {
      TcpListener listener = weft::test::loopback_listener({.backlog = 4096});
      const Address to = listener.local_address();
      // Moved into the acceptor, which may run on another worker (placement).
      auto server = weft::spawn([&, l = std::move(listener)]() mutable {
        for (long i = 0; i < conns; ++i)
          weft::spawn([s = l.accept()]() mutable { echo(std::move(s)); }, {.name = "echo"}).detach();
      });
      std::vector<weft::JoinHandle<void>> clients;
      for (long c = 0; c < conns; ++c) {
        clients.push_back(weft::spawn(
            [&, c] {
              TcpStream s = TcpStream::connect(to, 60s);
              s.set_nodelay(true);
              ++connected;
              weft::test::Rng rng(static_cast<std::uint64_t>(c) + 1);
              unsigned char out[2048], in[2048];
              std::uint64_t off = 0;
              for (long m = 0; m < per_conn; ++m) {
                const std::size_t n = rng.between(1, sizeof out);
                for (std::size_t i = 0; i < n; ++i) out[i] = weft::test::pattern_byte(c, off + i);
                s.write_all(out, n, 60s);
                s.read_exact(in, n, 60s);
                for (std::size_t i = 0; i < n; ++i)
                  if (in[i] != out[i]) {
                    ++mismatches;
                    break;
                  }
                off += n;
                ++echoed;
              }
              s.shutdown(weft::net::Shutdown::write);
              char b;
              if (s.read_some(&b, 1, 60s) != 0) ++mismatches;  // the server echoed nothing extra
            },
            {.name = "client"}));
      }
      for (auto& h : clients) h.join();
      server.join();
    });
  }
  REQUIRE(mismatches.load() == 0);
  REQUIRE(connected.load() == conns);
  REQUIRE(echoed.load() == conns * per_conn);
  REQUIRE(weft::test::stable_open_fds() == fds_before);
}
}  // namespace

TEST_CASE("echo of 10,000 messages over 1,000 concurrent connections is byte-exact") {
  run_echo(1, weft::test::scaled(1000), weft::test::scaled(10000));
}

// Two workers with the default placement: the acceptor's connection fibers and the
// clients spread over both, so accepted streams change workers when moved.
TEST_CASE("echo across two workers, streams handed between workers, is byte-exact") {
  run_echo(2, weft::test::scaled(400), weft::test::scaled(4000));
}
