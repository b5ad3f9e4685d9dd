// ReadBuffer::consume: a parser drops the bytes it used from the front of a lent
// chunk; the rest stays in place, more than size() empties it, and the lease still
// gives its buffer back (the ring's buffers keep cycling). Both kinds of lease: a
// ring buffer (on io_uring; a heap buffer on epoll, which has no ring) and the
// heap fallback (Config::recv_buffers = 0). Skipped (77) where
// the kernel has no multishot receive into a provided-buffer ring. Code written
// against the former name builds: net/recv_buffer.hpp and RecvBuffer (deprecated)
// are ReadBuffer (checked when this file compiles).
#include <chrono>
#include <string>
#include <type_traits>

#include <catch2/catch.hpp>

#include <weft/net/read_buffer.hpp>
#include <weft/net/recv_buffer.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "buffered_test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::ReadBuffer;
using weft::net::TcpListener;
using weft::net::TcpStream;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static_assert(std::is_same_v<weft::net::RecvBuffer, ReadBuffer>, "the former name is an alias of ReadBuffer");
#pragma GCC diagnostic pop

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
const bool kBuffered = (weft::test::require_buffered_recv(), true);

// The next chunk holding all of `want` (sent in one write, so one chunk has it).
ReadBuffer chunk_of(TcpStream& c, TcpStream& s, const std::string& want) {
  c.write_all(want, 5s);
  ReadBuffer b = s.read_buffer(5s);
  REQUIRE(b.view() == want);
  return b;
}

// `ring`: the leases are ring buffers (else heap buffers).
void check_consume(weft::Runtime& rt, bool ring) {
  weft::test::on_loopback_connection(rt, [ring](TcpListener&, TcpStream& c, TcpStream& s) {
    ReadBuffer b = chunk_of(c, s, "GET / HTTP/1.1\r\n");
    REQUIRE(b.from_ring() == ring);
    const char* start = b.data();
    b.consume(4);
    REQUIRE(b.view() == "/ HTTP/1.1\r\n");
    REQUIRE(b.data() == start + 4);  // in place: no copy
    REQUIRE(b.size() == 12);
    b.consume(0);
    REQUIRE(b.view() == "/ HTTP/1.1\r\n");
    b.consume(100);  // more than is left: empty, not past the end
    REQUIRE(b.empty());
    REQUIRE(b.size() == 0);
    b.reset();
    // The consumed lease went back: many more chunks flow through the ring.
    for (int i = 0; i < 600; ++i) {
      ReadBuffer n = chunk_of(c, s, "chunk " + std::to_string(i));
      REQUIRE(n.from_ring() == ring);
      n.consume(6);
      REQUIRE(n.view() == std::to_string(i));
    }
  });
}
}  // namespace

TEST_CASE("consume drops bytes from the front of a lease of the default config in place") {
  weft::Runtime rt;
  // io_uring lends ring buffers; epoll has no provided-buffer ring and reads into
  // heap buffers (docs/deployment.md).
  check_consume(rt, rt.stats().engine != weft::Engine::epoll);
}

TEST_CASE("consume drops bytes from the front of a heap buffer lease in place") {
  weft::Config cfg;
  cfg.recv_buffers = 0;
  weft::Runtime rt(cfg);
  check_consume(rt, false);
  REQUIRE(rt.stats().recv_plain > 0);
}
