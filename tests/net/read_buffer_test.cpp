// TcpStream::read_buffer()'s contract where it does not depend on how the bytes
// come: a multishot receive into the worker's buffer ring (io_uring), or one plain
// receive into a heap buffer (the epoll engine, a ring that is off or dry). On
// both engines:
//  - end of stream reads as an empty lease every time, and read_some as 0;
//  - a peer's reset is thrown once (or reads as the end), then reads as the end;
//  - a deadline throws timed_out and leaves the stream usable;
//  - a second fiber calling read_buffer while one waits gets std::logic_error.
// What the ring adds (queued chunks, the flow cap, the queue shared with
// read_some): buffered_read_test.cpp, io_uring only.
#include <sys/socket.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include <weft/net/read_buffer.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::ReadBuffer;
using weft::net::TcpListener;
using weft::net::TcpStream;
using weft::test::has_code;

TEST_CASE("end of stream: read_buffer returns an empty lease, again on the next call, and read_some returns 0") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    c.write_all("hello");
    c.shutdown(weft::net::Shutdown::write);
    std::string got;
    for (;;) {
      ReadBuffer b = s.read_buffer(10s);
      if (b.empty()) break;
      got += b.view();
    }
    REQUIRE(got == "hello");
    REQUIRE(s.read_buffer(10s).empty());
    REQUIRE(s.read_buffer(10s).empty());
    char buf[16];
    REQUIRE(s.read_some(buf, sizeof buf, 10s) == 0);
    REQUIRE(s.recv(buf, sizeof buf, 0, 10s) == 0);
    REQUIRE_THROWS_AS(s.read_exact(buf, 1, 10s), weft::net::UnexpectedEof);
    REQUIRE(s.read_buffer(10s).empty());
  });
  // The end arriving while a reader already waits, with no bytes before it.
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    auto reader = weft::spawn([&] { return s.read_buffer(10s).empty(); }, {.launch = weft::Launch::dispatch});
    c.shutdown(weft::net::Shutdown::write);
    REQUIRE(reader.join());
    REQUIRE(s.read_buffer(10s).empty());
    char buf[4];
    REQUIRE(s.read_some(buf, sizeof buf, 10s) == 0);
  });
}

TEST_CASE(
    "a peer reset (SO_LINGER 0) makes read_buffer throw ECONNRESET once or return empty; "
    "afterwards it reads as the end") {
  weft::Runtime rt;
  // 0: the reader already waits when the reset arrives; 1: a receive is armed and
  // a chunk was read; 2: the reset comes before any read_buffer.
  for (int variant = 0; variant < 3; ++variant) {
    INFO("variant " << variant);
    std::string outcome;
    weft::test::on_loopback_connection(rt, [&](TcpListener&, TcpStream& c, TcpStream& s) {
      auto reset_peer = [&] {
        linger lg{1, 0};
        REQUIRE(setsockopt(c.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
        c.close();
      };
      auto read = [&]() -> std::string {
        try {
          ReadBuffer b = s.read_buffer(10s);
          return b.empty() ? "empty" : "bytes";
        } catch (const std::system_error& e) {
          return has_code(e, std::errc::connection_reset) ? "reset" : std::string("error: ") + e.what();
        }
      };
      if (variant == 0) {
        auto reader = weft::spawn(read, {.launch = weft::Launch::dispatch});
        reset_peer();
        outcome = reader.join();
      } else {
        if (variant == 1) {
          c.write_all("abc");
          ReadBuffer b = s.read_buffer(10s);
          REQUIRE(b.view() == "abc");
        }
        reset_peer();
        outcome = read();
      }
      INFO("first read after the reset: " << outcome);
      REQUIRE((outcome == "reset" || outcome == "empty"));
      REQUIRE(read() == "empty");
      REQUIRE(read() == "empty");
    });
  }
  REQUIRE(rt.stats().stale_completions == 0);
}

TEST_CASE("read_buffer past its deadline throws timed_out, and the stream still delivers afterwards") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    try {
      (void)s.read_buffer(50ms);
      FAIL("no timeout");
    } catch (const std::system_error& e) {
      REQUIRE(has_code(e, std::errc::timed_out));
      REQUIRE(std::string(e.what()).find("read_buffer") != std::string::npos);
    }
    try {
      (void)s.read_buffer(0ms);  // zero: fails unless bytes are there at once
      FAIL("no timeout");
    } catch (const std::system_error& e) {
      REQUIRE(has_code(e, std::errc::timed_out));
    }
    c.write_all("ping");
    std::string got;
    while (got.size() < 4) {
      ReadBuffer b = s.read_buffer(10s);
      REQUIRE(!b.empty());
      got += b.view();
    }
    REQUIRE(got == "ping");
    c.write_all("pong");
    char buf[4];
    s.read_exact(buf, 4, 10s);
    REQUIRE(std::string(buf, 4) == "pong");
  });
}

TEST_CASE(
    "a second fiber calling read_buffer while one waits on the stream gets std::logic_error; the first still reads") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    auto first =
        weft::spawn([&] { return std::string(s.read_buffer(10s).view()); }, {.launch = weft::Launch::dispatch});
    REQUIRE_THROWS_AS(s.read_buffer(10s), std::logic_error);
    c.write_all("ok");
    REQUIRE(first.join() == "ok");
  });
}
