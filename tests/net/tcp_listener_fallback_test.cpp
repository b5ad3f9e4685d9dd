// TcpListener::bind's syscall fallback. Where the ring has IORING_OP_BIND/LISTEN
// (kernel 6.11+) bind() uses them, so the bind(2)/listen(2) path that older
// kernels take never runs in the other tests. The test hook
// detail::TestAccess::bind_listener forces it. Proves: with the hook on, a listener
// (TCP and Unix-domain) binds, listens, accepts and echoes; a port in use gives the
// same EADDRINUSE std::system_error, naming the address, as the ring path; and
// with the hook off the ring ops are used where the ring has them (observed as
// SQEs in Runtime::stats()).
#include <unistd.h>

#include <cstdint>
#include <string>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/runtime/test_access.hpp>
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

// Kernel ABI opcode numbers (6.11+); liburing 2.3's headers stop before them.
constexpr int kOpBind = 56;
constexpr int kOpListen = 57;

/// Binds and listens with the bind(2)/listen(2) syscalls (the hook on).
TcpListener bind_with_syscalls(const Address& addr) {
  return weft::detail::TestAccess::bind_listener(addr, {}, false);
}

/// Connects to `l`, sends `msg`, half-closes, and returns what the echo server
/// accepted by `l` sent back before end of stream (fiber only).
std::string echo_through(TcpListener& l, const std::string& msg) {
  auto server = weft::spawn([&] {
    TcpStream s = l.accept(10s);
    weft::test::echo_until_eof(s);
  });
  TcpStream c = TcpStream::connect(l.local_address(), 10s);
  c.write_all(msg.data(), msg.size(), 10s);
  c.shutdown(weft::net::Shutdown::write);
  std::string back;
  char buf[256];
  for (std::size_t n; (n = c.read_some(buf, sizeof buf, 10s)) != 0;) back.append(buf, n);
  server.join();
  return back;
}

/// What binding `addr` (in use) throws, with the ring ops or (hook on) the syscalls.
std::system_error bind_error(const Address& addr, bool syscalls) {
  try {
    (void)weft::detail::TestAccess::bind_listener(addr, {.reuse_addr = false}, !syscalls);
  } catch (const std::system_error& e) {
    return e;
  }
  FAIL("bound an address in use: " << addr.to_string());
  throw std::logic_error("unreachable");
}

std::uint64_t sqes(weft::Runtime& rt) {
  return rt.stats().sqes_submitted;
}
}  // namespace

TEST_CASE("with the syscall hook on, a TCP listener binds, listens, accepts and echoes") {
  weft::Runtime rt;
  rt.block_on([] {
    TcpListener l = bind_with_syscalls(Address::ipv4_loopback(0));
    REQUIRE(l.is_open());
    REQUIRE(l.local_address().port() != 0);
    REQUIRE(echo_through(l, "through bind(2) and listen(2)") == "through bind(2) and listen(2)");
  });
}

TEST_CASE("with the syscall hook on, a Unix-domain listener binds, listens, accepts and echoes") {
  weft::Runtime rt;
  rt.block_on([] {
    const Address path = Address::unix_path("@weft-fallback-test-" + std::to_string(::getpid()));
    TcpListener l = bind_with_syscalls(path);
    REQUIRE(l.local_address() == path);
    REQUIRE(echo_through(l, "unix") == "unix");
  });
}

TEST_CASE("with the syscall hook on, a port in use gives the ring path's EADDRINUSE, naming the address") {
  weft::Runtime rt;
  rt.block_on([] {
    TcpListener l = weft::test::loopback_listener();
    const std::system_error via_syscalls = bind_error(l.local_address(), true);
    const std::system_error via_ring = bind_error(l.local_address(), false);
    for (const std::system_error* e : {&via_syscalls, &via_ring}) {
      INFO(e->what());
      REQUIRE(e->code() == std::errc::address_in_use);
      const std::string what = e->what();
      REQUIRE(what.find("weft::net::TcpListener::bind") != std::string::npos);
      REQUIRE(what.find(l.local_address().to_string()) != std::string::npos);
    }
    REQUIRE(std::string(via_syscalls.what()) == via_ring.what());
    REQUIRE(via_syscalls.code() == via_ring.code());
  });
}

TEST_CASE("the hook on submits no SQE for bind and listen; off, the ring ops are used where the ring has them") {
  weft::Runtime rt;
  rt.block_on([&rt] {
    const auto& ring = weft::detail::t_state.worker->ring_info();
    const bool ring_ops = ring.has_op(kOpBind) && ring.has_op(kOpListen);
    // Socket creation, options and getsockname are syscalls: with the hook on, bind()
    // never parks, so no SQE can be submitted meanwhile.
    std::uint64_t before = sqes(rt);
    TcpListener with_syscalls = bind_with_syscalls(Address::ipv4_loopback(0));
    REQUIRE(sqes(rt) - before == 0);
    before = sqes(rt);
    TcpListener by_default = TcpListener::bind(Address::ipv4_loopback(0));
    const std::uint64_t submitted = sqes(rt) - before;
    if (ring_ops) {
      REQUIRE(submitted >= 2);  // one BIND, one LISTEN (anything else only adds)
    } else {
      WARN("this ring has no IORING_OP_BIND/LISTEN: only the syscall path exists here");
      REQUIRE(submitted == 0);
    }
    REQUIRE(echo_through(by_default, "ring") == "ring");
  });
}
