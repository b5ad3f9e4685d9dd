// An op that throws after the socket counted it (here: the worker's op table must
// grow and the allocation fails with bad_alloc) leaves the count as it found it,
// so a later close() does not wait for an op that never ran. And close(), which
// never throws, copes when its own ASYNC_CANCEL cannot be had the same way: it
// ends the pending ops with shutdown(2), waits for them, and closes; it never
// calls std::terminate.
//
// The failure is forced by this binary's operator new[]: armed, it refuses the next
// allocation the size of one chunk of the op table (runtime/uring/op_table.hpp),
// which the table makes when all its slots are in flight. Readers parked in
// receives fill the table until one of them meets the refusal. Under TSan, whose
// runtime defines operator new[] itself, the binary skips (exit 77); these tests
// involve one worker thread only.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/runtime/uring/op_table.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::TcpStream;

#if defined(__SANITIZE_THREAD__)
#define WEFT_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TEST_TSAN 1
#endif
#endif

namespace {
// The op table and its ASYNC_CANCEL belong to the io_uring engine (epoll parks a
// fiber on readiness with no table to grow and cancels by waking its waiters), so
// the binary skips (77) under WEFT_ENGINE=epoll.
const bool kUring = (weft::test::require_io_uring_engine(), true);

#ifdef WEFT_TEST_TSAN
const bool kSkipped = [] {
  std::fprintf(stderr, "SKIP: TSan's runtime defines operator new[]; this binary replaces it\n");
  std::exit(77);
  return true;
}();
#endif

// OpTable grows by chunks of 1024 slots (OpTable::kChunk, private): if that
// changes, no allocation matches and the tests below fail saying so. Unused
// under TSan, whose runtime keeps its own operator new[] (see above).
[[maybe_unused]] constexpr std::size_t kChunkBytes = 1024 * sizeof(weft::detail::OpSlot);
// relaxed: armed and consumed on the worker's thread (the test's fibers).
std::atomic<bool> g_refuse_chunk{false};
}  // namespace

#ifndef WEFT_TEST_TSAN
void* operator new[](std::size_t n) {
  if (n == kChunkBytes && g_refuse_chunk.exchange(false, std::memory_order_relaxed)) throw std::bad_alloc();
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
#endif

namespace {

struct Tally {
  int refused = 0;   // bad_alloc from the read
  int canceled = 0;  // operation_canceled: closed while pending
  int other = 0;
  std::string first_other;
};

// Starts readers of `s` (each parked in its receive when the spawn returns) until
// one meets the refused allocation, at most `limit`.
std::vector<weft::JoinHandle<void>> fill_op_table(TcpStream& s, Tally& t, int limit) {
  std::vector<weft::JoinHandle<void>> readers;
  g_refuse_chunk.store(true, std::memory_order_relaxed);
  for (int i = 0; i < limit && t.refused == 0; ++i) {
    readers.push_back(weft::spawn(
        [&s, &t] {
          char b;
          try {
            (void)s.read_some(&b, 1, 60s);
            ++t.other;
          } catch (const std::bad_alloc&) {
            ++t.refused;
          } catch (const std::system_error& e) {
            if (e.code() == std::errc::operation_canceled) {
              ++t.canceled;
            } else {
              if (t.other++ == 0) t.first_other = e.what();
            }
          }
        },
        {.name = "reader", .launch = weft::Launch::dispatch}));
  }
  g_refuse_chunk.store(false, std::memory_order_relaxed);
  return readers;
}

}  // namespace

TEST_CASE("an op refused after it was counted leaves the socket closable") {
  weft::Runtime rt;
  Tally t;
  bool close_returned = false;
  std::size_t readers_started = 0;
  rt.block_on([&] {
    auto conn = std::make_unique<weft::test::LoopbackConnection>(weft::test::loopback_connection());
    auto readers = fill_op_table(conn->server, t, 4096);
    readers_started = readers.size();
    REQUIRE(t.refused == 1);
    // Closed from another fiber, so this one can tell a close() that waits for an
    // op that never ran (it would park for good) from one that returns.
    auto closer = weft::spawn([&] {
      conn->server.close();
      close_returned = true;
    });
    for (int i = 0; i < 1000 && !close_returned; ++i) weft::sleep_for(10ms);
    if (!close_returned) {
      // Leave the connection be: its destructor would park behind that close().
      (void)conn.release();
      closer.detach();
      FAIL("close() is still waiting after 10 s: the refused op left its count raised");
    }
    closer.join();
    for (auto& r : readers) r.join();
    char b;
    REQUIRE(conn->client.read_some(&b, 1, 5s) == 0);
  });
  INFO(t.first_other);
  REQUIRE(t.other == 0);
  REQUIRE(t.canceled == static_cast<int>(readers_started) - 1);
}

// In a child: without the fallback, close() (noexcept) let the bad_alloc escape and
// the process called std::terminate.
TEST_CASE("close() whose cancel cannot be submitted ends the pending ops with shutdown and closes") {
  const auto r = weft::test::run_in_child([] {
    int rc = 0;
    Tally t;
    std::size_t readers_started = 0;
    {
      weft::Runtime rt;
      rc = rt.block_on([&] {
        weft::test::LoopbackConnection conn = weft::test::loopback_connection();
        auto readers = fill_op_table(conn.server, t, 4096);
        readers_started = readers.size();
        if (t.refused != 1) return 10;
        // The table is full again: close()'s own ASYNC_CANCEL needs the next chunk.
        g_refuse_chunk.store(true, std::memory_order_relaxed);
        conn.server.close();
        const bool cancel_refused = !g_refuse_chunk.exchange(false, std::memory_order_relaxed);
        for (auto& h : readers) h.join();
        if (!cancel_refused) return 11;
        if (conn.server.is_open()) return 12;
        char b;
        if (conn.client.read_some(&b, 1, 5s) != 0) return 13;
        return 0;
      });
    }
    if (rc != 0) return rc;
    if (t.other != 0) {
      std::fprintf(stderr, "unexpected reader outcome: %s\n", t.first_other.c_str());
      return 20;
    }
    if (t.canceled != static_cast<int>(readers_started) - 1) return 21;
    return 0;
  });
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
}
