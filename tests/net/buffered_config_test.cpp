// Config::recv_buffers / recv_buffer_size, the provided-buffer ring behind
// TcpStream::read_buffer. What this file proves: values the ring cannot have are
// refused by the Runtime's constructor with std::invalid_argument naming the
// field (not a failure at the first read), and recv_buffers = 0 turns every
// buffered read into a plain receive into a heap buffer that still delivers the
// bytes in order, end of stream included.
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include <weft/net/read_buffer.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::ReadBuffer;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

void require_refused(weft::Config cfg) {
  try {
    weft::Runtime rt(cfg);
    FAIL("the Runtime accepted recv_buffers=" << cfg.recv_buffers << " recv_buffer_size=" << cfg.recv_buffer_size);
  } catch (const std::invalid_argument& e) {
    REQUIRE(std::string(e.what()).find("recv_buffers") != std::string::npos);
  }
}
}  // namespace

TEST_CASE(
    "recv_buffers that is not a power of two, above 32768, or with a zero buffer size is refused by the "
    "Runtime's constructor with invalid_argument naming it") {
  weft::Config cfg;
  cfg.recv_buffers = 100;
  require_refused(cfg);
  cfg.recv_buffers = 65536;
  require_refused(cfg);
  cfg.recv_buffers = 256;
  cfg.recv_buffer_size = 0;
  require_refused(cfg);
}

TEST_CASE(
    "recv_buffers = 0: read_buffer does plain receives into heap buffers, bytes in order, end of stream "
    "empty") {
  weft::Config cfg;
  cfg.recv_buffers = 0;
  cfg.recv_buffer_size = 1024;
  weft::Runtime rt(cfg);
  rt.block_on([] {
    auto l = weft::test::loopback_listener();
    auto [client, server] = weft::test::tcp_pair(l);
    std::string sent;
    for (int i = 0; i < 3000; ++i) sent.push_back(static_cast<char>(weft::test::pattern_byte(5, i)));
    client.write_all(sent);
    client.shutdown();
    std::string got;
    for (;;) {
      ReadBuffer b = server.read_buffer(20s);
      if (b.empty()) break;
      REQUIRE_FALSE(b.from_ring());
      REQUIRE(b.size() <= 1024);
      got.append(b.data(), b.size());
    }
    REQUIRE(got == sent);
    REQUIRE(server.read_buffer(20s).empty());
  });
  // No ring: nothing was armed, and each read (3000 bytes in chunks of at most
  // 1024, then the end twice) was one plain receive.
  const weft::Stats st = rt.stats();
  REQUIRE(st.recv_arms == 0);
  REQUIRE(st.recv_starved == 0);
  REQUIRE(st.recv_plain >= 5);
}
