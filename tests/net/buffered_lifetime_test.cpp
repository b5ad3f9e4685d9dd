// Buffered reads (TcpStream::read_buffer) and the ends of things. What this file
// proves:
//  - close while a reader waits (incident 002) gives operation_canceled, shutdown
//    cancels a waiting reader with FiberCancelled, neither leaks an fd;
//  - a lease may outlive its Runtime and may be dropped on another thread (its
//    buffer goes back to the ring), and a Runtime stops without hanging while a
//    stream kept outside any fiber still has its receive armed.
// The binary skips (77) without io_uring or without multishot receive (< 6.0).
// Under WEFT_ENGINE=epoll (no ring: read_buffer() reads into heap buffers) the
// close and cancel cases hold as they are; the leases' cases check heap leases or,
// for the ring's give-back, pass with nothing to check.
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
using weft::test::classify;
using weft::test::fail;
using weft::test::matches;
using weft::test::Outcome;
using weft::test::pattern;
using weft::test::write_pattern;
using enum weft::test::Outcome;

namespace {
const bool kUring = (weft::test::require_io_uring(), weft::test::require_buffered_recv(), true);
}  // namespace

TEST_CASE(
    "incident 002 with read_buffer: close while a reader waits gives operation_canceled, queued chunks "
    "and held leases survive the close, no fd leaks, repeated") {
  weft::test::raise_nofile_limit();
  const long rounds = weft::test::under_tsan() ? weft::test::scaled(2000) : 2000;
  std::atomic<long> done{0}, canceled{0}, other{0}, lease_damaged{0};
  weft::Runtime rt;
  weft::test::Watchdog wd("net_buffered_read: close while reading", rt, {&done, &canceled, &other}, 100s);
  const int fds_before = weft::test::stable_open_fds();
  rt.block_on([&] {
    TcpListener l = weft::test::loopback_listener();
    weft::test::Rng rng(2002);
    const std::string data = pattern(2, 0, 20000);
    for (long round = 0; round < rounds; ++round) {
      const unsigned variant = static_cast<unsigned>(rng.next() % 5);
      const bool prewrite = rng.next() % 2 == 0;
      TcpStream c = TcpStream::connect(l.local_address());
      auto s = std::make_unique<TcpStream>(l.accept());
      if (prewrite) c.write_all(data);
      Outcome seen = kNone;
      weft::JoinHandle<void> reader, writer;
      ReadBuffer held;
      if (variant < 4) {
        // dispatch: the reader runs now until it is parked in read_buffer (after
        // taking whatever chunks are already there).
        reader = weft::spawn(
            [&, st = s.get()] {
              try {
                for (;;) {
                  ReadBuffer b = st->read_buffer();
                  if (b.empty()) return;  // the end: counted as kNone, a failure
                }
              } catch (const std::system_error& e) {
                seen = classify(e);
              }
            },
            {.name = "reader", .launch = weft::Launch::dispatch});
      } else {
        // No reader waits: the receive is armed, a lease is held and more chunks
        // are queued when the socket closes; with the writer below (512 KB) the
        // queue likely reaches the flow cap, so its cancel may be in flight too.
        if (rng.next() % 2 == 0) {
          writer = weft::spawn([&] {
            try {
              write_pattern(c, 2, 512 * 1024, 64 * 1024, 7);
            } catch (const std::system_error&) {
              // The server closed with bytes unread: its reset ends the writes.
            }
          });
        } else if (!prewrite) {
          c.write_all(data);
        }
        held = s->read_buffer();
        for (int i = 0; i < 8; ++i) weft::yield();
      }
      if (variant < 4) {
        weft::test::close_variant(s, variant);
      } else if (rng.next() % 2) {
        s.reset();
      } else {
        s->close();
      }
      if (reader.valid()) {
        reader.join();
        if (seen == kCanceled) ++canceled;
        if (seen == kOther || seen == kNone) ++other;
      } else if (held.empty() || !matches(2, 0, held.data(), held.size())) {
        ++lease_damaged;
      }
      held.reset();
      if (writer.valid()) writer.join();
      done.store(round + 1, std::memory_order_relaxed);
    }
  });
  REQUIRE(other.load() == 0);
  REQUIRE(lease_damaged.load() == 0);
  REQUIRE(canceled.load() > 0);
  REQUIRE(done.load() == rounds);
  REQUIRE(rt.stats().stale_completions == 0);
  REQUIRE(weft::test::stable_open_fds() == fds_before);
}

TEST_CASE(
    "a fiber cancelled (Runtime::shutdown) while waiting in read_buffer ends with FiberCancelled; "
    "its stream then closes cleanly, no fd leak") {
  // JoinHandle has no cancel of its own: a fiber is cancelled by its runtime's
  // shutdown (runtime.hpp), as in tcp_test.cpp.
  std::atomic<bool> waiting{false};
  std::atomic<int> outcome{0};  // 1 = FiberCancelled, 2 = returned, 3 = something else
  std::atomic<bool> closed{false};
  const int before = weft::test::stable_open_fds();
  {
    weft::Runtime rt;
    weft::test::Watchdog wd("net_buffered_read: cancel", rt, {}, 60s);
    auto h = rt.spawn([&] {
      weft::test::LoopbackConnection conn = weft::test::loopback_connection();
      TcpStream& s = conn.server;
      conn.client.write_all("x");
      ReadBuffer b = s.read_buffer(10s);  // the receive is armed
      if (b.view() != "x") fail("wrong first chunk");
      waiting = true;
      try {
        (void)s.read_buffer();
        outcome = 2;
      } catch (const weft::FiberCancelled&) {
        outcome = 1;
        s.close();  // from the cancelled fiber: waits for the armed receive's end
        closed = !s.is_open();
        throw;
      } catch (...) {
        outcome = 3;
      }
    });
    while (!waiting) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(10ms);  // most likely parked by now (cancelled either way)
    rt.shutdown();
    REQUIRE_THROWS_AS(h.join(), weft::FiberCancelled);
    REQUIRE(rt.stats().stale_completions == 0);
  }
  REQUIRE(outcome == 1);
  REQUIRE(closed);
  REQUIRE(weft::test::stable_open_fds() == before);
}

TEST_CASE(
    "leases taken out of block_on outlive their Runtime: the bytes stay readable and dropping them "
    "afterwards is clean") {
  ReadBuffer a, b;
  const std::string first = pattern(10, 0, 3000), second = pattern(10, 3000, 3000);
  bool ring = true;
  {
    weft::Runtime rt;
    // epoll has no provided-buffer ring: its leases are heap buffers, which must
    // outlive the runtime just as well (docs/deployment.md).
    ring = rt.stats().engine != weft::Engine::epoll;
    rt.block_on([&] {
      weft::test::LoopbackConnection conn = weft::test::loopback_connection();
      auto take = [&](const std::string& msg) {
        conn.client.write_all(msg);
        ReadBuffer r = conn.server.read_buffer(10s);
        REQUIRE(r.view() == msg);  // one small write arrives as one chunk
        REQUIRE(r.from_ring() == ring);
        return r;
      };
      a = take(first);
      b = take(second);
    });  // the stream closes here with its receive armed
  }      // the worker retired its ring; the leases keep its memory
  REQUIRE(a.from_ring() == ring);
  REQUIRE(a.view() == first);
  REQUIRE(b.view() == second);
  b.consume(1000);
  REQUIRE(b.view() == second.substr(1000));
  a = std::move(b);    // gives the first lease back (after the runtime)
  REQUIRE(b.empty());  // NOLINT(bugprone-use-after-move): a moved-from ReadBuffer is empty
  REQUIRE(a.view() == second.substr(1000));
  a.reset();
  REQUIRE(a.empty());
  REQUIRE(!a.from_ring());
}

TEST_CASE(
    "leases dropped on another thread while the runtime runs go back to the ring: later reads get ring "
    "buffers again") {
  weft::Config cfg;
  cfg.recv_buffers = 2;
  cfg.recv_buffer_size = 4096;
  weft::Runtime rt(cfg);
  if (rt.stats().engine == weft::Engine::epoll) {
    // Nothing to give back on epoll: it has no provided-buffer ring, and every
    // lease is a heap buffer that its owner frees (docs/deployment.md).
    SUCCEED("epoll: no provided-buffer ring");
    return;
  }
  std::atomic<long> rounds_done{0};
  weft::test::Watchdog wd("net_buffered_read: remote drop", rt, {&rounds_done}, 60s);
  std::promise<std::vector<ReadBuffer>> handoff;
  std::atomic<bool> dropped{false}, intact{false};
  std::thread dropper([&] {
    std::vector<ReadBuffer> leases = handoff.get_future().get();
    bool ok = leases.size() == 2;
    for (std::size_t i = 0; ok && i < leases.size(); ++i)
      ok = leases[i].from_ring() && leases[i].view() == pattern(11, i * 1000, 1000);
    intact = ok;
    leases.clear();  // the ids go to the worker's remote stack
    dropped = true;
  });
  bool handed = false;
  long ring_after = 0, heap_after = 0;
  auto body = [&] {
    weft::test::LoopbackConnection conn = weft::test::loopback_connection();
    std::uint64_t off = 0;
    std::vector<ReadBuffer> leases;
    for (int i = 0; i < 2; ++i) {  // both ring buffers lent out
      conn.client.write_all(pattern(11, off, 1000));
      ReadBuffer r = conn.server.read_buffer(10s);
      REQUIRE(r.view() == pattern(11, off, 1000));
      REQUIRE(r.from_ring());
      off += 1000;
      leases.push_back(std::move(r));
    }
    handoff.set_value(std::move(leases));
    handed = true;
    while (!dropped.load()) weft::sleep_for(1ms);
    // 50 more chunks, each dropped at once on this worker.
    for (int round = 0; round < 50; ++round) {
      const std::string msg = pattern(11, off, 1000);
      conn.client.write_all(msg);
      std::string got;
      while (got.size() < msg.size()) {
        ReadBuffer r = conn.server.read_buffer(10s);
        REQUIRE(!r.empty());
        ++(r.from_ring() ? ring_after : heap_after);
        got += r.view();
      }
      REQUIRE(got == msg);
      off += msg.size();
      rounds_done.store(round + 1, std::memory_order_relaxed);
    }
  };
  try {
    rt.block_on(body);
  } catch (...) {
    if (!handed) handoff.set_value({});
    dropper.join();
    throw;
  }
  dropper.join();
  INFO("after the drop: ring leases " << ring_after << ", heap leases " << heap_after);
  REQUIRE(intact);
  REQUIRE(rounds_done.load() == 50);
  REQUIRE(ring_after > 0);
  REQUIRE(rt.stats().stale_completions == 0);
}

TEST_CASE(
    "a Runtime stops without hanging while a stream kept outside any fiber has its receive armed and "
    "chunks queued; the stream closes afterwards without an fd leak") {
  const int before = weft::test::stable_open_fds();
  std::optional<TcpStream> server, client;
  std::atomic<long> step{0};
  {
    // Covers the Runtime's destructor too: declared before it, disarmed after it.
    weft::test::Watchdog wd("net_buffered_read: shutdown with an armed receive", static_cast<weft::Runtime*>(nullptr),
                            {&step}, 60s);
    {
      weft::Runtime rt;
      rt.block_on([&] {
        TcpListener l = weft::test::loopback_listener();
        auto pr = weft::test::tcp_pair(l);
        pr.first.write_all(pattern(12, 0, 3000));
        ReadBuffer b = pr.second.read_buffer(10s);  // arms the receive
        REQUIRE(matches(12, 0, b.data(), b.size()));
        pr.first.write_all(pattern(12, 3000, 64 * 1024));  // queued on the stream, never read
        weft::yield();
        client.emplace(std::move(pr.first));
        server.emplace(std::move(pr.second));  // stays with its worker: the receive is armed
      });
      step = 1;
    }  // ~Runtime: shutdown with the receive still armed
    step = 2;
  }
  REQUIRE(server->is_open());
  server.reset();  // after the runtime, on this thread: nothing may be pending any more
  client.reset();
  REQUIRE(weft::test::stable_open_fds() == before);
}
