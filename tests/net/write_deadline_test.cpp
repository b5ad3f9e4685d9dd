// Deadlines of the calls that send: a write to a peer that does not read, a connect
// that gets no answer, and a datagram to a receiver whose queue is full each end
// with std::errc::timed_out at their timeout (the reads' deadlines are in tcp_test).
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

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

// Runs `call`; returns the message of the timed_out it must throw ("" if it
// returned, the error's what() prefixed "other: " for any other error).
template <class F>
std::string timed_out_message(F&& call) {
  try {
    call();
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::timed_out) return e.what();
    return std::string("other: ") + e.what();
  }
  return "";
}

void shrink_buffers(TcpStream& writer, TcpStream& reader) {
  int small = 4096;
  REQUIRE(setsockopt(writer.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  REQUIRE(setsockopt(reader.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
}
}  // namespace

TEST_CASE("write_all, send and writev to a peer that does not read end with timed_out at their timeout") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    shrink_buffers(c, s);
    std::vector<char> big(8 << 20, 'w');
    std::string what = timed_out_message([&] { c.write_all(big.data(), big.size(), 200ms); });
    INFO(what);
    REQUIRE(what.find("write_all") != std::string::npos);
    REQUIRE(what.find("other: ") == std::string::npos);
    // The buffers are full now: a single send or writev waits too.
    what = timed_out_message([&] { (void)c.send(big.data(), big.size(), 0, 100ms); });
    INFO(what);
    REQUIRE(what.find("send") != std::string::npos);
    REQUIRE(what.find("other: ") == std::string::npos);
    iovec iov[2] = {{big.data(), 1024}, {big.data() + 1024, 1024}};
    what = timed_out_message([&] { (void)c.writev(iov, 100ms); });
    INFO(what);
    REQUIRE(what.find("writev") != std::string::npos);
    REQUIRE(what.find("other: ") == std::string::npos);
  });
}

// A listener with backlog 0 holds one unaccepted connection; the kernel drops the
// SYNs of the next ones (the client would retry only after a second).
TEST_CASE("a connect that gets no answer ends with timed_out at its timeout") {
  weft::Runtime rt;
  rt.block_on([] {
    TcpListener l = weft::test::loopback_listener({.backlog = 0});
    std::vector<TcpStream> queued;
    std::string what;
    for (int i = 0; i < 8 && what.empty(); ++i) {
      what = timed_out_message([&] { queued.push_back(TcpStream::connect(l.local_address(), 300ms)); });
    }
    INFO(what);
    REQUIRE(!what.empty());
    REQUIRE(what.find("connect") != std::string::npos);
    REQUIRE(what.find("other: ") == std::string::npos);
  });
}

// Unix datagram sockets block the sender while the receiver's queue is full.
TEST_CASE("send_to and send to a receiver whose queue is full end with timed_out at their timeout") {
  weft::Runtime rt;
  rt.block_on([] {
    const std::string name = "@weft-write-deadline-" + std::to_string(::getpid());
    UdpSocket rx = UdpSocket::bind(Address::unix_path(name));
    UdpSocket tx = UdpSocket::bind(Address::unix_path(name + "-tx"));
    char d[256] = {};
    std::string what;
    for (int i = 0; i < 100000 && what.empty(); ++i)
      what = timed_out_message([&] { (void)tx.send_to(d, sizeof d, rx.local_address(), 100ms); });
    INFO(what);
    REQUIRE(what.find("send_to") != std::string::npos);
    REQUIRE(what.find("other: ") == std::string::npos);
    tx.connect(rx.local_address());
    what = timed_out_message([&] { (void)tx.send(d, sizeof d, 100ms); });
    INFO(what);
    REQUIRE(what.find("UdpSocket::send") != std::string::npos);
    REQUIRE(what.find("other: ") == std::string::npos);
  });
}
