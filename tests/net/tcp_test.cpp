// TcpListener and TcpStream on loopback: addresses, end of stream, byte-exact
// transfer at random split/coalesce sizes, resets without SIGPIPE, deadlines,
// refused connects, name lookup, cancellation, close with pending ops, bad input.
// The domain checks are in tcp_domain_test.cpp.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
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
using weft::test::has_code;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
}  // namespace

TEST_CASE("a listener on port 0 reports the real port; both ends see each other's addresses") {
  weft::test::on_loopback_connection([](TcpListener& l, TcpStream& c, TcpStream& s) {
    REQUIRE(l.local_address().port() != 0);
    REQUIRE(c.peer_address() == l.local_address());
    REQUIRE(s.peer_address() == c.local_address());
    REQUIRE(s.local_address() == l.local_address());
  });
}

TEST_CASE("read_some returns 0 at end of stream; read_exact throws UnexpectedEof with the byte count") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    c.write_all("abc");
    c.shutdown(weft::net::Shutdown::write);
    char buf[8];
    try {
      s.read_exact(buf, 8);
      FAIL("read_exact returned at end of stream");
    } catch (const weft::net::UnexpectedEof& e) {
      REQUIRE(e.got() == 3);
      REQUIRE(e.wanted() == 8);
      REQUIRE(has_code(e, std::errc::no_message_available));
      REQUIRE(std::string(e.what()).find("read_exact") != std::string::npos);
    }
    REQUIRE(std::string(buf, 3) == "abc");
    REQUIRE(s.read_some(buf, sizeof buf) == 0);  // still end of stream: a result, not an error
    REQUIRE(s.recv(buf, sizeof buf) == 0);
  });
}

TEST_CASE("a byte stream split and coalesced at random sizes arrives byte-exact") {
  weft::Runtime rt;
  const std::size_t total = static_cast<std::size_t>(weft::test::scaled(4 << 20));
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    weft::test::on_loopback_connection(rt, [&](TcpListener&, TcpStream& c, TcpStream& s) {
      auto writer = weft::spawn([&, seed] {
        weft::test::Rng rng(seed);
        std::vector<unsigned char> chunk(64 * 1024);
        std::size_t off = 0;
        while (off < total) {
          const std::size_t n = std::min(total - off, rng.between(1, chunk.size()));
          for (std::size_t i = 0; i < n; ++i) chunk[i] = weft::test::pattern_byte(seed, off + i);
          switch (rng.next() % 3) {
            case 0:
              c.write_all(chunk.data(), n);
              break;
            case 1: {  // gather write of two pieces, then the rest
              const std::size_t h = n / 2;
              iovec iov[2] = {{chunk.data(), h}, {chunk.data() + h, n - h}};
              std::size_t w = c.writev(iov);
              if (w < n) c.write_all(chunk.data() + w, n - w);
              break;
            }
            default: {
              std::size_t w = 0;
              while (w < n) w += c.send(chunk.data() + w, n - w);
            }
          }
          off += n;
          if (rng.next() % 8 == 0) weft::yield();
        }
        c.shutdown(weft::net::Shutdown::write);
      });
      weft::test::Rng rng(seed * 77);
      std::vector<unsigned char> buf(64 * 1024);
      std::size_t got = 0;
      bool exact = true;
      for (;;) {
        const std::size_t want = rng.between(1, buf.size());
        std::size_t n;
        if (rng.next() % 2 == 0) {
          n = s.read_some(buf.data(), want);
        } else {
          const std::size_t h = want / 2 + 1;
          iovec iov[2] = {{buf.data(), h}, {buf.data() + h, want - h + 1}};
          n = s.readv(iov);
        }
        if (n == 0) break;
        for (std::size_t i = 0; i < n && exact; ++i) exact = buf[i] == weft::test::pattern_byte(seed, got + i);
        got += n;
      }
      writer.join();
      REQUIRE(exact);
      REQUIRE(got == total);
    });
  }
}

TEST_CASE("a peer that resets mid-write gives ECONNRESET or EPIPE, never SIGPIPE") {
  // Default disposition: a SIGPIPE would kill this test binary.
  struct sigaction dfl {
  }, old{};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, &old);
  weft::Runtime rt;
  rt.block_on([] {
    TcpListener l = weft::test::loopback_listener();
    for (int round = 0; round < 5; ++round) {
      auto pr = weft::test::tcp_pair(l);
      TcpStream& c = pr.first;
      TcpStream& s = pr.second;
      auto resetter = weft::spawn([&s] {
        char b[1024];
        (void)s.read_some(b, sizeof b);  // the writer has started
        linger lg{1, 0};                 // close with RST
        REQUIRE(setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
        s.close();
      });
      std::vector<char> big(1 << 20, 'x');
      bool failed = false;
      try {
        for (int i = 0; i < 1000; ++i) c.write_all(big.data(), big.size());
      } catch (const std::system_error& e) {
        INFO(e.what());
        failed = has_code(e, std::errc::connection_reset) || has_code(e, std::errc::broken_pipe);
        REQUIRE(std::string(e.what()).find("write_all") != std::string::npos);
      }
      REQUIRE(failed);
      resetter.join();
    }
  });
  sigaction(SIGPIPE, &old, nullptr);
}

TEST_CASE("a read past its timeout throws timed_out, and the stream stays usable") {
  weft::test::on_loopback_connection([](TcpListener& l, TcpStream& c, TcpStream& s) {
    char buf[16];
    const auto t0 = std::chrono::steady_clock::now();
    try {
      (void)s.read_some(buf, sizeof buf, 20ms);
      FAIL("no timeout");
    } catch (const std::system_error& e) {
      REQUIRE(has_code(e, std::errc::timed_out));
      REQUIRE(std::string(e.what()).find("read_some") != std::string::npos);
    }
    REQUIRE(std::chrono::steady_clock::now() - t0 >= 20ms);
    try {
      s.read_exact(buf, 4, 0ms);  // zero: fails unless it can complete at once
      FAIL("no timeout");
    } catch (const std::system_error& e) {
      REQUIRE(has_code(e, std::errc::timed_out));
    }
    c.write_all("ping");
    s.read_exact(buf, 4, 5s);
    REQUIRE(std::string(buf, 4) == "ping");
    try {
      (void)l.accept(10ms);
      FAIL("no timeout");
    } catch (const std::system_error& e) {
      REQUIRE(has_code(e, std::errc::timed_out));
    }
  });
}

TEST_CASE("connect to a closed port throws ECONNREFUSED naming the address") {
  weft::Runtime rt;
  rt.block_on([] {
    const Address gone = weft::test::closed_loopback_port();
    try {
      (void)TcpStream::connect(gone, 5s);
      FAIL("connected to a closed port");
    } catch (const std::system_error& e) {
      REQUIRE(has_code(e, std::errc::connection_refused));
      const std::string what = e.what();
      REQUIRE(what.find("weft::net::TcpStream::connect") != std::string::npos);
      REQUIRE(what.find(gone.to_string()) != std::string::npos);
    }
  });
}

TEST_CASE("connect by name resolves localhost and reaches the listener") {
  weft::Runtime rt;
  rt.block_on([] {
    TcpListener l = weft::test::loopback_listener();
    const std::string port = std::to_string(l.local_address().port());
    auto acceptor = weft::spawn([&] { return l.accept(10s); });
    TcpStream c = TcpStream::connect("127.0.0.1", port, 10s);
    TcpStream s = acceptor.join();
    c.write_all("hi");
    char b[2];
    s.read_exact(b, 2);
    REQUIRE(std::string(b, 2) == "hi");
    // "localhost" may resolve to ::1 first, where nobody listens: the connect then
    // tries the next address.
    auto acceptor2 = weft::spawn([&] { return l.accept(10s); });
    TcpStream c2 = TcpStream::connect("localhost", port, 10s);
    TcpStream s2 = acceptor2.join();
    REQUIRE(c2.peer_address().is_loopback());
  });
}

TEST_CASE("nodelay and keepalive options reach the socket") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream&) {
    c.set_nodelay(true);
    c.set_keepalive(true, 30s, 5s, 4);
    int v = 0;
    socklen_t len = sizeof v;
    REQUIRE(getsockopt(c.native_handle(), IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0);
    REQUIRE(v == 1);
    REQUIRE(getsockopt(c.native_handle(), SOL_SOCKET, SO_KEEPALIVE, &v, &len) == 0);
    REQUIRE(v == 1);
    REQUIRE(getsockopt(c.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &v, &len) == 0);
    REQUIRE(v == 30);
    REQUIRE_THROWS_AS(c.set_keepalive(true, -1s), std::invalid_argument);
  });
}

TEST_CASE("sendmsg delivers a gather write in order") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    char a[] = "one-", b[] = "two";
    iovec iov[2] = {{a, 4}, {b, 3}};
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    REQUIRE(c.sendmsg(m) == 7);
    char buf[7];
    s.read_exact(buf, 7);
    REQUIRE(std::string(buf, 7) == "one-two");
  });
}

TEST_CASE("close while a read and a write are pending: both see operation_canceled, the fd is gone") {
  weft::Runtime rt;
  const int before = weft::test::stable_open_fds();
  weft::test::on_loopback_connection(rt, [](TcpListener&, TcpStream&, TcpStream& s) {
    int small = 4096;
    REQUIRE(setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    std::vector<char> big(8 << 20);
    std::error_code read_ec, write_ec;
    auto reader = weft::spawn(
        [&] {
          char b[64];
          try {
            (void)s.read_some(b, sizeof b);
          } catch (const std::system_error& e) {
            read_ec = e.code();
          }
        },
        {.launch = weft::Launch::dispatch});
    auto writer = weft::spawn(
        [&] {
          try {
            s.write_all(big.data(), big.size());
          } catch (const std::system_error& e) {
            write_ec = e.code();
          }
        },
        {.launch = weft::Launch::dispatch});
    s.close();
    REQUIRE(!s.is_open());
    reader.join();
    writer.join();
    REQUIRE(read_ec == std::errc::operation_canceled);
    REQUIRE(write_ec == std::errc::operation_canceled);
    // Any later call: a clear "closed" error.
    char b[4];
    REQUIRE_THROWS_WITH(s.read_some(b, 4), Catch::Contains("closed"));
  });
  REQUIRE(weft::test::stable_open_fds() == before);
}

TEST_CASE("a fiber cancelled in a pending read resumes with FiberCancelled after the completion") {
  std::atomic<bool> reading{false};
  std::atomic<int> outcome{0};  // 1 = FiberCancelled, 2 = something else
  const int before = weft::test::stable_open_fds();
  {
    weft::Runtime rt;
    rt.spawn_detached([&] {
      weft::test::LoopbackConnection conn = weft::test::loopback_connection();
      TcpStream& s = conn.server;
      char b[16];
      reading = true;
      try {
        (void)s.read_some(b, sizeof b);
        outcome = 2;
      } catch (const weft::FiberCancelled&) {
        outcome = 1;
        throw;
      } catch (...) {
        outcome = 2;
      }
    });
    while (!reading) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(10ms);
    rt.shutdown();
    REQUIRE(rt.stats().stale_completions == 0);
  }
  REQUIRE(outcome == 1);
  REQUIRE(weft::test::stable_open_fds() == before);
}

// A cancellation that arrives while an op is in flight waits for the op's end;
// when the op then ends with an error of its own (here a connect refused at once:
// nobody listens on the port) the call throws FiberCancelled, not that error: a
// call is cut short by the cancellation unless its op's result is returned.
TEST_CASE("a fiber cancelled while its op fails with an errno throws FiberCancelled") {
  weft::Runtime rt;
  rt.block_on([] {
    const Address closed_port = weft::test::closed_loopback_port();
    int connect_errors = 0;
    std::string first;
    for (int i = 0; i < 50; ++i) {
      auto h = weft::spawn(
          [&] {
            try {
              (void)TcpStream::connect(closed_port, 10s);
            } catch (const std::system_error& e) {
              if (connect_errors++ == 0) first = e.what();
            }
          },
          {.name = "connect", .launch = weft::Launch::dispatch});
      h.cancel();  // parked in its connect, which the kernel refuses at once
      try {
        h.join();
      } catch (const weft::FiberCancelled&) {
      }
    }
    INFO(first);
    REQUIRE(connect_errors == 0);
  });
}

TEST_CASE("bad input gives clear errors: empty address, port in use, unix stream sockets work") {
  weft::Runtime rt;
  rt.block_on([] {
    REQUIRE_THROWS_AS(TcpListener::bind(Address()), std::invalid_argument);
    REQUIRE_THROWS_AS(TcpStream::connect(Address()), std::invalid_argument);
    REQUIRE_THROWS_AS(TcpListener::bind(Address::ipv4_loopback(0), {.backlog = -1}), std::invalid_argument);
    TcpListener l = weft::test::loopback_listener();
    try {
      (void)TcpListener::bind(l.local_address(), {.reuse_addr = false});
      FAIL("bound a port in use");
    } catch (const std::system_error& e) {
      REQUIRE(e.code() == std::errc::address_in_use);
      REQUIRE(std::string(e.what()).find("weft::net::TcpListener::bind") != std::string::npos);
    }
    // A Unix-domain stream (abstract name): same calls.
    const Address path = Address::unix_path("@weft-net-test-" + std::to_string(::getpid()));
    TcpListener u = TcpListener::bind(path);
    auto acceptor = weft::spawn([&] { return u.accept(10s); });
    TcpStream c = TcpStream::connect(path, 10s);
    TcpStream s = acceptor.join();
    c.write_all("unix");
    char b[4];
    s.read_exact(b, 4, 10s);
    REQUIRE(std::string(b, 4) == "unix");
    INFO(s.peer_address().to_string());  // unnamed client: whatever Address makes of it, no throw
    REQUIRE(s.peer_address().family() != Address::Family::ipv4);
  });
}
