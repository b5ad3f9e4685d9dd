// Traffic over IPv6 loopback (::1): a TCP connection both ways with the peers'
// addresses, and UDP datagrams with their sender. Skipped (exit 77) where the
// machine has no ::1 (IPv6 disabled, or a container without it).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/net/udp.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::Address;
using weft::net::TcpListener;
using weft::net::TcpStream;
using weft::net::UdpSocket;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

// Exits 77 unless a socket can bind ::1 here.
const bool kIpv6 = [] {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok) {
    std::fprintf(stderr, "SKIP: no IPv6 loopback (::1) here\n");
    std::exit(77);
  }
  return true;
}();
}  // namespace

TEST_CASE("a TCP connection over ::1 carries bytes both ways and names IPv6 peers") {
  weft::Runtime rt;
  rt.block_on([] {
    TcpListener l = TcpListener::bind(Address::ipv6_loopback(0));
    REQUIRE(l.local_address().family() == Address::Family::ipv6);
    REQUIRE(l.local_address().port() != 0);
    TcpStream c = TcpStream::connect(l.local_address(), 5s);
    TcpStream s = l.accept(5s);
    REQUIRE(s.peer_address().family() == Address::Family::ipv6);
    REQUIRE(s.peer_address().is_loopback());
    REQUIRE(s.peer_address() == c.local_address());
    c.write_all("over v6", 7, 5s);
    char got[7];
    s.read_exact(got, 7, 5s);
    REQUIRE(std::string(got, 7) == "over v6");
    s.write_all("back", 4, 5s);
    c.read_exact(got, 4, 5s);
    REQUIRE(std::string(got, 4) == "back");
    // By name too: "[::1]" through connect(host, service).
    TcpStream c2 = TcpStream::connect("::1", std::to_string(l.local_address().port()), 5s);
    TcpStream s2 = l.accept(5s);
    REQUIRE(c2.peer_address() == l.local_address());
  });
}

TEST_CASE("UDP datagrams over ::1 arrive with their IPv6 sender") {
  weft::Runtime rt;
  rt.block_on([] {
    UdpSocket a = UdpSocket::bind(Address::ipv6_loopback(0));
    UdpSocket b = UdpSocket::bind(Address::ipv6_loopback(0));
    REQUIRE(b.send_to("v6 datagram", 11, a.local_address(), 5s) == 11);
    char got[32];
    Address from;
    const std::size_t n = a.recv_from(got, sizeof got, &from, 5s);
    REQUIRE(std::string(got, n) == "v6 datagram");
    REQUIRE(from.family() == Address::Family::ipv6);
    REQUIRE(from == b.local_address());
  });
}
