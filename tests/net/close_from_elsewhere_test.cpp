// Closing a socket from somewhere other than a fiber of its worker (a plain thread,
// a fiber of another worker, a Timer callback in the worker's scheduler context)
// while a fiber of its worker is inside an op on it. The close is handed to the
// socket's worker, which runs the close protocol there: the op ends with
// operation_canceled, the fd is closed (the peer sees the end of stream), the
// socket's state is freed (no leak under LeakSanitizer, no fd left open), and
// nothing terminates. Also: a socket whose runtime has shut down still closes
// from a plain thread, a close racing the runtime's shutdown leaks nothing, and a
// close the shutting-down runtime refuses to take (it is shut down from the
// closing thread) ends the ops pending on it with operation_canceled too.
#include <fcntl.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/net/udp.hpp>
#include <weft/runtime/uring/worker.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::TcpListener;
using weft::net::TcpStream;
using weft::test::LoopbackConnection;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

// What the reading fiber saw. Written on the worker, read after join().
struct ReadResult {
  bool returned = false;
  std::error_code ec;
};

// A fiber that reads one byte of `s` (the timeout only bounds a failure of this
// test). Started with dispatch from a fiber: it is parked in its receive when the
// spawn returns.
weft::JoinHandle<void> start_reader(TcpStream& s, ReadResult& out) {
  return weft::spawn(
      [&s, &out] {
        char b;
        try {
          (void)s.read_some(&b, 1, 10s);
          out.returned = true;
        } catch (const std::system_error& e) {
          out.ec = e.code();
        }
      },
      {.name = "reader", .launch = weft::Launch::dispatch});
}

// The peer's view once the stream is closed: the end of stream (0), or the error.
std::string peer_view(weft::Runtime& rt, TcpStream& c) {
  return rt.block_on([&]() -> std::string {
    char b;
    try {
      return c.read_some(&b, 1, 5s) == 0 ? "eof" : "data";
    } catch (const std::system_error& e) {
      return e.what();
    }
  });
}
}  // namespace

TEST_CASE("a plain thread closes a stream while a fiber of its worker reads it") {
  const bool by_close = GENERATE(true, false);  // close(), or a move-assignment
  INFO((by_close ? "close()" : "move-assignment") << " on the test's thread");
  weft::Runtime rt;
  const int fds_before = weft::test::stable_open_fds();
  std::optional<LoopbackConnection> conn;
  ReadResult read;
  weft::JoinHandle<void> reader;
  rt.block_on([&] {
    conn.emplace(weft::test::loopback_connection());
    reader = start_reader(conn->server, read);
  });
  // The reader is parked inside its receive on worker 0; this thread is no fiber.
  if (by_close)
    conn->server.close();
  else
    conn->server = TcpStream();
  reader.join();
  INFO(read.ec.message());
  REQUIRE_FALSE(read.returned);
  REQUIRE(read.ec == std::errc::operation_canceled);
  REQUIRE(peer_view(rt, conn->client) == "eof");
  rt.block_on([&] { conn.reset(); });
  REQUIRE(rt.stats().files_registered == 0);
  REQUIRE(weft::test::stable_open_fds() == fds_before);
}

TEST_CASE("a fiber of another worker closes a stream while a fiber of its worker reads it") {
  weft::Config cfg;
  cfg.workers = 2;
  cfg.placement = weft::Placement::local;
  weft::Runtime rt(cfg);
  const int fds_before = weft::test::stable_open_fds();
  std::optional<LoopbackConnection> conn;
  ReadResult read;
  weft::JoinHandle<void> reader;
  rt.spawn_on(0, [&] {
      conn.emplace(weft::test::loopback_connection());
      reader = start_reader(conn->server, read);
    }).join();
  int closer_worker = -1;
  rt.spawn_on(1, [&] {
      closer_worker = static_cast<int>(weft::detail::t_state.worker->index());
      conn->server.close();  // owned by worker 0
    }).join();
  REQUIRE(closer_worker == 1);
  reader.join();
  INFO(read.ec.message());
  REQUIRE_FALSE(read.returned);
  REQUIRE(read.ec == std::errc::operation_canceled);
  rt.spawn_on(0, [&] {
      char b;
      const std::size_t n = conn->client.read_some(&b, 1, 5s);
      conn.reset();
      if (n != 0) throw std::runtime_error("the peer read data instead of the end of stream");
    }).join();
  REQUIRE(rt.stats().files_registered == 0);
  REQUIRE(weft::test::stable_open_fds() == fds_before);
}

TEST_CASE("a Timer callback closes a stream while a fiber of its worker reads it") {
  weft::Runtime rt;
  const int fds_before = weft::test::stable_open_fds();
  std::optional<LoopbackConnection> conn;
  ReadResult read;
  rt.block_on([&] {
    conn.emplace(weft::test::loopback_connection());
    // The callback runs in the worker's scheduler context: no fiber to wait in.
    weft::Timer t([&] { conn->server.close(); });
    t.arm(1ms);
    char b;
    try {
      (void)conn->server.read_some(&b, 1, 10s);
      read.returned = true;
    } catch (const std::system_error& e) {
      read.ec = e.code();
    }
  });
  INFO(read.ec.message());
  REQUIRE_FALSE(read.returned);
  REQUIRE(read.ec == std::errc::operation_canceled);
  REQUIRE(peer_view(rt, conn->client) == "eof");
  rt.block_on([&] { conn.reset(); });
  REQUIRE(rt.stats().files_registered == 0);
  REQUIRE(weft::test::stable_open_fds() == fds_before);
}

TEST_CASE("a stream dropped on a plain thread after its runtime shut down closes its fd") {
  std::optional<LoopbackConnection> conn;
  int fds[3];
  {
    weft::Runtime rt;
    rt.block_on([&] {
      conn.emplace(weft::test::loopback_connection());
      conn->client.write_all("x", 1);  // every socket ran an op on worker 0
      char b;
      conn->server.read_exact(&b, 1, 5s);
    });
    fds[0] = conn->listener.native_handle();
    fds[1] = conn->client.native_handle();
    fds[2] = conn->server.native_handle();
    rt.shutdown();
    conn->server.close();  // the runtime is stopped but not destroyed yet
    REQUIRE(weft::test::fd_closed(fds[2]));
  }
  conn.reset();  // and after it was destroyed
  REQUIRE(weft::test::fd_closed(fds[0]));
  REQUIRE(weft::test::fd_closed(fds[1]));
}

// The close lands at any point of the shutdown: before it (handed to the worker),
// while the worker cancels its fibers (the runtime refuses new fibers: the worker
// closes the socket as it exits), or after it (closed on this thread). Each way the
// fd is closed by the time the runtime is gone, and nothing leaks.
TEST_CASE("a stream closed on a plain thread while its runtime shuts down leaks nothing") {
  const int fds_before = weft::test::stable_open_fds();
  const int rounds = static_cast<int>(weft::test::scaled(40));
  for (int round = 0; round < rounds; ++round) {
    std::optional<LoopbackConnection> conn;
    int server_fd = -1;
    {
      weft::Runtime rt;
      rt.block_on([&] {
        conn.emplace(weft::test::loopback_connection());
        // Detached: it ends with operation_canceled or FiberCancelled, whichever wins.
        weft::spawn(
            [s = &conn->server] {
              char b;
              (void)s->read_some(&b, 1);
            },
            {.launch = weft::Launch::dispatch})
            .detach();
      });
      server_fd = conn->server.native_handle();
      std::atomic<bool> go{false};
      std::thread closer([&] {
        while (!go.load(std::memory_order_acquire)) {
        }
        for (int i = 0; i < round % 8; ++i) std::this_thread::yield();
        conn->server.close();
      });
      go.store(true, std::memory_order_release);
      rt.shutdown();
      closer.join();
    }
    REQUIRE(weft::test::fd_closed(server_fd));
    conn.reset();
  }
  REQUIRE(weft::test::stable_open_fds() == fds_before);
}

// While the runtime shuts down it takes no new fiber, so a close from a plain thread
// cannot be handed to the worker: the thread shuts the socket down itself, and the
// worker closes the fd as it exits. An op pending then ends by that shutdown(2) (a
// receive with 0, an accept with EINVAL), yet it was ended by a close, so it must
// say so, as any op a close ends does. The op's fiber defers its cancellation, so
// the runtime's shutdown does not end the op first and the worker waits for it.
TEST_CASE("an op pending when a refused hand-over shuts the socket down reports it closed") {
  const char* const op_names[] = {"read_some", "read_buffer", "accept", "a UDP recv_from"};
  const int which = GENERATE(0, 1, 2, 3);
  INFO(op_names[which] << " pending on the worker");
  std::optional<LoopbackConnection> conn;
  std::optional<weft::net::UdpSocket> udp;
  ReadResult op;
  int fd = -1;
  {
    weft::Runtime rt;
    rt.block_on([&] {
      conn.emplace(weft::test::loopback_connection());
      udp.emplace(weft::net::UdpSocket::bind(weft::net::Address::ipv4_loopback(0)));
      weft::spawn(
          [&conn, &udp, &op, which] {
            const weft::this_fiber::DeferCancellation defer;  // the shutdown leaves the op be
            try {
              char b;
              if (which == 0)
                (void)conn->server.read_some(&b, 1, 10s);
              else if (which == 1)
                (void)conn->server.read_buffer(10s);
              else if (which == 2)
                (void)conn->listener.accept(10s);
              else  // no timeout: shutdown(2) alone must end it (on epoll too)
                (void)udp->recv_from(&b, 1, nullptr);
              op.returned = true;
            } catch (const std::system_error& e) {
              op.ec = e.code();
            }
          },
          {.name = "op", .launch = weft::Launch::dispatch})
          .detach();
    });
    fd = which == 3 ? udp->native_handle() : which == 2 ? conn->listener.native_handle() : conn->server.native_handle();
    // The worker waits for the op (its cancellation is deferred) once the shutdown
    // began, and the runtime refuses new fibers from then on.
    std::thread stopper([&rt] { rt.shutdown(); });
    weft::test::wait_until_spawns_refused(rt);
    if (which == 3)
      udp->close();
    else if (which == 2)
      conn->listener.close();
    else
      conn->server.close();
    stopper.join();  // the worker's thread has exited: the op's fiber has ended
    INFO(op.ec.message());
    REQUIRE_FALSE(op.returned);
    REQUIRE(op.ec == std::errc::operation_canceled);
    REQUIRE(weft::test::fd_closed(fd));
  }
  udp.reset();
  conn.reset();
}
