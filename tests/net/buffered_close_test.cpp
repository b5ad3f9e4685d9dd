// Closing a stream whose buffered receive (TcpStream::read_buffer) is still armed,
// from every place a stream can die: its fiber's end (the captures are destroyed
// in the fiber), a plain thread while the runtime runs, and the scheduler context
// (a Timer callback). What this file proves: the fd is closed each time (the peer
// reads end of stream, the process's fd count comes back), nothing is freed under
// the kernel (ASan), and no stale completion is seen. The last two hand the close
// to the stream's worker (net/close_handoff.cpp).
#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/net/read_buffer.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::ReadBuffer;
using weft::net::TcpListener;
using weft::net::TcpStream;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

// Reads from `peer` until end of stream; false when the deadline (a hang guard,
// not a timing check) passed first.
bool reads_to_end(TcpStream& peer) {
  char buf[256];
  try {
    while (peer.read_some(buf, sizeof buf, 20s) > 0) {
    }
    return true;
  } catch (const std::system_error& e) {
    return e.code() != std::errc::timed_out;  // a reset also ends the stream
  }
}

// Arms `s`'s buffered receive: the peer writes, one chunk is read and dropped.
void arm(TcpStream& s, TcpStream& peer) {
  peer.write_all("ping", 4);
  ReadBuffer b = s.read_buffer(20s);
  REQUIRE(b.size() > 0);
}
}  // namespace

TEST_CASE(
    "a fiber whose captured stream armed read_buffer ends with the peer still connected: the stream "
    "closes in the fiber, the peer reads end of stream, no fd leaks") {
  const int rounds = static_cast<int>(weft::test::scaled(200));
  const int before = weft::test::stable_open_fds();
  std::atomic<long> done{0};
  {
    weft::Runtime rt;
    weft::test::Watchdog wd("buffered_close: fiber end", rt, {&done});
    rt.block_on([&] {
      TcpListener l = weft::test::loopback_listener();
      for (int i = 0; i < rounds; ++i) {
        auto pr = weft::test::tcp_pair(l);
        TcpStream& peer = pr.first;
        auto h = weft::spawn([s = std::move(pr.second), &peer]() mutable { arm(s, peer); });
        h.join();  // the lambda, and the stream with it, died in the fiber
        REQUIRE(reads_to_end(peer));
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
    REQUIRE(rt.stats().stale_completions == 0);
  }
  REQUIRE(weft::test::stable_open_fds() == before);
}

TEST_CASE(
    "a stream with its buffered receive armed, dropped on a plain thread while the runtime runs: the "
    "worker closes it at the receive's last completion, the peer reads end of stream, no fd leaks") {
  const int rounds = static_cast<int>(weft::test::scaled(200));
  const int before = weft::test::stable_open_fds();
  std::atomic<long> done{0};
  {
    weft::Runtime rt;
    weft::test::Watchdog wd("buffered_close: plain thread", rt, {&done});
    std::optional<TcpListener> l;
    rt.block_on([&] { l.emplace(weft::test::loopback_listener()); });
    for (int i = 0; i < rounds; ++i) {
      std::optional<TcpStream> s, peer;
      rt.block_on([&] {
        auto pr = weft::test::tcp_pair(*l);
        arm(pr.second, pr.first);
        s.emplace(std::move(pr.second));
        peer.emplace(std::move(pr.first));
      });
      if (i % 2 == 0) {
        s.reset();  // this (plain) thread
      } else {
        std::thread([&] { s.reset(); }).join();
      }
      rt.block_on([&] { REQUIRE(reads_to_end(*peer)); });
      rt.block_on([&] { peer.reset(); });
      done.fetch_add(1, std::memory_order_relaxed);
    }
    rt.block_on([&] { l.reset(); });
    REQUIRE(rt.stats().stale_completions == 0);
  }
  REQUIRE(weft::test::stable_open_fds() == before);
}

TEST_CASE(
    "a stream with its buffered receive armed, dropped in a Timer callback (scheduler context): the "
    "worker closes it, the peer reads end of stream, no fd leaks") {
  const int rounds = static_cast<int>(weft::test::scaled(100));
  const int before = weft::test::stable_open_fds();
  std::atomic<long> done{0};
  {
    weft::Runtime rt;
    weft::test::Watchdog wd("buffered_close: timer callback", rt, {&done});
    rt.block_on([&] {
      TcpListener l = weft::test::loopback_listener();
      for (int i = 0; i < rounds; ++i) {
        auto pr = weft::test::tcp_pair(l);
        arm(pr.second, pr.first);
        std::optional<TcpStream> s(std::move(pr.second));
        weft::Timer t([&s] { s.reset(); });
        t.arm(0ms);
        REQUIRE(t.wait());
        REQUIRE(!s.has_value());
        REQUIRE(reads_to_end(pr.first));
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
    REQUIRE(rt.stats().stale_completions == 0);
  }
  REQUIRE(weft::test::stable_open_fds() == before);
}
