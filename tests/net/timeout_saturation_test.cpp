// Every net call that takes a duration accepts any std::chrono duration and
// saturates it: hours::max() (or any duration int64 nanoseconds cannot hold) means
// "no timeout", not a count that wrapped negative in the conversion at the call
// site and expired at once.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>

#include <catch2/catch.hpp>

#include <weft/net/resolve.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/net/udp.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using std::chrono::hours;
using std::chrono::minutes;
using weft::net::Address;
using weft::net::TcpListener;
using weft::net::TcpStream;
using weft::net::Timeout;
using weft::net::UdpSocket;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("a Timeout of a duration too long for nanoseconds is no timeout") {
  STATIC_REQUIRE(Timeout(hours::max()) == weft::net::kNoTimeout);
  STATIC_REQUIRE(Timeout(minutes::max()) == weft::net::kNoTimeout);
  STATIC_REQUIRE(Timeout(std::chrono::seconds::max()) == weft::net::kNoTimeout);
  STATIC_REQUIRE(Timeout(std::chrono::milliseconds(5)) == std::chrono::nanoseconds(5'000'000));
  STATIC_REQUIRE(Timeout(hours::min()) < Timeout(0s));  // negative stays negative: expires at once
  REQUIRE(Timeout(std::chrono::duration<double>(1e300)) == weft::net::kNoTimeout);
  REQUIRE(Timeout(std::chrono::duration<double, std::milli>(1.5)) == std::chrono::nanoseconds(1'500'000));
  // It is still a duration: user code that computed with the old alias compiles.
  const Timeout t = 2s;
  REQUIRE(t * 2 == 4s);
  REQUIRE(std::chrono::duration_cast<std::chrono::milliseconds>(t).count() == 2000);
  REQUIRE(t.count() == 2'000'000'000);
}

TEST_CASE("a read with a timeout of hours::max() waits for the peer's bytes") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    auto writer = weft::spawn([&c] {
      weft::sleep_for(50ms);  // the reads below are parked by now
      c.write_all("abc", 3);
    });
    char b[3];
    REQUIRE(s.read_some(b, 1, hours::max()) == 1);
    s.read_exact(b + 1, 2, minutes::max());
    REQUIRE(std::string(b, 3) == "abc");
    writer.join();
  });
}

TEST_CASE("accept, connect, write, buffered read and udp receive take hours::max() as no timeout") {
  weft::Runtime rt;
  rt.block_on([] {
    TcpListener l = weft::test::loopback_listener();
    auto client = weft::spawn([&l] {
      weft::sleep_for(50ms);  // the accept below is parked by now
      TcpStream c = TcpStream::connect(l.local_address(), hours::max());
      c.write_all("hello", 5, hours::max());
      c.write_all(std::string_view("!"), std::chrono::seconds::max());
      return c;
    });
    TcpStream s = l.accept(hours::max());
    TcpStream c = client.join();
    auto buf = s.read_buffer(hours::max());
    REQUIRE(!buf.empty());

    UdpSocket a = UdpSocket::bind(Address::ipv4_loopback(0));
    UdpSocket b = UdpSocket::bind(Address::ipv4_loopback(0));
    auto sender = weft::spawn([&] {
      weft::sleep_for(50ms);  // the receive below is parked by now
      (void)b.send_to("d", 1, a.local_address(), hours::max());
    });
    char d;
    Address from;
    REQUIRE(a.recv_from(&d, 1, &from, hours::max()) == 1);
    REQUIRE(from == b.local_address());
    sender.join();
  });
}

TEST_CASE("resolve takes hours::max() as no timeout") {
  weft::Runtime rt;
  const auto addrs = rt.block_on([] { return weft::net::resolve("localhost", "80", hours::max()); });
  REQUIRE(!addrs.empty());
  const auto hp = rt.block_on([] { return weft::net::resolve_host_port("localhost:80", hours::max()); });
  REQUIRE(!hp.empty());
}

TEST_CASE("keepalive intervals too long for the kernel are refused, not wrapped") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream&) {
    REQUIRE_THROWS_AS(c.set_keepalive(true, hours::max()), std::invalid_argument);
    REQUIRE_THROWS_AS(c.set_keepalive(true, 10s, hours::max()), std::invalid_argument);
    // In seconds this count wraps to exactly 1600 s, which the kernel would take.
    constexpr hours kWrapsTo1600s{640511947003803876};
    REQUIRE_THROWS_AS(c.set_keepalive(true, kWrapsTo1600s), std::invalid_argument);
    c.set_keepalive(true, 30s, 5s, 3);
  });
}
