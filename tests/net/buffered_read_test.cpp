// Buffered reads: TcpStream::read_buffer() lends chunks of the worker's
// provided-buffer ring that one multishot receive per stream fills
// (net/buffered_recv.cpp). What this file proves:
//  - the bytes arrive byte-exact and in order: with ~200 concurrent echo
//    connections, with a 2-buffer ring that forces the heap fallback while readers
//    hold leases, and across the flow cap (the receive cancelled past 16 queued
//    chunks and armed again by a later read);
//  - read_some, read_exact, readv and recv read the same queue in order, and recv
//    with flags is refused while the queue is in use;
//  - end of stream reads as an empty lease every time, a reset is thrown once (or
//    reads as the end), a deadline throws timed_out and leaves the stream usable,
//    and a second fiber waiting on the same stream gets std::logic_error;
//  - close while a reader waits (incident 002) gives operation_canceled, shutdown
//    cancels a waiting reader with FiberCancelled, neither leaks an fd;
//  - a lease may outlive its Runtime and may be dropped on another thread (its
//    buffer goes back to the ring), and a Runtime stops without hanging while a
//    stream kept outside any fiber still has its receive armed.
// The binary skips (77) without io_uring, or where the kernel has no multishot
// receive into a provided-buffer ring (before 6.0): then nothing here is buffered.
#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <weft/net/recv_buffer.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::RecvBuffer;
using weft::net::TcpListener;
using weft::net::TcpStream;
using weft::test::pattern_byte;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

// One multishot receive with buffer selection on a socketpair, on a ring of our
// own: true when its first CQE carries a ring buffer and IORING_CQE_F_MORE.
bool multishot_recv_works() {
  io_uring ring;
  if (io_uring_queue_init(8, &ring, 0) < 0) return false;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* mem = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  static char bufs[2][64];
  int sv[2] = {-1, -1};
  bool ok = false;
  if (mem != MAP_FAILED && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
    auto* br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
    reg.ring_entries = 2;
    reg.bgid = 7;
    if (io_uring_register_buf_ring(&ring, &reg, 0) == 0) {
      for (int i = 0; i < 2; ++i)
        io_uring_buf_ring_add(br, bufs[i], sizeof bufs[i], static_cast<unsigned short>(i), io_uring_buf_ring_mask(2),
                              i);
      io_uring_buf_ring_advance(br, 2);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_recv_multishot(sqe, sv[0], nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 7;
      io_uring_submit(&ring);
      if (::write(sv[1], "x", 1) == 1) {
        io_uring_cqe* cqe = nullptr;
        __kernel_timespec ts{5, 0};
        if (io_uring_wait_cqe_timeout(&ring, &cqe, &ts) == 0) {
          ok = cqe->res == 1 && (cqe->flags & IORING_CQE_F_MORE) && (cqe->flags & IORING_CQE_F_BUFFER);
          io_uring_cqe_seen(&ring, cqe);
        }
      }
    }
  }
  io_uring_queue_exit(&ring);  // cancels the receive, drops the registration
  for (int fd : sv)
    if (fd >= 0) ::close(fd);
  if (mem != MAP_FAILED) ::munmap(mem, page);
  return ok;
}

const bool kBufferedRecv = [] {
  if (!multishot_recv_works()) {
    std::fprintf(stderr, "SKIP: no multishot receive into a provided-buffer ring here (kernel < 6.0?)\n");
    std::exit(77);
  }
  return true;
}();

bool has_code(const std::system_error& e, std::errc c) {
  return e.code() == std::make_error_code(c);
}

/// True when the `n` bytes at `p` are bytes [off, off + n) of pattern `seed`.
bool matches(std::uint64_t seed, std::uint64_t off, const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i)
    if (b[i] != pattern_byte(seed, off + i)) return false;
  return true;
}

/// Bytes [off, off + n) of pattern `seed`.
std::string pattern(std::uint64_t seed, std::uint64_t off, std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(pattern_byte(seed, off + i));
  return s;
}

/// Writes bytes [0, total) of pattern `seed` in pieces of 1..max_piece bytes (sizes
/// from Rng(rng_seed)); `progress` (if given) follows the bytes written.
void write_pattern(TcpStream& s, std::uint64_t seed, std::size_t total, std::size_t max_piece, std::uint64_t rng_seed,
                   std::atomic<long>* progress = nullptr) {
  weft::test::Rng rng(rng_seed);
  std::vector<unsigned char> buf(max_piece);
  std::size_t off = 0;
  while (off < total) {
    const std::size_t n = std::min(total - off, rng.between(1, max_piece));
    for (std::size_t i = 0; i < n; ++i) buf[i] = pattern_byte(seed, off + i);
    s.write_all(buf.data(), n);
    off += n;
    if (progress) progress->store(static_cast<long>(off), std::memory_order_relaxed);
  }
}

/// Joins every handle; the what() of the first exception, or "" when none threw.
std::string join_all(std::vector<weft::JoinHandle<void>>& hs) {
  std::string first;
  for (auto& h : hs) {
    try {
      h.join();
    } catch (const std::exception& e) {
      if (first.empty()) first = e.what();
    }
  }
  return first;
}

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what);
}
}  // namespace

TEST_CASE("read_buffer echo: ~200 concurrent connections of random-sized writes come back byte-exact, "
          "leases come from the ring") {
  weft::test::raise_nofile_limit();
  const long conns = weft::test::under_tsan() ? weft::test::scaled(200) : 200;
  const std::size_t per_conn = 200 * 1000;
  std::atomic<long> clients_done{0}, servers_done{0}, ring_leases{0}, heap_leases{0};
  weft::Runtime rt;
  weft::test::Watchdog wd("net_buffered_read: echo", rt, {&clients_done, &servers_done, &ring_leases}, 100s);
  std::string client_error, server_error;
  rt.block_on([&] {
    TcpListener l = weft::test::loopback_listener();
    const weft::net::Address at = l.local_address();
    std::vector<weft::JoinHandle<void>> clients, servers;
    for (long i = 0; i < conns; ++i) {
      clients.push_back(weft::spawn(
          [&, i] {
            const auto seed = static_cast<std::uint64_t>(i + 1);
            TcpStream c = TcpStream::connect(at);
            auto writer = weft::spawn([&] {
              write_pattern(c, seed, per_conn, 20000, seed * 31);
              c.shutdown(weft::net::Shutdown::write);
            });
            std::vector<char> buf(64 * 1024);
            std::size_t got = 0;
            for (;;) {
              const std::size_t n = c.read_some(buf.data(), buf.size());
              if (n == 0) break;
              if (got + n > per_conn || !matches(seed, got, buf.data(), n))
                fail("connection " + std::to_string(i) + ": wrong echo at byte " + std::to_string(got));
              got += n;
            }
            writer.join();
            if (got != per_conn)
              fail("connection " + std::to_string(i) + ": " + std::to_string(got) + " of " +
                   std::to_string(per_conn) + " bytes echoed");
            ++clients_done;
          },
          {.name = "client"}));
    }
    for (long i = 0; i < conns; ++i) {
      servers.push_back(weft::spawn(
          [&, s = l.accept()]() mutable {
            for (;;) {
              RecvBuffer b = s.read_buffer();
              if (b.empty()) break;
              ++(b.from_ring() ? ring_leases : heap_leases);
              s.write_all(b.data(), b.size());
            }
            s.shutdown(weft::net::Shutdown::write);
            ++servers_done;
          },
          {.name = "echo"}));
    }
    client_error = join_all(clients);
    server_error = join_all(servers);
  });
  INFO("ring leases " << ring_leases.load() << ", heap leases " << heap_leases.load());
  REQUIRE(client_error == "");
  REQUIRE(server_error == "");
  REQUIRE(clients_done.load() == conns);
  REQUIRE(servers_done.load() == conns);
  REQUIRE(ring_leases.load() > 0);
  REQUIRE(rt.stats().stale_completions == 0);
}

TEST_CASE("a 2-buffer ring under 50 streaming connections whose readers hold their leases falls back to heap "
          "leases and loses nothing") {
  weft::test::raise_nofile_limit();
  weft::Config cfg;
  cfg.recv_buffers = 2;
  cfg.recv_buffer_size = 4096;
  const long conns = 50;
  const std::size_t per_conn = weft::test::under_tsan() ? 64 * 1024 : 256 * 1024;
  std::atomic<long> holding{0}, servers_done{0}, ring_leases{0}, heap_leases{0}, first_from_ring{0};
  weft::Runtime rt(cfg);
  weft::test::Watchdog wd("net_buffered_read: small ring", rt, {&holding, &servers_done, &ring_leases, &heap_leases},
                          100s);
  std::string client_error, server_error;
  rt.block_on([&] {
    TcpListener l = weft::test::loopback_listener();
    const weft::net::Address at = l.local_address();
    std::vector<weft::JoinHandle<void>> clients, servers;
    for (long i = 0; i < conns; ++i) {
      clients.push_back(weft::spawn([&, i] {
        TcpStream c = TcpStream::connect(at);
        // The stream's pattern is named by the client's port, which the server sees too.
        write_pattern(c, c.local_address().port(), per_conn, 20000, static_cast<std::uint64_t>(i) + 100);
        c.shutdown(weft::net::Shutdown::write);
      }));
    }
    for (long i = 0; i < conns; ++i) {
      servers.push_back(weft::spawn([&, s = l.accept()]() mutable {
        const std::uint64_t seed = s.peer_address().port();
        std::uint64_t got = 0;
        auto check = [&](const RecvBuffer& b) {
          ++(b.from_ring() ? ring_leases : heap_leases);
          if (got + b.size() > per_conn || !matches(seed, got, b.data(), b.size()))
            fail("stream " + std::to_string(seed) + ": wrong bytes at " + std::to_string(got));
          got += b.size();
        };
        {
          // Every reader holds its first lease until all of them hold one: the
          // ring has 2 buffers, so at least conns - 2 of these are heap leases.
          RecvBuffer first = s.read_buffer();
          if (first.empty()) fail("stream " + std::to_string(seed) + ": no bytes");
          if (first.from_ring()) ++first_from_ring;
          ++holding;
          while (holding.load() < conns) weft::sleep_for(1ms);
          check(first);
        }
        unsigned n = 0;
        for (;;) {
          RecvBuffer b = s.read_buffer();
          if (b.empty()) break;
          if (++n % 4 == 0) weft::sleep_for(200us);  // hold the lease while others read
          else weft::yield();
          check(b);
        }
        if (got != per_conn)
          fail("stream " + std::to_string(seed) + ": " + std::to_string(got) + " of " + std::to_string(per_conn) +
               " bytes");
        ++servers_done;
      }));
    }
    client_error = join_all(clients);
    server_error = join_all(servers);
  });
  INFO("ring leases " << ring_leases.load() << ", heap leases " << heap_leases.load() << ", first leases from the ring "
                      << first_from_ring.load());
  REQUIRE(client_error == "");
  REQUIRE(server_error == "");
  REQUIRE(servers_done.load() == conns);
  REQUIRE(first_from_ring.load() <= 2);
  REQUIRE(heap_leases.load() >= conns - 2);
  REQUIRE(rt.stats().stale_completions == 0);
}

TEST_CASE("flow cap: ~4 MB written while the reader sleeps on its first lease is read back byte-exact after "
          "the receive is cancelled and armed again") {
  const std::size_t total = 4 << 20;
  const std::uint64_t seed = 3;
  weft::Runtime rt;
  std::atomic<long> written{0}, got_bytes{0};
  weft::test::Watchdog wd("net_buffered_read: flow cap", rt, {&written, &got_bytes}, 100s);
  weft::test::on_loopback_connection(rt, [&](TcpListener&, TcpStream& c, TcpStream& s) {
    auto writer = weft::spawn([&] {
      write_pattern(c, seed, total, 64 * 1024, 33, &written);
      c.shutdown(weft::net::Shutdown::write);
    });
    RecvBuffer first = s.read_buffer();
    REQUIRE(!first.empty());
    REQUIRE(matches(seed, 0, first.data(), first.size()));
    // Away while the writer fills the queue past the cap (16 chunks) and then the
    // socket buffers: until 1 MB is written or the writer is held back (no progress
    // for 100 sleeps). Either way the bytes must all arrive below.
    long last = -1;
    int still = 0;
    while (written.load() < (1 << 20) && still < 100) {
      weft::sleep_for(1ms);
      const long w = written.load();
      still = w == last ? still + 1 : 0;
      last = w;
    }
    INFO("written while the reader was away: " << written.load());
    std::uint64_t got = first.size();
    first.reset();
    long chunks = 0, from_ring = 0;
    bool exact = true;
    for (;;) {
      RecvBuffer b = s.read_buffer(30s);
      if (b.empty()) break;
      ++chunks;
      if (b.from_ring()) ++from_ring;
      if (exact && (got + b.size() > total || !matches(seed, got, b.data(), b.size()))) exact = false;
      got += b.size();
      got_bytes.store(static_cast<long>(got), std::memory_order_relaxed);
    }
    writer.join();
    INFO("chunks " << chunks << ", from the ring " << from_ring);
    REQUIRE(exact);
    REQUIRE(got == total);
    REQUIRE(from_ring > 0);
    REQUIRE(s.read_buffer().empty());
  });
  REQUIRE(rt.stats().stale_completions == 0);
}

TEST_CASE("after read_buffer, read_some, read_exact, readv and recv read the following bytes in order; "
          "recv with MSG_PEEK is refused while the queue is in use") {
  const std::size_t total = 256 * 1024;
  const std::uint64_t seed = 4;
  weft::test::on_loopback_connection([&](TcpListener&, TcpStream& c, TcpStream& s) {
    auto writer = weft::spawn([&] {
      write_pattern(c, seed, total, 20000, 44);
      c.shutdown(weft::net::Shutdown::write);
    });
    std::vector<char> buf(64 * 1024);
    std::uint64_t off = 0;
    auto expect = [&](const void* p, std::size_t n) {
      REQUIRE(off + n <= total);
      REQUIRE(matches(seed, off, p, n));
      off += n;
    };

    RecvBuffer held = s.read_buffer();  // kept to the end: its bytes must not change
    REQUIRE(!held.empty());
    const std::uint64_t held_off = off;
    const std::string held_copy(held.view());
    expect(held.data(), held.size());

    char peek[16];
    REQUIRE_THROWS_AS(s.recv(peek, sizeof peek, MSG_PEEK), std::invalid_argument);

    std::size_t n = s.read_some(buf.data(), 100);
    REQUIRE(n >= 1);
    expect(buf.data(), n);

    s.read_exact(buf.data(), 5000);
    expect(buf.data(), 5000);

    iovec iov[3] = {{buf.data(), 7}, {buf.data() + 7, 20000}, {buf.data() + 20007, 33}};
    n = s.readv(iov);
    REQUIRE(n >= 1);
    expect(buf.data(), n);  // the iovecs are contiguous in buf

    n = s.recv(buf.data(), 3000);
    REQUIRE(n >= 1);
    expect(buf.data(), n);

    {
      RecvBuffer b = s.read_buffer();  // may start inside a chunk read_some began
      REQUIRE(!b.empty());
      expect(b.data(), b.size());
    }

    // The rest in a random mix of all five.
    weft::test::Rng rng(404);
    for (;;) {
      const std::size_t want = rng.between(1, buf.size() - 64);
      std::size_t got = 0;
      switch (rng.next() % 5) {
        case 0: {
          RecvBuffer b = s.read_buffer();
          got = b.size();
          if (got) expect(b.data(), got);
          break;
        }
        case 1:
          got = s.read_some(buf.data(), want);
          if (got) expect(buf.data(), got);
          break;
        case 2: {
          const std::size_t len = std::min<std::size_t>(want, total - off);
          if (len == 0) {
            got = s.read_some(buf.data(), want);
            break;
          }
          s.read_exact(buf.data(), len);
          got = len;
          expect(buf.data(), got);
          break;
        }
        case 3: {
          const std::size_t h = want / 2 + 1;
          iovec v[2] = {{buf.data(), h}, {buf.data() + h, want - h + 1}};
          got = s.readv(v);
          if (got) expect(buf.data(), got);
          break;
        }
        default:
          got = s.recv(buf.data(), want);
          if (got) expect(buf.data(), got);
      }
      if (got == 0) break;
    }
    writer.join();
    REQUIRE(off == total);
    REQUIRE(held.view() == held_copy);
    REQUIRE(matches(seed, held_off, held.data(), held.size()));
  });
}

TEST_CASE("end of stream: read_buffer returns an empty lease, again on the next call, and read_some returns 0") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    c.write_all("hello");
    c.shutdown(weft::net::Shutdown::write);
    std::string got;
    for (;;) {
      RecvBuffer b = s.read_buffer(10s);
      if (b.empty()) break;
      got += b.view();
    }
    REQUIRE(got == "hello");
    REQUIRE(s.read_buffer(10s).empty());
    REQUIRE(s.read_buffer(10s).empty());
    char buf[16];
    REQUIRE(s.read_some(buf, sizeof buf, 10s) == 0);
    REQUIRE(s.recv(buf, sizeof buf, 0, 10s) == 0);
    REQUIRE_THROWS_AS(s.read_exact(buf, 1, 10s), weft::net::UnexpectedEof);
    REQUIRE(s.read_buffer(10s).empty());
  });
  // The end arriving while a reader already waits, with no bytes before it.
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    auto reader = weft::spawn([&] { return s.read_buffer(10s).empty(); }, {.launch = weft::Launch::dispatch});
    c.shutdown(weft::net::Shutdown::write);
    REQUIRE(reader.join());
    REQUIRE(s.read_buffer(10s).empty());
    char buf[4];
    REQUIRE(s.read_some(buf, sizeof buf, 10s) == 0);
  });
}

TEST_CASE("a peer reset (SO_LINGER 0) makes read_buffer throw ECONNRESET once or return empty; "
          "afterwards it reads as the end") {
  weft::Runtime rt;
  // 0: the reader already waits when the reset arrives; 1: a receive is armed and
  // a chunk was read; 2: the reset comes before any read_buffer.
  for (int variant = 0; variant < 3; ++variant) {
    INFO("variant " << variant);
    std::string outcome;
    weft::test::on_loopback_connection(rt, [&](TcpListener&, TcpStream& c, TcpStream& s) {
      auto reset_peer = [&] {
        linger lg{1, 0};
        REQUIRE(setsockopt(c.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
        c.close();
      };
      auto read = [&]() -> std::string {
        try {
          RecvBuffer b = s.read_buffer(10s);
          return b.empty() ? "empty" : "bytes";
        } catch (const std::system_error& e) {
          return has_code(e, std::errc::connection_reset) ? "reset" : std::string("error: ") + e.what();
        }
      };
      if (variant == 0) {
        auto reader = weft::spawn(read, {.launch = weft::Launch::dispatch});
        reset_peer();
        outcome = reader.join();
      } else {
        if (variant == 1) {
          c.write_all("abc");
          RecvBuffer b = s.read_buffer(10s);
          REQUIRE(b.view() == "abc");
        }
        reset_peer();
        outcome = read();
      }
      INFO("first read after the reset: " << outcome);
      REQUIRE((outcome == "reset" || outcome == "empty"));
      REQUIRE(read() == "empty");
      REQUIRE(read() == "empty");
    });
  }
  REQUIRE(rt.stats().stale_completions == 0);
}

TEST_CASE("read_buffer past its deadline throws timed_out, and the stream still delivers afterwards") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    try {
      (void)s.read_buffer(50ms);
      FAIL("no timeout");
    } catch (const std::system_error& e) {
      REQUIRE(has_code(e, std::errc::timed_out));
      REQUIRE(std::string(e.what()).find("read_buffer") != std::string::npos);
    }
    try {
      (void)s.read_buffer(0ms);  // zero: fails unless bytes are there at once
      FAIL("no timeout");
    } catch (const std::system_error& e) {
      REQUIRE(has_code(e, std::errc::timed_out));
    }
    c.write_all("ping");
    std::string got;
    while (got.size() < 4) {
      RecvBuffer b = s.read_buffer(10s);
      REQUIRE(!b.empty());
      got += b.view();
    }
    REQUIRE(got == "ping");
    c.write_all("pong");
    char buf[4];
    s.read_exact(buf, 4, 10s);
    REQUIRE(std::string(buf, 4) == "pong");
  });
}

TEST_CASE("a second fiber waiting in read_buffer on the same stream gets std::logic_error; the first still reads") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream& c, TcpStream& s) {
    auto first = weft::spawn([&] { return std::string(s.read_buffer(10s).view()); },
                             {.launch = weft::Launch::dispatch});
    REQUIRE_THROWS_AS(s.read_buffer(10s), std::logic_error);
    c.write_all("ok");
    REQUIRE(first.join() == "ok");
  });
}

using weft::test::classify;
using weft::test::Outcome;
using enum weft::test::Outcome;

TEST_CASE("incident 002 with read_buffer: close while a reader waits gives operation_canceled, queued chunks "
          "and held leases survive the close, no fd leaks, repeated") {
  weft::test::raise_nofile_limit();
  const long rounds = weft::test::under_tsan() ? weft::test::scaled(2000) : 2000;
  std::atomic<long> done{0}, canceled{0}, other{0}, lease_damaged{0};
  weft::Runtime rt;
  weft::test::Watchdog wd("net_buffered_read: close while reading", rt, {&done, &canceled, &other}, 100s);
  const int fds_before = weft::test::stable_open_fds();
  rt.block_on([&] {
    TcpListener l = weft::test::loopback_listener();
    weft::test::Rng rng(2002);
    const std::string data = pattern(2, 0, 20000);
    for (long round = 0; round < rounds; ++round) {
      const unsigned variant = static_cast<unsigned>(rng.next() % 5);
      const bool prewrite = rng.next() % 2 == 0;
      TcpStream c = TcpStream::connect(l.local_address());
      auto s = std::make_unique<TcpStream>(l.accept());
      if (prewrite) c.write_all(data);
      Outcome seen = kNone;
      weft::JoinHandle<void> reader, writer;
      RecvBuffer held;
      if (variant < 4) {
        // dispatch: the reader runs now until it is parked in read_buffer (after
        // taking whatever chunks are already there).
        reader = weft::spawn(
            [&, st = s.get()] {
              try {
                for (;;) {
                  RecvBuffer b = st->read_buffer();
                  if (b.empty()) return;  // the end: counted as kNone, a failure
                }
              } catch (const std::system_error& e) {
                seen = classify(e);
              }
            },
            {.name = "reader", .launch = weft::Launch::dispatch});
      } else {
        // No reader waits: the receive is armed, a lease is held and more chunks
        // are queued when the socket closes; with the writer below (512 KB) the
        // queue likely reaches the flow cap, so its cancel may be in flight too.
        if (rng.next() % 2 == 0) {
          writer = weft::spawn([&] {
            try {
              write_pattern(c, 2, 512 * 1024, 64 * 1024, 7);
            } catch (const std::system_error&) {
              // The server closed with bytes unread: its reset ends the writes.
            }
          });
        } else if (!prewrite) {
          c.write_all(data);
        }
        held = s->read_buffer();
        for (int i = 0; i < 8; ++i) weft::yield();
      }
      if (variant < 4) {
        weft::test::close_variant(s, variant);
      } else if (rng.next() % 2) {
        s.reset();
      } else {
        s->close();
      }
      if (reader.valid()) {
        reader.join();
        if (seen == kCanceled) ++canceled;
        if (seen == kOther || seen == kNone) ++other;
      } else if (held.empty() || !matches(2, 0, held.data(), held.size())) {
        ++lease_damaged;
      }
      held.reset();
      if (writer.valid()) writer.join();
      done.store(round + 1, std::memory_order_relaxed);
    }
  });
  REQUIRE(other.load() == 0);
  REQUIRE(lease_damaged.load() == 0);
  REQUIRE(canceled.load() > 0);
  REQUIRE(done.load() == rounds);
  REQUIRE(rt.stats().stale_completions == 0);
  REQUIRE(weft::test::stable_open_fds() == fds_before);
}

TEST_CASE("a fiber cancelled (Runtime::shutdown) while waiting in read_buffer ends with FiberCancelled; "
          "its stream then closes cleanly, no fd leak") {
  // JoinHandle has no cancel of its own: a fiber is cancelled by its runtime's
  // shutdown (runtime.hpp), as in tcp_test.cpp.
  std::atomic<bool> waiting{false};
  std::atomic<int> outcome{0};  // 1 = FiberCancelled, 2 = returned, 3 = something else
  std::atomic<bool> closed{false};
  const int before = weft::test::stable_open_fds();
  {
    weft::Runtime rt;
    weft::test::Watchdog wd("net_buffered_read: cancel", rt, {}, 60s);
    auto h = rt.spawn([&] {
      weft::test::LoopbackConnection conn = weft::test::loopback_connection();
      TcpStream& s = conn.server;
      conn.client.write_all("x");
      RecvBuffer b = s.read_buffer(10s);  // the receive is armed
      if (b.view() != "x") fail("wrong first chunk");
      waiting = true;
      try {
        (void)s.read_buffer();
        outcome = 2;
      } catch (const weft::FiberCancelled&) {
        outcome = 1;
        s.close();  // from the cancelled fiber: waits for the armed receive's end
        closed = !s.is_open();
        throw;
      } catch (...) {
        outcome = 3;
      }
    });
    while (!waiting) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(10ms);  // most likely parked by now (cancelled either way)
    rt.shutdown();
    REQUIRE_THROWS_AS(h.join(), weft::FiberCancelled);
    REQUIRE(rt.stats().stale_completions == 0);
  }
  REQUIRE(outcome == 1);
  REQUIRE(closed);
  REQUIRE(weft::test::stable_open_fds() == before);
}

TEST_CASE("leases taken out of block_on outlive their Runtime: the bytes stay readable and dropping them "
          "afterwards is clean") {
  RecvBuffer a, b;
  const std::string first = pattern(10, 0, 3000), second = pattern(10, 3000, 3000);
  {
    weft::Runtime rt;
    rt.block_on([&] {
      weft::test::LoopbackConnection conn = weft::test::loopback_connection();
      auto take = [&](const std::string& msg) {
        conn.client.write_all(msg);
        RecvBuffer r = conn.server.read_buffer(10s);
        REQUIRE(r.view() == msg);  // one small write arrives as one chunk
        REQUIRE(r.from_ring());
        return r;
      };
      a = take(first);
      b = take(second);
    });  // the stream closes here with its receive armed
  }  // the worker retired its ring; the leases keep its memory
  REQUIRE(a.from_ring());
  REQUIRE(a.view() == first);
  REQUIRE(b.view() == second);
  b.consume(1000);
  REQUIRE(b.view() == second.substr(1000));
  a = std::move(b);  // gives the first lease back (after the runtime)
  REQUIRE(b.empty());
  REQUIRE(a.view() == second.substr(1000));
  a.reset();
  REQUIRE(a.empty());
  REQUIRE(!a.from_ring());
}

TEST_CASE("leases dropped on another thread while the runtime runs go back to the ring: later reads get ring "
          "buffers again") {
  weft::Config cfg;
  cfg.recv_buffers = 2;
  cfg.recv_buffer_size = 4096;
  weft::Runtime rt(cfg);
  std::atomic<long> rounds_done{0};
  weft::test::Watchdog wd("net_buffered_read: remote drop", rt, {&rounds_done}, 60s);
  std::promise<std::vector<RecvBuffer>> handoff;
  std::atomic<bool> dropped{false}, intact{false};
  std::thread dropper([&] {
    std::vector<RecvBuffer> leases = handoff.get_future().get();
    bool ok = leases.size() == 2;
    for (std::size_t i = 0; ok && i < leases.size(); ++i)
      ok = leases[i].from_ring() && leases[i].view() == pattern(11, i * 1000, 1000);
    intact = ok;
    leases.clear();  // the ids go to the worker's remote stack
    dropped = true;
  });
  bool handed = false;
  long ring_after = 0, heap_after = 0;
  auto body = [&] {
    weft::test::LoopbackConnection conn = weft::test::loopback_connection();
    std::uint64_t off = 0;
    std::vector<RecvBuffer> leases;
    for (int i = 0; i < 2; ++i) {  // both ring buffers lent out
      conn.client.write_all(pattern(11, off, 1000));
      RecvBuffer r = conn.server.read_buffer(10s);
      REQUIRE(r.view() == pattern(11, off, 1000));
      REQUIRE(r.from_ring());
      off += 1000;
      leases.push_back(std::move(r));
    }
    handoff.set_value(std::move(leases));
    handed = true;
    while (!dropped.load()) weft::sleep_for(1ms);
    // 50 more chunks, each dropped at once on this worker.
    for (int round = 0; round < 50; ++round) {
      const std::string msg = pattern(11, off, 1000);
      conn.client.write_all(msg);
      std::string got;
      while (got.size() < msg.size()) {
        RecvBuffer r = conn.server.read_buffer(10s);
        REQUIRE(!r.empty());
        ++(r.from_ring() ? ring_after : heap_after);
        got += r.view();
      }
      REQUIRE(got == msg);
      off += msg.size();
      rounds_done.store(round + 1, std::memory_order_relaxed);
    }
  };
  try {
    rt.block_on(body);
  } catch (...) {
    if (!handed) handoff.set_value({});
    dropper.join();
    throw;
  }
  dropper.join();
  INFO("after the drop: ring leases " << ring_after << ", heap leases " << heap_after);
  REQUIRE(intact);
  REQUIRE(rounds_done.load() == 50);
  REQUIRE(ring_after > 0);
  REQUIRE(rt.stats().stale_completions == 0);
}

TEST_CASE("a Runtime stops without hanging while a stream kept outside any fiber has its receive armed and "
          "chunks queued; the stream closes afterwards without an fd leak") {
  const int before = weft::test::stable_open_fds();
  std::optional<TcpStream> server, client;
  std::atomic<long> step{0};
  {
    // Covers the Runtime's destructor too: declared before it, disarmed after it.
    weft::test::Watchdog wd("net_buffered_read: shutdown with an armed receive", static_cast<weft::Runtime*>(nullptr),
                            {&step}, 60s);
    {
      weft::Runtime rt;
      rt.block_on([&] {
        TcpListener l = weft::test::loopback_listener();
        auto pr = weft::test::tcp_pair(l);
        pr.first.write_all(pattern(12, 0, 3000));
        RecvBuffer b = pr.second.read_buffer(10s);  // arms the receive
        REQUIRE(matches(12, 0, b.data(), b.size()));
        pr.first.write_all(pattern(12, 3000, 64 * 1024));  // queued on the stream, never read
        weft::yield();
        client.emplace(std::move(pr.first));
        server.emplace(std::move(pr.second));  // stays with its worker: the receive is armed
      });
      step = 1;
    }  // ~Runtime: shutdown with the receive still armed
    step = 2;
  }
  REQUIRE(server->is_open());
  server.reset();  // after the runtime, on this thread: nothing may be pending any more
  client.reset();
  REQUIRE(weft::test::stable_open_fds() == before);
}
