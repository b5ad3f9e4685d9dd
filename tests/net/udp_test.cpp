// UdpSocket on loopback: send_to/recv_from round trip with the sender's address,
// connected send/recv, receive timeouts, close with a pending receive, and the
// plain-thread refusal.
#include <string>

#include <catch2/catch.hpp>

#include <weft/net/udp.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::Address;
using weft::net::UdpSocket;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("send_to/recv_from round trip carries the datagram and the sender's address") {
  weft::Runtime rt;
  rt.block_on([] {
    UdpSocket a = UdpSocket::bind(Address::ipv4_loopback(0));
    UdpSocket b = UdpSocket::bind(Address::ipv4_loopback(0));
    REQUIRE(a.local_address().port() != 0);
    for (int i = 0; i < 100; ++i) {
      const std::string msg = "datagram #" + std::to_string(i);
      REQUIRE(a.send_to(msg.data(), msg.size(), b.local_address()) == msg.size());
      char buf[64];
      Address from;
      const std::size_t n = b.recv_from(buf, sizeof buf, &from, 5s);
      REQUIRE(std::string(buf, n) == msg);
      REQUIRE(from == a.local_address());
      REQUIRE(b.send_to(buf, n, from) == n);  // and back
      REQUIRE(a.recv_from(buf, sizeof buf, nullptr, 5s) == n);
    }
    // An empty datagram is a datagram, not an end of stream.
    REQUIRE(a.send_to("", 0, b.local_address()) == 0);
    char c;
    REQUIRE(b.recv_from(&c, 1, nullptr, 5s) == 0);
  });
}

TEST_CASE("a connected UDP socket sends and receives with send/recv; a datagram too long is truncated") {
  weft::Runtime rt;
  rt.block_on([] {
    UdpSocket a = UdpSocket::bind(Address::ipv4_loopback(0));
    UdpSocket b = UdpSocket::bind(Address::ipv4_loopback(0));
    a.connect(b.local_address());
    b.connect(a.local_address());
    REQUIRE(a.peer_address() == b.local_address());
    REQUIRE(a.send("hello world", 11) == 11);
    char buf[5];
    REQUIRE(b.recv(buf, sizeof buf, 5s) == 5);
    REQUIRE(std::string(buf, 5) == "hello");
  });
}

TEST_CASE("recv past its timeout throws timed_out; close with a pending recv gives operation_canceled") {
  weft::Runtime rt;
  const int before = weft::test::stable_open_fds();
  rt.block_on([] {
    UdpSocket a = UdpSocket::bind(Address::ipv4_loopback(0));
    char buf[16];
    try {
      (void)a.recv_from(buf, sizeof buf, nullptr, 15ms);
      FAIL("no timeout");
    } catch (const std::system_error& e) {
      REQUIRE(e.code() == std::errc::timed_out);
    }
    std::error_code ec;
    auto waiter = weft::spawn(
        [&] {
          try {
            (void)a.recv(buf, sizeof buf);
          } catch (const std::system_error& e) {
            ec = e.code();
          }
        },
        {.launch = weft::Launch::dispatch});
    a.close();
    waiter.join();
    REQUIRE(ec == std::errc::operation_canceled);
  });
  REQUIRE(weft::test::stable_open_fds() == before);
}

TEST_CASE("UDP calls from a plain thread throw CrossRuntimeError") {
  REQUIRE_THROWS_AS(UdpSocket::bind(Address::ipv4_loopback(0)), weft::CrossRuntimeError);
  weft::Runtime rt;
  UdpSocket a = rt.block_on([] { return UdpSocket::bind(Address::ipv4_loopback(0)); });
  char b[4];
  REQUIRE_THROWS_AS(a.recv(b, 4), weft::CrossRuntimeError);
  REQUIRE_THROWS_AS(a.send_to(b, 4, a.local_address()), weft::CrossRuntimeError);
  REQUIRE_THROWS_AS(a.connect(a.local_address()), weft::CrossRuntimeError);
}
