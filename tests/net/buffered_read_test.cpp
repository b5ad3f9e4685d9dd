// Buffered reads: TcpStream::read_buffer() lends chunks of the worker's
// provided-buffer ring that one multishot receive per stream fills
// (net/read_buffer.cpp). What this file proves about the bytes:
//  - they arrive byte-exact and in order, with ~200 concurrent echo connections
//    and across the flow cap (the receive cancelled past 16 queued chunks and
//    armed again by a later read);
//  - read_some, read_exact, readv and recv read the same queue in order, and recv
//    with flags is refused while the queue is in use.
// End of stream, resets, deadlines and a second reader, on either engine:
// read_buffer_test.cpp. A ring that runs dry: buffered_dry_ring_test.cpp; closes,
// cancellation and leases that outlive things: buffered_lifetime_test.cpp.
// The binary skips (77) without io_uring, or where the kernel has no multishot
// receive into a provided-buffer ring (before 6.0): then nothing here is buffered.
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/net/read_buffer.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"
#include "buffered_test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::ReadBuffer;
using weft::net::TcpListener;
using weft::net::TcpStream;
using weft::test::fail;
using weft::test::join_all;
using weft::test::matches;
using weft::test::write_pattern;

namespace {
// On epoll there is no provided-buffer ring and no multishot receive: each
// read_buffer() is one plain receive into a heap buffer (docs/deployment.md), so
// nothing here is buffered and the binary skips (77) under WEFT_ENGINE=epoll, as it
// does on a kernel without multishot receive.
const bool kUring = (weft::test::require_io_uring_engine(), weft::test::require_buffered_recv(), true);
}  // namespace

TEST_CASE(
    "read_buffer echo: ~200 concurrent connections of random-sized writes come back byte-exact, "
    "leases come from the ring") {
  weft::test::raise_nofile_limit();
  const long conns = weft::test::under_tsan() ? weft::test::scaled(200) : 200;
  const std::size_t per_conn = 200 * 1000;
  std::atomic<long> clients_done{0}, servers_done{0}, ring_leases{0}, heap_leases{0};
  weft::Runtime rt;
  weft::test::Watchdog wd("net_buffered_read: echo", rt, {&clients_done, &servers_done, &ring_leases}, 100s);
  std::string client_error, server_error;
  rt.block_on([&] {
    TcpListener l = weft::test::loopback_listener();
    const weft::net::Address at = l.local_address();
    std::vector<weft::JoinHandle<void>> clients, servers;
    for (long i = 0; i < conns; ++i) {
      clients.push_back(weft::spawn(
          [&, i] {
            const auto seed = static_cast<std::uint64_t>(i + 1);
            TcpStream c = TcpStream::connect(at);
            auto writer = weft::spawn([&] {
              write_pattern(c, seed, per_conn, 20000, seed * 31);
              c.shutdown(weft::net::Shutdown::write);
            });
            std::vector<char> buf(64 * 1024);
            std::size_t got = 0;
            for (;;) {
              const std::size_t n = c.read_some(buf.data(), buf.size());
              if (n == 0) break;
              if (got + n > per_conn || !matches(seed, got, buf.data(), n))
                fail("connection " + std::to_string(i) + ": wrong echo at byte " + std::to_string(got));
              got += n;
            }
            writer.join();
            if (got != per_conn)
              fail("connection " + std::to_string(i) + ": " + std::to_string(got) + " of " + std::to_string(per_conn) +
                   " bytes echoed");
            ++clients_done;
          },
          {.name = "client"}));
    }
    for (long i = 0; i < conns; ++i) {
      servers.push_back(weft::spawn(
          [&, s = l.accept()]() mutable {
            for (;;) {
              ReadBuffer b = s.read_buffer();
              if (b.empty()) break;
              ++(b.from_ring() ? ring_leases : heap_leases);
              s.write_all(b.data(), b.size());
            }
            s.shutdown(weft::net::Shutdown::write);
            ++servers_done;
          },
          {.name = "echo"}));
    }
    client_error = join_all(clients);
    server_error = join_all(servers);
  });
  INFO("ring leases " << ring_leases.load() << ", heap leases " << heap_leases.load());
  REQUIRE(client_error == "");
  REQUIRE(server_error == "");
  REQUIRE(clients_done.load() == conns);
  REQUIRE(servers_done.load() == conns);
  REQUIRE(ring_leases.load() > 0);
  REQUIRE(rt.stats().stale_completions == 0);
}

TEST_CASE(
    "flow cap: ~4 MB written while the reader sleeps on its first lease is read back byte-exact after "
    "the receive is cancelled and armed again") {
  const std::size_t total = 4 << 20;
  const std::uint64_t seed = 3;
  weft::Runtime rt;
  std::atomic<long> written{0}, got_bytes{0};
  weft::test::Watchdog wd("net_buffered_read: flow cap", rt, {&written, &got_bytes}, 100s);
  weft::test::on_loopback_connection(rt, [&](TcpListener&, TcpStream& c, TcpStream& s) {
    auto writer = weft::spawn([&] {
      write_pattern(c, seed, total, 64 * 1024, 33, &written);
      c.shutdown(weft::net::Shutdown::write);
    });
    ReadBuffer first = s.read_buffer();
    REQUIRE(!first.empty());
    REQUIRE(matches(seed, 0, first.data(), first.size()));
    // Away while the writer fills the queue past the cap (16 chunks) and then the
    // socket buffers: until 1 MB is written or the writer is held back (no progress
    // for 100 sleeps). Either way the bytes must all arrive below.
    long last = -1;
    int still = 0;
    while (written.load() < (1 << 20) && still < 100) {
      weft::sleep_for(1ms);
      const long w = written.load();
      still = w == last ? still + 1 : 0;
      last = w;
    }
    INFO("written while the reader was away: " << written.load());
    std::uint64_t got = first.size();
    first.reset();
    long chunks = 0, from_ring = 0;
    bool exact = true;
    for (;;) {
      ReadBuffer b = s.read_buffer(30s);
      if (b.empty()) break;
      ++chunks;
      if (b.from_ring()) ++from_ring;
      if (exact && (got + b.size() > total || !matches(seed, got, b.data(), b.size()))) exact = false;
      got += b.size();
      got_bytes.store(static_cast<long>(got), std::memory_order_relaxed);
    }
    writer.join();
    INFO("chunks " << chunks << ", from the ring " << from_ring);
    REQUIRE(exact);
    REQUIRE(got == total);
    REQUIRE(from_ring > 0);
    REQUIRE(s.read_buffer().empty());
  });
  REQUIRE(rt.stats().stale_completions == 0);
}

TEST_CASE(
    "after read_buffer, read_some, read_exact, readv and recv read the following bytes in order; "
    "recv with MSG_PEEK is refused while the queue is in use") {
  const std::size_t total = 256 * 1024;
  const std::uint64_t seed = 4;
  weft::test::on_loopback_connection([&](TcpListener&, TcpStream& c, TcpStream& s) {
    auto writer = weft::spawn([&] {
      write_pattern(c, seed, total, 20000, 44);
      c.shutdown(weft::net::Shutdown::write);
    });
    std::vector<char> buf(64 * 1024);
    std::uint64_t off = 0;
    auto expect = [&](const void* p, std::size_t n) {
      REQUIRE(off + n <= total);
      REQUIRE(matches(seed, off, p, n));
      off += n;
    };

    ReadBuffer held = s.read_buffer();  // kept to the end: its bytes must not change
    REQUIRE(!held.empty());
    const std::uint64_t held_off = off;
    const std::string held_copy(held.view());
    expect(held.data(), held.size());

    char peek[16];
    REQUIRE_THROWS_AS(s.recv(peek, sizeof peek, MSG_PEEK), std::invalid_argument);

    std::size_t n = s.read_some(buf.data(), 100);
    REQUIRE(n >= 1);
    expect(buf.data(), n);

    s.read_exact(buf.data(), 5000);
    expect(buf.data(), 5000);

    iovec iov[3] = {{buf.data(), 7}, {buf.data() + 7, 20000}, {buf.data() + 20007, 33}};
    n = s.readv(iov);
    REQUIRE(n >= 1);
    expect(buf.data(), n);  // the iovecs are contiguous in buf

    n = s.recv(buf.data(), 3000);
    REQUIRE(n >= 1);
    expect(buf.data(), n);

    {
      ReadBuffer b = s.read_buffer();  // may start inside a chunk read_some began
      REQUIRE(!b.empty());
      expect(b.data(), b.size());
    }

    // The rest in a random mix of all five.
    weft::test::Rng rng(404);
    for (;;) {
      const std::size_t want = rng.between(1, buf.size() - 64);
      std::size_t got = 0;
      switch (rng.next() % 5) {
        case 0: {
          ReadBuffer b = s.read_buffer();
          got = b.size();
          if (got) expect(b.data(), got);
          break;
        }
        case 1:
          got = s.read_some(buf.data(), want);
          if (got) expect(buf.data(), got);
          break;
        case 2: {
          const std::size_t len = std::min<std::size_t>(want, total - off);
          if (len == 0) {
            got = s.read_some(buf.data(), want);
            break;
          }
          s.read_exact(buf.data(), len);
          got = len;
          expect(buf.data(), got);
          break;
        }
        case 3: {
          const std::size_t h = want / 2 + 1;
          iovec v[2] = {{buf.data(), h}, {buf.data() + h, want - h + 1}};
          got = s.readv(v);
          if (got) expect(buf.data(), got);
          break;
        }
        default:
          got = s.recv(buf.data(), want);
          if (got) expect(buf.data(), got);
      }
      if (got == 0) break;
    }
    writer.join();
    REQUIRE(off == total);
    REQUIRE(held.view() == held_copy);
    REQUIRE(matches(seed, held_off, held.data(), held.size()));
  });
}
