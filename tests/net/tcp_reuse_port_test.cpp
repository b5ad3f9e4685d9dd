// ListenOptions::reuse_port: listeners that all set it share one port and the
// kernel spreads the connections over them; a listener without it cannot bind the
// port while another listens there.
#include <sys/socket.h>

#include <chrono>
#include <system_error>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::Address;
using weft::net::TcpListener;
using weft::net::TcpStream;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

int reuse_port_of(const TcpListener& l) {
  int v = -1;
  socklen_t len = sizeof v;
  REQUIRE(getsockopt(l.native_handle(), SOL_SOCKET, SO_REUSEPORT, &v, &len) == 0);
  return v;
}

// Accepts until nothing arrives within a short timeout; returns how many.
int drain_accepts(TcpListener& l) {
  int n = 0;
  for (;;) {
    try {
      (void)l.accept(200ms);
      ++n;
    } catch (const std::system_error& e) {
      REQUIRE(e.code() == std::errc::timed_out);
      return n;
    }
  }
}
}  // namespace

TEST_CASE("two listeners with reuse_port share a port and both get connections") {
  weft::Runtime rt;
  rt.block_on([] {
    TcpListener a = weft::test::loopback_listener({.reuse_port = true});
    const Address addr = a.local_address();
    TcpListener b = TcpListener::bind(addr, {.reuse_port = true});
    REQUIRE(b.local_address() == addr);
    REQUIRE(reuse_port_of(a) == 1);
    REQUIRE(reuse_port_of(b) == 1);
    // The kernel picks a listener by a hash of each connection's addresses: with
    // 32 connections each gets some (all on one: odds 2^-31).
    constexpr int kConns = 32;
    std::vector<TcpStream> clients;
    for (int i = 0; i < kConns; ++i) clients.push_back(TcpStream::connect(addr, 5s));
    const int on_a = drain_accepts(a);
    const int on_b = drain_accepts(b);
    REQUIRE(on_a + on_b == kConns);
    REQUIRE(on_a > 0);
    REQUIRE(on_b > 0);
  });
}

TEST_CASE("without reuse_port a second listener cannot bind a port in use") {
  weft::Runtime rt;
  rt.block_on([] {
    TcpListener a = weft::test::loopback_listener();
    REQUIRE(reuse_port_of(a) == 0);
    try {
      (void)TcpListener::bind(a.local_address());
      FAIL("bound a second listener to a port in use");
    } catch (const std::system_error& e) {
      REQUIRE(e.code() == std::errc::address_in_use);
    }
    // Nor with reuse_port when the first listener did not set it.
    REQUIRE_THROWS_AS(TcpListener::bind(a.local_address(), {.reuse_port = true}), std::system_error);
  });
}
