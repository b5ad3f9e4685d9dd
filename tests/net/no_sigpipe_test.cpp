// Writes to a peer that has gone never raise SIGPIPE: send, writev and sendmsg
// all pass MSG_NOSIGNAL, so the call throws EPIPE or ECONNRESET and the process
// lives. Each runs in a child with SIGPIPE at its default disposition (which
// kills the process), so a missing MSG_NOSIGNAL fails the test, not the binary.
// Recent kernels add MSG_NOSIGNAL to every io_uring send themselves, so there
// these pass either way; they guard the kernels that do not.
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::TcpListener;
using weft::net::TcpStream;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

using Write = std::function<std::size_t(TcpStream&, std::vector<char>&)>;

// In a child: the peer closes (after reading nothing), then `write` runs until it
// throws. Exit 0: it threw EPIPE or ECONNRESET; 1: another error; 2: never threw.
int write_to_closed_peer(const Write& write) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, nullptr);
  weft::Runtime rt;
  return rt.block_on([&] {
    TcpListener l = weft::test::loopback_listener();
    auto [c, s] = weft::test::tcp_pair(l);
    s.close();
    std::vector<char> buf(64 * 1024, 'x');
    try {
      // The first writes may still be taken (the peer's RST is on its way).
      for (int i = 0; i < 1000; ++i) {
        (void)write(c, buf);
        weft::sleep_for(1ms);
      }
    } catch (const std::system_error& e) {
      std::fprintf(stderr, "threw: %s\n", e.what());
      return e.code() == std::errc::broken_pipe || e.code() == std::errc::connection_reset ? 0 : 1;
    }
    return 2;
  });
}

void check(const Write& write) {
  const auto r = weft::test::run_in_child([&] { return write_to_closed_peer(write); });
  INFO(r.output);
  if (r.signaled && r.signal == SIGPIPE) FAIL("killed by SIGPIPE");
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
}
}  // namespace

TEST_CASE("writev to a peer that closed throws EPIPE or ECONNRESET and raises no SIGPIPE") {
  check([](TcpStream& c, std::vector<char>& buf) {
    const std::size_t h = buf.size() / 2;
    iovec iov[2] = {{buf.data(), h}, {buf.data() + h, buf.size() - h}};
    return c.writev(iov, 5s);
  });
}

TEST_CASE("sendmsg to a peer that closed throws EPIPE or ECONNRESET and raises no SIGPIPE") {
  check([](TcpStream& c, std::vector<char>& buf) {
    iovec iov{buf.data(), buf.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    return c.sendmsg(m, 0, 5s);
  });
}

TEST_CASE("send and write_all to a peer that closed throw EPIPE or ECONNRESET and raise no SIGPIPE") {
  check([](TcpStream& c, std::vector<char>& buf) { return c.send(buf.data(), buf.size(), 0, 5s); });
  check([](TcpStream& c, std::vector<char>& buf) {
    c.write_all(buf.data(), buf.size(), 5s);
    return buf.size();
  });
}
