// The Evented/Threaded line for sockets: every net call from a plain thread throws
// CrossRuntimeError (and a socket dropped there closes safely); a socket in use on
// one worker is refused to fibers of another; an idle stream moved into a fiber of
// another worker is claimed and used there.
#include <string>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/runtime/uring/worker.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::Address;
using weft::net::TcpListener;
using weft::net::TcpStream;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("every net call from a plain thread throws CrossRuntimeError") {
  REQUIRE_THROWS_AS(TcpListener::bind(Address::ipv4_loopback(0)), weft::CrossRuntimeError);
  REQUIRE_THROWS_AS(TcpStream::connect(Address::ipv4_loopback(9)), weft::CrossRuntimeError);
  REQUIRE_THROWS_AS(TcpStream::connect("localhost", "9"), weft::CrossRuntimeError);
  weft::Runtime rt;
  const int before = weft::test::stable_open_fds();
  {
    // Made in a fiber, then used from this thread: refused, and dropped safely here.
    auto [l, c, s] = rt.block_on([] { return weft::test::loopback_connection(); });
    char b[4];
    REQUIRE_THROWS_AS(s.read_some(b, 4), weft::CrossRuntimeError);
    REQUIRE_THROWS_AS(s.write_all("x"), weft::CrossRuntimeError);
    REQUIRE_THROWS_AS(s.read_exact(b, 4), weft::CrossRuntimeError);
    REQUIRE_THROWS_AS(s.send(b, 1), weft::CrossRuntimeError);
    REQUIRE_THROWS_AS(s.recv(b, 1), weft::CrossRuntimeError);
    REQUIRE_THROWS_AS(s.shutdown(), weft::CrossRuntimeError);
    REQUIRE_THROWS_AS(s.set_nodelay(true), weft::CrossRuntimeError);
    REQUIRE_THROWS_AS(l.accept(), weft::CrossRuntimeError);
    REQUIRE_THROWS_WITH(c.read_some(b, 4), Catch::Contains("Evented-only"));
  }  // destroyed on this thread with nothing pending: closed here
  REQUIRE(weft::test::stable_open_fds() == before);
}

TEST_CASE("a socket in use on one worker is refused to a fiber of another worker") {
  weft::Runtime rt(weft::Config{.workers = 2});
  TcpListener l = rt.spawn_on(0, [] { return weft::test::loopback_listener(); }).join();
  // The move out of the fiber released it; an op on worker 0 claims it there.
  rt.spawn_on(0, [&] { REQUIRE_THROWS_AS(l.accept(1ms), std::system_error); }).join();
  auto r = rt.spawn_on(1, [&] {
    try {
      (void)l.accept(1s);
      return std::string("accepted");
    } catch (const weft::CrossRuntimeError& e) {
      return std::string(e.what());
    }
  });
  const std::string what = r.join();
  REQUIRE(what.find("belongs to worker 0") != std::string::npos);
  rt.spawn_on(0, [&] { l.close(); }).join();
}

TEST_CASE("a stream accepted on one worker and moved into a fiber of another is used there") {
  weft::Runtime rt(weft::Config{.workers = 2});
  const int before = weft::test::stable_open_fds();
  rt.spawn_on(0, [&rt] {
      weft::test::LoopbackConnection conn = weft::test::loopback_connection();
      conn.client.write_all("ping");
      auto echo = rt.spawn_on(1, [s = std::move(conn.server)]() mutable {
        char b[4];
        s.read_exact(b, 4, 10s);
        s.write_all(b, 4);
        return weft::detail::t_state.worker->index();
      });
      char b[4];
      conn.client.read_exact(b, 4, 10s);
      REQUIRE(std::string(b, 4) == "ping");
      REQUIRE(echo.join() == 1u);
    }).join();
  REQUIRE(weft::test::stable_open_fds() == before);
}
