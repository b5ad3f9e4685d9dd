// Buffered reads (TcpStream::read_buffer) when the worker's provided-buffer ring
// runs dry. What this file proves: with far fewer buffers than busy connections
// nothing is lost or reordered (reads fall back to plain receives into heap
// buffers), and a receive the kernel ended with -ENOBUFS is followed by plain
// reads, not by a herd of re-arms that each end -ENOBUFS again (the Stats
// counters recv_arms, recv_starved and recv_plain tell which happened).
// The binary skips (77) without io_uring or without multishot receive (< 6.0).
#include <atomic>
#include <chrono>
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
using weft::test::pattern;
using weft::test::write_pattern;

namespace {
// A dry ring is an io_uring matter: on epoll read_buffer() never uses the
// provided-buffer ring (one plain receive into a heap buffer each call), so the
// binary skips (77) under WEFT_ENGINE=epoll.
const bool kUring = (weft::test::require_io_uring_engine(), weft::test::require_buffered_recv(), true);
}  // namespace

TEST_CASE(
    "a 2-buffer ring under 50 streaming connections whose readers hold their leases falls back to heap "
    "leases, loses nothing, and re-arms no more often than it reads plain") {
  weft::test::raise_nofile_limit();
  weft::Config cfg;
  cfg.recv_buffers = 2;
  cfg.recv_buffer_size = 4096;
  const long conns = 50;
  const std::size_t per_conn = weft::test::under_tsan() ? 64 * 1024 : 256 * 1024;
  std::atomic<long> holding{0}, servers_done{0}, ring_leases{0}, heap_leases{0}, first_from_ring{0};
  weft::Runtime rt(cfg);
  weft::test::Watchdog wd("net_buffered_read: small ring", rt, {&holding, &servers_done, &ring_leases, &heap_leases},
                          100s);
  std::string client_error, server_error;
  rt.block_on([&] {
    TcpListener l = weft::test::loopback_listener();
    const weft::net::Address at = l.local_address();
    std::vector<weft::JoinHandle<void>> clients, servers;
    for (long i = 0; i < conns; ++i) {
      clients.push_back(weft::spawn([&, i] {
        TcpStream c = TcpStream::connect(at);
        // The stream's pattern is named by the client's port, which the server sees too.
        write_pattern(c, c.local_address().port(), per_conn, 20000, static_cast<std::uint64_t>(i) + 100);
        c.shutdown(weft::net::Shutdown::write);
      }));
    }
    for (long i = 0; i < conns; ++i) {
      servers.push_back(weft::spawn([&, s = l.accept()]() mutable {
        const std::uint64_t seed = s.peer_address().port();
        std::uint64_t got = 0;
        auto check = [&](const ReadBuffer& b) {
          ++(b.from_ring() ? ring_leases : heap_leases);
          if (got + b.size() > per_conn || !matches(seed, got, b.data(), b.size()))
            fail("stream " + std::to_string(seed) + ": wrong bytes at " + std::to_string(got));
          got += b.size();
        };
        {
          // Every reader holds its first lease until all of them hold one: the
          // ring has 2 buffers, so at least conns - 2 of these are heap leases.
          ReadBuffer first = s.read_buffer();
          if (first.empty()) fail("stream " + std::to_string(seed) + ": no bytes");
          if (first.from_ring()) ++first_from_ring;
          ++holding;
          while (holding.load() < conns) weft::sleep_for(1ms);
          check(first);
        }
        unsigned n = 0;
        for (;;) {
          ReadBuffer b = s.read_buffer();
          if (b.empty()) break;
          if (++n % 4 == 0)
            weft::sleep_for(200us);  // hold the lease while others read
          else
            weft::yield();
          check(b);
        }
        if (got != per_conn)
          fail("stream " + std::to_string(seed) + ": " + std::to_string(got) + " of " + std::to_string(per_conn) +
               " bytes");
        ++servers_done;
      }));
    }
    client_error = join_all(clients);
    server_error = join_all(servers);
  });
  INFO("ring leases " << ring_leases.load() << ", heap leases " << heap_leases.load() << ", first leases from the ring "
                      << first_from_ring.load());
  REQUIRE(client_error == "");
  REQUIRE(server_error == "");
  REQUIRE(servers_done.load() == conns);
  REQUIRE(first_from_ring.load() <= 2);
  REQUIRE(heap_leases.load() >= conns - 2);
  // The counters tell the same story: the kernel ended armed receives for want of
  // buffers, and each heap lease came from one plain receive.
  const weft::Stats st = rt.stats();
  INFO("recv_arms " << st.recv_arms << ", recv_starved " << st.recv_starved << ", recv_plain " << st.recv_plain);
  REQUIRE(st.recv_arms >= static_cast<std::uint64_t>(conns));
  REQUIRE(st.recv_starved >= 1);
  REQUIRE(st.recv_plain >= static_cast<std::uint64_t>(heap_leases.load()));
  // A dry ring makes the next reads plain ones, not a herd of re-arms that each
  // end -ENOBUFS: every starved receive is followed by a plain read.
  REQUIRE(st.recv_starved <= st.recv_plain + static_cast<std::uint64_t>(conns));
  REQUIRE(st.stale_completions == 0);
}

TEST_CASE(
    "an 8-buffer ring under 200 ping-pong connections that give their leases back at once follows every "
    "receive the kernel ended for want of buffers with plain reads, not with a re-arm") {
  weft::test::raise_nofile_limit();
  weft::Config cfg;
  cfg.recv_buffers = 8;
  cfg.recv_buffer_size = 1024;
  const long conns = 200;
  const int rounds = weft::test::under_tsan() ? 20 : 100;
  std::atomic<long> clients_done{0}, servers_done{0};
  weft::Runtime rt(cfg);
  weft::test::Watchdog wd("net_buffered_dry_ring: ping-pong", rt, {&clients_done, &servers_done}, 100s);
  std::string client_error, server_error;
  rt.block_on([&] {
    TcpListener l = weft::test::loopback_listener();
    const weft::net::Address at = l.local_address();
    std::vector<weft::JoinHandle<void>> clients, servers;
    for (long i = 0; i < conns; ++i) {
      clients.push_back(weft::spawn([&, i] {
        const auto seed = static_cast<std::uint64_t>(i + 1);
        TcpStream c = TcpStream::connect(at);
        char back[64];
        for (int r = 0; r < rounds; ++r) {
          const std::string msg = pattern(seed, static_cast<std::uint64_t>(r) * 64, 64);
          c.write_all(msg);
          c.read_exact(back, sizeof back, 20s);
          if (!matches(seed, static_cast<std::uint64_t>(r) * 64, back, sizeof back))
            fail("connection " + std::to_string(i) + ": wrong echo in round " + std::to_string(r));
        }
        c.shutdown(weft::net::Shutdown::write);
        ++clients_done;
      }));
    }
    for (long i = 0; i < conns; ++i) {
      servers.push_back(weft::spawn([&, s = l.accept()]() mutable {
        for (;;) {
          ReadBuffer b = s.read_buffer(20s);
          if (b.empty()) break;
          s.write_all(b.data(), b.size());
        }
        ++servers_done;
      }));
    }
    client_error = join_all(clients);
    server_error = join_all(servers);
  });
  const weft::Stats st = rt.stats();
  INFO("recv_arms " << st.recv_arms << ", recv_starved " << st.recv_starved << ", recv_plain " << st.recv_plain);
  REQUIRE(client_error == "");
  REQUIRE(server_error == "");
  REQUIRE(clients_done.load() == conns);
  REQUIRE(servers_done.load() == conns);
  REQUIRE(st.recv_starved >= 1);  // the ring did run dry
  REQUIRE(st.recv_starved <= st.recv_plain + static_cast<std::uint64_t>(conns));
  REQUIRE(st.stale_completions == 0);
}
