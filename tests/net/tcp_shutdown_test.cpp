// TcpStream::shutdown with each direction: Shutdown::read ends this side's reads
// (a parked read and later ones return the end of stream) while writes still reach
// the peer; Shutdown::both also ends the writes (the peer reads the end of stream,
// a later write throws EPIPE). Shutdown::write is covered by tcp_test.
#include <chrono>
#include <string>
#include <system_error>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::Shutdown;
using weft::net::TcpListener;
using weft::net::TcpStream;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("shutdown(read) ends a parked read and later reads with the end of stream; writes still flow") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    std::size_t parked_got = 99;
    auto reader = weft::spawn(
        [&] {
          char b;
          parked_got = s.read_some(&b, 1, 5s);
        },
        {.launch = weft::Launch::dispatch});
    s.shutdown(Shutdown::read);
    reader.join();
    REQUIRE(parked_got == 0);
    char b;
    REQUIRE(s.read_some(&b, 1, 5s) == 0);
    s.write_all("still", 5, 5s);
    char got[5];
    c.read_exact(got, 5, 5s);
    REQUIRE(std::string(got, 5) == "still");
    REQUIRE(s.is_open());
  });
}

TEST_CASE("shutdown(both) ends both directions: the peer reads the end of stream and a write throws EPIPE") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    s.shutdown(Shutdown::both);
    char b;
    REQUIRE(c.read_some(&b, 1, 5s) == 0);
    REQUIRE(s.read_some(&b, 1, 5s) == 0);
    try {
      s.write_all("x", 1, 5s);
      FAIL("a write after shutdown(both) succeeded");
    } catch (const std::system_error& e) {
      INFO(e.what());
      REQUIRE(e.code() == std::errc::broken_pipe);
    }
  });
}

TEST_CASE("shutdown of a closed stream throws bad_file_descriptor") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream&, TcpStream& s) {
    s.close();
    try {
      s.shutdown(Shutdown::both);
      FAIL("shutdown of a closed stream succeeded");
    } catch (const std::system_error& e) {
      REQUIRE(e.code() == std::errc::bad_file_descriptor);
    }
  });
}
